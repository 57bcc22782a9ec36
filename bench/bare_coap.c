/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The baseline for make bench: the smallest libcoap 4.3.1 (OpenSSL) server,
 * DTLS on UDP and TLS on TCP on one port, one fixed PSK (and with -C/-K/-A a
 * certificate), answering every GET or POST with 2.05 and no work. Same
 * libcoap limits as mefd's, so the ratio is mefd's own cost.
 * bare_coap PORT PSKHEX [CERT KEY CA]; BARE_MAX_SESSIONS overrides 1024.
 *
 * With BARE_DURABLE=FILE it is the durable baseline of docs/performance.md
 * section 9, as bare_mhd's: each request's record goes to a writer thread
 * that commits what queued meanwhile to the ring of durable_ring.h, and the
 * answer waits for it. Held as mefd holds them (coapb.c): libcoap sends
 * nothing now, and the ACK with the request's message ID goes out from the
 * loop once the writer signals its eventfd.
 */
#include <coap3/coap.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "durable_ring.h"

static volatile sig_atomic_t quit;

static void
on_term(int s)
{
	(void)s;
	quit = 1;
}

static const uint8_t body[] = "{\"status\":true}";

/* One held request: what its answer needs once the record is on disk. */
struct held {
	coap_session_t *s; /* referenced */
	coap_mid_t mid;
	coap_pdu_type_t type;
	uint8_t tok[8];
	size_t tok_len;
	struct held *next;
};

static struct dur_ring dur = {.fd = -1};
static int dur_efd = -1;
static pthread_mutex_t dur_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t dur_cv = PTHREAD_COND_INITIALIZER;
static struct held *dur_queue, *dur_done; /* under dur_mu */

/* The writer thread: takes what queued, writes and syncs it, hands it back to the loop. */
static void *
dur_writer(void *arg)
{
	const uint64_t one = 1;

	(void)arg;
	for (;;) {
		struct held *batch, *last;
		size_t n = 1;

		pthread_mutex_lock(&dur_mu);
		while (!dur_queue)
			pthread_cond_wait(&dur_cv, &dur_mu);
		batch = dur_queue;
		dur_queue = NULL;
		pthread_mutex_unlock(&dur_mu);
		for (last = batch; last->next; last = last->next)
			n++;
		dur_ring_commit(&dur, n);
		pthread_mutex_lock(&dur_mu);
		last->next = dur_done;
		dur_done = batch;
		pthread_mutex_unlock(&dur_mu);
		if (write(dur_efd, &one, sizeof(one)) < 0)
			perror("bare_coap: eventfd");
	}
	return NULL;
}

static int
dur_open(const char *path)
{
	pthread_t th;

	dur_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (dur_efd < 0 || dur_ring_open(&dur, path) != 0 ||
	    pthread_create(&th, NULL, dur_writer, NULL) != 0)
		return -1;
	return pthread_detach(th);
}

/* On the loop, after the writer's signal: the ACKs (or NON answers) of what is on disk. */
static void
dur_release(void)
{
	struct held *h;
	uint64_t v;

	if (read(dur_efd, &v, sizeof(v)) < 0) {
		/* EAGAIN: nothing new */
	}
	pthread_mutex_lock(&dur_mu);
	h = dur_done;
	dur_done = NULL;
	pthread_mutex_unlock(&dur_mu);
	while (h) {
		struct held *next = h->next;
		coap_pdu_type_t t = h->type == COAP_MESSAGE_NON ? COAP_MESSAGE_NON : COAP_MESSAGE_ACK;
		coap_pdu_t *out = NULL;

		if (coap_session_get_state(h->s) == COAP_SESSION_STATE_ESTABLISHED)
			out = coap_pdu_init(t, COAP_RESPONSE_CODE_CONTENT,
					    t == COAP_MESSAGE_ACK ? h->mid : coap_new_message_id(h->s),
					    coap_session_max_pdu_size(h->s));
		if (out && coap_add_token(out, h->tok_len, h->tok) &&
		    coap_add_data(out, sizeof(body) - 1, body))
			coap_send(h->s, out); /* takes the PDU */
		else if (out)
			coap_delete_pdu(out);
		coap_session_release(h->s);
		free(h);
		h = next;
	}
}

