/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The one request/response model. Each binding (CoAP in src/net/coapb.c,
 * HTTP in src/net/httpb.c) only translates its transport into a struct
 * mef_req, calls router_dispatch(), and translates the struct mef_resp back.
 * Procedures never see libcoap or libmicrohttpd.
 */
#ifndef MEF_REQ_H
#define MEF_REQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mef/kdf.h"
#include "mef/store.h"
#include "mef/tlsx.h"

struct mefd;

enum mef_op {
	MEF_OP_NONE = 0,
	MEF_OP_CREATE = 1,   /* POST */
	MEF_OP_RETRIEVE = 2, /* GET */
	MEF_OP_UPDATE = 3,   /* PUT */
	MEF_OP_DELETE = 4,   /* DELETE */
};

enum mef_transport {
	TR_DTLS = 0,      /* CoAP over DTLS 1.2 (udp) */
	TR_COAP_TLS = 1,  /* CoAP over TLS, RFC 8323 (tcp) */
	TR_HTTPS_PSK = 2, /* HTTPS, TLS-PSK listener */
	TR_HTTPS_CERT = 3,/* HTTPS, certificate listener */
	TR__MAX,
};

const char *transport_name(enum mef_transport t); /* "dtls", "coap+tls", "https-psk", "https-cert" */

/*
 * Who is on the other end of a session: filled by the binding (transport,
 * addr, psk_identity or sans) and completed by mef_session_established()
 * (client, keid). Lives as long as the (D)TLS session.
 */
struct mef_peer {
	enum mef_transport transport;
	char addr[64];                    /* "127.0.0.1:40000", for logs */
	char psk_identity[MEF_ID_MAX];    /* PSK sessions */
	int n_sans;                       /* certificate sessions */
	char sans[TLSX_MAX_SANS][256];
	char sni[256];
	bool established;                 /* authenticated and Ke stored */
	struct client_rec client;         /* who this is (valid when established) */
	char keid[MEF_KEYID_MAX];         /* the Ke generated for this session */
	struct tls_ref tls;               /* valid while the session lives */
};

/* Response status codes (TS-0004 6.6.3) used by mefd. */
enum mef_rsc {
	RSC_OK = 2000,
	RSC_CREATED = 2001,
	RSC_DELETED = 2002,
	RSC_UPDATED = 2004,
	RSC_BAD_REQUEST = 4000,
	RSC_RELEASE_VERSION_NOT_SUPPORTED = 4001,
	RSC_NOT_FOUND = 4004,
	RSC_OPERATION_NOT_ALLOWED = 4005,
	RSC_UNSUPPORTED_MEDIA_TYPE = 4015,
	RSC_CONTENTS_UNACCEPTABLE = 4102,
	RSC_ORIGINATOR_HAS_NO_PRIVILEGE = 4103,
	RSC_CONFLICT = 4105,
	RSC_ORIGINATOR_NOT_AUTHENTICATED = 4106,
	RSC_SECURITY_ASSOCIATION_REQUIRED = 4107,
	RSC_TOO_MANY_REQUESTS = 4290, /* mefd: rate limit, HTTP 429 / CoAP 4.29 */
	RSC_INTERNAL_SERVER_ERROR = 5000,
	RSC_NOT_IMPLEMENTED = 5001,
	RSC_ALREADY_EXISTS = 5106,
};

/* RSC → HTTP status (TS-0009 Table 6.3.2-1). */
int rsc_to_http(int rsc);
/* RSC → CoAP code as class*100+detail, e.g. 205 (TS-0008 Table 6.2.4-1); op picks 2.05/2.01/2.02/2.04. */
int rsc_to_coap(int rsc, enum mef_op op);

/* Content formats / media types a binding may see. */
enum mef_ctype {
	CT_NONE = 0,
	CT_JSON,          /* application/json, CoAP 50 */
	CT_ONEM2M_JSON,   /* application/vnd.onem2m-res+json, CoAP 10001 */
	CT_OTHER,
	/* EST (RFC 7030 over HTTP: base64 bodies; RFC 9148 over CoAP: DER); procedures see DER */
	CT_PKCS10,        /* application/pkcs10, CoAP 286 */
	CT_PKCS7_CERTS,   /* application/pkcs7-mime; smime-type=certs-only, CoAP 281 */
	CT_CSRATTRS,      /* application/csrattrs, CoAP 285 */
	CT_PKCS8,         /* application/pkcs8, CoAP 284 */
	CT_PKIX_CERT,     /* application/pkix-cert, CoAP 287 */
	CT_PKIX_CRL,      /* application/pkix-crl (HTTP only, raw DER) */
	CT_MULTIPART,     /* multipart/mixed (HTTP) / application/multipart-core, CoAP 62: see parts */
};

/* One part of a CT_MULTIPART response: bytes [off, off+len) of the body. */
struct mef_part {
	enum mef_ctype ctype;
	size_t off;
	size_t len;
};

#define MEF_RESP_MAX_PARTS 2

struct mef_req {
	enum mef_op op;
	const char *path;        /* decoded path, no query, starts with '/' */
	const char *query;       /* raw query or NULL */
	const char *origin;      /* X-M2M-Origin / oneM2M-FR, NULL if absent */
	const char *rqi;         /* X-M2M-RI / oneM2M-RQI, NULL if absent */
	const char *rvi;         /* X-M2M-RVI / oneM2M-RVI, NULL if absent */
	int ty;                  /* ty= / oneM2M-TY, -1 if absent */
	enum mef_ctype ctype;
	const uint8_t *body;
	size_t body_len;
	struct mef_peer *peer;   /* never NULL: every request is on an authenticated session */
};

struct mef_resp {
	int rsc;                 /* enum mef_rsc */
	char *body;              /* malloc()ed or NULL; freed by mef_resp_done */
	size_t body_len;
	enum mef_ctype ctype;
	int ty;                  /* resource type for Content-Type ty= / oneM2M-TY, -1 none */
	char location[320];      /* Content-Location on 201, "" if none */
	unsigned max_age;        /* seconds; 0 = binding default (HTTP Retry-After on 4290) */
	size_t n_parts;          /* ctype CT_MULTIPART: body holds the parts back to back */
	struct mef_part parts[MEF_RESP_MAX_PARTS];
	/* the key of a row this answer depends on, still queued for the group commit; "" none */
	char pending[MEF_KEYID_MAX];
	/* the session's Ke, queued before the row named by pending (router_settle checks it) */
	char pending_ke[MEF_KEYID_MAX];
};

void mef_resp_init(struct mef_resp *r);
void mef_resp_done(struct mef_resp *r);
/* Sets rsc and a JSON body (takes ownership of the malloc()ed string json, may be NULL). */
void mef_resp_json(struct mef_resp *r, int rsc, char *json);

/*
 * Routes a request through the route table (authorisation in the table) to
 * its procedure. Always fills resp, and returns only once every row the
 * answer depends on is durable (router_settle).
 */
void router_dispatch(struct mefd *d, struct mef_req *req, struct mef_resp *resp);
/*
 * The same, but may return an answer whose row, or whose session's Ke, is
 * still queued for the group commit (resp->pending set): the caller holds it
 * (kebatch_defer on resp->pending) and calls router_settle before sending it.
 */
void router_dispatch_nowait(struct mefd *d, struct mef_req *req, struct mef_resp *resp);
/*
 * Waits until resp->pending is durable (at once after its commit) and clears
 * it; replaces the answer with 5000 when the row, or the session's Ke
 * (resp->pending_ke), could not be stored.
 */
void router_settle(struct mefd *d, struct mef_resp *resp);

#endif
