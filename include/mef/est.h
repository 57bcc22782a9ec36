/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * EST (decisions §5, TS-0003 8.3.6): RFC 7030 over HTTPS at
 * /.well-known/est/..., RFC 9148 over CoAP at /est/..., and the CRL. The
 * procedures work on DER only; the wire helpers below are what the bindings
 * call to turn DER into RFC 7030/8951 base64 or multipart bodies (HTTP) and
 * RFC 9148 multipart-core (CoAP). The EST state (CA handle, CRL cache) hangs
 * off struct mefd and is built on first use (docs/est.md).
 */
#ifndef MEF_EST_H
#define MEF_EST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mef/req.h"

struct mefd;
struct est;

/* ---- procedures (route table rows in src/proto/router.c) ---- */
void proc_est_cacerts(struct mefd *d, const struct mef_req *req, const char *const *params,
		      size_t n_params, struct mef_resp *resp);
void proc_est_csrattrs(struct mefd *d, const struct mef_req *req, const char *const *params,
		       size_t n_params, struct mef_resp *resp);
void proc_est_enroll(struct mefd *d, const struct mef_req *req, const char *const *params,
		     size_t n_params, struct mef_resp *resp);
void proc_est_reenroll(struct mefd *d, const struct mef_req *req, const char *const *params,
		       size_t n_params, struct mef_resp *resp);
void proc_est_serverkeygen(struct mefd *d, const struct mef_req *req, const char *const *params,
			   size_t n_params, struct mef_resp *resp);
void proc_est_crl(struct mefd *d, const struct mef_req *req, const char *const *params,
		  size_t n_params, struct mef_resp *resp);

struct ca;
struct store;

#define EST_CRL_VALIDITY (7 * 86400) /* nextUpdate: a week, and rebuilt a day before */

/*
 * A CRL of every revoked certificate in the store, signed by ca, valid from
 * now for EST_CRL_VALIDITY. *ret malloc()ed. 0 or MEF_E*. (mefd and mefctl.)
 */
int est_crl_build(struct ca *ca, struct store *s, int64_t now, uint8_t **ret, size_t *ret_len);

/* Frees the EST state of a daemon; accepts NULL; returns NULL. */
struct est *est_free(struct est *e);

/*
 * The SAN identity the MEF associates with a client (docs/est.md): a
 * certificate client's registered SAN; for a PSK client its Enrolee-ID when
 * that is an absolute oneM2M identifier ("//..."), else
 * "urn:x-onem2m-mef:client:<client ID>". MEF_EINVAL if the ID cannot be put in a URI.
 */
int est_identity(const struct mef_peer *peer, char *out, size_t outlen);

/* ---- wire helpers for the bindings ---- */

/* HTTP: the media type carries a base64 body (RFC 7030 §4, RFC 8951) or is multipart. */
bool est_http_transformed(enum mef_ctype ct);
/*
 * HTTP body of an EST response: base64 with line breaks (single part) or
 * multipart/mixed with base64 parts. *ret_body malloc()ed (caller wipes
 * and frees); ret_ctype receives the Content-Type value. 0 or MEF_ENOMEM.
 */
int est_http_encode(const struct mef_resp *resp, char **ret_body, size_t *ret_len,
		    char *ret_ctype, size_t ctype_len);
/*
 * HTTP request body of an EST POST into DER: base64 (whitespace ignored, RFC
 * 8951) or raw DER (a body starting with a SEQUENCE). *ret malloc()ed.
 * 0, MEF_EINVAL, MEF_ENOMEM.
 */
int est_http_decode(const uint8_t *body, size_t len, uint8_t **ret, size_t *ret_len);
/*
 * CoAP body of a CT_MULTIPART response: RFC 8710 multipart-core, a CBOR
 * array [cf, bstr, cf, bstr...] with the RFC 9148 content formats.
 * *ret malloc()ed. 0 or MEF_ENOMEM.
 */
int est_coap_multipart(const struct mef_resp *resp, uint8_t **ret, size_t *ret_len);

/* ---- DER builders shared by the EST files ---- */

/* A degenerate PKCS#7 SignedData "certs-only" holding n DER certificates. *ret malloc()ed. */
int est_pkcs7_certs(const uint8_t *const *ders, const size_t *lens, size_t n, uint8_t **ret,
		    size_t *ret_len);
/* The CSR attributes (RFC 7030 §4.5) for identity: challengePassword, P-256, ECDSA-SHA256, SAN. */
int est_csrattrs(const char *identity, uint8_t **ret, size_t *ret_len);

#endif
