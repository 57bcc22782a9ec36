/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The CRL of the MEF CA: built from the store's revoked certificates,
 * cached by mefd and rebuilt when the revoked count changed (a revocation by
 * mefctl) or a day before its nextUpdate; served raw (application/pkix-crl)
 * at /crl.der on the HTTPS listeners (docs/est.md).
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "est_internal.h"
#include "mef/err.h"
#include "mef/log.h"
#include "mef/proc.h"
#include "mef/store.h"

#define CRL_MAX_ENTRIES 100000

struct crl_list {
	struct ca_revoked *v;
	size_t n, cap;
	int64_t now;
};

static int
crl_one(void *ctx, const struct cert_rec *c)
{
	struct crl_list *l = ctx;
	struct ca_revoked *v;

	if (c->not_after < l->now) /* RFC 5280 3.3: expired entries may leave the CRL */
		return 0;
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 64;

		if (cap > CRL_MAX_ENTRIES || !(v = realloc(l->v, cap * sizeof(*v))))
			return MEF_ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	memcpy(l->v[l->n].serial, c->serial, sizeof(l->v[l->n].serial));
	l->v[l->n++].when = c->revoked_at;
	return 0;
}

int
est_crl_build(struct ca *ca, struct store *s, int64_t now, uint8_t **ret, size_t *ret_len)
{
	struct crl_list l = {.now = now};
	int r = store_cert_list(s, true, crl_one, &l);

	if (r == 0)
		r = ca_crl(ca, l.v, l.n, now, now + EST_CRL_VALIDITY, ret, ret_len);
	free(l.v);
	return r;
}

static int
crl_refresh(struct mefd *d, struct est *e)
{
	int64_t now = (int64_t)time(NULL), count;
	uint8_t *der;
	size_t len;
	int r = store_cert_revoked_count(d->store, &count);

	if (r)
		return r;
	if (e->crl && count == e->crl_count && now < e->crl_until)
		return 0;
	if ((r = est_crl_build(e->ca, d->store, now, &der, &len)) != 0)
		return r;
	free(e->crl);
	e->crl = der;
	e->crl_len = len;
	e->crl_count = count;
	e->crl_until = now + EST_CRL_VALIDITY - 86400;
	log_info("CRL rebuilt: %lld revoked certificate(s)", (long long)count);
	return 0;
}

void
proc_est_crl(struct mefd *d, const struct mef_req *req, const char *const *params,
	     size_t n_params, struct mef_resp *resp)
{
	struct est *e;
	char *copy;

	(void)req;
	(void)params;
	(void)n_params;
	if (est_state(d, &e) != 0 || !e->ca) {
		proc_error(resp, RSC_NOT_FOUND, "no CA configured");
		return;
	}
	if (crl_refresh(d, e) != 0 || !(copy = malloc(e->crl_len))) {
		proc_error(resp, RSC_INTERNAL_SERVER_ERROR, "CRL unavailable");
		return;
	}
	memcpy(copy, e->crl, e->crl_len);
	resp->rsc = RSC_OK;
	resp->ctype = CT_PKIX_CRL;
	resp->body = copy;
	resp->body_len = e->crl_len;
}
