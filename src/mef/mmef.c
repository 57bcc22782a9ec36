/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Mmef request plumbing shared by the registration, key-registration and
 * command procedures: body decoding (content type, nesting depth, root name
 * against ty), oneM2M timestamps and durations, representations, refusals,
 * and the four dispatchers that pick the resource from the root name (POST
 * /mef) or from the identifier form (/mef/<ri> vs /mef/<relativeKeyID>).
 */
#include <ctype.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mef/err.h"
#include "mef/log.h"
#include "mef/mefd.h"
#include "mef/mmef.h"

/* Deepest {}/[] nesting in raw JSON text (strings skipped); jansson has no such limit of its own. */
static size_t
json_depth(const uint8_t *p, size_t n)
{
	size_t depth = 0, max = 0;
	bool in_str = false;

	for (size_t i = 0; i < n; i++) {
		if (in_str) {
			if (p[i] == '\\')
				i++;
			else if (p[i] == '"')
				in_str = false;
		} else if (p[i] == '"') {
			in_str = true;
		} else if (p[i] == '{' || p[i] == '[') {
			if (++depth > max)
				max = depth;
		} else if ((p[i] == '}' || p[i] == ']') && depth > 0) {
			depth--;
		}
	}
	return max;
}

static int
root_ty(enum mmef_name root)
{
	static const struct {
		enum mmef_name root;
		int ty;
	} tys[] = {{MN_ROOT_REG, MMEF_TY_REG}, {MN_ROOT_KEYREG, MMEF_TY_KEYREG}, {MN_ROOT_CMD, MMEF_TY_CMD}};

	for (size_t i = 0; i < sizeof(tys) / sizeof(tys[0]); i++)
		if (tys[i].root == root)
			return tys[i].ty;
	return -1;
}

/* Finds the single root member of top among roots; the RSC to refuse with, or 0. */
static int
body_root(const struct mef_req *req, json_t *top, const enum mmef_name *roots, size_t n_roots,
	  size_t *ret_root, const char **why)
{
	const char *key;
	json_t *v;

	if (!json_is_object(top) || json_object_size(top) != 1) {
		*why = "content must be one JSON object with one root member";
		return RSC_BAD_REQUEST;
	}
	json_object_foreach(top, key, v) {
		for (size_t i = 0; i < n_roots; i++) {
			if (strcmp(key, mmef_name(roots[i])) != 0)
				continue;
			if (!json_is_object(v)) {
				*why = "the root member must be an object";
				return RSC_BAD_REQUEST;
			}
			if (req->ty >= 0 && req->ty != root_ty(roots[i])) {
				*why = "ty does not agree with the root name";
				return RSC_BAD_REQUEST;
			}
			*ret_root = i;
			return 0;
		}
	}
	*why = "unknown root name";
	return RSC_BAD_REQUEST;
}

int
mmef_body(const struct mef_req *req, const enum mmef_name *roots, size_t n_roots, size_t *ret_root,
	  json_t **ret_obj, struct mef_resp *resp)
{
	const char *why = NULL;
	json_error_t jerr;
	json_t *top;
	size_t idx = 0;
	int rsc;

	if (req->ctype != CT_JSON && req->ctype != CT_ONEM2M_JSON) {
		mmef_refuse(req, resp, RSC_UNSUPPORTED_MEDIA_TYPE, "request", "content is not JSON");
		return -1;
	}
	if (json_depth(req->body, req->body_len) > MMEF_JSON_DEPTH_MAX) {
		mmef_refuse(req, resp, RSC_BAD_REQUEST, "request", "JSON nested too deeply");
		return -1;
	}
	top = json_loadb((const char *)req->body, req->body_len, JSON_REJECT_DUPLICATES, &jerr);
	if (!top) {
		mmef_refuse(req, resp, RSC_BAD_REQUEST, "request", "malformed JSON");
		return -1;
	}
	if ((rsc = body_root(req, top, roots, n_roots, &idx, &why)) != 0) {
		json_decref(top);
		mmef_refuse(req, resp, rsc, "request", why);
		return -1;
	}
	*ret_obj = json_incref(json_object_get(top, mmef_name(roots[idx])));
	*ret_root = idx;
	json_decref(top);
	return 0;
}

int
mmef_timestamp_parse(const char *s, int64_t *ret)
{
	struct tm tm = {0};
	char *end;

	if (!s || strlen(s) != 15)
		return MEF_EINVAL;
	for (int i = 0; i < 15; i++)
		if (i == 8 ? s[i] != 'T' : !isdigit((unsigned char)s[i]))
			return MEF_EINVAL;
	end = strptime(s, "%Y%m%dT%H%M%S", &tm);
	if (!end || *end)
		return MEF_EINVAL;
	*ret = (int64_t)timegm(&tm);
	return 0;
}

/* P[nY][nM][nW][nD][T[nH][nM][nS]] with at least one part and no empty T part. */
bool
mmef_duration_ok(const char *s)
{
	static const char date_units[] = "YMWD", time_units[] = "HMS";
	const char *units = date_units;
	bool any = false, digits = false, in_time = false;

	if (!s || *s++ != 'P')
		return false;
	for (; *s; s++) {
		if (isdigit((unsigned char)*s)) {
			digits = true;
		} else if (*s == 'T' && !in_time && !digits) {
			in_time = true;
			any = false;
			units = time_units;
		} else if (digits && strchr(units, *s)) {
			units = strchr(units, *s) + 1; /* each unit once, in order */
			digits = false;
			any = true;
		} else {
			return false;
		}
	}
	return any && !digits;
}

