/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The CoAP binding on libcoap 4.3.1 (OpenSSL): one context with a DTLS (udp)
 * and a TLS (tcp, RFC 8323) endpoint per [coap] listen address, serving PSK
 * and certificate clients at once. A session is served only after
 * mef_session_established() accepted it at handshake completion; every
 * request goes through one catch-all handler into router_dispatch().
 * All libcoap calls run on the daemon's loop thread (libcoap is not thread safe).
 */
#include <coap3/coap.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/rand.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include "mef/err.h"
#include "mef/est.h"
#include "mef/kebatch.h"
#include "mef/log.h"
#include "mef/loop.h"
#include "mef/mefd.h"
#include "mef/net.h"
#include "mef/req.h"
#include "mef/secret.h"
#include "mef/tlsx.h"

/* oneM2M CoAP options, TS-0008 Table 6.2.2.4-1 (decisions §4) */
#define COAPB_OPT_TY 267
#define COAPB_OPT_RVI 271
#define COAPB_OPT_FR 279
#define COAPB_OPT_RQI 283
#define COAPB_OPT_RSC 307

#define COAPB_CF_JSON 50
#define COAPB_CF_ONEM2M_JSON 10001

#define COAPB_PATH_MAX 1024
#define COAPB_QUERY_MAX 1024

/* Per-session state, the app data of a server coap_session_t. */
struct coapb_sess {
	struct mef_peer peer;
	struct coapb *cb;
	coap_session_t *session;
	struct mef_secret *psk;     /* lent to libcoap while the handshake runs */
	coap_bin_const_t psk_bin;
	bool connected;             /* handshake completed */
	bool refusal_counted;       /* refusal already counted/logged once */
	bool closing;               /* refused: close from the after hook */
	uint64_t born_ms;           /* loop_now_ms() when we first saw the handshake */
	struct coapb_sess *next;
	struct coapb_sess **pprev;
};

struct coapb_der {
	uint8_t *p;
	size_t len;
};

/*
 * The PKI files and their DER (coapb_set_pki). libcoap keeps pointers into
 * one of these; after a failed coap_context_set_pki it is not known which,
 * so such a set is retired, not freed, until coapb_free.
 */
struct coapb_pki {
	char *cert, *key, *ca;                /* [tls] file names */
	struct coapb_der cert_der, key_der, ca_der; /* p NULL: libcoap reads the files */
	int key_der_type;                     /* coap_asn1_privatekey_type_t of key_der */
	STACK_OF(X509) *more_cas;             /* client_ca's certificates after the first */
	struct coapb_pki *retired;            /* older sets, freed with coapb */
};

struct coapb {
	struct mefd *d;
	coap_context_t *ctx;
	int fd;
	bool accepting;
	struct coapb_pki *pki;      /* what libcoap's copy of the PKI setup points into */
	uint8_t dummy_psk[32];      /* see coapb_set_psk */
	struct coapb_sess *sessions;
	void (*coap_info_cb)(const SSL *ssl, int where, int ret); /* libcoap's, chained */
	int sweep_timer;            /* loop timer id of coapb_sweep, -1 if none */
	struct coapb_held *held;    /* requests answered after their Ke's commit */
	struct {                    /* libcoap's SSL_CTXs that carry our suites (coapb_tls_setup) */
		const SSL_CTX *ctx;
		int n_ciphers;
	} suites[2];
};

/* A request whose session Ke is not on disk yet: answered separately after the commit. */
struct coapb_held {
	struct coapb_held *next;
	coap_session_t *session; /* referenced */
	coap_resource_t *r;
	coap_pdu_t *in;          /* a duplicate of the request */
	coap_string_t *query;    /* a copy, or NULL */
	coap_mid_t mid;          /* the request's: a CON is answered by ACK with it */
	struct mef_resp *answer; /* made, waits for its row's commit; NULL: run the request then */
};

/* Copies for the request being handled: struct mef_req points into these. */
struct coapb_reqbuf {
	char path[COAPB_PATH_MAX];
	char query[COAPB_QUERY_MAX];
	char origin[MEF_ID_MAX];
	char rqi[MEF_ID_MAX];
	char rvi[16];
};

/*
 * Critical options libcoap must not answer with 4.02 Bad Option. libcoap
 * 4.3.1 can register only two options above 255 (COAP_OPT_FILTER_LONG), so
 * the two every request carries come first; the others are still answered
 * 4.02 by libcoap when a client sends them.
 */
static const uint16_t coapb_known_opts[] = {
	COAPB_OPT_FR, COAPB_OPT_RQI, COAPB_OPT_RVI, COAPB_OPT_TY,
};

static const struct {
	coap_pdu_code_t code;
	enum mef_op op;
} coapb_methods[] = {
	{COAP_REQUEST_CODE_GET, MEF_OP_RETRIEVE},
	{COAP_REQUEST_CODE_POST, MEF_OP_CREATE},
	{COAP_REQUEST_CODE_PUT, MEF_OP_UPDATE},
	{COAP_REQUEST_CODE_DELETE, MEF_OP_DELETE},
};

static const struct {
	unsigned cf;
	enum mef_ctype ct;
} coapb_formats[] = {
	{COAPB_CF_JSON, CT_JSON},
	{COAPB_CF_ONEM2M_JSON, CT_ONEM2M_JSON},
	/* EST over CoAP, RFC 9148 §8.3: DER payloads */
	{281, CT_PKCS7_CERTS},
	{284, CT_PKCS8},
	{285, CT_CSRATTRS},
	{286, CT_PKCS10},
	{287, CT_PKIX_CERT},
	{62, CT_MULTIPART},
};

/*
 * RFC 9148 §4.1 discovery: real resources (served by the same handler) so
 * that libcoap's own /.well-known/core answer (link format, ct 40) lists
 * them; the catch-all resource is never listed.
 */
static const struct {
	const char *path;
	const char *rt;
	const char *ct;
} coapb_est_links[] = {
	{"est/crts", "\"ace.est.crts\"", "281"},
	{"est/att", "\"ace.est.att\"", "285"},
	{"est/sen", "\"ace.est.sen\"", "281"},
	{"est/sren", "\"ace.est.sren\"", "281"},
	{"est/skg", "\"ace.est.skg\"", "62"},
};

/* ---- logging ---- */

/*
 * libcoap logs per-peer handshake failures at warning; those are the
 * client's problem, so they go to info here, and libcoap's own errors to warning.
 */
static void
coapb_log_handler(coap_log_t level, const char *message)
{
	enum log_level lvl = LOG_LVL_DEBUG;
	size_t n = strlen(message);

	if (level <= LOG_ERR)
		lvl = LOG_LVL_WARN;
	else if (level <= LOG_NOTICE)
		lvl = LOG_LVL_INFO;
	while (n && (message[n - 1] == '\n' || message[n - 1] == '\r'))
		n--;
	log_write(lvl, "libcoap", "%.*s", (int)n, message);
}

/* ---- per-session state ---- */

static enum mef_transport
coapb_transport(coap_session_t *session)
{
	return coap_session_get_proto(session) == COAP_PROTO_TLS ? TR_COAP_TLS : TR_DTLS;
}

