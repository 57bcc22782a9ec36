/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The HTTPS binding (TS-0009) on libmicrohttpd/GnuTLS: one MHD daemon per
 * listener (TLS-PSK or certificates) driven from the daemon's loop; the Ke
 * is generated when the TLS handshake completes (a GnuTLS handshake hook on
 * the client's Finished), requests become struct mef_req for
 * router_dispatch(). Reload starts a new daemon on the same listen socket
 * and lets the old one drain.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <limits.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "mef/err.h"
#include "mef/est.h"
#include "mef/kebatch.h"
#include "mef/log.h"
#include "mef/loop.h"
#include "mef/mefd.h"
#include "mef/net.h"
#include "mef/proc.h"
#include "mef/req.h"
#include "mef/secret.h"
#include "mef/tlsx.h"
#include "tls_internal.h"

/*
 * Cipher policy (decisions §2): TLS 1.2 and 1.3 only. The PSK daemon must not
 * offer certificate key exchanges (it has no certificate; with them left in,
 * TLS 1.2 clients fail) and must offer the oneM2M mandatory
 * TLS_PSK_WITH_AES_128_CBC_SHA256; the certificate daemon must offer
 * TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256. NORMAL brings the AEAD suites.
 */
static const char httpb_prio_psk[] =
	"NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:-KX-ALL:+ECDHE-PSK:+PSK:"
	"+AES-128-CBC:+SHA256";
static const char httpb_prio_cert[] =
	"NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:-KX-ALL:+ECDHE-ECDSA:+ECDHE-RSA:"
	"+AES-128-CBC:+SHA256";

#define HTTPB_MEMORY_LIMIT (32 * 1024) /* per connection: headers; bodies are ours */
#define HTTPB_DISCARD_FACTOR 4         /* abort an oversized upload past 4x body_max */
#define HTTPB_RETRY_AFTER 1            /* seconds, when the core gives no max_age */
#define HTTPB_MAX_DRAINING 8           /* old daemons still finishing after reloads */

/* One MHD daemon; several exist for a while after a reload. */
struct httpb_inst {
	struct httpb *h;
	struct MHD_Daemon *mhd;
	int epoll_fd;
	struct mef_secret *key_pem; /* certificate daemon: NUL-terminated PEM */
	char *cert_pem;
	char *ca_pem;
	gnutls_x509_trust_list_t tlist; /* [tls] client_ca, for httpb_cert_check */
	unsigned active;            /* connections, from the notify callback */
	struct httpb_conn *held;    /* suspended until their row is committed (kebatch_defer) */
	bool starting;              /* MHD log lines at startup are operator errors */
};

struct httpb {
	struct mefd *d;
	enum httpb_kind kind;
	enum mef_transport tr;
	struct httpb_inst *cur;
	struct httpb_inst *draining[HTTPB_MAX_DRAINING];
	unsigned half_open;         /* handshakes not yet established, all instances */
	struct httpb_conn *ho_list; /* those handshakes, oldest last (httpb_sweep) */
	uint64_t last_sweep_ms;
	bool hooks;
};

/* Per TLS connection (MHD's socket context). */
struct httpb_conn {
	struct httpb_inst *inst;
	struct MHD_Connection *c;
	struct mef_peer peer;
	bool half_open;  /* counted in httpb.half_open */
	bool psk_found;  /* a key went to GnuTLS: failing after this means a wrong key */
	bool cert_ok;    /* the verify callback accepted the client certificate */
	gnutls_x509_crt_t leaf; /* that certificate, parsed, until httpb_peer_identity */
	bool refused;    /* refusal already counted and logged */
	bool held;       /* suspended, on inst->held */
	struct httpb_conn *next_held;
	uint64_t born_ms;               /* accepted at, for the half-open sweep */
	struct httpb_conn *ho_next;     /* on httpb.ho_list while half_open */
	struct httpb_conn **ho_pprev;
};

/* Per HTTP request (MHD's con_cls), created by the URI callback. */
struct httpb_req {
	char *query;
	uint8_t *body;
	size_t len;
	size_t discarded;
	bool started;
	bool too_big;
	struct mef_resp *answer; /* made, held until its row is committed (resp->pending) */
};

static void
httpb_addr_text(const struct sockaddr *sa, char *out, size_t outlen)
{
	char host[INET6_ADDRSTRLEN] = "?";

	if (sa != NULL && sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;

		inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
		snprintf(out, outlen, "%s:%u", host, ntohs(in->sin_port));
	} else if (sa != NULL && sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;

		inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
		snprintf(out, outlen, "[%s]:%u", host, ntohs(in6->sin6_port));
	} else {
		snprintf(out, outlen, "?");
	}
}

static struct httpb_conn *
httpb_conn_of_mhd(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *ci;

	ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	return ci != NULL ? ci->socket_context : NULL;
}

/* MHD keeps its connection in the session pointer (its PSK adapter needs it): leave it. */
static struct httpb_conn *
httpb_conn_of_session(gnutls_session_t s)
{
	struct MHD_Connection *c = gnutls_session_get_ptr(s);

	return c != NULL ? httpb_conn_of_mhd(c) : NULL;
}

static void
httpb_refuse(struct httpb_conn *hc, const char *why)
{
	if (hc->refused)
		return;
	hc->refused = true;
	mef_handshake_refused(hc->inst->h->d, hc->peer.transport, hc->peer.addr, why);
}

/* The handshake is over (established or gone): it no longer counts as half-open. */
static void
httpb_conn_settled(struct httpb_conn *hc)
{
	if (hc->half_open) {
		hc->half_open = false;
		hc->inst->h->half_open--;
		*hc->ho_pprev = hc->ho_next;
		if (hc->ho_next)
			hc->ho_next->ho_pprev = hc->ho_pprev;
	}
}

/*
 * MHD 0.9.75 applies the connection timeout only once the TLS handshake
 * has made progress: a client that stalls inside its first record keeps
 * its connection for 10-16 s whatever [limits] handshake_timeout says.
 * Once a second, half-open connections older than that are shut down;
 * MHD sees the closed socket and frees them.
 */
static void
httpb_sweep(struct httpb *h)
{
	uint64_t now = loop_now_ms(), limit = h->d->conf->handshake_timeout * 1000ull;

	if (now - h->last_sweep_ms < 1000)
		return;
	h->last_sweep_ms = now;
	for (struct httpb_conn *hc = h->ho_list; hc; hc = hc->ho_next) {
		const union MHD_ConnectionInfo *ci;

		if (now - hc->born_ms < limit)
			continue;
		ci = MHD_get_connection_info(hc->c, MHD_CONNECTION_INFO_CONNECTION_FD);
		if (ci != NULL && ci->connect_fd >= 0)
			(void)shutdown(ci->connect_fd, SHUT_RDWR);
	}
}

/* ---- TLS: PSK lookup, certificate verification, handshake completion ---- */

/*
 * MHD copies our malloc()ed key into GnuTLS (which wipes its copy) and then
 * free()s ours without wiping it: a limitation of MHD 0.9.75 psk_gnutls_adapter.
 */
static int
httpb_psk_cb(void *cls, const struct MHD_Connection *c, const char *username, void **ret_psk,
	     size_t *ret_len)
{
	struct httpb_inst *inst = cls;
	/* MHD's info getter takes a non-const connection; it does not modify it */
	struct httpb_conn *hc = httpb_conn_of_mhd((struct MHD_Connection *)(uintptr_t)c);
	struct mef_secret *psk;
	void *copy;

	if (hc == NULL || username == NULL)
		return -1;
	if (mef_psk_lookup(inst->h->d, TR_HTTPS_PSK, hc->peer.addr, username, &psk) != 0) {
		hc->refused = true; /* mef_psk_lookup logged the reason */
		return -1;
	}
	copy = malloc(psk->len > 0 ? psk->len : 1);
	if (copy == NULL) {
		secret_free(psk);
		return -1;
	}
	memcpy(copy, psk->p, psk->len);
	*ret_psk = copy;
	*ret_len = psk->len;
	secret_free(psk);
	hc->psk_found = true;
	return 0;
}

/*
 * MHD_OPTION_HTTPS_MEM_TRUST only requests a certificate: the chain (against
 * [tls] client_ca), validity and EKU clientAuth (when an EKU is present) are
 * checked here. Returns NULL when acceptable, else a reason in why.
 */
static const char *
httpb_cert_check(struct httpb_conn *hc, gnutls_session_t s, char *why, size_t whylen)
{
	gnutls_datum_t text = {NULL, 0};
	unsigned int status = 0;
	int r;

	/*
	 * As gnutls_certificate_verify_peers against the same CA list, but the
	 * parsed leaf is kept: SANs and serial come from it (httpb_peer_identity)
	 * instead of a second parse (docs/performance.md). A second callback on
	 * this connection (a TLS 1.2 renegotiation) replaces the one kept.
	 */
	if (hc->leaf) {
		gnutls_x509_crt_deinit(hc->leaf);
		hc->leaf = NULL;
	}
	r = tls_gnutls_verify_chain(s, hc->inst->tlist, GNUTLS_KP_TLS_WWW_CLIENT, &status,
				    &hc->leaf);
	if (r == MEF_ENOTFOUND)
		return "no client certificate";
	if (r == MEF_ETOOBIG)
		return "client certificate chain too long";
	if (r != 0)
		return "client certificate could not be verified";
	if (status == 0)
		return NULL;
	gnutls_x509_crt_deinit(hc->leaf);
	hc->leaf = NULL;
	if (gnutls_certificate_verification_status_print(status, GNUTLS_CRT_X509, &text, 0) < 0)
		return "client certificate not trusted";
	snprintf(why, whylen, "client certificate refused: %s", (char *)text.data);
	gnutls_free(text.data);
	for (size_t len = strlen(why); len > 0 && why[len - 1] == ' '; len--)
		why[len - 1] = '\0';
	return why;
}

/* Runs when the client's Certificate(Verify) arrived: refuse early, with an alert. */
static int
httpb_verify_cb(gnutls_session_t s)
{
	struct httpb_conn *hc = httpb_conn_of_session(s);
	char buf[256];
	const char *why;

	if (hc == NULL)
		return GNUTLS_E_INTERNAL_ERROR;
	why = httpb_cert_check(hc, s, buf, sizeof(buf));
	if (why != NULL) {
		httpb_refuse(hc, why);
		return GNUTLS_E_CERTIFICATE_ERROR;
	}
	hc->cert_ok = true;
	return 0;
}

/* The authenticated identity into the peer: PSK identity, or the certificate's SANs. */
static int
httpb_peer_identity(struct httpb_conn *hc, gnutls_session_t s)
{
	struct mef_peer *p = &hc->peer;
	char buf[256];
	const char *why = NULL;

	if (hc->inst->h->kind == HTTPB_PSK) {
		const char *id = gnutls_psk_server_get_username(s);

		if (id == NULL || snprintf(p->psk_identity, sizeof(p->psk_identity), "%s", id) >=
					  (int)sizeof(p->psk_identity))
			why = "no usable PSK identity";
	} else {
		/*
		 * A client that sent no certificate never reached httpb_verify_cb.
		 * The chain is verified once per handshake (an ECDSA verification
		 * is ~15% of a certificate bootstrap's CPU), so the SANs are read
		 * without verifying it again.
		 */
		if (!hc->cert_ok)
			why = httpb_cert_check(hc, s, buf, sizeof(buf));
		/*
		 * httpb_cert_check kept the verified leaf: its SANs name the client
		 * and its serial is kept for tlsx_peer_serial(), without a new parse.
		 */
		if (why == NULL) {
			p->n_sans = hc->leaf ? tls_gnutls_crt_id(hc->leaf, p->sans, p->tls.peer_serial,
								 &p->tls.peer_serial_rc)
					     : MEF_EINVAL;
			gnutls_x509_crt_deinit(hc->leaf);
			hc->leaf = NULL;
			if (p->n_sans < 0)
				why = "client certificate SAN unreadable";
			else
				p->tls.peer_serial_kept = true;
		}
	}
	if (why != NULL) {
		httpb_refuse(hc, why);
		return MEF_EAUTH;
	}
	return 0;
}

/*
 * GnuTLS calls this around every Finished; incoming != 0 is the client's
 * (TLS 1.2: before our Finished; TLS 1.3: after it, when the exporter secret
 * exists). The handshake is complete from the client's side: make the Ke now
 * (decisions §1.3). A non-zero return aborts the handshake.
 */
static int
httpb_hs_hook(gnutls_session_t s, unsigned int htype, unsigned when, unsigned int incoming,
	      const gnutls_datum_t *msg)
{
	struct httpb_conn *hc;

	(void)msg;
	if (htype != GNUTLS_HANDSHAKE_FINISHED || when != GNUTLS_HOOK_POST || incoming == 0)
		return 0;
	hc = httpb_conn_of_session(s);
	if (hc == NULL)
		return GNUTLS_E_INTERNAL_ERROR;
	if (hc->peer.established) /* a second handshake on this connection keeps the first */
		return 0;
	if (httpb_peer_identity(hc, s) != 0)
		return GNUTLS_E_CERTIFICATE_ERROR;
	/* the SNI is read by mef_session_established (check_sni) */
	if (mef_session_established(hc->inst->h->d, &hc->peer) != 0) {
		hc->refused = true; /* the core logged and counted it */
		return GNUTLS_E_USER_ERROR;
	}
	httpb_conn_settled(hc);
	MHD_set_connection_option(hc->c, MHD_CONNECTION_OPTION_TIMEOUT,
				  hc->inst->h->d->conf->session_timeout);
	return 0;
}

/* ---- connections ---- */

static void
httpb_conn_open(struct httpb_inst *inst, struct MHD_Connection *c, void **socket_context)
{
	const union MHD_ConnectionInfo *ci;
	struct httpb_conn *hc;
	gnutls_session_t s;

	inst->active++;
	ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_GNUTLS_SESSION);
	hc = calloc(1, sizeof(*hc));
	if (hc == NULL || ci == NULL || ci->tls_session == NULL) {
		/* without the hook nothing gets established: every request is refused */
		free(hc);
		return;
	}
	s = ci->tls_session;
	hc->inst = inst;
	hc->c = c;
	hc->half_open = true;
	inst->h->half_open++;
	hc->born_ms = loop_now_ms();
	hc->ho_next = inst->h->ho_list;
	if (hc->ho_next)
		hc->ho_next->ho_pprev = &hc->ho_next;
	hc->ho_pprev = &inst->h->ho_list;
	inst->h->ho_list = hc;
	/* [limits] handshake_timeout until established, session_timeout after */
	MHD_set_connection_option(c, MHD_CONNECTION_OPTION_TIMEOUT,
				  inst->h->d->conf->handshake_timeout);
	hc->peer.transport = inst->h->tr;
	hc->peer.tls.lib = TLS_LIB_GNUTLS;
	hc->peer.tls.session = s;
	ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	httpb_addr_text(ci != NULL ? ci->client_addr : NULL, hc->peer.addr, sizeof(hc->peer.addr));
	gnutls_handshake_set_hook_function(s, GNUTLS_HANDSHAKE_FINISHED, GNUTLS_HOOK_POST,
					   httpb_hs_hook);
	if (inst->h->kind == HTTPB_CERT)
		gnutls_session_set_verify_function(s, httpb_verify_cb);
	*socket_context = hc;
}