void
mmef_respond(struct mef_resp *resp, int rsc, enum mmef_name root, int ty, json_t *o)
{
	json_t *top = o ? json_pack("{s:o}", mmef_name(root), o) : NULL;

	mef_resp_json(resp, rsc, top ? json_dumps(top, JSON_COMPACT) : NULL);
	json_decref(top);
	if (!resp->body) {
		proc_error(resp, RSC_INTERNAL_SERVER_ERROR, "out of memory");
		return;
	}
	resp->ty = ty;
	resp->ctype = CT_ONEM2M_JSON;
}

int
mmef_labels(json_t *v, char *out, size_t outlen)
{
	size_t i;
	json_t *e;
	char *s;
	int r = 0;

	if (!json_is_array(v) || json_array_size(v) == 0)
		return MEF_EINVAL;
	json_array_foreach(v, i, e) {
		const char *t = json_string_value(e);

		if (!t || !t[0] || strpbrk(t, " \t\r\n"))
			return MEF_EINVAL;
	}
	if (!(s = json_dumps(v, JSON_COMPACT)))
		return MEF_ENOMEM;
	if (snprintf(out, outlen, "%s", s) >= (int)outlen)
		r = MEF_ETOOBIG;
	free(s);
	return r;
}

bool
mmef_fqdn_ok(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	if (n == 0 || n > 253 || s[0] == '.' || s[0] == '-')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '.' && s[i] != '-')
			return false;
	return true;
}

void
mmef_log_refusal(const struct mef_req *req, const char *what, const char *why)
{
	log_notice("%s %s: %s by %s refused: %s", transport_name(req->peer->transport),
		   req->peer->addr, what, req->peer->client.id, why);
}

void
mmef_refuse(const struct mef_req *req, struct mef_resp *resp, int rsc, const char *what,
	    const char *why)
{
	mmef_log_refusal(req, what, why);
	proc_error(resp, rsc, why);
}

/* --- dispatchers: one route row per operation, the resource picked here --- */

static bool
is_reg_id(const char *id)
{
	return strncmp(id, MMEF_REG_PREFIX, strlen(MMEF_REG_PREFIX)) == 0;
}

void
proc_mmef_create(struct mefd *d, const struct mef_req *req, const char *const *params,
		 size_t n_params, struct mef_resp *resp)
{
	static const enum mmef_name roots[] = {MN_ROOT_REG, MN_ROOT_KEYREG};
	json_t *o = NULL;
	size_t root = 0;

	(void)params;
	(void)n_params;
	if (mmef_body(req, roots, 2, &root, &o, resp) != 0)
		return;
	if (mmef_attrs_check(req, roots[root], MEF_OP_CREATE, o, resp) == 0) {
		if (roots[root] == MN_ROOT_REG)
			mmef_reg_create(d, req, o, resp);
		else
			mmef_key_create(d, req, o, resp);
	}
	json_decref(o);
}

void
proc_mmef_retrieve(struct mefd *d, const struct mef_req *req, const char *const *params,
		   size_t n_params, struct mef_resp *resp)
{
	(void)n_params;
	if (is_reg_id(params[0]))
		mmef_reg_retrieve(d, req, params[0], resp);
	else
		mmef_key_retrieve(d, req, params[0], resp);
}

void
proc_mmef_update(struct mefd *d, const struct mef_req *req, const char *const *params,
		 size_t n_params, struct mef_resp *resp)
{
	enum mmef_name root = is_reg_id(params[0]) ? MN_ROOT_REG : MN_ROOT_KEYREG;
	json_t *o = NULL;
	size_t idx = 0;

	(void)n_params;
	if (mmef_body(req, &root, 1, &idx, &o, resp) != 0)
		return;
	if (json_object_size(o) == 0)
		mmef_refuse(req, resp, RSC_BAD_REQUEST, "update", "nothing to update");
	else if (mmef_attrs_check(req, root, MEF_OP_UPDATE, o, resp) != 0)
		; /* refused inside */
	else if (root == MN_ROOT_REG)
		mmef_reg_update(d, req, params[0], o, resp);
	else
		mmef_key_update(d, req, params[0], o, resp);
	json_decref(o);
}

void
proc_mmef_delete(struct mefd *d, const struct mef_req *req, const char *const *params,
		 size_t n_params, struct mef_resp *resp)
{
	(void)n_params;
	if (is_reg_id(params[0]))
		mmef_reg_delete(d, req, params[0], resp);
	else
		mmef_key_delete(d, req, params[0], resp);
}

void
mmef_sweep(struct mefd *d)
{
	unsigned regs = 0, keys = 0;
	int r = store_mmef_sweep(d->store, (int64_t)time(NULL), &regs, &keys);

	if (r != 0)
		log_warn("Mmef expiry sweep failed: %s", mef_strerror(r));
	else if (regs || keys)
		log_info("expiry sweep deleted %u client registration(s), %u key registration(s)", regs,
			 keys);
}
