/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * MEF Client Command Retrieve and Update (TS-0003 8.3.9) on
 * /mef/<MEFClientRegID>/cmd, and the operator side that builds queued
 * commands (CERT_PROV, DEV_CFG, MO_NODE) from "key=value" arguments with
 * the checks of 8.3.9.6-.9 (docs/mmef.md lists them).
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "mef/err.h"
#include "mef/log.h"
#include "mef/mefd.h"
#include "mef/mmef.h"

/* sec:cmdStatusCode values a client may report (12.3.2.4). */
static const int client_status[] = {20, 40, 41, 42, 43, 100, 101, 201, 202,
				    300, 301, 302, 303, 304, 305};

static const struct {
	int cls;
	const char *name;
	enum mmef_name args;
} classes[] = {
	{MMEF_CMD_NO_MORE, "NO_MORE_COMMANDS", MN_NO_MORE_ARGS},
	{MMEF_CMD_CERT_PROV, "CERT_PROV", MN_CERT_PROV_ARGS},
	{MMEF_CMD_DEV_CFG, "DEV_CFG", MN_DEV_CFG_ARGS},
	{MMEF_CMD_MO_NODE, "MO_NODE", MN_MO_NODE_ARGS},
};

#define N_CLASSES (sizeof(classes) / sizeof(classes[0]))

const char *
mmef_cmd_class_name(int cls)
{
	for (size_t i = 0; i < N_CLASSES; i++)
		if (classes[i].cls == cls)
			return classes[i].name;
	return "?";
}

/* --- the Mmef procedures --- */

static const char *
retry_duration(struct mefd *d)
{
	const char *s = d->conf->command_retry;

	if (mmef_duration_ok(s))
		return s;
	log_warn("[mef] command_retry \"%s\" is not an ISO 8601 duration; sending PT1H", s ? s : "");
	return "PT1H";
}

static json_t *
cmd_desc(struct mefd *d, const struct mmef_cmd *c, bool none)
{
	json_t *args, *desc;

	if (none)
		args = json_pack("{s:{s:s}}", mmef_name(MN_NO_MORE_ARGS), mmef_name(MN_RETRY_DURATION),
				 retry_duration(d));
	else
		args = json_loads(c->args, 0, NULL);
	desc = json_pack("{s:i,s:o}", mmef_name(MN_CMD_CLASS_ID), none ? MMEF_CMD_NO_MORE : c->cls,
			 mmef_name(MN_CMD_ARGS), args ? args : json_object());
	if (desc && !none && c->target_id[0])
		json_object_set_new(desc, mmef_name(MN_TARGET_ID), json_string(c->target_id));
	return desc;
}

static json_t *
cmd_repr(struct mefd *d, const struct mmef_cmd *c, bool none)
{
	char ri[MMEF_RI_MAX + 8];

	snprintf(ri, sizeof(ri), "%s/%s", c->ri, mmef_name(MN_CMD_SEGMENT));
	return json_pack("{s:s,s:s,s:i,s:I,s:o,s:i}", mmef_name(MN_RI), ri, mmef_name(MN_PI), c->ri,
			 mmef_name(MN_TY), MMEF_TY_CMD, mmef_name(MN_CMD_ID), (json_int_t)c->cmd_id,
			 mmef_name(MN_CMD_DESC), cmd_desc(d, c, none), mmef_name(MN_CMD_STATUS),
			 c->state);
}

/* Records an optional status and answers with the next command (or NO_MORE_COMMANDS). */
static void
cmd_answer(struct mefd *d, const struct mef_req *req, const char *ri, bool has_status,
	   int64_t cmd_id, int status, int rsc, struct mef_resp *resp)
{
	static struct mmef_reg reg;
	static struct mmef_cmd c;
	bool none = false;
	int e;

	if (mmef_reg_load_own(d, req, ri, "command", &reg, resp) != 0)
		return;
	e = store_mmef_cmd_next(d->store, ri, has_status, cmd_id, status, (int64_t)time(NULL), &c,
				&none);
	if (e != 0) {
		log_err("command %s: %s", ri, mef_strerror(e));
		proc_error(resp, RSC_INTERNAL_SERVER_ERROR, "internal error");
		return;
	}
	mmef_respond(resp, rsc, MN_ROOT_CMD, MMEF_TY_CMD, cmd_repr(d, &c, none));
	log_info("%s %s: %s %s; issued cmdID %lld %s (%d)", transport_name(req->peer->transport),
		 req->peer->addr, reg.client_id, has_status ? "reported a command status" :
		 "retrieved its command", (long long)c.cmd_id,
		 mmef_cmd_class_name(none ? MMEF_CMD_NO_MORE : c.cls), c.state);
}

void
proc_mmef_cmd_retrieve(struct mefd *d, const struct mef_req *req, const char *const *params,
		       size_t n_params, struct mef_resp *resp)
{
	(void)n_params;
	cmd_answer(d, req, params[0], false, 0, 0, RSC_OK, resp);
}

static bool
status_ok(json_int_t v)
{
	for (size_t i = 0; i < sizeof(client_status) / sizeof(client_status[0]); i++)
		if (client_status[i] == v)
			return true;
	return false;
}

void
proc_mmef_cmd_update(struct mefd *d, const struct mef_req *req, const char *const *params,
		     size_t n_params, struct mef_resp *resp)
{
	static const enum mmef_name root = MN_ROOT_CMD;
	json_int_t id, st;
	json_t *o = NULL;
	size_t idx = 0;

	(void)n_params;
	if (mmef_body(req, &root, 1, &idx, &o, resp) != 0)
		return;
	if (mmef_attrs_check(req, root, MEF_OP_UPDATE, o, resp) != 0) {
		json_decref(o);
		return;
	}
	id = json_integer_value(json_object_get(o, mmef_name(MN_CMD_ID)));
	st = json_integer_value(json_object_get(o, mmef_name(MN_CMD_STATUS)));
	json_decref(o);
	/* 8.3.9.3: a status the MEF cannot parse is answered with BAD_REQUEST */
	if (id <= 0 || !status_ok(st)) {
		mmef_refuse(req, resp, RSC_BAD_REQUEST, "command update",
			    "cmdID or cmdStatusCode out of range");
		return;
	}
	cmd_answer(d, req, params[0], true, (int64_t)id, (int)st, RSC_UPDATED, resp);
}