static void
httpb_conn_close(struct httpb_inst *inst, struct httpb_conn *hc)
{
	inst->active--;
	if (hc == NULL)
		return;
	httpb_conn_settled(hc);
	if (!hc->peer.established && hc->psk_found)
		httpb_refuse(hc, "TLS-PSK handshake failed (wrong key?)");
	if (hc->leaf) /* a handshake that stopped between the two callbacks */
		gnutls_x509_crt_deinit(hc->leaf);
	hc->peer.tls.session = NULL;
	secret_wipe(hc, sizeof(*hc));
	free(hc);
}

/* [limits] max_handshakes: half-open TLS handshakes cost memory and CPU; refuse more. */
static enum MHD_Result
httpb_on_accept(void *cls, const struct sockaddr *addr, socklen_t addrlen)
{
	struct httpb_inst *inst = cls;
	char text[64];

	(void)addrlen;
	if (inst->h->half_open < inst->h->d->conf->max_handshakes)
		return MHD_YES;
	httpb_addr_text(addr, text, sizeof(text));
	log_debug("%s %s: refused, %u handshakes in progress", transport_name(inst->h->tr), text,
		  inst->h->half_open);
	return MHD_NO;
}

static void
httpb_on_notify(void *cls, struct MHD_Connection *c, void **socket_context,
		enum MHD_ConnectionNotificationCode code)
{
	struct httpb_inst *inst = cls;

	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		httpb_conn_open(inst, c, socket_context);
	} else if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
		httpb_conn_close(inst, *socket_context);
		*socket_context = NULL;
	}
}