static void
answer(coap_resource_t *r, coap_session_t *s, const coap_pdu_t *in, const coap_string_t *q,
       coap_pdu_t *out)
{
	struct held *h;

	(void)r;
	(void)q;
	if (dur.fd >= 0 && (h = calloc(1, sizeof(*h)))) {
		coap_bin_const_t tok = coap_pdu_get_token(in);

		h->s = coap_session_reference(s);
		h->mid = coap_pdu_get_mid(in);
		h->type = coap_pdu_get_type(in);
		h->tok_len = tok.length < sizeof(h->tok) ? tok.length : sizeof(h->tok);
		memcpy(h->tok, tok.s, h->tok_len);
		pthread_mutex_lock(&dur_mu);
		h->next = dur_queue;
		dur_queue = h;
		pthread_cond_signal(&dur_cv);
		pthread_mutex_unlock(&dur_mu);
		coap_pdu_set_type(out, COAP_MESSAGE_NON); /* with no code: libcoap sends nothing */
		return;
	}
	coap_pdu_set_code(out, COAP_RESPONSE_CODE_CONTENT);
	coap_add_data(out, sizeof(body) - 1, body);
}

/* The durable mode's loop: libcoap's epoll fd and the writer's eventfd, libcoap's timers kept. */
static void
dur_loop(coap_context_t *ctx)
{
	struct epoll_event ev = {.events = EPOLLIN}, got[2];
	int ep = epoll_create1(EPOLL_CLOEXEC);

	ev.data.fd = coap_context_get_coap_fd(ctx);
	epoll_ctl(ep, EPOLL_CTL_ADD, ev.data.fd, &ev);
	ev.data.fd = dur_efd;
	epoll_ctl(ep, EPOLL_CTL_ADD, dur_efd, &ev);
	while (!quit) {
		coap_tick_t now;
		unsigned ms;
		int n;

		coap_ticks(&now);
		ms = coap_io_prepare_epoll(ctx, now);
		n = epoll_wait(ep, got, 2, ms ? (int)ms : 500);
		for (int i = 0; i < n; i++)
			if (got[i].data.fd == dur_efd)
				dur_release();
		coap_io_process(ctx, COAP_IO_NO_WAIT);
	}
	close(ep);
}

/* mefd's coapb_tls_setup in effect: same floor, suites, no tickets, id context. */
static int
tls_setup(void *tls, coap_dtls_pki_t *setup)
{
	static const char ciphers[] =
		"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
		"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-AES128-GCM-SHA256:"
		"ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-CHACHA20-POLY1305:ECDHE-PSK-CHACHA20-POLY1305:"
		"ECDHE-ECDSA-AES128-CCM:PSK-AES128-GCM-SHA256:PSK-AES256-GCM-SHA384:"
		"PSK-CHACHA20-POLY1305:PSK-AES128-CCM:ECDHE-ECDSA-AES128-CCM8:PSK-AES128-CCM8:"
		"ECDHE-ECDSA-AES128-SHA256:PSK-AES128-CBC-SHA256";
	static const char suites13[] = "TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256:"
				       "TLS_AES_128_CCM_SHA256:TLS_AES_256_GCM_SHA384";
	SSL *ssl = tls;

	(void)setup;
	if (!ssl)
		return 1;
	int floor = SSL_is_dtls(ssl) ? DTLS1_2_VERSION : TLS1_2_VERSION;
	SSL_CTX *ctx = SSL_get_SSL_CTX(ssl);

	/* like mefd: the suites go on the context once, later sessions inherit them */
	if (SSL_get_min_proto_version(ssl) != floor ||
	    SSL_CTX_get_min_proto_version(ctx) != floor) {
		if (!SSL_set_min_proto_version(ssl, floor) || !SSL_set_cipher_list(ssl, ciphers) ||
		    !SSL_set_ciphersuites(ssl, suites13))
			return 0;
		if (!SSL_CTX_set_cipher_list(ctx, ciphers) || !SSL_CTX_set_ciphersuites(ctx, suites13) ||
		    !SSL_CTX_set_min_proto_version(ctx, floor))
			return 0;
	}
	SSL_set_options(ssl, SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_TICKET);
	SSL_set_num_tickets(ssl, 0);
	SSL_CTX_set_session_cache_mode(SSL_get_SSL_CTX(ssl), SSL_SESS_CACHE_OFF);
	return SSL_set_session_id_context(ssl, (const unsigned char *)"bare", 4);
}

/* PEM file -> DER (first certificate, or the private key), as mefd gives libcoap (coapb_der_*) */
static unsigned char *
der_of(const char *path, bool key, size_t *len)
{
	BIO *b = BIO_new_file(path, "r");
	unsigned char *p = NULL;
	int n = -1;

	if (b && key) {
		EVP_PKEY *k = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
		n = k ? i2d_PrivateKey(k, &p) : -1;
		EVP_PKEY_free(k);
	} else if (b) {
		X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);
		n = x ? i2d_X509(x, &p) : -1;
		X509_free(x);
	}
	BIO_free(b);
	*len = n > 0 ? (size_t)n : 0;
	return n > 0 ? p : NULL;
}

