/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The fetch path of TS-0003 8.3.2.1 ("use of remotely provisioned
 * credential"): an Enrolment Target presents an Enrolee's KeID and a SUID
 * and gets a key derived from that Enrolee's Ke. Authorisation per decisions
 * §3: the requester's authenticated client ID must be one of the Enrolee's
 * targets with that SUID. Answer per decisions §4. Which key: 10.3.7
 * (default), or Km (10.3.2) / Kpsa (10.3.3) with ?kdf=km / ?kdf=kpsa
 * (decisions §1.6), always bound to the requester's ID.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mef/audit.h"
#include "mef/err.h"
#include "mef/kdf.h"
#include "mef/kebatch.h"
#include "mef/log.h"
#include "mef/mefd.h"
#include "mef/metrics.h"
#include "mef/proc.h"
#include "mef/store.h"

enum fetch_kdf { KDF_UC, KDF_KM, KDF_KPSA };

static const struct {
	const char *name;
	enum fetch_kdf kdf;
} fetch_kdfs[] = {
	{"uc", KDF_UC},
	{"km", KDF_KM},
	{"kpsa", KDF_KPSA},
};

struct fetch {
	char keid[MEF_KEYID_MAX];
	int suid;
	enum fetch_kdf kdf;
	struct ke_rec ke;
	struct client_rec enrolee;
};

/* Failure body of decisions §4: {"status":false,"errorString":...}. */
static void
fetch_fail(struct mef_resp *resp, int rsc, const char *text)
{
	json_t *o = json_pack("{s:b,s:s}", "status", 0, "errorString", text);

	mef_resp_json(resp, rsc, o ? json_dumps(o, JSON_COMPACT) : NULL);
	json_decref(o);
}

void
proc_fetch_fail(struct mef_resp *resp, int rsc, const char *text)
{
	fetch_fail(resp, rsc, text);
}

/* Parses "kdf=NAME" from the query (other parameters are refused). */
static int
parse_kdf(const char *query, enum fetch_kdf *ret)
{
	*ret = KDF_UC;
	if (!query || !query[0])
		return 0;
	if (strncmp(query, "kdf=", 4) != 0)
		return MEF_EINVAL;
	for (size_t i = 0; i < sizeof(fetch_kdfs) / sizeof(fetch_kdfs[0]); i++) {
		if (strcmp(query + 4, fetch_kdfs[i].name) == 0) {
			*ret = fetch_kdfs[i].kdf;
			return 0;
		}
	}
	return MEF_EINVAL;
}

static bool
target_allowed(const struct client_rec *enrolee, const char *target, int suid, bool *ret_other_suid)
{
	*ret_other_suid = false;
	for (size_t i = 0; i < enrolee->n_targets; i++) {
		if (strcmp(enrolee->targets[i].id, target) != 0)
			continue;
		if (enrolee->targets[i].suid == suid)
			return true;
		*ret_other_suid = true;
	}
	return false;
}

static int
derive(const struct fetch *f, const struct mef_secret *ke, const char *target, uint8_t out[MEF_KEY_LEN])
{
	switch (f->kdf) {
	case KDF_UC:
		return kdf_usage_constrained(ke->p, f->suid, target, out);
	case KDF_KM:
		return kdf_km(ke->p, target, out);
	case KDF_KPSA:
		return kdf_kpsa(ke->p, target, out);
	}
	return MEF_EINTERNAL;
}

/* Builds the success body without letting jansson hold a copy of the key. */
static char *
success_body(const struct fetch *f, const uint8_t key[MEF_KEY_LEN])
{
	char lifetime[16], *b64 = proc_base64(key, MEF_KEY_LEN), *enrolee, *body = NULL;
	json_t *s = json_string(f->ke.enrolee_id);

	enrolee = s ? json_dumps(s, JSON_ENCODE_ANY) : NULL;
	json_decref(s);
	proc_timestamp(f->ke.expires, lifetime);
	if (b64 && enrolee &&
	    asprintf(&body, "{\"status\":true,\"credential\":\"%s\",\"enroleeID\":%s,\"lifetime\":\"%s\"}",
		     b64, enrolee, lifetime) < 0)
		body = NULL;
	if (b64) {
		secret_wipe(b64, strlen(b64));
		free(b64);
	}
	free(enrolee);
	return body;
}

/* Looks up the Ke and its Enrolee; fills resp and returns non-zero on refusal. */
static int
fetch_load(struct mefd *d, struct fetch *f, struct mef_secret **ret_ke, struct mef_resp *resp,
	   const char **why)
{
	uint64_t t0 = metrics_now_us();
	int r;

	/* a Ke still in the group-commit queue is committed before anything derives from it */
	if (d->kebatch)
		kebatch_require(d->kebatch, f->keid);
	r = store_ke_get(d->store, f->keid, &f->ke, ret_ke);

	metrics_store_time(d, "ke_get", t0);

	if (r == 0 && (f->ke.revoked || f->ke.expires <= (int64_t)time(NULL))) {
		*ret_ke = secret_free(*ret_ke);
		r = MEF_EEXPIRED;
	}
	if (r == 0)
		r = mef_client_resolve(d, f->ke.client_id, &f->enrolee);
	if (r == 0)
		return 0;
	*ret_ke = secret_free(*ret_ke);
	if (r == MEF_ENOTFOUND || r == MEF_EEXPIRED) {
		*why = r == MEF_EEXPIRED ? "KeID revoked or expired" : "unknown KeID";
		fetch_fail(resp, RSC_NOT_FOUND, "unknown, revoked or expired KeID");
	} else {
		*why = "store failure";
		fetch_fail(resp, RSC_INTERNAL_SERVER_ERROR, "internal error");
	}
	return r;
}

static void
fetch_log_refusal(const struct mef_req *req, const char *why)
{
	log_notice("%s %s: fetchCredentials by %s refused: %s", transport_name(req->peer->transport),
		   req->peer->addr, req->peer->client.id, why);
}

void
proc_fetch_credentials(struct mefd *d, const struct mef_req *req, const char *const *params,
		       size_t n_params, struct mef_resp *resp)
{
	static struct fetch f; /* single-threaded; the records are large */
	const char *target = req->peer->client.id, *why = "malformed KeID, SUID or kdf";
	struct mef_secret *ke = NULL;
	uint8_t key[MEF_KEY_LEN];
	bool other_suid;

	memset(&f, 0, sizeof(f));
	if (n_params != 2 || kdf_keid_canon(params[0], f.keid, sizeof(f.keid), NULL) != 0 ||
	    suid_parse(params[1], &f.suid) != 0 || parse_kdf(req->query, &f.kdf) != 0) {
		fetch_fail(resp, RSC_BAD_REQUEST, why);
		goto refused;
	}
	if (fetch_load(d, &f, &ke, resp, &why) != 0)
		goto refused;
	if (!target_allowed(&f.enrolee, target, f.suid, &other_suid)) {
		why = other_suid ? "SUID not authorised for this target" : "not an authorised target";
		fetch_fail(resp, RSC_ORIGINATOR_HAS_NO_PRIVILEGE, why);
		goto refused;
	}
	if (derive(&f, ke, target, key) != 0) {
		why = "derivation failed";
		fetch_fail(resp, RSC_INTERNAL_SERVER_ERROR, "internal error");
		goto refused;
	}
	secret_free(ke);
	mef_resp_json(resp, RSC_OK, success_body(&f, key));
	secret_wipe(key, sizeof(key));
	if (!resp->body)
		proc_error(resp, RSC_INTERNAL_SERVER_ERROR, "out of memory");
	d->counters.fetch_ok++;
	metrics_inc(d, METRIC_FETCH, "ok");
	mef_audit(d, "fetch", "transport", transport_name(req->peer->transport), "addr",
		  req->peer->addr, "target", target, "keid", f.keid, "suid", params[1], "kdf",
		  fetch_kdfs[f.kdf].name, NULL);
	log_info("%s %s: %s fetched the SUID %d key (%s) of KeID %s", transport_name(req->peer->transport),
		 req->peer->addr, target, f.suid, fetch_kdfs[f.kdf].name, f.keid);
	return;
refused:
	secret_free(ke);
	secret_wipe(key, sizeof(key)); /* a failed derivation may have written part of it */
	d->counters.fetch_refused++;
	metrics_inc(d, METRIC_FETCH, "refused");
	mef_audit(d, "fetch_refused", "transport", transport_name(req->peer->transport), "addr",
		  req->peer->addr, "target", target, "keid", n_params > 0 ? params[0] : "", "reason",
		  why, NULL);
	fetch_log_refusal(req, why);
}
