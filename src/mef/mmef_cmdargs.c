/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Builds the cmdArgs of an operator-queued MEF Client Command from
 * "key=value" words (mefctl cmd queue), checking what TS-0003 8.3.9 makes
 * the client check, so that a command the client must refuse is never
 * queued: URI hosts equal the MEF FQDN, enumerations in range, subject IDs
 * of the declared kind, SUID present exactly for [authenticationProfile].
 */
#include <ctype.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mef/err.h"
#include "mef/mmef.h"

#define MAX_KV 8

struct kv {
	const char *key[MAX_KV], *val[MAX_KV];
	size_t n;
};

/* A word/value enumeration: the text an operator types and the wire value. */
struct enum_val {
	const char *word;
	int value;
};

static const struct enum_val protocols[] = {{"EST", 1}, {"SCEP", 2}};
static const struct enum_val subject_types[] = {{"node", 1}, {"cse", 2}, {"ae", 3}};
static const struct enum_val dm_protocols[] = {
	{"omadm1.3", 1}, {"omadm2.0", 2}, {"lwm2m", 3}, {"tr069", 4}};
static const struct enum_val object_types[] = {
	{"authProfile", 1}, {"trustAnchorCred", 2}, {"MAFClientRegCfg", 3}};

#define ENUM_FIND(tab, w, ret) enum_find(tab, sizeof(tab) / sizeof((tab)[0]), w, ret)

static int
enum_find(const struct enum_val *t, size_t n, const char *w, int *ret)
{
	for (size_t i = 0; w && i < n; i++) {
		char num[8];

		snprintf(num, sizeof(num), "%d", t[i].value);
		if (strcasecmp(w, t[i].word) == 0 || strcmp(w, num) == 0) {
			*ret = t[i].value;
			return 0;
		}
	}
	return MEF_EINVAL;
}

static const char *
kv_get(const struct kv *kv, const char *key)
{
	for (size_t i = 0; i < kv->n; i++)
		if (strcmp(kv->key[i], key) == 0)
			return kv->val[i];
	return NULL;
}

static bool
printable_token(const char *s)
{
	if (!s || !s[0] || strlen(s) >= MEF_ID_MAX)
		return false;
	for (; *s; s++)
		if ((unsigned char)*s <= 0x20 || *s == 0x7f)
			return false;
	return true;
}

/* scheme://host[:port][/path]: the host must equal fqdn (8.3.9.6 / .7: "FQDN of the URI"). */
static bool
uri_host_is(const char *uri, const char *fqdn, const char *const *schemes)
{
	const char *p = uri ? strstr(uri, "://") : NULL, *h;
	size_t n;
	bool scheme_ok = false;

	if (!p || !printable_token(uri))
		return false;
	for (; *schemes; schemes++)
		if ((size_t)(p - uri) == strlen(*schemes) && strncasecmp(uri, *schemes, p - uri) == 0)
			scheme_ok = true;
	h = p + 3;
	n = strcspn(h, ":/?#");
	return scheme_ok && n == strlen(fqdn) && strncasecmp(h, fqdn, n) == 0;
}

/* Node-ID: any token; CSE-ID: "/id" or "//sp/id"; AE-ID: "C…"/"S…" or with a CSE prefix. */
static bool
subject_ok(int type, const char *id)
{
	if (!printable_token(id))
		return false;
	switch (type) {
	case 1:
		return true;
	case 2:
		return id[0] == '/' && id[strlen(id) - 1] != '/' &&
		       (strchr(id + 1, '/') == NULL ||
			(id[1] == '/' && strchr(id + 2, '/') && !strchr(strchr(id + 2, '/') + 1, '/')));
	case 3: {
		const char *last = strrchr(id, '/');
		const char *ae = last ? last + 1 : id;

		return ae[0] == 'C' || ae[0] == 'S';
	}
	}
	return false;
}

static int
fail(char *why, size_t len, const char *text)
{
	snprintf(why, len, "%s", text);
	return MEF_EINVAL;
}

static json_t *
cert_prov_args(const char *fqdn, const struct kv *kv, char *why, size_t wl)
{
	static const char *const schemes[] = {"https", "coaps", NULL};
	const char *proto = kv_get(kv, "protocol"), *id = kv_get(kv, "subject-id");
	int p = 1, st = 0;

	if (proto && ENUM_FIND(protocols, proto, &p) != 0)
		return fail(why, wl, "protocol: EST or SCEP"), NULL;
	if (!uri_host_is(kv_get(kv, "uri"), fqdn, schemes))
		return fail(why, wl, "uri: https:// or coaps:// URI whose host is the MEF FQDN"), NULL;
	if (ENUM_FIND(subject_types, kv_get(kv, "subject-type"), &st) != 0)
		return fail(why, wl, "subject-type: node, cse or ae"), NULL;
	if (!subject_ok(st, id))
		return fail(why, wl, "subject-id: missing or not an ID of subject-type"), NULL;
	return json_pack("{s:{s:i,s:s,s:i,s:s}}", mmef_name(MN_CERT_PROV_ARGS),
			 mmef_name(MN_CERT_PROV_PROTOCOL), p, mmef_name(MN_URI), kv_get(kv, "uri"),
			 mmef_name(MN_CERT_SUBJECT_TYPE), st, mmef_name(MN_CERT_SUBJECT_ID), id);
}