/* The session's state, created on first use (PSK callback or handshake end). */
static struct coapb_sess *
coapb_sess_get(struct coapb *c, coap_session_t *session)
{
	struct coapb_sess *s = coap_session_get_app_data(session);

	if (s)
		return s;
	s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->cb = c;
	s->session = session;
	s->born_ms = loop_now_ms();
	s->peer.transport = coapb_transport(session);
	coap_print_addr(coap_session_get_addr_remote(session), (unsigned char *)s->peer.addr,
			sizeof(s->peer.addr));
	s->next = c->sessions;
	if (s->next)
		s->next->pprev = &s->next;
	s->pprev = &c->sessions;
	c->sessions = s;
	coap_session_set_app_data(session, s);
	return s;
}

/* The (D)TLS session is gone: nothing may be served or exported any more. */
static void
coapb_sess_closed(struct coapb_sess *s)
{
	s->peer.established = false;
	s->peer.tls.session = NULL;
	s->psk = secret_free(s->psk);
}

static void
coapb_sess_free(struct coapb_sess *s)
{
	*s->pprev = s->next;
	if (s->next)
		s->next->pprev = s->pprev;
	if (s->session)
		coap_session_set_app_data(s->session, NULL);
	s->psk = secret_free(s->psk);
	secret_wipe(&s->peer, sizeof(s->peer));
	free(s);
}

/* ---- handshake ---- */

/* Counts a refusal once per session (the PSK lookup logs its own). */
static void
coapb_refused(struct coapb_sess *s, const char *why)
{
	if (s->refusal_counted)
		return;
	s->refusal_counted = true;
	mef_handshake_refused(s->cb->d, s->peer.transport, s->peer.addr, why);
}

/* Nothing below (D)TLS 1.2 (decisions §2); DTLS versions count downwards. */
static bool
coapb_version_ok(const SSL *ssl)
{
	int v = SSL_version(ssl);

	if (SSL_is_dtls(ssl))
		return v == DTLS1_2_VERSION;
	return v >= TLS1_2_VERSION;
}

/*
 * validate_id_call_back: libcoap 4.3.1 copies the returned key into its
 * session (coap_dtls_psk_server_callback), so ours only has to outlive the
 * call; it is kept per session and wiped at handshake end or close.
 */
static const coap_bin_const_t *
coapb_psk_cb(coap_bin_const_t *identity, coap_session_t *session, void *arg)
{
	struct coapb *c = arg;
	struct coapb_sess *s = coapb_sess_get(c, session);
	coap_tls_library_t lib;
	const SSL *ssl = coap_session_get_tls(session, &lib);
	char id[MEF_ID_MAX];

	if (!s)
		return NULL;
	if (!c->accepting) {
		coapb_refused(s, "shutting down");
		return NULL;
	}
	if (ssl && lib == COAP_TLS_LIBRARY_OPENSSL && !coapb_version_ok(ssl)) {
		coapb_refused(s, "protocol below (D)TLS 1.2");
		return NULL;
	}
	if (identity->length == 0 || identity->length >= sizeof(id) ||
	    memchr(identity->s, '\0', identity->length)) {
		coapb_refused(s, "malformed PSK identity");
		return NULL;
	}
	memcpy(id, identity->s, identity->length);
	id[identity->length] = '\0';
	s->psk = secret_free(s->psk);
	if (mef_psk_lookup(c->d, s->peer.transport, s->peer.addr, id, &s->psk) != 0) {
		s->refusal_counted = true; /* mef_psk_lookup logged and counted it */
		return NULL;
	}
	s->psk_bin.s = s->psk->p;
	s->psk_bin.length = s->psk->len;
	ERR_clear_error();
	return &s->psk_bin;
}

/* Fills transport identity: certificate SANs, else the PSK identity. */
static int
coapb_identify(struct coapb_sess *s, SSL *ssl)
{
	const coap_bin_const_t *id;

	if (!coapb_version_ok(ssl))
		return MEF_EAUTH;
	tlsx_sni(&s->peer.tls, s->peer.sni, sizeof(s->peer.sni));
	if (SSL_get0_peer_certificate(ssl)) {
		s->peer.n_sans = tlsx_peer_sans(&s->peer.tls, s->peer.sans);
		return s->peer.n_sans > 0 ? 0 : MEF_EAUTH;
	}
	id = coap_session_get_psk_identity(s->session);
	if (!id || id->length == 0 || id->length >= sizeof(s->peer.psk_identity) ||
	    memchr(id->s, '\0', id->length))
		return MEF_EAUTH;
	memcpy(s->peer.psk_identity, id->s, id->length);
	s->peer.psk_identity[id->length] = '\0';
	return 0;
}

/*
 * COAP_EVENT_DTLS_CONNECTED (DTLS and, in 4.3.1, TLS over TCP too). A refused
 * session is only marked here: libcoap still touches it after this event
 * (coap_session_connected), so the close happens in the after hook.
 */
static void
coapb_on_connected(struct coapb *c, coap_session_t *session, SSL *ssl)
{
	struct coapb_sess *s = coapb_sess_get(c, session);
	coap_tls_library_t lib = COAP_TLS_LIBRARY_OPENSSL;

	if (!s)
		return; /* no state: every request on it gets 4.01 */
	if (s->connected)
		return; /* completed already at OpenSSL's HANDSHAKE_DONE (coapb_info_cb) */
	s->connected = true;
	s->psk = secret_free(s->psk);
	if (!ssl)
		ssl = coap_session_get_tls(session, &lib);
	s->peer.tls.lib = TLS_LIB_OPENSSL;
	s->peer.tls.session = ssl;
	if (!ssl || lib != COAP_TLS_LIBRARY_OPENSSL || !c->accepting) {
		coapb_refused(s, c->accepting ? "no TLS session" : "shutting down");
		s->closing = true;
		return;
	}
	if (coapb_identify(s, ssl) != 0) {
		coapb_refused(s, "no usable identity in the handshake");
		s->closing = true;
		return;
	}
	log_debug("%s %s %s %s", transport_name(s->peer.transport), s->peer.addr,
		  tlsx_version(&s->peer.tls), tlsx_cipher(&s->peer.tls));
	if (mef_session_established(c->d, &s->peer) != 0)
		s->closing = true;
}

/*
 * libcoap 4.3.1 (coap_tls_read) fires DTLS_CONNECTED only when the SSL_read
 * after the last handshake step finds no data; when the client's Finished
 * and its close_notify arrive together (a client that bootstraps and closes
 * at once, as TLS 1.3 allows), it reads the close first, frees the SSL and
 * never signals the completed handshake. OpenSSL's own HANDSHAKE_DONE info
 * event does fire, with the SSL intact: completing the session there gives
 * every finished handshake its Ke (decisions §1.3). libcoap's info callback
 * (its logging) is kept and called first.
 */
static void
coapb_info_cb(const SSL *ssl, int where, int ret)
{
	BIO *bio = SSL_get_rbio(ssl);
	coap_session_t *session = bio ? BIO_get_data(bio) : NULL; /* libcoap's TLS BIO data */
	struct coapb *c = session ? coap_get_app_data(coap_session_get_context(session)) : NULL;

	if (!c)
		return;
	if (c->coap_info_cb)
		c->coap_info_cb(ssl, where, ret);
	if (where & SSL_CB_HANDSHAKE_DONE)
		coapb_on_connected(c, session, (SSL *)ssl); /* OpenSSL hands out const; the SSL is live */
}

