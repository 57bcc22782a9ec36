/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * MEF Key Registration, Key Retrieval, Key Registration Update and Key
 * De-Registration (TS-0003 8.3.5.2.7-.10) on /mef/<RelativeKeyID>. Without a
 * Key Value the key is exported from the registering (D)TLS session with
 * EXPORTER-oneM2M-Connection and RelativeKeyID = UPPERCASE-hex(KcID)
 * (decisions §1.7). Only listed targets retrieve the key value; only the
 * source updates or deletes (decisions §3).
 */
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mef/audit.h"
#include "mef/err.h"
#include "mef/kebatch.h"
#include "mef/kdf.h"
#include "mef/log.h"
#include "mef/mefd.h"
#include "mef/metrics.h"
#include "mef/mmef.h"
#include "mef/tlsx.h"

#define KEYVAL_MIN 16
#define KEYVAL_MAX 64

/* Target cardinality per SUID (TS-0003 Table 8.3.5.1-1, 8.3.5.2.7 step 3); unlisted SUIDs are not keys to register. */
static const struct {
	int suid;
	size_t min, max;
} suid_targets[] = {
	{11, 1, 1}, {21, 1, 1}, {31, 1, 1},                       /* MAF: one MAF */
	{12, 1, 1}, {13, 1, 1}, {22, 1, 1}, {23, 1, 1}, {32, 1, 1}, {33, 1, 1}, /* SAEF, ESPrim */
	{14, 1, MEF_MAX_TARGETS}, {15, 1, MEF_MAX_TARGETS}, {24, 1, MEF_MAX_TARGETS},
	{25, 1, MEF_MAX_TARGETS}, {34, 1, MEF_MAX_TARGETS}, {35, 1, MEF_MAX_TARGETS}, /* ESData */
};

static int
suid_rule(int suid, size_t *ret_min, size_t *ret_max)
{
	for (size_t i = 0; i < sizeof(suid_targets) / sizeof(suid_targets[0]); i++) {
		if (suid_targets[i].suid == suid) {
			*ret_min = suid_targets[i].min;
			*ret_max = suid_targets[i].max;
			return 0;
		}
	}
	return MEF_EINVAL;
}

static json_t *
key_repr(struct mefd *d, const struct mmef_keyreg *k)
{
	char ct[16], lt[16], et[16], keyid[MEF_KEYID_MAX];
	json_t *o, *t = json_array(), *lbl = k->lbl[0] ? json_loads(k->lbl, 0, NULL) : NULL;

	proc_timestamp(k->ct, ct);
	proc_timestamp(k->lt, lt);
	proc_timestamp(k->et, et);
	if (kdf_key_identifier(k->rel_id, d->conf->fqdn, keyid, sizeof(keyid)) != 0)
		keyid[0] = '\0';
	for (size_t i = 0; t && i < k->n_targets; i++)
		json_array_append_new(t, json_string(k->targets[i]));
	o = json_pack("{s:s,s:s,s:s,s:i,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:i,s:o}", mmef_name(MN_RI),
		      k->rel_id, mmef_name(MN_RN), k->rel_id, mmef_name(MN_PI), "mef", mmef_name(MN_TY),
		      MMEF_TY_KEYREG, mmef_name(MN_CT), ct, mmef_name(MN_LT), lt, mmef_name(MN_ET), et,
		      mmef_name(MN_REL_KEY_ID), k->rel_id, mmef_name(MN_KEY_ID), keyid,
		      mmef_name(MN_SOURCE_CLIENT_ID), k->source_id, mmef_name(MN_ADMIN_FQDN),
		      k->admin_fqdn, mmef_name(MN_SUID), k->suid, mmef_name(MN_TARGET_IDS), t);
	if (o && lbl)
		json_object_set(o, mmef_name(MN_LBL), lbl);
	json_decref(lbl);
	return o;
}

/* targetIDs (v may be NULL: none) into k, checked against the SUID's cardinality; the RSC to refuse with, or 0. */
static int
parse_targets(json_t *v, struct mmef_keyreg *k, const char **why)
{
	size_t min = 0, max = 0, i;
	json_t *e;

	if (suid_rule(k->suid, &min, &max) != 0) {
		*why = "SUID is not one of a registrable key";
		return RSC_CONTENTS_UNACCEPTABLE;
	}
	k->n_targets = 0;
	json_array_foreach(v, i, e) { /* a NULL v yields no iteration */
		const char *s = json_string_value(e);

		if (!s[0] || strlen(s) >= MEF_ID_MAX || i >= MEF_MAX_TARGETS) {
			*why = "targetIDs: empty, too long or too many";
			return RSC_BAD_REQUEST;
		}
		for (size_t j = 0; j < k->n_targets; j++)
			if (strcmp(k->targets[j], s) == 0) {
				*why = "targetIDs: duplicate";
				return RSC_BAD_REQUEST;
			}
		snprintf(k->targets[k->n_targets++], MEF_ID_MAX, "%s", s);
	}
	if (k->n_targets < min || k->n_targets > max) {
		*why = min == max ? "this SUID needs exactly one target" : "this SUID needs targets";
		return RSC_CONTENTS_UNACCEPTABLE;
	}
	return 0;
}

