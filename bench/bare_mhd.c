/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The HTTPS baseline for make bench: the smallest libmicrohttpd (GnuTLS)
 * server on one epoll thread, with mefd's priority strings, one fixed TLS-PSK
 * (or with CERT KEY CA a certificate server that requests client
 * certificates and verifies their chain, as any server that authenticates
 * by certificate must: MHD only requests one) answering every request 200
 * with a short JSON body.
 * bare_mhd PORT PSKHEX | bare_mhd PORT - CERT KEY CA
 *
 * With BARE_DURABLE=FILE it is the durable baseline of docs/performance.md
 * section 9: the least a server must do before it answers with a key it
 * has to keep. Each request's record goes to a writer thread that commits
 * what queued meanwhile to the ring of durable_ring.h (a group commit, as
 * mefd's Ke rows), and the request's answer waits for it (MHD
 * suspend/resume).
 */
#include <gnutls/gnutls.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <microhttpd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "durable_ring.h"

static const char prio_psk[] = "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:-KX-ALL:+ECDHE-PSK:+PSK:"
			       "+AES-128-CBC:+SHA256";
static const char prio_cert[] = "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:-KX-ALL:+ECDHE-ECDSA:"
				"+ECDHE-RSA:+AES-128-CBC:+SHA256";
static uint8_t psk[64];
static size_t psk_len;
static volatile sig_atomic_t quit;

static void
on_term(int s)
{
	(void)s;
	quit = 1;
}

static int
psk_cb(void *cls, const struct MHD_Connection *c, const char *user, void **ret, size_t *ret_len)
{
	(void)cls;
	(void)c;
	(void)user;
	*ret = malloc(psk_len); /* MHD frees it */
	if (!*ret)
		return -1;
	memcpy(*ret, psk, psk_len);
	*ret_len = psk_len;
	return 0;
}

static bool cert_mode;

/* The client's chain against CA (MHD_OPTION_HTTPS_MEM_TRUST), once per request. */
static bool
peer_verified(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(c, MHD_CONNECTION_INFO_GNUTLS_SESSION);
	unsigned int status = 1;

	return ci && gnutls_certificate_verify_peers3(ci->tls_session, NULL, &status) == 0 &&
	       status == 0;
}

static struct dur_ring dur = {.fd = -1};
static pthread_mutex_t dur_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t dur_cv = PTHREAD_COND_INITIALIZER;
static struct MHD_Connection *dur_queue[DUR_MAX]; /* CONNECTION_LIMIT 1024: never full */
static size_t dur_n;

/* The writer thread: takes what queued, writes and syncs it, resumes those answers. */
static void *
dur_writer(void *arg)
{
	static struct MHD_Connection *batch[DUR_MAX];
	size_t n;

	(void)arg;
	for (;;) {
		pthread_mutex_lock(&dur_mu);
		while (dur_n == 0)
			pthread_cond_wait(&dur_cv, &dur_mu);
		n = dur_n;
		memcpy(batch, dur_queue, n * sizeof(batch[0]));
		dur_n = 0;
		pthread_mutex_unlock(&dur_mu);
		dur_ring_commit(&dur, n);
		for (size_t i = 0; i < n; i++)
			MHD_resume_connection(batch[i]);
	}
	return NULL;
}

static int
dur_open(const char *path)
{
	pthread_t th;

	if (dur_ring_open(&dur, path) != 0 || pthread_create(&th, NULL, dur_writer, NULL) != 0)
		return -1;
	return pthread_detach(th);
}

static enum MHD_Result
answer(void *cls, struct MHD_Connection *c, const char *url, const char *method, const char *ver,
       const char *data, size_t *data_len, void **state)
{
	static const char body[] = "{\"status\":true}";
	static int first, held;
	struct MHD_Response *r;
	enum MHD_Result ret;

	(void)cls;
	(void)url;
	(void)method;
	(void)ver;
	(void)data;
	if (*state == NULL) {
		*state = &first;
		return MHD_YES;
	}
	if (*data_len) {
		*data_len = 0;
		return MHD_YES;
	}
	if (dur.fd >= 0 && *state == &first) {
		/* suspended before the writer can see it, so that its resume comes after */
		MHD_suspend_connection(c);
		*state = &held;
		pthread_mutex_lock(&dur_mu);
		dur_queue[dur_n++] = c;
		pthread_cond_signal(&dur_cv);
		pthread_mutex_unlock(&dur_mu);
		return MHD_YES;
	}
	r = MHD_create_response_from_buffer(sizeof(body) - 1, (void *)body, MHD_RESPMEM_PERSISTENT);
	MHD_add_response_header(r, "Content-Type", "application/json");
	ret = MHD_queue_response(c, cert_mode && !peer_verified(c) ? MHD_HTTP_FORBIDDEN : MHD_HTTP_OK,
				 r);
	MHD_destroy_response(r);
	return ret;
}

static char *
slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *b = calloc(1, 65536);

	if (!f || !b)
		exit(1);
	fread(b, 1, 65535, f);
	fclose(f);
	return b;
}

int
main(int argc, char **argv)
{
	struct MHD_Daemon *d;
	bool cert = argc >= 6;

	cert_mode = cert;

	if (argc < 3) {
		fprintf(stderr, "usage: bare_mhd PORT PSKHEX | bare_mhd PORT - CERT KEY CA\n");
		return 2;
	}
	for (const char *h = argv[2]; h[0] && h[1] && psk_len < sizeof(psk); h += 2) {
		unsigned v;
		if (sscanf(h, "%2x", &v) != 1)
			break;
		psk[psk_len++] = (uint8_t)v;
	}
	signal(SIGTERM, on_term);
	signal(SIGINT, on_term);
	signal(SIGPIPE, SIG_IGN);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[1])),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	if (getenv("BARE_DURABLE") && dur_open(getenv("BARE_DURABLE")) != 0) {
		perror("bare_mhd: BARE_DURABLE");
		return 1;
	}
	d = MHD_start_daemon(MHD_USE_TLS | MHD_USE_EPOLL_INTERNAL_THREAD |
				     (dur.fd >= 0 ? MHD_ALLOW_SUSPEND_RESUME : 0),
			     0, NULL, NULL, answer, NULL,
			     MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&a,
			     MHD_OPTION_CONNECTION_LIMIT, 1024,
			     MHD_OPTION_CONNECTION_TIMEOUT, 60,
			     MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)32768,
			     MHD_OPTION_HTTPS_PRIORITIES, cert ? prio_cert : prio_psk,
			     MHD_OPTION_HTTPS_CRED_TYPE, cert ? GNUTLS_CRD_CERTIFICATE : GNUTLS_CRD_PSK,
			     MHD_OPTION_GNUTLS_PSK_CRED_HANDLER, psk_cb, NULL,
			     MHD_OPTION_HTTPS_MEM_KEY, cert ? slurp(argv[4]) : NULL,
			     MHD_OPTION_HTTPS_MEM_CERT, cert ? slurp(argv[3]) : NULL,
			     MHD_OPTION_HTTPS_MEM_TRUST, cert ? slurp(argv[5]) : NULL,
			     MHD_OPTION_END);
	if (!d)
		return 1;
	while (!quit)
		pause();
	MHD_stop_daemon(d);
	return 0;
}