/* TCP only: DTLS signals DTLS_CONNECTED reliably, and its BIO data is not the session. */
static void
coapb_chain_info_cb(struct coapb *c, SSL *ssl)
{
	void (*cb)(const SSL *, int, int) = SSL_get_info_callback(ssl);

	if (!c || SSL_is_dtls(ssl) || cb == coapb_info_cb)
		return;
	if (cb)
		c->coap_info_cb = cb;
	SSL_set_info_callback(ssl, coapb_info_cb);
}

/*
 * A fatal alert. Before the handshake completed it is a refusal by the TLS
 * layer; no state is allocated for it, since libcoap may drop a session
 * that never completed without a SERVER_SESSION_DEL event.
 */
static void
coapb_on_error(struct coapb *c, coap_session_t *session, struct coapb_sess *s)
{
	char addr[sizeof(s->peer.addr)];

	if (s) {
		if (!s->connected)
			coapb_refused(s, "TLS alert during the handshake");
		return;
	}
	coap_print_addr(coap_session_get_addr_remote(session), (unsigned char *)addr,
			sizeof(addr));
	mef_handshake_refused(c->d, coapb_transport(session), addr,
			      "TLS alert during the handshake");
}

static int
coapb_event(coap_session_t *session, const coap_event_t event)
{
	struct coapb *c = coap_get_app_data(coap_session_get_context(session));
	struct coapb_sess *s = coap_session_get_app_data(session);

	log_debug("%s: event 0x%x", coap_session_str(session), (unsigned)event);
	switch (event) {
	case COAP_EVENT_DTLS_CONNECTED:
		coapb_on_connected(c, session, NULL);
		break;
	case COAP_EVENT_DTLS_ERROR:
		coapb_on_error(c, session, s);
		break;
	case COAP_EVENT_DTLS_CLOSED:
	case COAP_EVENT_TCP_CLOSED:
	case COAP_EVENT_TCP_FAILED:
	case COAP_EVENT_SESSION_CLOSED:
	case COAP_EVENT_SESSION_FAILED:
		/*
		 * libcoap reports some TLS failures (a Finished that does not
		 * decrypt: a wrong PSK) only by closing the session, without
		 * DTLS_ERROR: a handshake that ends unfinished is a refusal.
		 */
		if (s && !s->connected)
			coapb_refused(s, "handshake failed (TLS error: wrong key?) or abandoned");
		if (s)
			coapb_sess_closed(s);
		break;
	case COAP_EVENT_SERVER_SESSION_DEL:
		/* a TLS handshake that fails inside libcoap's accept ends with this event alone */
		if (s && !s->connected)
			coapb_refused(s, "handshake failed (TLS error: wrong key?) or abandoned");
		if (s)
			coapb_sess_free(s);
		break;
	default:
		break;
	}
	return 0;
}

/*
 * Bounded handshakes ([limits] handshake_timeout): a DTLS client whose
 * Finished was made with a wrong key is silently ignored by OpenSSL (DTLS
 * drops records that fail to authenticate, RFC 6347 4.1.2.7) and libcoap
 * would keep the half-done session until the idle timeout. A handshake
 * that has not completed in time is refused with a log line and closed.
 */
static void
coapb_sweep(struct loop *l, void *ctx)
{
	struct coapb *c = ctx;
	uint64_t now = loop_now_ms(), limit = c->d->conf->handshake_timeout * 1000ull;

	(void)l;
	for (struct coapb_sess *s = c->sessions; s; s = s->next) {
		if (s->connected || s->closing || !s->session || now - s->born_ms < limit)
			continue;
		coapb_refused(s, s->psk ? "handshake not completed in time after the PSK identity was "
					  "accepted (wrong key?)"
					: "handshake not completed in time");
		s->closing = true;
		s->psk = secret_free(s->psk);
		coap_session_disconnected(s->session, COAP_NACK_TLS_FAILED);
	}
	/*
	 * libcoap releases idle and stalled sessions (session_timeout) only
	 * inside coap_io_process, which otherwise runs when one of its fds
	 * fires: a quiet server would keep stalled TCP handshakes for ever.
	 */
	ERR_clear_error();
	coap_io_process(c->ctx, COAP_IO_NO_WAIT);
}

/* After each loop wake: close the sessions refused at handshake end. */
static void
coapb_after(struct loop *l, void *ctx)
{
	struct coapb *c = ctx;
	struct coapb_sess *next;

	(void)l;
	for (struct coapb_sess *s = c->sessions; s; s = next) {
		next = s->next;
		if (!s->closing || !s->peer.tls.session)
			continue;
		s->closing = false;
		s->peer.tls.session = NULL;
		/* sends close_notify and frees the SSL; later records are dropped */
		coap_session_disconnected(s->session, COAP_NACK_TLS_FAILED);
	}
}

/* ---- requests ---- */

static int
coapb_opt_str(const coap_pdu_t *pdu, coap_option_num_t num, char *out, size_t outlen,
	      const char **ret)
{
	coap_opt_iterator_t it;
	coap_opt_t *o = coap_check_option(pdu, num, &it);
	size_t len;

	if (!o) {
		*ret = NULL;
		return 0;
	}
	len = coap_opt_length(o);
	if (len >= outlen || memchr(coap_opt_value(o), '\0', len))
		return MEF_EINVAL;
	memcpy(out, coap_opt_value(o), len);
	out[len] = '\0';
	*ret = out;
	return 0;
}

static int
coapb_opt_uint(const coap_pdu_t *pdu, coap_option_num_t num, long *ret)
{
	coap_opt_iterator_t it;
	coap_opt_t *o = coap_check_option(pdu, num, &it);

	if (!o) {
		*ret = -1;
		return 0;
	}
	if (coap_opt_length(o) > 4)
		return MEF_EINVAL;
	*ret = (long)coap_decode_var_bytes(coap_opt_value(o), coap_opt_length(o));
	return 0;
}

/*
 * Uri-Path options joined with '/'. CoAP carries each segment decoded, so a
 * segment holding '/' or NUL would change the path's meaning: refused.
 */
static int
coapb_path(const coap_pdu_t *pdu, char *out, size_t outlen)
{
	coap_opt_filter_t f;
	coap_opt_iterator_t it;
	coap_opt_t *o;
	size_t n = 0;

	coap_option_filter_clear(&f);
	coap_option_filter_set(&f, COAP_OPTION_URI_PATH);
	coap_option_iterator_init(pdu, &it, &f);
	while ((o = coap_option_next(&it))) {
		size_t len = coap_opt_length(o);
		const uint8_t *v = coap_opt_value(o);

		if (memchr(v, '/', len) || memchr(v, '\0', len) || n + 1 + len >= outlen)
			return MEF_EINVAL;
		out[n++] = '/';
		memcpy(out + n, v, len);
		n += len;
	}
	if (n == 0)
		out[n++] = '/';
	out[n] = '\0';
	return 0;
}

