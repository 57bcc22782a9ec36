/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Every Mmef resource and attribute name, and which attributes each resource
 * accepts on create and update, in two tables used by both the encoder and
 * the decoder (decisions §4). TS-0032 is not available: following it later
 * means editing these tables (docs/mmef.md).
 */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "mef/mmef.h"
#include "mef/req.h"

static const char *const names[MN__MAX] = {
	[MN_ROOT_REG] = "sec:mefClientReg",
	[MN_ROOT_KEYREG] = "sec:mefKeyReg",
	[MN_ROOT_CMD] = "sec:mefClientCmd",
	[MN_RI] = "ri",
	[MN_RN] = "rn",
	[MN_PI] = "pi",
	[MN_TY] = "ty",
	[MN_CT] = "ct",
	[MN_LT] = "lt",
	[MN_ET] = "et",
	[MN_LBL] = "lbl",
	[MN_CH] = "ch",
	[MN_CH_NM] = "nm",
	[MN_CH_TYP] = "typ",
	[MN_CH_VAL] = "val",
	[MN_ADMIN_FQDN] = "adminFQDN",
	[MN_CLIENT_ID] = "clientID",
	[MN_SUID] = "SUID",
	[MN_TARGET_IDS] = "targetIDs",
	[MN_KEY_VALUE] = "keyValue",
	[MN_REL_KEY_ID] = "relativeKeyID",
	[MN_KEY_ID] = "keyID",
	[MN_SOURCE_CLIENT_ID] = "sourceClientID",
	[MN_CMD_ID] = "cmdID",
	[MN_CMD_DESC] = "cmdDescription",
	[MN_CMD_CLASS_ID] = "cmdClassID",
	[MN_CMD_ARGS] = "cmdArgs",
	[MN_TARGET_ID] = "targetID",
	[MN_CMD_STATUS] = "cmdStatusCode",
	[MN_NO_MORE_ARGS] = "noMoreCmdArgs",
	[MN_RETRY_DURATION] = "retryDuration",
	[MN_CERT_PROV_ARGS] = "certProvCmdArgs",
	[MN_CERT_PROV_PROTOCOL] = "certProvProtocolID",
	[MN_URI] = "URI",
	[MN_CERT_SUBJECT_TYPE] = "certSubjectType",
	[MN_CERT_SUBJECT_ID] = "certSubjectID",
	[MN_DEV_CFG_ARGS] = "devCfgCmdArgs",
	[MN_DEVICE_CONFIG_URI] = "deviceConfigURI",
	[MN_MO_NODE_ARGS] = "MONodeCmdArgs",
	[MN_OBJECT_PATH] = "objectPath",
	[MN_OBJECT_TYPE_ID] = "objectTypeID",
	/* type-table spelling, [sic] (digest §5.4) */
	[MN_OBJECT_TYPE_ARGS] = "objectTypeSpecifcArgs",
	[MN_CMD_SEGMENT] = "cmd",
};

const char *
mmef_name(enum mmef_name n)
{
	return (unsigned)n < MN__MAX && names[n] ? names[n] : "?";
}

enum attr_type { AT_STRING, AT_INT, AT_STRLIST };
enum attr_use { AU_NO = 0, AU_OPT, AU_MAND };

/* Attributes a client may write; anything else in a request is refused with 4000. */
static const struct mmef_attr_rule {
	enum mmef_name root;
	enum mmef_name name;
	enum attr_type type;
	enum attr_use create, update;
} attr_rules[] = {
	{MN_ROOT_REG, MN_ET, AT_STRING, AU_MAND, AU_OPT},
	{MN_ROOT_REG, MN_LBL, AT_STRLIST, AU_OPT, AU_OPT},
	{MN_ROOT_REG, MN_ADMIN_FQDN, AT_STRING, AU_MAND, AU_NO},
	{MN_ROOT_KEYREG, MN_ET, AT_STRING, AU_MAND, AU_OPT},
	{MN_ROOT_KEYREG, MN_LBL, AT_STRLIST, AU_OPT, AU_OPT},
	{MN_ROOT_KEYREG, MN_ADMIN_FQDN, AT_STRING, AU_MAND, AU_NO},
	{MN_ROOT_KEYREG, MN_SUID, AT_INT, AU_MAND, AU_NO},
	{MN_ROOT_KEYREG, MN_TARGET_IDS, AT_STRLIST, AU_OPT, AU_OPT},
	{MN_ROOT_KEYREG, MN_KEY_VALUE, AT_STRING, AU_OPT, AU_NO},
	{MN_ROOT_CMD, MN_CMD_ID, AT_INT, AU_NO, AU_MAND},
	{MN_ROOT_CMD, MN_CMD_STATUS, AT_INT, AU_NO, AU_MAND},
};

#define N_RULES (sizeof(attr_rules) / sizeof(attr_rules[0]))

static const struct mmef_attr_rule *
rule_find(enum mmef_name root, const char *key)
{
	for (size_t i = 0; i < N_RULES; i++)
		if (attr_rules[i].root == root && strcmp(names[attr_rules[i].name], key) == 0)
			return &attr_rules[i];
	return NULL;
}

static bool
type_ok(enum attr_type t, json_t *v)
{
	size_t i;
	json_t *e;

	switch (t) {
	case AT_STRING:
		return json_is_string(v);
	case AT_INT:
		return json_is_integer(v);
	case AT_STRLIST:
		if (!json_is_array(v))
			return false;
		json_array_foreach(v, i, e)
			if (!json_is_string(e))
				return false;
		return true;
	}
	return false;
}

static void
attr_refuse(const struct mef_req *req, struct mef_resp *resp, const char *what, const char *name)
{
	char text[160];

	snprintf(text, sizeof(text), "attribute \"%.64s\" %s", name, what);
	mmef_refuse(req, resp, RSC_BAD_REQUEST, "request", text);
}

int
mmef_attrs_check(const struct mef_req *req, enum mmef_name root, enum mef_op op, json_t *o,
		 struct mef_resp *resp)
{
	const char *key;
	json_t *v;

	json_object_foreach(o, key, v) {
		const struct mmef_attr_rule *r = rule_find(root, key);
		enum attr_use u = r ? (op == MEF_OP_CREATE ? r->create : r->update) : AU_NO;

		if (u == AU_NO) {
			attr_refuse(req, resp, "not accepted here", key);
			return -1;
		}
		if (!type_ok(r->type, v)) {
			attr_refuse(req, resp, "has the wrong type", key);
			return -1;
		}
	}
	for (size_t i = 0; i < N_RULES; i++) {
		const struct mmef_attr_rule *r = &attr_rules[i];
		enum attr_use u = op == MEF_OP_CREATE ? r->create : r->update;

		if (r->root == root && u == AU_MAND && !json_object_get(o, names[r->name])) {
			attr_refuse(req, resp, "is mandatory and missing", names[r->name]);
			return -1;
		}
	}
	return 0;
}