/* ---- requests ---- */

static const struct {
	const char *method;
	enum mef_op op;
} httpb_methods[] = {
	{MHD_HTTP_METHOD_POST, MEF_OP_CREATE},
	{MHD_HTTP_METHOD_GET, MEF_OP_RETRIEVE},
	{MHD_HTTP_METHOD_PUT, MEF_OP_UPDATE},
	{MHD_HTTP_METHOD_DELETE, MEF_OP_DELETE},
};

/* Unknown methods become MEF_OP_NONE: the router answers 4005 (405). */
static enum mef_op
httpb_op(const char *method)
{
	for (size_t i = 0; i < sizeof(httpb_methods) / sizeof(httpb_methods[0]); i++)
		if (strcmp(method, httpb_methods[i].method) == 0)
			return httpb_methods[i].op;
	return MEF_OP_NONE;
}

static const struct {
	const char *type;
	enum mef_ctype ct;
} httpb_ctypes[] = {
	{"application/json", CT_JSON},
	{"application/vnd.onem2m-res+json", CT_ONEM2M_JSON},
	/* EST (RFC 7030): the first row of a type names it in responses */
	{"application/pkcs10", CT_PKCS10},
	{"application/pkcs7-mime; smime-type=certs-only", CT_PKCS7_CERTS},
	{"application/pkcs7-mime", CT_PKCS7_CERTS},
	{"application/csrattrs", CT_CSRATTRS},
	{"application/pkcs8", CT_PKCS8},
	{"application/pkix-cert", CT_PKIX_CERT},
	{"application/pkix-crl", CT_PKIX_CRL},
	{"multipart/mixed", CT_MULTIPART},
};