static json_t *
dev_cfg_args(const char *fqdn, const struct kv *kv, char *why, size_t wl)
{
	static const char *const schemes[] = {"https", "http", "coaps", "coap", NULL};
	const char *uri = kv_get(kv, "uri");
	char dcu[MEF_ID_MAX + 8];
	int dm = 0;

	if (ENUM_FIND(dm_protocols, kv_get(kv, "dm"), &dm) != 0)
		return fail(why, wl, "dm: omadm1.3, omadm2.0, lwm2m or tr069"), NULL;
	if (!uri_host_is(uri, fqdn, schemes))
		return fail(why, wl, "uri: DM server URI whose host is the MEF FQDN"), NULL;
	snprintf(dcu, sizeof(dcu), "%d:%s", dm, uri); /* sec:deviceConfigURI */
	return json_pack("{s:{s:s}}", mmef_name(MN_DEV_CFG_ARGS), mmef_name(MN_DEVICE_CONFIG_URI), dcu);
}

static json_t *
mo_node_args(const char *fqdn, const struct kv *kv, char *why, size_t wl)
{
	const char *path = kv_get(kv, "path"), *suid = kv_get(kv, "suid");
	json_t *o;
	int type = 0, s = 0;

	(void)fqdn;
	if (!printable_token(path))
		return fail(why, wl, "path: the MO's objectPath"), NULL;
	if (ENUM_FIND(object_types, kv_get(kv, "type"), &type) != 0)
		return fail(why, wl, "type: authProfile, trustAnchorCred or MAFClientRegCfg"), NULL;
	if ((type == 1) != (suid != NULL) || (suid && suid_parse(suid, &s) != 0))
		return fail(why, wl, "suid: a known SUID, given exactly for type authProfile"), NULL;
	o = json_pack("{s:s,s:i}", mmef_name(MN_OBJECT_PATH), path, mmef_name(MN_OBJECT_TYPE_ID), type);
	if (o && type == 1)
		json_object_set_new(o, mmef_name(MN_OBJECT_TYPE_ARGS),
				    json_pack("{s:i}", mmef_name(MN_SUID), s));
	return o ? json_pack("{s:o}", mmef_name(MN_MO_NODE_ARGS), o) : NULL;
}

static const struct {
	const char *name;
	int cls;
	json_t *(*build)(const char *fqdn, const struct kv *kv, char *why, size_t wl);
	const char *keys; /* accepted keys, space-separated (plus "target") */
} builders[] = {
	{"CERT_PROV", MMEF_CMD_CERT_PROV, cert_prov_args, "protocol uri subject-type subject-id"},
	{"DEV_CFG", MMEF_CMD_DEV_CFG, dev_cfg_args, "dm uri"},
	{"MO_NODE", MMEF_CMD_MO_NODE, mo_node_args, "path type suid"},
};

static bool
key_allowed(const char *keys, const char *k)
{
	size_t n = strlen(k);

	if (strcmp(k, "target") == 0)
		return true;
	for (const char *p = keys; (p = strstr(p, k)); p += n)
		if ((p == keys || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\0'))
			return true;
	return false;
}

static int
kv_split(char *const *args, size_t n, const char *keys, struct kv *kv, char *why, size_t wl)
{
	static char store[MAX_KV][64];

	kv->n = 0;
	for (size_t i = 0; i < n; i++) {
		const char *eq = strchr(args[i], '=');
		size_t kl = eq ? (size_t)(eq - args[i]) : 0;

		if (!eq || kl == 0 || kl >= sizeof(store[0]) || kv->n >= MAX_KV)
			return fail(why, wl, "arguments are key=value");
		memcpy(store[kv->n], args[i], kl);
		store[kv->n][kl] = '\0';
		if (!key_allowed(keys, store[kv->n]) || kv_get(kv, store[kv->n])) {
			snprintf(why, wl, "argument \"%s\" unknown or repeated (accepted: %s target)",
				 store[kv->n], keys);
			return MEF_EINVAL;
		}
		kv->key[kv->n] = store[kv->n];
		kv->val[kv->n++] = eq + 1;
	}
	return 0;
}

int
mmef_cmd_build(const char *fqdn, const char *cls, char *const *args, size_t n_args,
	       struct mmef_cmd *ret, char *why, size_t why_len)
{
	struct kv kv;
	json_t *o = NULL;
	char *text;

	for (size_t i = 0; i < sizeof(builders) / sizeof(builders[0]); i++) {
		const char *target;

		if (strcasecmp(cls, builders[i].name) != 0)
			continue;
		if (kv_split(args, n_args, builders[i].keys, &kv, why, why_len) != 0 ||
		    !(o = builders[i].build(fqdn, &kv, why, why_len)))
			return MEF_EINVAL;
		target = kv_get(&kv, "target");
		if (target && !printable_token(target)) {
			json_decref(o);
			return fail(why, why_len, "target: a CSE-ID or AE-ID");
		}
		text = json_dumps(o, JSON_COMPACT);
		json_decref(o);
		if (!text || strlen(text) >= sizeof(ret->args)) {
			free(text);
			return fail(why, why_len, "arguments too long");
		}
		memset(ret, 0, sizeof(*ret));
		ret->cls = builders[i].cls;
		snprintf(ret->args, sizeof(ret->args), "%s", text);
		snprintf(ret->target_id, sizeof(ret->target_id), "%s", target ? target : "");
		free(text);
		return 0;
	}
	return fail(why, why_len, "class: CERT_PROV, DEV_CFG or MO_NODE");
}
