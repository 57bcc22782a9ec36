/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * oneM2M JSON bodies of the Mmef procedures through router_dispatch:
 * create (<mefClientReg>, <mefKeyReg>, no ty), update of an existing
 * registration and of its <mefClientCmd>, with either JSON media type.
 * The fixture's peer owns one registration made at start-up.
 * Input: 1 selector byte + the JSON body.
 */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "fuzz_common.h"
#include "mef/mmef.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char reg_path[2][128]; /* "/mef/<ri>", "/mef/<ri>/cmd" */

static const struct {
	enum mef_op op;
	int path;  /* -1 "/mef", else reg_path[path] */
	int ty;
} mmef_cases[] = {
	{MEF_OP_CREATE, -1, MMEF_TY_REG},
	{MEF_OP_CREATE, -1, MMEF_TY_KEYREG},
	{MEF_OP_CREATE, -1, -1},
	{MEF_OP_UPDATE, 0, -1},
	{MEF_OP_UPDATE, 1, -1},
	{MEF_OP_CREATE, -1, MMEF_TY_CMD},
};

static void
mmef_send(struct fuzz_env *e, unsigned sel, const uint8_t *body, size_t len,
	  struct mef_resp *resp)
{
	size_t i = (sel & 0x7f) % (sizeof(mmef_cases) / sizeof(mmef_cases[0]));
	struct mef_req req;

	memset(&req, 0, sizeof(req));
	req.op = mmef_cases[i].op;
	req.path = mmef_cases[i].path < 0 ? "/mef" : reg_path[mmef_cases[i].path];
	req.ty = mmef_cases[i].ty;
	req.ctype = (sel & 0x80) ? CT_JSON : CT_ONEM2M_JSON;
	req.body = body;
	req.body_len = len;
	req.peer = &e->peer;
	router_dispatch(&e->d, &req, resp);
}

/* One registration of the fixture's client, so updates reach the procedures. */
static void
mmef_setup(struct fuzz_env *e)
{
	static const char body[] =
		"{\"sec:mefClientReg\":{\"et\":\"20991231T000000\",\"adminFQDN\":\"admin.example.com\"}}";
	struct mef_resp resp;
	json_t *o, *ri;

	mmef_send(e, 0, (const uint8_t *)body, strlen(body), &resp);
	o = resp.body ? json_loadb(resp.body, resp.body_len, 0, NULL) : NULL;
	ri = json_object_get(json_object_get(o, "sec:mefClientReg"), "ri");
	snprintf(reg_path[0], sizeof(reg_path[0]), "/mef/%.*s", MMEF_RI_MAX,
		 json_is_string(ri) ? json_string_value(ri) : "mcr-0000000000000000");
	snprintf(reg_path[1], sizeof(reg_path[1]), "/mef/%.*s/cmd", MMEF_RI_MAX, reg_path[0] + 5);
	json_decref(o);
	mef_resp_done(&resp);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	struct fuzz_env *e = fuzz_env();
	struct mef_resp resp;

	if (!ready) {
		mmef_setup(e);
		ready = 1;
	}
	if (size < 1)
		return 0;
	mmef_send(e, data[0], data + 1, size - 1, &resp);
	mef_resp_done(&resp);
	return 0;
}