static enum mef_ctype
coapb_ctype(long cf)
{
	if (cf < 0)
		return CT_NONE;
	for (size_t i = 0; i < sizeof(coapb_formats) / sizeof(coapb_formats[0]); i++)
		if (coapb_formats[i].cf == (unsigned long)cf)
			return coapb_formats[i].ct;
	return CT_OTHER;
}

static enum mef_op
coapb_op(coap_pdu_code_t code)
{
	for (size_t i = 0; i < sizeof(coapb_methods) / sizeof(coapb_methods[0]); i++)
		if (coapb_methods[i].code == code)
			return coapb_methods[i].op;
	return MEF_OP_NONE;
}

/* Options and query into req; returns 0 or the CoAP code (class*100+detail) to answer. */
static int
coapb_parse(const coap_pdu_t *in, const coap_string_t *query, struct coapb_reqbuf *b,
	    struct mef_req *req)
{
	long ty, cf;

	req->op = coapb_op(coap_pdu_get_code(in));
	if (req->op == MEF_OP_NONE)
		return 405;
	if (coapb_path(in, b->path, sizeof(b->path)) != 0)
		return 400;
	req->path = b->path;
	req->query = NULL;
	if (query && query->length) {
		if (query->length >= sizeof(b->query) || memchr(query->s, '\0', query->length))
			return 400;
		memcpy(b->query, query->s, query->length);
		b->query[query->length] = '\0';
		req->query = b->query;
	}
	if (coapb_opt_str(in, COAPB_OPT_FR, b->origin, sizeof(b->origin), &req->origin) != 0 ||
	    coapb_opt_str(in, COAPB_OPT_RQI, b->rqi, sizeof(b->rqi), &req->rqi) != 0 ||
	    coapb_opt_str(in, COAPB_OPT_RVI, b->rvi, sizeof(b->rvi), &req->rvi) != 0 ||
	    coapb_opt_uint(in, COAPB_OPT_TY, &ty) != 0 ||
	    coapb_opt_uint(in, COAP_OPTION_CONTENT_FORMAT, &cf) != 0)
		return 400;
	req->ty = (int)ty;
	req->ctype = coapb_ctype(cf);
	return 0;
}

static unsigned
coapb_cf_of(enum mef_ctype ct)
{
	for (size_t i = 0; i < sizeof(coapb_formats) / sizeof(coapb_formats[0]); i++)
		if (coapb_formats[i].ct == ct)
			return coapb_formats[i].cf;
	return COAPB_CF_JSON;
}

static void
coapb_add_uint(coap_pdu_t *out, coap_option_num_t num, unsigned v)
{
	uint8_t buf[4];

	coap_add_option(out, num, coap_encode_var_safe(buf, sizeof(buf), v), buf);
}

/* Content-Location of a 201 as Location-Path options, one per segment. */
static void
coapb_add_location(coap_pdu_t *out, const char *loc)
{
	while (*loc) {
		size_t len;

		loc += strspn(loc, "/");
		len = strcspn(loc, "/?");
		if (len)
			coap_add_option(out, COAP_OPTION_LOCATION_PATH, len, (const uint8_t *)loc);
		loc += len;
		if (*loc == '?')
			break;
	}
}

/* A body lent to libcoap: fetch and serverkeygen answers carry keys, so it is wiped on release. */
struct coapb_body {
	char *p;
	size_t len;
};

static void
coapb_release(coap_session_t *session, void *app)
{
	struct coapb_body *b = app;

	(void)session;
	secret_wipe(b->p, b->len);
	free(b->p);
	free(b);
}

static void
coapb_respond(coap_resource_t *r, coap_session_t *session, const coap_pdu_t *in,
	      const coap_string_t *query, coap_pdu_t *out, const struct mef_req *req,
	      struct mef_resp *resp)
{
	int code = rsc_to_coap(resp->rsc, req->op);
	char *body = resp->body;
	struct coapb_body *rb;

	coap_pdu_set_code(out, (coap_pdu_code_t)COAP_RESPONSE_CODE(code));
	coapb_add_location(out, resp->location);
	/*
	 * No oneM2M-TY in responses: TS-0008 carries ty in requests only, and
	 * 267 is a critical option that clients not knowing it must reject
	 * (RFC 7252 5.4.1; coap-client drops such responses).
	 */
	if (req->rqi)
		coap_add_option(out, COAPB_OPT_RQI, strlen(req->rqi), (const uint8_t *)req->rqi);
	/*
	 * oneM2M-RSC (307) is critical (RFC 7252 5.4.1): a client that does not
	 * know it must drop the whole response. oneM2M clients always send
	 * oneM2M-RQI or -FR (TS-0008), so the precise RSC goes to them; plain
	 * CoAP clients (coap-client, RFC 9148 EST clients) get the CoAP code alone.
	 */
	if ((req->rqi || req->origin) && !est_http_transformed(resp->ctype))
		coapb_add_uint(out, COAPB_OPT_RSC, (unsigned)resp->rsc);
	if (!body || !resp->body_len) {
		if (resp->max_age)
			coapb_add_uint(out, COAP_OPTION_MAXAGE, resp->max_age);
		return;
	}
	if (resp->ctype == CT_MULTIPART) { /* RFC 9148 §4.8: multipart-core (CBOR) */
		uint8_t *mp;
		size_t mplen;

		if (est_coap_multipart(resp, &mp, &mplen) != 0) {
			coap_pdu_set_code(out, COAP_RESPONSE_CODE_INTERNAL_ERROR);
			return;
		}
		mef_resp_done(resp); /* wipes the key */
		resp->body = (char *)mp;
		resp->body_len = mplen;
		body = resp->body;
	}
	/* libcoap owns the body until the last block is sent (release wipes and frees it) */
	if (!(rb = malloc(sizeof(*rb)))) {
		coap_pdu_set_code(out, COAP_RESPONSE_CODE_INTERNAL_ERROR);
		return;
	}
	rb->p = body;
	rb->len = resp->body_len;
	resp->body = NULL;
	if (!coap_add_data_large_response(r, session, in, out, query, coapb_cf_of(resp->ctype),
					  resp->max_age ? (int)resp->max_age : -1, 0,
					  resp->body_len, (const uint8_t *)body, coapb_release, rb))
		log_warn("%s: response body not added", coap_session_str(session));
}

static void coapb_release_held(void *ctx);

/*
 * Group commit (docs/performance.md): a request without a body whose
 * session Ke is still queued is answered after the commit, so the loop goes
 * on instead of waiting for the disk. Over DTLS the answer to a CON is still
 * piggy-backed: libcoap is told to send nothing now (a NON with no code),
 * and the ACK carrying the request's message ID goes out after the commit,
 * a few milliseconds later, well inside the client's ACK_TIMEOUT. A
 * retransmission of a request already held is dropped, not answered twice.
 */
static bool
coapb_held_again(const struct coapb *c, coap_session_t *session, const coap_pdu_t *in)
{
	/* message IDs exist only on DTLS: two held requests of one TCP session are both answered */
	if (coap_session_get_proto(session) != COAP_PROTO_DTLS)
		return false;
	for (const struct coapb_held *h = c->held; h; h = h->next)
		if (h->session == session && h->mid == coap_pdu_get_mid(in))
			return true;
	return false;
}