/* Strict RFC 4648 §4 base64 of KEYVAL_MIN..KEYVAL_MAX bytes into a new secret. */
static int
keyval_decode(const char *s, struct mef_secret **ret)
{
	static const char alpha[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t n = strlen(s), pad = 0;
	uint8_t buf[KEYVAL_MAX + 3];
	int len;

	if (n == 0 || n % 4 != 0 || n > 4 * ((KEYVAL_MAX + 2) / 3))
		return MEF_EINVAL;
	pad = s[n - 1] == '=' ? (s[n - 2] == '=' ? 2 : 1) : 0;
	for (size_t i = 0; i < n - pad; i++)
		if (!strchr(alpha, s[i]) || !s[i])
			return MEF_EINVAL;
	len = EVP_DecodeBlock(buf, (const unsigned char *)s, (int)n);
	if (len < 0 || (size_t)len < pad || (size_t)len - pad < KEYVAL_MIN ||
	    (size_t)len - pad > KEYVAL_MAX) {
		secret_wipe(buf, sizeof(buf));
		return MEF_EINVAL;
	}
	*ret = secret_dup(buf, (size_t)len - pad);
	secret_wipe(buf, sizeof(buf));
	return *ret ? 0 : MEF_ENOMEM;
}

/* The key and RelativeKeyID: exported from this session, or the given value with a random ID. */
static int
key_material(const struct mef_req *req, json_t *kv, struct mmef_keyreg *k, struct mef_secret **ret)
{
	uint8_t ekm[MEF_EKM_LEN], rel[MEF_RELID_LEN], key[MEF_KEY_LEN];
	int e;

	if (kv) {
		if ((e = keyval_decode(json_string_value(kv), ret)) != 0)
			return e;
		if (RAND_bytes(rel, sizeof(rel)) != 1) {
			*ret = secret_free(*ret);
			return MEF_ECRYPTO;
		}
		kdf_hex_upper(rel, sizeof(rel), k->rel_id);
		return 0;
	}
	/* decisions §1.7: EXPORTER-oneM2M-Connection, no context, 48 bytes */
	if ((e = tlsx_export(&req->peer->tls, MEF_EXPORTER_CONNECTION, ekm, sizeof(ekm))) != 0)
		return e;
	kdf_split_ekm(ekm, rel, key);
	kdf_hex_upper(rel, sizeof(rel), k->rel_id);
	*ret = secret_dup(key, sizeof(key));
	secret_wipe(ekm, sizeof(ekm));
	secret_wipe(key, sizeof(key));
	k->exported = true;
	return *ret ? 0 : MEF_ENOMEM;
}

/* Fills k from a create body; the RSC to refuse with (and *why), or 0. */
static int
key_from_body(const struct mef_req *req, json_t *o, struct mmef_keyreg *k, const char **why)
{
	const char *admin = json_string_value(json_object_get(o, mmef_name(MN_ADMIN_FQDN)));
	json_t *t = json_object_get(o, mmef_name(MN_TARGET_IDS));
	json_int_t suid = json_integer_value(json_object_get(o, mmef_name(MN_SUID)));

	if (suid < 10 || suid > 99 || !suid_known((int)suid)) {
		*why = "unknown SUID";
		return RSC_BAD_REQUEST;
	}
	k->suid = (int)suid;
	if (!mmef_fqdn_ok(admin)) {
		*why = "adminFQDN is not a DNS name";
		return RSC_BAD_REQUEST;
	}
	snprintf(k->admin_fqdn, sizeof(k->admin_fqdn), "%s", admin);
	snprintf(k->source_id, sizeof(k->source_id), "%s", req->peer->client.id);
	k->ct = k->lt = (int64_t)time(NULL);
	return parse_targets(t, k, why);
}

/* Metrics and audit line of a key registration / retrieval (why NULL: success). */
static void
key_op_counted(struct mefd *d, const struct mef_req *req, enum metric m, const char *event,
	       const char *rel, const char *why)
{
	metrics_inc(d, m, why ? "refused" : "ok");
	mef_audit(d, event, "transport", transport_name(req->peer->transport), "addr",
		  req->peer->addr, "client", req->peer->client.id, "registration", rel, "reason", why,
		  NULL);
}

static void
key_store_refusal(const struct mef_req *req, struct mef_resp *resp, int e)
{
	if (e == MEF_EDENIED)
		mmef_refuse(req, resp, RSC_ORIGINATOR_HAS_NO_PRIVILEGE, "key registration",
			    "no registration of this client for this adminFQDN");
	else if (e == MEF_EEXIST)
		mmef_refuse(req, resp, RSC_CONFLICT, "key registration",
			    "this session's exported key is already registered");
	else if (e == MEF_EINVAL)
		mmef_refuse(req, resp, RSC_BAD_REQUEST, "key registration",
			    "keyValue is not base64 of 16..64 bytes");
	else {
		log_err("key registration by %s: %s", req->peer->client.id, mef_strerror(e));
		proc_error(resp, RSC_INTERNAL_SERVER_ERROR, "internal error");
	}
}

/*
 * With the group commit (docs/performance.md) the registration is checked
 * here and queued; resp->pending holds the answer until its commit, and a
 * registration that vanishes in between makes that row fail (5000).
 */
static int
key_store(struct mefd *d, const struct mmef_keyreg *k, const struct mef_secret *key,
	  struct mef_resp *resp)
{
	int64_t now = (int64_t)time(NULL);
	int e;

	if (!d->kebatch)
		return store_mmef_key_add(d->store, k, key, now);
	if ((e = store_mmef_key_check(d->store, k, now)) != 0)
		return e;
	if (kebatch_queued(d->kebatch, k->rel_id))
		return MEF_EEXIST;
	if ((e = kebatch_put_keyreg(d->kebatch, k, key, now)) == 0)
		snprintf(resp->pending, sizeof(resp->pending), "%s", k->rel_id);
	return e;
}

void
mmef_key_create(struct mefd *d, const struct mef_req *req, json_t *o, struct mef_resp *resp)
{
	static struct mmef_keyreg k;
	struct mef_secret *key = NULL;
	const char *why = NULL;
	int rsc, e;

	memset(&k, 0, sizeof(k));
	if (mmef_common_attrs(req, o, &k.et, k.lbl, sizeof(k.lbl), resp) != 0)
		return;
	if ((rsc = key_from_body(req, o, &k, &why)) != 0) {
		mmef_refuse(req, resp, rsc, "key registration", why);
		key_op_counted(d, req, METRIC_KEY_REG, "key_registration_refused", "", why);
		return;
	}
	e = key_material(req, json_object_get(o, mmef_name(MN_KEY_VALUE)), &k, &key);
	if (e == 0)
		e = key_store(d, &k, key, resp);
	secret_free(key);
	if (e != 0) {
		key_store_refusal(req, resp, e);
		key_op_counted(d, req, METRIC_KEY_REG, "key_registration_refused", "", mef_strerror(e));
		return;
	}
	mmef_respond(resp, RSC_CREATED, MN_ROOT_KEYREG, MMEF_TY_KEYREG, key_repr(d, &k));
	snprintf(resp->location, sizeof(resp->location), "/mef/%s", k.rel_id);
	log_info("%s %s: %s registered key %s (SUID %d, %s, %zu target(s))",
		 transport_name(req->peer->transport), req->peer->addr, k.source_id, k.rel_id, k.suid,
		 k.exported ? "exported" : "key value", k.n_targets);
	key_op_counted(d, req, METRIC_KEY_REG, "key_registered", k.rel_id, NULL);
}

static bool
is_target(const struct mmef_keyreg *k, const char *id)
{
	for (size_t i = 0; i < k->n_targets; i++)
		if (strcmp(k->targets[i], id) == 0)
			return true;
	return false;
}

/* Loads rel (unexpired); 0 or non-zero with resp filled. */
static int
key_load(struct mefd *d, const struct mef_req *req, const char *rel, const char *what,
	 struct mmef_keyreg *ret, struct mef_secret **ret_key, struct mef_resp *resp)
{
	int e = store_mmef_key_get(d->store, rel, ret, ret_key);

	if (e == 0 && ret->et <= (int64_t)time(NULL)) {
		if (ret_key)
			*ret_key = secret_free(*ret_key);
		e = MEF_ENOTFOUND;
	}
	if (e == MEF_ENOTFOUND)
		mmef_refuse(req, resp, RSC_NOT_FOUND, what, "no such resource");
	else if (e != 0) {
		log_err("%s %s: %s", what, rel, mef_strerror(e));
		proc_error(resp, RSC_INTERNAL_SERVER_ERROR, "internal error");
	}
	return e;
}

/* Appends ,"keyValue":"<base64>" to a {"root":{...}} body without a jansson copy of the key. */
static int
add_key_value(struct mef_resp *resp, const struct mef_secret *key)
{
	char *b64 = proc_base64(key->p, key->len), *body = NULL;
	int n = -1;

	if (b64 && resp->body && resp->body_len > 2)
		n = asprintf(&body, "%.*s,\"%s\":\"%s\"}}", (int)resp->body_len - 2, resp->body,
			     mmef_name(MN_KEY_VALUE), b64);
	if (b64) {
		secret_wipe(b64, strlen(b64));
		free(b64);
	}
	if (n < 0)
		return MEF_ENOMEM;
	secret_wipe(resp->body, resp->body_len);
	free(resp->body);
	resp->body = body;
	resp->body_len = (size_t)n;
	return 0;
}

void
mmef_key_retrieve(struct mefd *d, const struct mef_req *req, const char *rel, struct mef_resp *resp)
{
	static struct mmef_keyreg k;
	const char *me = req->peer->client.id;
	struct mef_secret *key = NULL;

	if (key_load(d, req, rel, "key retrieval", &k, &key, resp) != 0)
		return;
	if (!is_target(&k, me) && strcmp(k.source_id, me) != 0) {
		secret_free(key);
		mmef_refuse(req, resp, RSC_ORIGINATOR_HAS_NO_PRIVILEGE, "key retrieval",
			    "not an authorised target");
		key_op_counted(d, req, METRIC_KEY_RETRIEVE, "key_retrieval_refused", rel,
			       "not an authorised target");
		return;
	}
	mmef_respond(resp, RSC_OK, MN_ROOT_KEYREG, MMEF_TY_KEYREG, key_repr(d, &k));
	if (resp->rsc == RSC_OK && is_target(&k, me) && add_key_value(resp, key) != 0)
		proc_error(resp, RSC_INTERNAL_SERVER_ERROR, "out of memory");
	secret_free(key);
	log_info("%s %s: %s retrieved key registration %s%s", transport_name(req->peer->transport),
		 req->peer->addr, me, rel, is_target(&k, me) ? " with its key value" : "");
	key_op_counted(d, req, METRIC_KEY_RETRIEVE, "key_retrieved", rel, NULL);
}

/* Loads rel for its source; 0 or non-zero with resp filled. */
static int
key_load_source(struct mefd *d, const struct mef_req *req, const char *rel, const char *what,
		struct mmef_keyreg *ret, struct mef_resp *resp)
{
	if (key_load(d, req, rel, what, ret, NULL, resp) != 0)
		return -1;
	if (strcmp(ret->source_id, req->peer->client.id) != 0) {
		mmef_refuse(req, resp, RSC_ORIGINATOR_HAS_NO_PRIVILEGE, what, "not the source client");
		return -1;
	}
	return 0;
}

void
mmef_key_update(struct mefd *d, const struct mef_req *req, const char *rel, json_t *o,
		struct mef_resp *resp)
{
	static struct mmef_keyreg k;
	json_t *t = json_object_get(o, mmef_name(MN_TARGET_IDS));
	const char *why = NULL;
	int rsc, e;

	if (key_load_source(d, req, rel, "key registration update", &k, resp) != 0 ||
	    mmef_common_attrs(req, o, &k.et, k.lbl, sizeof(k.lbl), resp) != 0)
		return;
	if (t && (rsc = parse_targets(t, &k, &why)) != 0) {
		mmef_refuse(req, resp, rsc, "key registration update", why);
		return;
	}
	k.lt = (int64_t)time(NULL);
	if ((e = store_mmef_key_update(d->store, &k)) != 0) {
		log_err("key registration update %s: %s", rel, mef_strerror(e));
		proc_error(resp, RSC_INTERNAL_SERVER_ERROR, "internal error");
		return;
	}
	mmef_respond(resp, RSC_UPDATED, MN_ROOT_KEYREG, MMEF_TY_KEYREG, key_repr(d, &k));
	log_info("%s %s: %s updated key registration %s", transport_name(req->peer->transport),
		 req->peer->addr, k.source_id, rel);
}

void
mmef_key_delete(struct mefd *d, const struct mef_req *req, const char *rel, struct mef_resp *resp)
{
	static struct mmef_keyreg k;
	int e;

	if (key_load_source(d, req, rel, "key de-registration", &k, resp) != 0)
		return;
	if ((e = store_mmef_key_remove(d->store, rel)) != 0 && e != MEF_ENOTFOUND) {
		log_err("key de-registration %s: %s", rel, mef_strerror(e));
		proc_error(resp, RSC_INTERNAL_SERVER_ERROR, "internal error");
		return;
	}
	mef_resp_json(resp, RSC_DELETED, NULL);
	log_info("%s %s: %s de-registered key %s", transport_name(req->peer->transport),
		 req->peer->addr, k.source_id, rel);
}
