/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The EST procedures (decisions §5, TS-0003 8.3.6, RFC 7030 / RFC 9148):
 * cacerts, csrattrs, simpleenroll, simplereenroll, serverkeygen, and the
 * CRL. Identity comes only from the authenticated session (never HTTP
 * auth); the CSR must carry exactly that identity as its one SAN. Each
 * refusal answers a precise 4xx, issues and records nothing, logs one line.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "est_internal.h"
#include "mef/audit.h"
#include "mef/err.h"
#include "mef/kebatch.h"
#include "mef/log.h"
#include "mef/metrics.h"
#include "mef/proc.h"
#include "mef/store.h"

#define EST_PSK_URN "urn:x-onem2m-mef:client:"

enum est_kind { EST_ENROLL, EST_REENROLL, EST_SKG };

static const char *const est_kind_name[] = {"simpleenroll", "simplereenroll", "serverkeygen"};

/* ---- state ---- */

struct est *
est_free(struct est *e)
{
	if (!e)
		return NULL;
	ca_free(e->ca);
	free(e->crl);
	free(e);
	return NULL;
}

/* The EST state for the current config: the CA is (re)loaded when the config changed. */
int
est_state(struct mefd *d, struct est **ret)
{
	struct est *e = d->est;
	int r;

	if (!e && !(e = d->est = calloc(1, sizeof(*e))))
		return MEF_ENOMEM;
	if (e->conf != d->conf) {
		e->ca = ca_free(e->ca);
		e->conf = d->conf;
		e->crl_count = -1;
		if (d->conf->ca_certificate && d->conf->ca_private_key) {
			r = ca_open(d->conf->ca_certificate, d->conf->ca_private_key, &e->ca);
			if (r) {
				log_err("cannot load the [ca] certificate and key: %s", mef_strerror(r));
				e->conf = NULL;
				return r;
			}
		}
	}
	*ret = e;
	return 0;
}

/* ---- identity (decisions §5; docs/est.md) ---- */

static bool
uri_safe(const char *s)
{
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && !strchr("-._~@:!$&'()*+,;=/", *s))
			return false;
	return true;
}

int
est_identity(const struct mef_peer *peer, char *out, size_t outlen)
{
	const struct client_rec *c = &peer->client;
	const char *eid = c->enrolee_id[0] ? c->enrolee_id : c->id;
	int n;

	if (c->kind == CRED_CERT)
		n = snprintf(out, outlen, "%s", c->cert_san);
	else if (strncmp(eid, "//", 2) == 0 && uri_safe(eid))
		n = snprintf(out, outlen, "%s", eid); /* an absolute AE-ID / CSE-ID */
	else if (uri_safe(c->id))
		n = snprintf(out, outlen, EST_PSK_URN "%s", c->id);
	else
		return MEF_EINVAL;
	return n > 0 && (size_t)n < outlen ? 0 : MEF_EINVAL;
}

/* ---- responses ---- */

static void
est_refuse(const struct mef_req *req, struct mef_resp *resp, const char *op, int rsc,
	   const char *why)
{
	log_notice("%s %s: EST %s by %s refused: %s", transport_name(req->peer->transport),
		   req->peer->addr, op, req->peer->client.id, why);
	proc_error(resp, rsc, why);
}

static void
est_der(struct mef_resp *resp, enum mef_ctype ct, uint8_t *der, size_t len)
{
	resp->rsc = RSC_OK;
	resp->ctype = ct;
	resp->body = (char *)der;
	resp->body_len = len;
}

void
proc_est_cacerts(struct mefd *d, const struct mef_req *req, const char *const *params,
		 size_t n_params, struct mef_resp *resp)
{
	const uint8_t *ca_der;
	size_t ca_len, len;
	struct est *e;
	uint8_t *p7;

	(void)params;
	(void)n_params;
	if (d->conf->ca_upstream) {
		est_ra_cacerts(d, req, resp);
		return;
	}
	if (est_state(d, &e) != 0 || !e->ca) {
		est_refuse(req, resp, "cacerts", RSC_NOT_IMPLEMENTED, "no CA configured");
		return;
	}
	ca_cert_der(e->ca, &ca_der, &ca_len);
	if (est_pkcs7_certs(&ca_der, &ca_len, 1, &p7, &len) != 0) {
		proc_error(resp, RSC_INTERNAL_SERVER_ERROR, "internal error");
		return;
	}
	est_der(resp, CT_PKCS7_CERTS, p7, len);
}