/*
 * Holds the request until the commit of key: without answer it runs then
 * (a request that came before its session's Ke was on disk); with answer,
 * made already (a row of its own, docs/performance.md), it is sent then.
 * The answer is taken on success.
 */
static bool
coapb_hold_for(struct coapb_sess *s, coap_resource_t *r, coap_session_t *session,
	       const coap_pdu_t *in, const coap_string_t *query, const char *key,
	       struct mef_resp *answer)
{
	struct coapb *c = s->cb;
	coap_bin_const_t tok = coap_pdu_get_token(in);
	struct coapb_held *h;

	if (!c->d->kebatch || !(h = calloc(1, sizeof(*h))))
		return false;
	h->in = coap_pdu_duplicate(in, session, tok.length, tok.s, NULL);
	h->mid = coap_pdu_get_mid(in); /* the duplicate has a fresh one */
	h->query = query ? coap_new_string(query->length) : NULL;
	if (answer && (h->answer = malloc(sizeof(*h->answer))))
		*h->answer = *answer;
	if (!h->in || (query && !h->query) || (answer && !h->answer) ||
	    !kebatch_defer(c->d->kebatch, key, coapb_release_held, c)) {
		if (h->in)
			coap_delete_pdu(h->in);
		coap_delete_string(h->query);
		free(h->answer); /* the body is still the caller's */
		free(h);
		return false;
	}
	if (answer)
		mef_resp_init(answer); /* the held copy owns the body now */
	if (query)
		memcpy(h->query->s, query->s, query->length);
	h->session = coap_session_reference(session);
	h->r = r;
	h->next = c->held;
	c->held = h;
	return true;
}

static bool
coapb_hold(struct coapb_sess *s, coap_resource_t *r, coap_session_t *session,
	   const coap_pdu_t *in, const coap_string_t *query)
{
	return coapb_hold_for(s, r, session, in, query, s->peer.keid, NULL);
}

static void coapb_answer(coap_resource_t *r, coap_session_t *session, const coap_pdu_t *in,
			 const coap_string_t *query, coap_pdu_t *out, bool may_hold);
static void coapb_send_held(struct coapb_held *h, coap_pdu_t *out);

static void
coapb_held_free(struct coapb_held *h)
{
	if (h->answer) {
		mef_resp_done(h->answer); /* wipes a serverkeygen private key */
		free(h->answer);
	}
	coap_delete_pdu(h->in);
	coap_delete_string(h->query);
	coap_session_release(h->session);
	free(h);
}

/* kebatch on_commit: answer every held request (its Ke is on disk now, or failed: 5000). */
static void
coapb_release_held(void *ctx)
{
	struct coapb *c = ctx;
	struct coapb_held *h = c->held;

	c->held = NULL;
	while (h) {
		struct coapb_held *next = h->next;
		coap_bin_const_t tok = coap_pdu_get_token(h->in);
		coap_pdu_type_t t = coap_pdu_get_type(h->in) == COAP_MESSAGE_NON ? COAP_MESSAGE_NON
										 : COAP_MESSAGE_ACK;
		coap_pdu_t *out = NULL;

		if (coap_session_get_state(h->session) == COAP_SESSION_STATE_ESTABLISHED &&
		    coap_session_get_app_data(h->session))
			out = coap_pdu_init(t, 0,
					    t == COAP_MESSAGE_ACK ? h->mid
								  : coap_new_message_id(h->session),
					    coap_session_max_pdu_size(h->session));
		if (out && coap_add_token(out, tok.length, tok.s)) {
			if (h->answer)
				coapb_send_held(h, out);
			else
				coapb_answer(h->r, h->session, h->in, h->query, out, false);
			coap_send(h->session, out); /* takes the PDU */
		} else if (out) {
			coap_delete_pdu(out);
		}
		coapb_held_free(h);
		h = next;
	}
}

static void
coapb_request(coap_resource_t *r, coap_session_t *session, const coap_pdu_t *in,
	      const coap_string_t *query, coap_pdu_t *out)
{
	coapb_answer(r, session, in, query, out, true);
}

static void
coapb_answer(coap_resource_t *r, coap_session_t *session, const coap_pdu_t *in,
	     const coap_string_t *query, coap_pdu_t *out, bool may_hold)
{
	struct coapb_sess *s = coap_session_get_app_data(session);
	struct coapb_reqbuf b;
	struct mef_req req = {0};
	struct mef_resp resp;
	coap_opt_iterator_t it;
	size_t len = 0, offset = 0, total = 0;
	const uint8_t *data = NULL;
	int code;

	/* an unauthenticated session learns nothing, not even the path's fate */
	if (!s || !s->peer.established || s->closing) {
		coap_pdu_set_code(out, COAP_RESPONSE_CODE_UNAUTHORIZED);
		return;
	}
	code = coapb_parse(in, query, &b, &req);
	if (code == 0 && coap_get_data_large(in, &len, &data, &offset, &total) &&
	    total > s->cb->d->conf->body_max)
		code = 413;
	if (code) {
		coap_pdu_set_code(out, (coap_pdu_code_t)COAP_RESPONSE_CODE(code));
		return;
	}
	/* a retransmission of a request held already is dropped, not run or answered twice */
	if (coapb_held_again(s->cb, session, in) ||
	    (may_hold && total == 0 && coapb_hold(s, r, session, in, query))) {
		coap_pdu_set_type(out, COAP_MESSAGE_NON); /* with no code: libcoap sends nothing */
		return;
	}
	req.body = data;
	req.body_len = len;
	req.peer = &s->peer;
	mef_resp_init(&resp);
	router_dispatch_nowait(s->cb->d, &req, &resp);
	/*
	 * A row of its own (an issued certificate, a key registration): the
	 * answer waits for the commit instead of the loop. Not after Block1:
	 * libcoap answers the last block itself, with its Block1 option.
	 */
	if (may_hold && resp.pending[0] && !coap_check_option(in, COAP_OPTION_BLOCK1, &it) &&
	    coapb_hold_for(s, r, session, in, query, resp.pending, &resp)) {
		coap_pdu_set_type(out, COAP_MESSAGE_NON);
		return;
	}
	router_settle(s->cb->d, &resp);
	coapb_respond(r, session, in, query, out, &req, &resp);
	mef_resp_done(&resp);
}

/* After the commit: the answer made before it, 5000 if its row could not be stored. */
static void
coapb_send_held(struct coapb_held *h, coap_pdu_t *out)
{
	struct coapb_sess *s = coap_session_get_app_data(h->session);
	struct coapb_reqbuf b;
	struct mef_req req = {0};

	if (coapb_parse(h->in, h->query, &b, &req) != 0) { /* it parsed before: not expected */
		coap_pdu_set_code(out, COAP_RESPONSE_CODE_INTERNAL_ERROR);
		return;
	}
	req.peer = &s->peer;
	router_settle(s->cb->d, h->answer);
	coapb_respond(h->r, h->session, h->in, h->query, out, &req, h->answer);
}

/* ---- context setup ---- */

#define COAPB_PASSES 16

static bool
coapb_ready(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};

	return poll(&p, 1, 0) > 0;
}