static char *
httpb_trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
		*--e = '\0';
	return s;
}

static const char *
httpb_ctype_name(enum mef_ctype ct)
{
	for (size_t i = 0; i < sizeof(httpb_ctypes) / sizeof(httpb_ctypes[0]); i++)
		if (httpb_ctypes[i].ct == ct)
			return httpb_ctypes[i].type;
	return "application/json";
}

/* "application/vnd.onem2m-res+json; ty=2" (TS-0009 6.4.5). MEF_EINVAL on a bad ty. */
static int
httpb_ctype_parse(const char *hdr, enum mef_ctype *ret_ct, int *ret_ty)
{
	char buf[256], *save = NULL, *tok;
	int ty = -1;

	*ret_ct = CT_NONE;
	*ret_ty = -1;
	if (hdr == NULL)
		return 0;
	if (snprintf(buf, sizeof(buf), "%s", hdr) >= (int)sizeof(buf))
		return MEF_EINVAL;
	tok = strtok_r(buf, ";", &save);
	*ret_ct = CT_OTHER;
	for (size_t i = 0; tok != NULL && i < sizeof(httpb_ctypes) / sizeof(httpb_ctypes[0]); i++)
		if (strcasecmp(httpb_trim(tok), httpb_ctypes[i].type) == 0)
			*ret_ct = httpb_ctypes[i].ct;
	while ((tok = strtok_r(NULL, ";", &save)) != NULL) {
		char *end;
		long v;

		tok = httpb_trim(tok);
		if (strncasecmp(tok, "ty=", 3) != 0)
			continue;
		errno = 0;
		v = strtol(tok + 3, &end, 10);
		if (errno != 0 || end == tok + 3 || *end != '\0' || v < 0 || v > 65535)
			return MEF_EINVAL;
		ty = (int)v;
	}
	*ret_ty = ty;
	return 0;
}

static bool
httpb_add_header(struct MHD_Response *r, const char *name, const char *value)
{
	return value == NULL || MHD_add_response_header(r, name, value) == MHD_YES;
}

/* Headers of TS-0009 6.4: RSC always, RI and RVI echoed, Content-Type with ty. */
static bool
httpb_resp_headers(struct MHD_Response *r, const struct mef_req *req, const struct mef_resp *resp)
{
	char rsc[16], ctype[96], retry[16];
	bool ok;

	snprintf(rsc, sizeof(rsc), "%d", resp->rsc);
	ok = httpb_add_header(r, "X-M2M-RSC", rsc) && httpb_add_header(r, "X-M2M-RI", req->rqi) &&
	     httpb_add_header(r, "X-M2M-RVI", req->rvi);
	if (ok && resp->body_len > 0) {
		snprintf(ctype, sizeof(ctype), "%s", httpb_ctype_name(resp->ctype));
		if (resp->ctype == CT_ONEM2M_JSON && resp->ty >= 0)
			snprintf(ctype, sizeof(ctype), "%s; ty=%d", httpb_ctype_name(resp->ctype),
				 resp->ty);
		ok = httpb_add_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
	}
	if (ok && resp->location[0] != '\0')
		ok = httpb_add_header(r, MHD_HTTP_HEADER_CONTENT_LOCATION, resp->location);
	if (ok && resp->rsc == RSC_TOO_MANY_REQUESTS) {
		snprintf(retry, sizeof(retry), "%u",
			 resp->max_age > 0 ? resp->max_age : HTTPB_RETRY_AFTER);
		ok = httpb_add_header(r, MHD_HTTP_HEADER_RETRY_AFTER, retry);
	}
	return ok;
}

/* EST bodies (mef/est.h): DER becomes RFC 7030/8951 base64 or multipart/mixed here. */
static enum MHD_Result
httpb_send_est(struct MHD_Connection *c, unsigned status, const struct mef_req *req,
	       const struct mef_resp *resp)
{
	struct mef_resp head = *resp;
	struct MHD_Response *r = NULL;
	enum MHD_Result ret = MHD_NO;
	char ctype[128], *body;
	size_t len;

	if (est_http_encode(resp, &body, &len, ctype, sizeof(ctype)) != 0)
		return MHD_NO;
	head.body_len = 0; /* Content-Type is ours */
	r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_COPY);
	if (r != NULL && httpb_resp_headers(r, req, &head) &&
	    httpb_add_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype) &&
	    (resp->ctype == CT_MULTIPART ||
	     httpb_add_header(r, "Content-Transfer-Encoding", "base64")))
		ret = MHD_queue_response(c, status, r);
	if (r != NULL)
		MHD_destroy_response(r);
	secret_wipe(body, len); /* serverkeygen: a private key */
	free(body);
	return ret;
}

/* EST requests: the procedures want DER (RFC 8951: base64 whatever the headers say). */
static int
httpb_est_body(struct httpb_req *r, struct mef_req *req)
{
	uint8_t *der;
	size_t len;

	if (r->len == 0 || est_http_decode(r->body, r->len, &der, &len) != 0)
		return r->len == 0 ? 0 : MEF_EINVAL;
	secret_wipe(r->body, r->len);
	free(r->body);
	r->body = der;
	r->len = len;
	req->body = der;
	req->body_len = len;
	return 0;
}