void
proc_est_csrattrs(struct mefd *d, const struct mef_req *req, const char *const *params,
		  size_t n_params, struct mef_resp *resp)
{
	char id[MEF_ID_MAX + 64];
	uint8_t *der;
	size_t len;

	(void)d;
	(void)params;
	(void)n_params;
	if (est_identity(req->peer, id, sizeof(id)) != 0) {
		est_refuse(req, resp, "csrattrs", RSC_ORIGINATOR_HAS_NO_PRIVILEGE,
			   "client ID cannot be a certificate identity");
		return;
	}
	if (est_csrattrs(id, &der, &len) != 0) {
		proc_error(resp, RSC_INTERNAL_SERVER_ERROR, "internal error");
		return;
	}
	est_der(resp, CT_CSRATTRS, der, len);
}

/* ---- enrolment ---- */

static int
csr_rsc(int r)
{
	return r == MEF_EDENIED ? RSC_ORIGINATOR_HAS_NO_PRIVILEGE : RSC_BAD_REQUEST;
}

/* RFC 7030 §4.2.2: re-enrolment with the current certificate, one this MEF issued and still valid. */
static int
reenroll_check(struct mefd *d, const struct mef_peer *peer, const char **why)
{
	char serial[STORE_SERIAL_MAX];
	struct cert_rec c;

	if (peer->psk_identity[0] || tlsx_peer_serial(&peer->tls, serial, sizeof(serial)) != 0) {
		*why = "re-enrolment needs the current certificate";
		return MEF_EDENIED;
	}
	if (store_cert_get(d->store, serial, &c, NULL, NULL) != 0) {
		*why = "the session certificate was not issued by this MEF";
		return MEF_EDENIED;
	}
	if (c.revoked) {
		*why = "the session certificate is revoked";
		return MEF_EDENIED;
	}
	return 0;
}

/* [ca] ra_clients: a comma-separated list of client IDs. */
static bool
ra_client(struct mefd *d, const char *id)
{
	const char *p = d->conf->ca_ra_clients;
	size_t n = strlen(id);

	while (p && *p) {
		size_t len;

		p += strspn(p, " ,");
		len = strcspn(p, " ,");
		if (len == n && n && strncmp(p, id, n) == 0)
			return true;
		p += len;
	}
	return false;
}

/*
 * Checks shared by every enrolment kind; fills the identity. Returns 0, or
 * the RSC to answer with *why set.
 */
static int
enroll_check(struct mefd *d, const struct mef_req *req, enum est_kind k, char *id, size_t idlen,
	     const char **why)
{
	char challenge[256], san[CA_NAME_MAX];
	int r;

	if (req->ctype != CT_PKCS10) {
		*why = "content must be application/pkcs10";
		return RSC_UNSUPPORTED_MEDIA_TYPE;
	}
	if (req->body_len > CA_CSR_MAX) {
		*why = "certificate request too large";
		return RSC_BAD_REQUEST;
	}
	if (k == EST_REENROLL && reenroll_check(d, req->peer, why) != 0)
		return RSC_ORIGINATOR_HAS_NO_PRIVILEGE;
	if (ra_client(d, req->peer->client.id)) {
		/* an RA validated its own client: one SAN, any value */
		r = ca_csr_check(req->body, req->body_len, NULL, san, challenge, sizeof(challenge), why);
		if (r)
			return csr_rsc(r);
		snprintf(id, idlen, "%s", san);
		return 0;
	}
	if (est_identity(req->peer, id, idlen) != 0) {
		*why = "client ID cannot be a certificate identity";
		return RSC_ORIGINATOR_HAS_NO_PRIVILEGE;
	}
	/*
	 * Issued here: ca_issue checks the CSR (signature, key, SAN == id, and
	 * the challengePassword against the KeID, request_fill) before it
	 * signs, so it is not parsed and verified twice (docs/performance.md).
	 * An upstream CA gets only requests checked here.
	 */
	if (!d->conf->ca_upstream)
		return 0;
	r = ca_csr_check(req->body, req->body_len, id, NULL, challenge, sizeof(challenge), why);
	if (r)
		return csr_rsc(r);
	/* docs/est.md: a challengePassword, if sent, binds the CSR to this session's KeID */
	if (challenge[0] && strcasecmp(challenge, req->peer->keid) != 0) {
		*why = "challengePassword is not this session's KeID";
		return RSC_ORIGINATOR_HAS_NO_PRIVILEGE;
	}
	return 0;
}