static void
coapb_io(struct loop *l, int fd, uint32_t events, void *ctx)
{
	struct coapb *c = ctx;

	(void)l;
	(void)fd;
	(void)events;
	/*
	 * libcoap 4.3.1 decides with SSL_get_error() whether a TLS handshake
	 * merely waits for data; that looks at the thread's error queue first,
	 * so a stale entry (libcoap leaves PEM "no start line" behind after
	 * loading the PKI files of a new session) turns a WANT_READ into a
	 * fatal error and drops the handshake. Start every pass with a clean
	 * queue, and leave the PSK callback with one too.
	 *
	 * libcoap reads one datagram (or accepts one connection) per ready
	 * endpoint and pass: under load, run a few passes per wake while its
	 * epoll fd stays ready, so handshakes share a group commit and the
	 * TCP accept queue (backlog 5 in libcoap) is drained
	 * (docs/performance.md).
	 */
	for (int i = 0; i < COAPB_PASSES; i++) {
		ERR_clear_error();
		coap_io_process(c->ctx, COAP_IO_NO_WAIT);
		if (!coapb_ready(c->fd))
			break;
	}
}

static void
coapb_limits(struct coapb *c, const struct mef_conf *conf)
{
	coap_context_set_max_handshake_sessions(c->ctx, conf->max_handshakes);
	coap_context_set_max_idle_sessions(c->ctx, conf->max_sessions);
	coap_context_set_session_timeout(c->ctx, conf->session_timeout);
	coap_context_set_csm_timeout(c->ctx, conf->handshake_timeout);
}

/*
 * PSK for every identity through the callback. libcoap 4.3.1 only treats a
 * ClientHello as PSK when a context key is set, so a random key nobody knows
 * is installed; the callback always decides the real one.
 */
static int
coapb_set_psk(struct coapb *c)
{
	coap_dtls_spsk_t sp;

	memset(&sp, 0, sizeof(sp));
	if (RAND_bytes(c->dummy_psk, sizeof(c->dummy_psk)) != 1)
		return MEF_ECRYPTO;
	sp.version = COAP_DTLS_SPSK_SETUP_VERSION;
	sp.validate_id_call_back = coapb_psk_cb;
	sp.id_call_back_arg = c;
	sp.psk_info.key.s = c->dummy_psk;
	sp.psk_info.key.length = sizeof(c->dummy_psk);
	return coap_context_set_psk2(c->ctx, &sp) ? 0 : MEF_ECRYPTO;
}

/*
 * Forces the protocol floor and the suites of decisions §2 on each handshake
 * (libcoap 4.3.1 puts TLS 1.0 as the floor of its TCP context). Called from
 * libcoap's ClientHello callback, before version and suite are chosen.
 */
static const char coapb_ciphers[] =
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-AES128-GCM-SHA256:"
	"ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-CHACHA20-POLY1305:ECDHE-PSK-CHACHA20-POLY1305:"
	"ECDHE-ECDSA-AES128-CCM:PSK-AES128-GCM-SHA256:PSK-AES256-GCM-SHA384:"
	"PSK-CHACHA20-POLY1305:PSK-AES128-CCM:"
	"ECDHE-ECDSA-AES128-CCM8:PSK-AES128-CCM8:"             /* DTLS mandatory */
	"ECDHE-ECDSA-AES128-SHA256:PSK-AES128-CBC-SHA256";     /* TLS mandatory */

/*
 * TLS 1.3: an external PSK from the (old-style) PSK callback is bound to
 * SHA-256, and OpenSSL ignores it when a SHA-384 suite was chosen first, so
 * the SHA-256 suites come first and the server's order wins.
 */
static const char coapb_suites13[] =
	"TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_CCM_SHA256:"
	"TLS_AES_256_GCM_SHA384";

/*
 * Parsing the cipher strings costs about a tenth of a PSK handshake's CPU
 * (perf, docs/performance.md), so they are also put on libcoap's SSL_CTX,
 * once, and a session created from it inherits them. A session is trusted
 * to have inherited only if its floor and its number of suites match what
 * the context got; anything else (a session created before, another
 * context) is set up in full as before.
 */
static bool
coapb_suites_inherited(const struct coapb *c, SSL *ssl, int floor)
{
	const SSL_CTX *ctx = SSL_get_SSL_CTX(ssl);

	for (size_t i = 0; c && i < sizeof(c->suites) / sizeof(c->suites[0]); i++)
		if (c->suites[i].ctx == ctx)
			return SSL_get_min_proto_version(ssl) == floor &&
			       sk_SSL_CIPHER_num(SSL_get_ciphers(ssl)) == c->suites[i].n_ciphers;
	return false;
}

static void
coapb_suites_on_ctx(struct coapb *c, SSL *ssl, int floor)
{
	SSL_CTX *ctx = SSL_get_SSL_CTX(ssl);

	for (size_t i = 0; c && i < sizeof(c->suites) / sizeof(c->suites[0]); i++) {
		if (c->suites[i].ctx && c->suites[i].ctx != ctx)
			continue;
		if (SSL_CTX_set_min_proto_version(ctx, floor) &&
		    SSL_CTX_set_cipher_list(ctx, coapb_ciphers) &&
		    SSL_CTX_set_ciphersuites(ctx, coapb_suites13)) {
			c->suites[i].ctx = ctx;
			c->suites[i].n_ciphers = sk_SSL_CIPHER_num(SSL_CTX_get_ciphers(ctx));
		}
		ERR_clear_error();
		return;
	}
}

static int
coapb_tls_setup(void *tls, coap_dtls_pki_t *setup)
{
	struct coapb *c = setup ? setup->cn_call_back_arg : NULL;
	SSL *ssl = tls;
	int floor;

	ERR_clear_error(); /* see coapb_io() */
	if (!ssl)
		return 1;
	coapb_chain_info_cb(c, ssl);
	floor = SSL_is_dtls(ssl) ? DTLS1_2_VERSION : TLS1_2_VERSION;
	if (!coapb_suites_inherited(c, ssl, floor)) {
		if (!SSL_set_min_proto_version(ssl, floor) ||
		    !SSL_set_cipher_list(ssl, coapb_ciphers) ||
		    !SSL_set_ciphersuites(ssl, coapb_suites13))
			return 0;
		coapb_suites_on_ctx(c, ssl, floor);
	}
	for (int i = 0; c && c->pki && i < sk_X509_num(c->pki->more_cas); i++) {
		X509 *ca = sk_X509_value(c->pki->more_cas, i);

		/* a CA already in the store is not added twice (OpenSSL 3 returns 1) */
		if (!X509_STORE_add_cert(SSL_CTX_get_cert_store(SSL_get_SSL_CTX(ssl)), ca) ||
		    !SSL_add_client_CA(ssl, ca))
			return 0;
	}
	SSL_set_options(ssl, SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_TICKET);
	/*
	 * No resumption: a resumed session skips the PSK callback (no identity)
	 * and every bootstrap must be a full handshake. The id context is still
	 * needed, or OpenSSL refuses TLS 1.3 PSK next to peer verification.
	 */
	SSL_set_num_tickets(ssl, 0);
	SSL_CTX_set_session_cache_mode(SSL_get_SSL_CTX(ssl), SSL_SESS_CACHE_OFF);
	return SSL_set_session_id_context(ssl, (const unsigned char *)"mefd", 4);
}