static enum MHD_Result
httpb_send(struct MHD_Connection *c, unsigned status, const struct mef_req *req,
	   const struct mef_resp *resp)
{
	struct MHD_Response *r;
	enum MHD_Result ret = MHD_NO;

	if (resp->body_len > 0 && est_http_transformed(resp->ctype))
		return httpb_send_est(c, status, req, resp);
	r = MHD_create_response_from_buffer(resp->body_len, resp->body, MHD_RESPMEM_MUST_COPY);
	if (r == NULL)
		return MHD_NO;
	if (httpb_resp_headers(r, req, resp))
		ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

/* An answer made by the binding itself, before the router: RSC and a debug text. */
static enum MHD_Result
httpb_send_error(struct MHD_Connection *c, unsigned status, int rsc, const char *dbg)
{
	struct mef_req req = {0};
	struct mef_resp resp;
	enum MHD_Result ret;

	req.rqi = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-M2M-RI");
	req.rvi = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-M2M-RVI");
	mef_resp_init(&resp);
	proc_error(&resp, rsc, dbg);
	ret = httpb_send(c, status, &req, &resp);
	mef_resp_done(&resp);
	return ret;
}

static void
httpb_build_req(struct MHD_Connection *c, struct httpb_req *r, struct httpb_conn *hc,
		const char *url, const char *method, struct mef_req *req)
{
	memset(req, 0, sizeof(*req));
	req->op = httpb_op(method);
	req->path = url;
	req->query = r->query;
	req->origin = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-M2M-Origin");
	req->rqi = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-M2M-RI");
	req->rvi = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-M2M-RVI");
	req->body = r->body;
	req->body_len = r->len;
	req->peer = &hc->peer;
}

/* kebatch on_commit: the row of every held connection is committed (or failed): answer them. */
static void
httpb_release_held(void *ctx)
{
	struct httpb_inst *inst = ctx;
	struct httpb_conn *hc;

	while ((hc = inst->held) != NULL) {
		inst->held = hc->next_held;
		hc->held = false;
		MHD_resume_connection(hc->c);
	}
}

/*
 * Group commit (docs/performance.md): suspends the connection until the row
 * key is committed, shared with the other rows of this loop turn, instead of
 * committing it alone. MHD calls httpb_on_request again after the resume.
 */
static bool
httpb_hold_for(struct httpb_conn *hc, struct MHD_Connection *c, const char *key)
{
	struct httpb_inst *inst = hc->inst;

	if (!kebatch_defer(inst->h->d->kebatch, key, httpb_release_held, inst))
		return false;
	MHD_suspend_connection(c);
	hc->held = true;
	hc->next_held = inst->held;
	inst->held = hc;
	return true;
}

/*
 * An answer whose row (an issued certificate) or whose session's Ke is still
 * queued is kept until the commit. With TLS 1.3 the request arrives with the
 * client Finished, before its Ke is committed: it runs at once and only the
 * answer waits (router_dispatch_nowait).
 */
static bool
httpb_hold_answer(struct httpb_conn *hc, struct MHD_Connection *c, struct httpb_req *r,
		  const struct mef_resp *resp)
{
	if (!(r->answer = malloc(sizeof(*r->answer))))
		return false;
	*r->answer = *resp; /* takes the body */
	if (httpb_hold_for(hc, c, resp->pending))
		return true;
	free(r->answer);
	r->answer = NULL;
	return false;
}

static void
httpb_answer_free(struct httpb_req *r)
{
	if (r->answer == NULL)
		return;
	mef_resp_done(r->answer);
	free(r->answer);
	r->answer = NULL;
}

/* After the commit: the held answer, or 5000 if its row could not be stored. */
static enum MHD_Result
httpb_send_held(struct httpb_conn *hc, struct MHD_Connection *c, struct httpb_req *r,
		const char *url, const char *method)
{
	struct mef_req req;
	enum MHD_Result ret;

	httpb_build_req(c, r, hc, url, method, &req);
	router_settle(hc->inst->h->d, r->answer);
	ret = httpb_send(c, (unsigned)rsc_to_http(r->answer->rsc), &req, r->answer);
	httpb_answer_free(r);
	return ret;
}

static enum MHD_Result
httpb_dispatch(struct httpb_conn *hc, struct MHD_Connection *c, struct httpb_req *r,
	       const char *url, const char *method)
{
	const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
	struct mef_req req;
	struct mef_resp resp;
	enum MHD_Result ret;

	if (r->answer != NULL)
		return httpb_send_held(hc, c, r, url, method);
	/* the binding's own refusals carry no key material: they do not wait for the Ke */
	if (r->too_big)
		return httpb_send_error(c, MHD_HTTP_CONTENT_TOO_LARGE, RSC_BAD_REQUEST,
					"request body too large");
	if (url[0] != '/')
		return httpb_send_error(c, MHD_HTTP_BAD_REQUEST, RSC_BAD_REQUEST,
					"request target must be a path");
	httpb_build_req(c, r, hc, url, method, &req);
	if (httpb_ctype_parse(ct, &req.ctype, &req.ty) != 0)
		return httpb_send_error(c, MHD_HTTP_BAD_REQUEST, RSC_BAD_REQUEST,
					"malformed Content-Type");
	if (req.ctype == CT_PKCS10 && httpb_est_body(r, &req) != 0)
		return httpb_send_error(c, MHD_HTTP_BAD_REQUEST, RSC_BAD_REQUEST,
					"body is neither base64 nor DER");
	mef_resp_init(&resp);
	router_dispatch_nowait(hc->inst->h->d, &req, &resp);
	if (resp.pending[0] && httpb_hold_answer(hc, c, r, &resp))
		return MHD_YES;
	router_settle(hc->inst->h->d, &resp);
	ret = httpb_send(c, (unsigned)rsc_to_http(resp.rsc), &req, &resp);
	mef_resp_done(&resp);
	return ret;
}

static enum MHD_Result
httpb_upload(struct httpb_inst *inst, struct httpb_req *r, const char *data, size_t *size)
{
	size_t max = inst->h->d->conf->body_max;
	size_t n = *size;
	uint8_t *p;

	*size = 0;
	if (r->too_big || n > max - r->len) {
		/* MHD cannot answer mid-upload: discard, answer 413 at the end */
		r->too_big = true;
		r->discarded += n;
		return r->discarded / HTTPB_DISCARD_FACTOR > max ? MHD_NO : MHD_YES;
	}
	p = realloc(r->body, r->len + n);
	if (p == NULL)
		return MHD_NO;
	memcpy(p + r->len, data, n);
	r->body = p;
	r->len += n;
	return MHD_YES;
}

/* First call for a request: refuse unauthenticated sessions and announced oversize bodies. */
static enum MHD_Result
httpb_request_start(struct httpb_inst *inst, struct httpb_conn *hc, struct MHD_Connection *c)
{
	const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
						     MHD_HTTP_HEADER_CONTENT_LENGTH);

	if (hc == NULL || !hc->peer.established)
		return httpb_send_error(c, MHD_HTTP_FORBIDDEN, RSC_ORIGINATOR_NOT_AUTHENTICATED,
					"session not authenticated");
	if (cl != NULL && strtoull(cl, NULL, 10) > inst->h->d->conf->body_max)
		return httpb_send_error(c, MHD_HTTP_CONTENT_TOO_LARGE, RSC_BAD_REQUEST,
					"request body too large");
	return MHD_YES;
}