int
main(int argc, char **argv)
{
	static uint8_t psk[64];
	coap_context_t *ctx;
	coap_address_t a;
	coap_dtls_spsk_t sp;
	coap_dtls_pki_t pk;
	coap_resource_t *r;
	size_t n = 0;

	if (argc < 3) {
		fprintf(stderr, "usage: bare_coap PORT PSKHEX [CERT KEY CA]\n");
		return 2;
	}
	for (const char *h = argv[2]; h[0] && h[1] && n < sizeof(psk); h += 2) {
		unsigned v;
		sscanf(h, "%2x", &v);
		psk[n++] = (uint8_t)v;
	}
	signal(SIGTERM, on_term);
	signal(SIGINT, on_term);
	coap_startup();
	coap_set_log_level(LOG_ERR);
	coap_dtls_set_log_level(LOG_ERR);
	ctx = coap_new_context(NULL);
	coap_context_set_max_handshake_sessions(ctx, 128);
	coap_context_set_max_idle_sessions(ctx, getenv("BARE_MAX_SESSIONS") ? (unsigned)atoi(getenv("BARE_MAX_SESSIONS")) : 1024);
	coap_context_set_session_timeout(ctx, 600);
	memset(&sp, 0, sizeof(sp));
	sp.version = COAP_DTLS_SPSK_SETUP_VERSION;
	sp.psk_info.key.s = psk;
	sp.psk_info.key.length = n;
	if (!coap_context_set_psk2(ctx, &sp))
		return 1;
	if (argc >= 6) {
		memset(&pk, 0, sizeof(pk));
		pk.version = COAP_DTLS_PKI_SETUP_VERSION;
		pk.verify_peer_cert = 1;
		pk.check_common_ca = 1;
		pk.cert_chain_validation = 1;
		pk.cert_chain_verify_depth = 3;
		pk.additional_tls_setup_call_back = tls_setup;
		/* DER buffers: libcoap 4.3.1 re-reads them at every certificate or TLS 1.3 handshake */
		pk.pki_key.key_type = COAP_PKI_KEY_ASN1;
		pk.pki_key.key.asn1.public_cert = der_of(argv[3], false, &pk.pki_key.key.asn1.public_cert_len);
		pk.pki_key.key.asn1.private_key = der_of(argv[4], true, &pk.pki_key.key.asn1.private_key_len);
		pk.pki_key.key.asn1.private_key_type = COAP_ASN1_PKEY_EC;
		pk.pki_key.key.asn1.ca_cert = der_of(argv[5], false, &pk.pki_key.key.asn1.ca_cert_len);
		if (!pk.pki_key.key.asn1.public_cert || !pk.pki_key.key.asn1.private_key ||
		    !pk.pki_key.key.asn1.ca_cert)
			return 1;
		if (!coap_context_set_pki(ctx, &pk))
			return 1;
	}
	coap_address_init(&a);
	a.addr.sin.sin_family = AF_INET;
	a.addr.sin.sin_port = htons((uint16_t)atoi(argv[1]));
	a.addr.sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a.size = sizeof(a.addr.sin);
	if (!coap_new_endpoint(ctx, &a, COAP_PROTO_DTLS) || !coap_new_endpoint(ctx, &a, COAP_PROTO_TLS))
		return 1;
	/* the same listen backlog as mefd (coapb_raise_backlog): libcoap's 5 drops SYNs under load */
	for (int fd = 3; fd < 256; fd++) {
		int on = 0;
		socklen_t ol = sizeof(on);

		if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &on, &ol) == 0 && on)
			listen(fd, SOMAXCONN);
	}
	r = coap_resource_unknown_init2(answer, 0);
	coap_register_request_handler(r, COAP_REQUEST_GET, answer);
	coap_register_request_handler(r, COAP_REQUEST_POST, answer);
	coap_add_resource(ctx, r);
	if (getenv("BARE_DURABLE")) {
		if (dur_open(getenv("BARE_DURABLE")) != 0) {
			perror("bare_coap: BARE_DURABLE");
			return 1;
		}
		dur_loop(ctx);
	}
	while (!quit)
		coap_io_process(ctx, 500);
	coap_free_context(ctx);
	coap_cleanup();
	return 0;
}