static void
request_fill(struct mefd *d, const struct mef_req *req, const char *id, struct ca_request *cr)
{
	int64_t now = (int64_t)time(NULL);

	memset(cr, 0, sizeof(*cr));
	memcpy(cr->csr, req->body, req->body_len);
	cr->csr_len = req->body_len;
	snprintf(cr->san, sizeof(cr->san), "%s", id);
	/* docs/est.md: a challengePassword, if sent, binds the CSR to this session's KeID (an RA's clients' CSRs are its own business) */
	if (!ra_client(d, req->peer->client.id))
		snprintf(cr->challenge, sizeof(cr->challenge), "%s", req->peer->keid);
	if (strlen(req->peer->client.id) < sizeof(cr->subject_cn))
		snprintf(cr->subject_cn, sizeof(cr->subject_cn), "%s", req->peer->client.id);
	cr->not_before = now - 60; /* tolerate clients whose clock is a little behind */
	cr->not_after = now + d->conf->ca_validity;
}

/*
 * The certificate row: with the group commit (docs/performance.md) it is
 * queued and resp->pending makes the answer wait for its commit
 * (router_settle), so a client that got a certificate has its row on disk.
 */
static int
record(struct mefd *d, const struct mef_req *req, const struct ca_request *cr,
       const struct ca_result *res, struct mef_resp *resp)
{
	struct cert_rec c;
	int r;

	memset(&c, 0, sizeof(c));
	snprintf(c.serial, sizeof(c.serial), "%s", res->serial);
	snprintf(c.client_id, sizeof(c.client_id), "%s", req->peer->client.id);
	snprintf(c.subject, sizeof(c.subject), "%s", res->subject);
	snprintf(c.san, sizeof(c.san), "%s", cr->san);
	c.not_before = cr->not_before;
	c.not_after = cr->not_after;
	c.issued = (int64_t)time(NULL);
	if (!d->kebatch)
		return store_cert_put(d->store, &c, res->cert, res->cert_len);
	r = kebatch_put_cert(d->kebatch, &c, res->cert, res->cert_len);
	if (r == 0)
		snprintf(resp->pending, sizeof(resp->pending), "%s", c.serial);
	return r;
}

/* Issues with the local CA and records; the certificate DER lands in res. */
static int
issue_local(struct mefd *d, const struct mef_req *req, struct ca_request *cr,
	    struct ca_result *res, struct mef_resp *resp, const char **why)
{
	struct est *e;
	int r;

	if (est_state(d, &e) != 0 || !e->ca) {
		*why = "no CA configured";
		return RSC_NOT_IMPLEMENTED;
	}
	r = ca_issue(e->ca, cr, res);
	if (r) {
		*why = res->why ? res->why : "issuance failed";
		return r == MEF_ECRYPTO || r == MEF_ENOMEM ? RSC_INTERNAL_SERVER_ERROR : csr_rsc(r);
	}
	if (record(d, req, cr, res, resp) != 0) {
		*why = "recording the certificate failed";
		return RSC_INTERNAL_SERVER_ERROR;
	}
	metrics_inc(d, METRIC_CERT_ISSUED);
	mef_audit(d, "certificate_issued", "transport", transport_name(req->peer->transport), "addr",
		  req->peer->addr, "client", req->peer->client.id, "serial", res->serial, "subject",
		  res->subject, NULL);
	return 0;
}

static void
enroll_answer(const struct mef_req *req, enum est_kind k, const struct ca_result *res,
	      struct mef_resp *resp)
{
	const uint8_t *der = res->cert;
	size_t len = res->cert_len;
	uint8_t *p7;

	if (est_pkcs7_certs(&der, &len, 1, &p7, &len) != 0) {
		proc_error(resp, RSC_INTERNAL_SERVER_ERROR, "internal error");
		return;
	}
	est_der(resp, CT_PKCS7_CERTS, p7, len);
	log_info("%s %s: EST %s: certificate %s issued to %s (%s)",
		 transport_name(req->peer->transport), req->peer->addr, est_kind_name[k], res->serial,
		 req->peer->client.id, res->subject);
}

/* One enrolment's request and result: 8 KiB of CSR and 4 KiB of certificate, off the stack. */
struct enrolment {
	struct ca_request cr;
	struct ca_result res;
};