static void
coapb_der_free(struct coapb_der *d)
{
	if (d->p)
		OPENSSL_clear_free(d->p, d->len); /* the private key's too */
	d->p = NULL;
	d->len = 0;
}

/* The first certificate of a PEM file as DER; the others, if more is given, in *more. */
static bool
coapb_der_cert(const char *path, struct coapb_der *out, STACK_OF(X509) **more)
{
	BIO *b = BIO_new_file(path, "r");
	X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
	unsigned char *p = NULL;
	int len = x ? i2d_X509(x, &p) : -1;

	X509_free(x);
	if (len > 0 && more && (*more = sk_X509_new_null()) != NULL)
		while ((x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL)
			if (!sk_X509_push(*more, x))
				X509_free(x);
	BIO_free(b);
	ERR_clear_error(); /* the end of the file reads as an error */
	if (len <= 0 || (more && !*more)) {
		OPENSSL_free(p);
		return false;
	}
	out->p = p;
	out->len = (size_t)len;
	return true;
}

static bool
coapb_der_key(const char *path, struct coapb_der *out, int *type)
{
	BIO *b = BIO_new_file(path, "r");
	EVP_PKEY *k = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;
	int id = k ? EVP_PKEY_get_base_id(k) : 0;
	unsigned char *p = NULL;
	int len = id == EVP_PKEY_EC || id == EVP_PKEY_RSA ? i2d_PrivateKey(k, &p) : -1;

	EVP_PKEY_free(k);
	BIO_free(b);
	ERR_clear_error();
	if (len <= 0)
		return false;
	out->p = p;
	out->len = (size_t)len;
	*type = id == EVP_PKEY_EC ? COAP_ASN1_PKEY_EC : COAP_ASN1_PKEY_RSA;
	return true;
}

static struct coapb_pki *
coapb_pki_free(struct coapb_pki *k)
{
	while (k) {
		struct coapb_pki *older = k->retired;

		coapb_der_free(&k->cert_der);
		coapb_der_free(&k->key_der);
		coapb_der_free(&k->ca_der);
		sk_X509_pop_free(k->more_cas, X509_free);
		free(k->cert);
		free(k->key);
		free(k->ca);
		free(k);
		k = older;
	}
	return NULL;
}

/*
 * The [tls] files, and the same as DER buffers for libcoap. libcoap 4.3.1
 * sets the PKI up again for every certificate session and for every TLS 1.3
 * session over TCP (it recognises PSK only by the TLS 1.2 suites a client
 * offers): from PEM files that costs about 720 us of CPU per handshake, from
 * DER about 380 us (docs/performance.md). libcoap takes one DER CA; the
 * others of client_ca are added by coapb_tls_setup. A key that is neither EC
 * nor RSA keeps the files (der_ok false).
 */
static struct coapb_pki *
coapb_pki_load(const struct mef_conf *conf, bool *der_ok)
{
	struct coapb_pki *k = calloc(1, sizeof(*k));

	if (!k || !(k->cert = strdup(conf->tls_certificate)) ||
	    !(k->key = strdup(conf->tls_private_key)) ||
	    (conf->tls_client_ca && !(k->ca = strdup(conf->tls_client_ca))))
		return coapb_pki_free(k);
	*der_ok = coapb_der_cert(k->cert, &k->cert_der, NULL) &&
		  coapb_der_key(k->key, &k->key_der, &k->key_der_type) &&
		  (!k->ca || coapb_der_cert(k->ca, &k->ca_der, &k->more_cas));
	if (!*der_ok) {
		coapb_der_free(&k->cert_der);
		coapb_der_free(&k->key_der);
		coapb_der_free(&k->ca_der);
		sk_X509_pop_free(k->more_cas, X509_free);
		k->more_cas = NULL;
	}
	return k;
}

/*
 * The certificate side. libcoap 4.3.1 keeps a copy of setup (with our
 * pointers) and reads the certificate, key and CA again at each handshake
 * that uses them; CAs it adds to the context's trust store are never
 * removed again.
 */
static int
coapb_set_pki(struct coapb *c, const struct mef_conf *conf)
{
	struct coapb_pki *k;
	coap_dtls_pki_t pk;
	bool der = false;

	if (!conf->tls_certificate || !conf->tls_private_key)
		return 0;
	if (!(k = coapb_pki_load(conf, &der)))
		return MEF_ENOMEM;
	memset(&pk, 0, sizeof(pk));
	pk.version = COAP_DTLS_PKI_SETUP_VERSION;
	pk.verify_peer_cert = 1;
	pk.check_common_ca = 1;
	pk.cert_chain_validation = 1;
	pk.cert_chain_verify_depth = 3;
	pk.additional_tls_setup_call_back = coapb_tls_setup;
	pk.cn_call_back_arg = c; /* no CN callback: the slot carries us to coapb_tls_setup */
	if (der) {
		pk.pki_key.key_type = COAP_PKI_KEY_ASN1;
		pk.pki_key.key.asn1.public_cert = k->cert_der.p;
		pk.pki_key.key.asn1.public_cert_len = k->cert_der.len;
		pk.pki_key.key.asn1.private_key = k->key_der.p;
		pk.pki_key.key.asn1.private_key_len = k->key_der.len;
		pk.pki_key.key.asn1.private_key_type = (coap_asn1_privatekey_type_t)k->key_der_type;
		pk.pki_key.key.asn1.ca_cert = k->ca_der.p;
		pk.pki_key.key.asn1.ca_cert_len = k->ca_der.len;
	} else {
		log_info("coap: certificate and key kept as PEM files (a key that is neither EC "
			 "nor RSA): slower certificate handshakes");
		pk.pki_key.key_type = COAP_PKI_KEY_PEM;
		pk.pki_key.key.pem.public_cert = k->cert;
		pk.pki_key.key.pem.private_key = k->key;
		pk.pki_key.key.pem.ca_file = k->ca;
	}
	if (!coap_context_set_pki(c->ctx, &pk)) {
		/* libcoap may hold pointers into either set now: keep both */
		k->retired = c->pki;
		c->pki = k;
		return MEF_ECRYPTO;
	}
	coapb_pki_free(c->pki); /* libcoap points into k alone now: every older set goes */
	c->pki = k;
	return 0;
}

#define COAPB_FD_SCAN 1024

static bool
coapb_same_addr(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	const struct sockaddr_in *a4 = (const void *)a, *b4 = (const void *)b;
	const struct sockaddr_in6 *a6 = (const void *)a, *b6 = (const void *)b;

	if (a->ss_family != b->ss_family)
		return false;
	if (a->ss_family == AF_INET)
		return a4->sin_port == b4->sin_port && a4->sin_addr.s_addr == b4->sin_addr.s_addr;
	return a->ss_family == AF_INET6 && a6->sin6_port == b6->sin6_port &&
	       memcmp(&a6->sin6_addr, &b6->sin6_addr, sizeof(a6->sin6_addr)) == 0;
}

/*
 * libcoap 4.3.1 listens on TCP with a backlog of 5: a burst of connects
 * overflows it and those clients wait for a 1 s SYN retransmission
 * (docs/performance.md). The listening socket is found by its address;
 * listen() on it again only raises the backlog.
 */
static void
coapb_raise_backlog(const struct conf_addr *ca)
{
	for (int fd = 3; fd < COAPB_FD_SCAN; fd++) {
		struct sockaddr_storage ss = {0};
		socklen_t len = sizeof(ss), ol = sizeof(int);
		int on = 0;

		if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &on, &ol) != 0 || !on ||
		    getsockname(fd, (struct sockaddr *)&ss, &len) != 0 ||
		    !coapb_same_addr(&ss, &ca->ss))
			continue;
		if (listen(fd, SOMAXCONN) != 0)
			log_debug("CoAP TCP backlog stays at libcoap's: %s", strerror(errno));
	}
}