static enum MHD_Result
httpb_on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
		 const char *version, const char *upload_data, size_t *upload_size, void **req_cls)
{
	struct httpb_inst *inst = cls;
	struct httpb_req *r = *req_cls;
	struct httpb_conn *hc = httpb_conn_of_mhd(c);

	(void)version;
	if (r == NULL) /* the URI callback could not allocate */
		return MHD_NO;
	if (!r->started) {
		r->started = true;
		return httpb_request_start(inst, hc, c);
	}
	if (*upload_size != 0)
		return httpb_upload(inst, r, upload_data, upload_size);
	return httpb_dispatch(hc, c, r, url, method);
}

/* Called with the raw request target before MHD splits and decodes it: keep the query. */
static void *
httpb_on_uri(void *cls, const char *uri, struct MHD_Connection *c)
{
	struct httpb_req *r = calloc(1, sizeof(*r));
	const char *q = strchr(uri, '?');

	(void)cls;
	(void)c;
	if (r != NULL && q != NULL && (r->query = strdup(q + 1)) == NULL) {
		free(r);
		r = NULL;
	}
	return r;
}

static void
httpb_on_completed(void *cls, struct MHD_Connection *c, void **req_cls,
		   enum MHD_RequestTerminationCode toe)
{
	struct httpb_req *r = *req_cls;

	(void)cls;
	(void)c;
	(void)toe;
	if (r == NULL)
		return;
	if (r->body != NULL)
		secret_wipe(r->body, r->len); /* bodies may carry key values */
	free(r->body);
	free(r->query);
	httpb_answer_free(r); /* the connection closed while held: the row is still written */
	free(r);
	*req_cls = NULL;
}

/* ---- daemon instances ---- */

/* fmt is MHD's own literal; the attribute lets clang check the forwarding */
static void __attribute__((format(printf, 2, 0)))
httpb_mhd_log(void *cls, const char *fmt, va_list ap)
{
	struct httpb_inst *inst = cls;
	enum log_level lvl = inst->starting ? LOG_LVL_ERR : LOG_LVL_DEBUG;
	char msg[512];
	size_t n;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	n = strlen(msg);
	while (n > 0 && msg[n - 1] == '\n')
		msg[--n] = '\0';
	/* per-connection noise (every refused handshake) at debug; a limit hit is a notice */
	if (!inst->starting && strstr(msg, "limit") != NULL)
		lvl = LOG_LVL_NOTICE;
	if (lvl <= log_get_level())
		log_write(lvl, "mhd", "%s: %s", transport_name(inst->h->tr), msg);
}

/* [tls] client_ca as a GnuTLS trust list: the CAs MHD trusts, for httpb_cert_check. */
static int
httpb_trust_list(struct httpb_inst *inst)
{
	gnutls_datum_t pem = {(unsigned char *)inst->ca_pem, (unsigned int)strlen(inst->ca_pem)};

	if (gnutls_x509_trust_list_init(&inst->tlist, 0) < 0) {
		inst->tlist = NULL;
		return MEF_ENOMEM;
	}
	return gnutls_x509_trust_list_add_trust_mem(inst->tlist, &pem, NULL, GNUTLS_X509_FMT_PEM,
						    0, 0) > 0
		       ? 0
		       : MEF_ECONF;
}

static int
httpb_read_text(const char *path, char **ret)
{
	FILE *f = fopen(path, "re");
	char *buf = NULL;
	size_t len = 0;

	if (f == NULL)
		return MEF_EIO;
	buf = malloc(1024 * 1024 + 1);
	if (buf != NULL)
		len = fread(buf, 1, 1024 * 1024, f);
	if (buf == NULL || ferror(f) || !feof(f)) {
		fclose(f);
		free(buf);
		return buf == NULL ? MEF_ENOMEM : MEF_EIO;
	}
	fclose(f);
	buf[len] = '\0';
	*ret = buf;
	return 0;
}