static int
enrolment_new(struct enrolment **ret, const char **why)
{
	if (!(*ret = calloc(1, sizeof(**ret)))) {
		*why = "out of memory";
		return RSC_INTERNAL_SERVER_ERROR;
	}
	return 0;
}

static void
enroll(struct mefd *d, const struct mef_req *req, enum est_kind k, struct mef_resp *resp)
{
	struct enrolment *en = NULL;
	char id[MEF_ID_MAX + 64];
	const char *why = "";
	int rsc;

	rsc = enroll_check(d, req, k, id, sizeof(id), &why);
	if (rsc == 0 && d->conf->ca_upstream) {
		est_ra_enroll(d, req, k == EST_REENROLL, resp);
		return;
	}
	if (rsc == 0)
		rsc = enrolment_new(&en, &why);
	if (rsc == 0) {
		request_fill(d, req, id, &en->cr);
		rsc = issue_local(d, req, &en->cr, &en->res, resp, &why);
	}
	if (rsc)
		est_refuse(req, resp, est_kind_name[k], rsc, why);
	else
		enroll_answer(req, k, &en->res, resp);
	free(en);
}

void
proc_est_enroll(struct mefd *d, const struct mef_req *req, const char *const *params,
		size_t n_params, struct mef_resp *resp)
{
	(void)params;
	(void)n_params;
	enroll(d, req, EST_ENROLL, resp);
}

void
proc_est_reenroll(struct mefd *d, const struct mef_req *req, const char *const *params,
		  size_t n_params, struct mef_resp *resp)
{
	(void)params;
	(void)n_params;
	enroll(d, req, EST_REENROLL, resp);
}

/* RFC 7030 §4.4.2 / RFC 9148 §4.8: the key (PKCS#8) first, then the certificate. */
static int
skg_answer(const struct mef_secret *key, const struct ca_result *res, struct mef_resp *resp)
{
	const uint8_t *der = res->cert;
	size_t len = res->cert_len, p7len;
	uint8_t *p7;
	char *body;

	if (est_pkcs7_certs(&der, &len, 1, &p7, &p7len) != 0)
		return MEF_ECRYPTO;
	body = malloc(key->len + p7len);
	if (body) {
		memcpy(body, key->p, key->len);
		memcpy(body + key->len, p7, p7len);
		resp->rsc = RSC_OK;
		resp->ctype = CT_MULTIPART;
		resp->body = body;
		resp->body_len = key->len + p7len;
		resp->n_parts = 2;
		resp->parts[0] = (struct mef_part){CT_PKCS8, 0, key->len};
		resp->parts[1] = (struct mef_part){CT_PKCS7_CERTS, key->len, p7len};
	}
	free(p7);
	return body ? 0 : MEF_ENOMEM;
}

void
proc_est_serverkeygen(struct mefd *d, const struct mef_req *req, const char *const *params,
		      size_t n_params, struct mef_resp *resp)
{
	struct enrolment *en = NULL;
	struct mef_secret *key = NULL;
	char id[MEF_ID_MAX + 64];
	const char *why = "";
	int rsc;

	(void)params;
	(void)n_params;
	rsc = enroll_check(d, req, EST_SKG, id, sizeof(id), &why);
	if (rsc == 0 && d->conf->ca_upstream) {
		why = "serverkeygen is not offered in RA mode";
		rsc = RSC_NOT_IMPLEMENTED;
	}
	if (rsc == 0)
		rsc = enrolment_new(&en, &why);
	if (rsc == 0) {
		request_fill(d, req, id, &en->cr);
		if (ca_keygen(&key, en->cr.spki, &en->cr.spki_len) != 0) {
			why = "key generation failed";
			rsc = RSC_INTERNAL_SERVER_ERROR;
		}
	}
	if (rsc == 0)
		rsc = issue_local(d, req, &en->cr, &en->res, resp, &why);
	if (rsc == 0 && skg_answer(key, &en->res, resp) != 0) {
		why = "internal error";
		rsc = RSC_INTERNAL_SERVER_ERROR;
	}
	secret_free(key);
	if (rsc)
		est_refuse(req, resp, "serverkeygen", rsc, why);
	else
		log_info("%s %s: EST serverkeygen: certificate %s and key issued to %s",
			 transport_name(req->peer->transport), req->peer->addr, en->res.serial,
			 req->peer->client.id);
	free(en);
}