static int
coapb_endpoints(struct coapb *c, const struct mef_conf *conf)
{
	static const coap_proto_t protos[] = {COAP_PROTO_DTLS, COAP_PROTO_TLS};

	for (size_t i = 0; i < conf->n_coap_listen; i++) {
		const struct conf_addr *ca = &conf->coap_listen[i];
		coap_address_t a;

		coap_address_init(&a);
		memcpy(&a.addr, &ca->ss, ca->len);
		a.size = ca->len;
		for (size_t p = 0; p < sizeof(protos) / sizeof(protos[0]); p++) {
			if (!coap_new_endpoint(c->ctx, &a, protos[p])) {
				log_err("cannot listen on %s (%s)", ca->text,
					protos[p] == COAP_PROTO_DTLS ? "udp" : "tcp");
				return MEF_EIO;
			}
		}
		coapb_raise_backlog(ca);
		log_info("CoAP listening on %s (DTLS udp, TLS tcp)", ca->text);
	}
	return 0;
}

static int
coapb_context(struct coapb *c)
{
	coap_resource_t *r;
	int rc;

	c->ctx = coap_new_context(NULL);
	if (!c->ctx)
		return MEF_ENOMEM;
	coap_set_app_data(c->ctx, c);
	coap_context_set_block_mode(c->ctx, COAP_BLOCK_USE_LIBCOAP | COAP_BLOCK_SINGLE_BODY);
	coapb_limits(c, c->d->conf);
	coap_register_event_handler(c->ctx, coapb_event);
	for (size_t i = 0; i < sizeof(coapb_known_opts) / sizeof(coapb_known_opts[0]); i++)
		coap_register_option(c->ctx, coapb_known_opts[i]);
	rc = coapb_set_psk(c);
	if (rc == 0)
		rc = coapb_set_pki(c, c->d->conf);
	if (rc)
		return rc;
	r = coap_resource_unknown_init2(coapb_request, 0);
	if (!r)
		return MEF_ENOMEM;
	coap_register_request_handler(r, COAP_REQUEST_GET, coapb_request);
	coap_register_request_handler(r, COAP_REQUEST_POST, coapb_request);
	coap_register_request_handler(r, COAP_REQUEST_DELETE, coapb_request);
	coap_add_resource(c->ctx, r);
	for (size_t i = 0; i < sizeof(coapb_est_links) / sizeof(coapb_est_links[0]); i++) {
		if (!(r = coap_resource_init(coap_make_str_const(coapb_est_links[i].path), 0)))
			return MEF_ENOMEM;
		coap_register_request_handler(r, COAP_REQUEST_GET, coapb_request);
		coap_register_request_handler(r, COAP_REQUEST_POST, coapb_request);
		coap_add_attr(r, coap_make_str_const("rt"), coap_make_str_const(coapb_est_links[i].rt), 0);
		coap_add_attr(r, coap_make_str_const("ct"), coap_make_str_const(coapb_est_links[i].ct), 0);
		coap_add_resource(c->ctx, r);
	}
	return coapb_endpoints(c, c->d->conf);
}

int
coapb_new(struct mefd *d, struct coapb **ret)
{
	struct coapb *c = calloc(1, sizeof(*c));
	int rc;

	if (!c)
		return MEF_ENOMEM;
	c->d = d;
	c->fd = -1;
	c->sweep_timer = -1;
	c->accepting = true;
	coap_startup();
	coap_set_log_handler(coapb_log_handler);
	coap_set_log_level(log_get_level() >= LOG_LVL_DEBUG ? LOG_INFO : LOG_WARNING);
	coap_dtls_set_log_level(log_get_level() >= LOG_LVL_DEBUG ? LOG_INFO : LOG_WARNING);
	rc = coapb_context(c);
	if (rc == 0) {
		c->fd = coap_context_get_coap_fd(c->ctx);
		rc = c->fd < 0 ? MEF_EIO : loop_add_fd(d->loop, c->fd, EPOLLIN, coapb_io, c);
	}
	if (rc == 0)
		rc = loop_add_after(d->loop, coapb_after, c);
	if (rc == 0)
		rc = loop_add_timer(d->loop, 1000, 1000, coapb_sweep, c, &c->sweep_timer);
	if (rc) {
		coapb_free(c);
		return rc;
	}
	*ret = c;
	return 0;
}

int
coapb_reload(struct coapb *c, const struct mef_conf *conf)
{
	int rc;

	coapb_limits(c, conf);
	rc = coapb_set_pki(c, conf);
	if (rc)
		log_warn("CoAP certificate reload failed: %s; old settings stay", mef_strerror(rc));
	else
		log_info("CoAP TLS files re-read; a removed client CA stays trusted until restart");
	return rc;
}

/*
 * libcoap 4.3.1 frees an endpoint's sessions with it, so the listening
 * sockets stay open: new handshakes are refused instead while the
 * established sessions finish.
 */
void
coapb_stop_accepting(struct coapb *c)
{
	if (c)
		c->accepting = false;
}

unsigned
coapb_active(struct coapb *c)
{
	unsigned n = 0;

	for (struct coapb_sess *s = c ? c->sessions : NULL; s; s = s->next)
		if (s->peer.established)
			n++;
	return n;
}

unsigned
coapb_half_open(struct coapb *c)
{
	unsigned n = 0;

	for (struct coapb_sess *s = c ? c->sessions : NULL; s; s = s->next)
		if (!s->connected && !s->closing)
			n++;
	return n;
}

struct coapb *
coapb_free(struct coapb *c)
{
	if (!c)
		return NULL;
	if (c->fd >= 0)
		loop_del_fd(c->d->loop, c->fd);
	loop_del_hooks(c->d->loop, c);
	if (c->sweep_timer >= 0)
		loop_del_timer(c->d->loop, c->sweep_timer);
	kebatch_forget(c->d->kebatch, c);
	for (struct coapb_held *h = c->held, *next; h; h = next) {
		next = h->next;
		coapb_held_free(h); /* unanswered: the daemon is stopping */
	}
	c->held = NULL;
	if (c->ctx) {
		/* no events into half-freed state: our list is freed below */
		coap_register_event_handler(c->ctx, NULL);
		coap_free_context(c->ctx);
	}
	for (struct coapb_sess *s = c->sessions, *next; s; s = next) {
		next = s->next;
		s->session = NULL;
		coapb_sess_free(s);
	}
	secret_wipe(c->dummy_psk, sizeof(c->dummy_psk));
	c->pki = coapb_pki_free(c->pki);
	free(c);
	return NULL;
}