/* The certificate daemon's PEM blobs; the key stays in a secret (wiped on free). */
static int
httpb_load_creds(struct httpb_inst *inst, const struct mef_conf *conf)
{
	struct mef_secret *raw = NULL;
	const char *why = "unreadable";
	int rc;

	if (conf->tls_certificate == NULL || conf->tls_private_key == NULL ||
	    conf->tls_client_ca == NULL) {
		log_err("[tls] certificate, private_key and client_ca are needed for cert_listen");
		return MEF_ECONF;
	}
	if ((rc = httpb_read_text(conf->tls_certificate, &inst->cert_pem)) != 0 ||
	    (rc = httpb_read_text(conf->tls_client_ca, &inst->ca_pem)) != 0) {
		log_err("cannot read [tls] certificate or client_ca: %s", strerror(errno));
		return rc;
	}
	if (httpb_trust_list(inst) != 0) {
		log_err("[tls] client_ca %s: no usable CA certificate", conf->tls_client_ca);
		return MEF_ECONF;
	}
	rc = secret_read_file(conf->tls_private_key, 0, &raw, &why);
	if (rc == 0 && (inst->key_pem = secret_new(raw->len + 1)) == NULL)
		rc = MEF_ENOMEM;
	if (rc != 0) {
		log_err("cannot read [tls] private_key %s: %s", conf->tls_private_key, why);
		secret_free(raw);
		return rc;
	}
	memcpy(inst->key_pem->p, raw->p, raw->len); /* secret_new zeroed: NUL-terminated */
	secret_free(raw);
	return 0;
}

static struct httpb_inst *
httpb_inst_free(struct httpb_inst *inst)
{
	if (inst == NULL)
		return NULL;
	if (inst->mhd != NULL) {
		loop_del_fd(inst->h->d->loop, inst->epoll_fd);
		kebatch_forget(inst->h->d->kebatch, inst);
		httpb_release_held(inst); /* MHD must not stop with suspended connections */
		MHD_stop_daemon(inst->mhd); /* closes connections: notify frees each peer */
	}
	secret_free(inst->key_pem);
	free(inst->cert_pem);
	free(inst->ca_pem);
	if (inst->tlist)
		gnutls_x509_trust_list_deinit(inst->tlist, 1);
	free(inst);
	return NULL;
}

/* Per-IP limit: a quarter of the sessions, so one host cannot take the listener. */
static unsigned
httpb_per_ip(const struct mef_conf *conf)
{
	unsigned n = conf->max_sessions / 4;

	return n < 16 ? 16 : n;
}

/* Starts MHD on conf's address, or on listen_fd (a reload) when >= 0. */
static struct MHD_Daemon *
httpb_mhd_start(struct httpb_inst *inst, const struct mef_conf *conf, int listen_fd)
{
	struct httpb *h = inst->h;
	const struct conf_addr *a =
		h->kind == HTTPB_PSK ? &conf->https_psk_listen : &conf->https_cert_listen;
	unsigned flags = MHD_USE_TLS | MHD_USE_EPOLL | MHD_USE_ERROR_LOG | MHD_ALLOW_SUSPEND_RESUME;
	bool psk = h->kind == HTTPB_PSK;

	if (a->ss.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	/* options not used by a kind get NULL / -1, which MHD reads as "not given" */
	return MHD_start_daemon(
		flags, a->port, httpb_on_accept, inst, httpb_on_request, inst,
		MHD_OPTION_EXTERNAL_LOGGER, httpb_mhd_log, inst,
		MHD_OPTION_SOCK_ADDR, listen_fd < 0 ? (const struct sockaddr *)&a->ss : NULL,
		MHD_OPTION_LISTEN_SOCKET, (MHD_socket)listen_fd,
		MHD_OPTION_CONNECTION_LIMIT, conf->max_sessions,
		MHD_OPTION_CONNECTION_TIMEOUT, conf->session_timeout,
		MHD_OPTION_PER_IP_CONNECTION_LIMIT, httpb_per_ip(conf),
		MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)HTTPB_MEMORY_LIMIT,
		MHD_OPTION_SIGPIPE_HANDLED_BY_APP, 1,
		MHD_OPTION_NOTIFY_CONNECTION, httpb_on_notify, inst,
		MHD_OPTION_URI_LOG_CALLBACK, httpb_on_uri, inst,
		MHD_OPTION_NOTIFY_COMPLETED, httpb_on_completed, inst,
		MHD_OPTION_HTTPS_PRIORITIES, psk ? httpb_prio_psk : httpb_prio_cert,
		MHD_OPTION_HTTPS_CRED_TYPE, psk ? GNUTLS_CRD_PSK : GNUTLS_CRD_CERTIFICATE,
		MHD_OPTION_GNUTLS_PSK_CRED_HANDLER, httpb_psk_cb, inst,
		MHD_OPTION_HTTPS_MEM_KEY, psk ? NULL : (const char *)inst->key_pem->p,
		MHD_OPTION_HTTPS_MEM_CERT, psk ? NULL : inst->cert_pem,
		MHD_OPTION_HTTPS_MEM_TRUST, psk ? NULL : inst->ca_pem,
		MHD_OPTION_END);
}

static void
httpb_on_fd(struct loop *l, int fd, uint32_t events, void *ctx)
{
	/* nothing: the after hook runs MHD_run for every daemon after each wake */
	(void)l;
	(void)fd;
	(void)events;
	(void)ctx;
}

static int
httpb_inst_new(struct httpb *h, const struct mef_conf *conf, int listen_fd,
	       struct httpb_inst **ret)
{
	struct httpb_inst *inst = calloc(1, sizeof(*inst));
	const union MHD_DaemonInfo *di;
	int rc;

	if (inst == NULL)
		return MEF_ENOMEM;
	inst->h = h;
	inst->starting = true;
	/* the same predicate as httpb_mhd_start, so no kind runs without its credentials */
	rc = h->kind != HTTPB_PSK ? httpb_load_creds(inst, conf) : 0;
	if (rc == 0 && (inst->mhd = httpb_mhd_start(inst, conf, listen_fd)) == NULL) {
		log_err("cannot start the %s listener on %s", transport_name(h->tr),
			h->kind == HTTPB_PSK ? conf->https_psk_listen.text
					     : conf->https_cert_listen.text);
		rc = MEF_EIO;
	}
	if (rc == 0) {
		di = MHD_get_daemon_info(inst->mhd, MHD_DAEMON_INFO_EPOLL_FD);
		inst->epoll_fd = di != NULL ? di->epoll_fd : -1;
		if (inst->epoll_fd < 0 ||
		    loop_add_fd(h->d->loop, inst->epoll_fd, EPOLLIN, httpb_on_fd, inst) != 0) {
			MHD_stop_daemon(inst->mhd);
			inst->mhd = NULL;
			rc = MEF_EIO;
		}
	}
	if (rc != 0) {
		httpb_inst_free(inst);
		return rc;
	}
	inst->starting = false;
	*ret = inst;
	return 0;
}

/* ---- loop hooks ---- */

/* MHD 0.9.75 says 0 in epoll mode while any TLS handshake waits: floor 1 ms, no spin. */
static int
httpb_inst_timeout(struct httpb_inst *inst)
{
	MHD_UNSIGNED_LONG_LONG t;

	if (inst == NULL || MHD_get_timeout(inst->mhd, &t) != MHD_YES)
		return -1;
	if (t == 0)
		return 1;
	return t > INT_MAX ? INT_MAX : (int)t;
}

static int
httpb_prepare(struct loop *l, void *ctx)
{
	struct httpb *h = ctx;
	int best = httpb_inst_timeout(h->cur);

	(void)l;
	for (size_t i = 0; i < HTTPB_MAX_DRAINING; i++) {
		int t = httpb_inst_timeout(h->draining[i]);

		if (t >= 0 && (best < 0 || t < best))
			best = t;
	}
	return best;
}

static void
httpb_after(struct loop *l, void *ctx)
{
	struct httpb *h = ctx;

	(void)l;
	httpb_sweep(h);
	if (h->cur != NULL)
		MHD_run(h->cur->mhd);
	for (size_t i = 0; i < HTTPB_MAX_DRAINING; i++) {
		if (h->draining[i] == NULL)
			continue;
		MHD_run(h->draining[i]->mhd);
		if (h->draining[i]->active == 0)
			h->draining[i] = httpb_inst_free(h->draining[i]);
	}
}

/* ---- public ---- */

int
httpb_new(struct mefd *d, enum httpb_kind kind, struct httpb **ret)
{
	struct httpb *h;
	int rc;

	if ((kind == HTTPB_PSK && !d->conf->has_https_psk) ||
	    (kind == HTTPB_CERT && !d->conf->has_https_cert) ||
	    (kind != HTTPB_PSK && kind != HTTPB_CERT))
		return MEF_EINVAL;
	h = calloc(1, sizeof(*h));
	if (h == NULL)
		return MEF_ENOMEM;
	h->d = d;
	h->kind = kind;
	h->tr = kind == HTTPB_PSK ? TR_HTTPS_PSK : TR_HTTPS_CERT;
	rc = httpb_inst_new(h, d->conf, -1, &h->cur);
	if (rc == 0 && (loop_add_prepare(d->loop, httpb_prepare, h) != 0 ||
			loop_add_after(d->loop, httpb_after, h) != 0))
		rc = MEF_ENOMEM;
	if (rc != 0) {
		httpb_free(h);
		return rc;
	}
	h->hooks = true;
	log_info("%s listening on %s", transport_name(h->tr),
		 kind == HTTPB_PSK ? d->conf->https_psk_listen.text
				   : d->conf->https_cert_listen.text);
	*ret = h;
	return 0;
}

/*
 * New credentials and limits: a new daemon on a dup of the listen socket
 * first (so a bad certificate leaves the old daemon untouched and no
 * connection attempt finds the port closed), then the old one is quiesced
 * and serves its open connections until they end. The listen address itself
 * does not change on reload (that needs a restart).
 */
int
httpb_reload(struct httpb *h, const struct mef_conf *conf)
{
	const union MHD_DaemonInfo *di;
	struct httpb_inst *next;
	size_t slot;
	int fd, rc;

	for (slot = 0; slot < HTTPB_MAX_DRAINING && h->draining[slot] != NULL; slot++)
		;
	if (h->cur == NULL || slot == HTTPB_MAX_DRAINING)
		return MEF_EBUSY;
	di = MHD_get_daemon_info(h->cur->mhd, MHD_DAEMON_INFO_LISTEN_FD);
	if (di == NULL || (fd = dup(di->listen_fd)) < 0)
		return MEF_EIO;
	rc = httpb_inst_new(h, conf, fd, &next);
	if (rc != 0) {
		close(fd);
		return rc;
	}
	fd = MHD_quiesce_daemon(h->cur->mhd);
	if (fd != MHD_INVALID_SOCKET)
		close(fd); /* our dup in the new daemon keeps the socket open */
	h->draining[slot] = h->cur;
	h->cur = next;
	log_info("%s reloaded; %u connection(s) finish on the old credentials",
		 transport_name(h->tr), h->draining[slot]->active);
	return 0;
}

void
httpb_stop_accepting(struct httpb *h)
{
	int fd;

	if (h == NULL || h->cur == NULL)
		return;
	fd = MHD_quiesce_daemon(h->cur->mhd);
	if (fd != MHD_INVALID_SOCKET)
		close(fd); /* external polling: no MHD thread can still use it */
}

unsigned
httpb_active(struct httpb *h)
{
	unsigned n;

	if (h == NULL)
		return 0;
	n = h->cur != NULL ? h->cur->active : 0;
	for (size_t i = 0; i < HTTPB_MAX_DRAINING; i++)
		if (h->draining[i] != NULL)
			n += h->draining[i]->active;
	return n;
}

unsigned
httpb_half_open(struct httpb *h)
{
	return h ? h->half_open : 0;
}

struct httpb *
httpb_free(struct httpb *h)
{
	if (h == NULL)
		return NULL;
	if (h->hooks)
		loop_del_hooks(h->d->loop, h);
	h->cur = httpb_inst_free(h->cur);
	for (size_t i = 0; i < HTTPB_MAX_DRAINING; i++)
		h->draining[i] = httpb_inst_free(h->draining[i]);
	free(h);
	return NULL;
}
