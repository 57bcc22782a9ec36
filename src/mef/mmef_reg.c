/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * MEF Client Registration, Configuration Retrieval, Registration Update and
 * De-Registration (TS-0003 8.3.5.2.3-.6) on the <mefClientReg> resource
 * /mef/<MEFClientRegID>. One registration per (client, adminFQDN): a second
 * one is refused with RSC 4105 CONFLICT (docs/mmef.md). Only the registering
 * client reads or changes it (decisions §3), everyone else gets RSC 4103.
 */
#include <ctype.h>
#include <jansson.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "mef/err.h"
#include "mef/kdf.h"
#include "mef/log.h"
#include "mef/mefd.h"
#include "mef/mmef.h"

static json_t *
labels_json(const char *lbl)
{
	return lbl[0] ? json_loads(lbl, 0, NULL) : NULL;
}

static json_t *
reg_child_ref(const struct mmef_reg *r)
{
	char val[MMEF_RI_MAX + 16];

	snprintf(val, sizeof(val), "/mef/%s/%s", r->ri, mmef_name(MN_CMD_SEGMENT));
	return json_pack("[{s:s,s:i,s:s}]", mmef_name(MN_CH_NM), mmef_name(MN_CMD_SEGMENT),
			 mmef_name(MN_CH_TYP), MMEF_TY_CMD, mmef_name(MN_CH_VAL), val);
}

/* The <mefClientReg> representation; `ch` only while a command is pending (TS-0003 8.3.4.6). */
static json_t *
reg_repr(const struct mmef_reg *r)
{
	char ct[16], lt[16], et[16];
	json_t *o, *lbl = labels_json(r->lbl);

	proc_timestamp(r->ct, ct);
	proc_timestamp(r->lt, lt);
	proc_timestamp(r->et, et);
	o = json_pack("{s:s,s:s,s:s,s:i,s:s,s:s,s:s,s:s,s:s}", mmef_name(MN_RI), r->ri,
		      mmef_name(MN_RN), r->ri, mmef_name(MN_PI), "mef", mmef_name(MN_TY), MMEF_TY_REG,
		      mmef_name(MN_CT), ct, mmef_name(MN_LT), lt, mmef_name(MN_ET), et,
		      mmef_name(MN_ADMIN_FQDN), r->admin_fqdn, mmef_name(MN_CLIENT_ID), r->client_id);
	if (o && lbl)
		json_object_set(o, mmef_name(MN_LBL), lbl);
	if (o && r->cmds_pending)
		json_object_set_new(o, mmef_name(MN_CH), reg_child_ref(r));
	json_decref(lbl);
	return o;
}

int
mmef_common_attrs(const struct mef_req *req, json_t *o, int64_t *et, char *lbl, size_t lbl_len,
		  struct mef_resp *resp)
{
	json_t *v;

	if ((v = json_object_get(o, mmef_name(MN_ET)))) {
		if (mmef_timestamp_parse(json_string_value(v), et) != 0) {
			mmef_refuse(req, resp, RSC_BAD_REQUEST, "request", "et is not YYYYMMDDThhmmss");
			return -1;
		}
		if (*et <= (int64_t)time(NULL)) {
			mmef_refuse(req, resp, RSC_BAD_REQUEST, "request", "et is in the past");
			return -1;
		}
	}
	if ((v = json_object_get(o, mmef_name(MN_LBL))) && mmef_labels(v, lbl, lbl_len) != 0) {
		mmef_refuse(req, resp, RSC_BAD_REQUEST, "request", "lbl is not a list of labels");
		return -1;
	}
	return 0;
}

static int
new_reg_id(char out[MMEF_RI_MAX])
{
	static const char hex[] = "0123456789abcdef";
	uint8_t rnd[8];
	size_t o = strlen(MMEF_REG_PREFIX);

	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		return MEF_ECRYPTO;
	memcpy(out, MMEF_REG_PREFIX, o);
	for (size_t i = 0; i < sizeof(rnd); i++) {
		out[o++] = hex[rnd[i] >> 4];
		out[o++] = hex[rnd[i] & 15];
	}
	out[o] = '\0';
	return 0;
}

void
mmef_reg_create(struct mefd *d, const struct mef_req *req, json_t *o, struct mef_resp *resp)
{
	static struct mmef_reg r;
	const char *admin = json_string_value(json_object_get(o, mmef_name(MN_ADMIN_FQDN)));
	int e;

	memset(&r, 0, sizeof(r));
	if (mmef_common_attrs(req, o, &r.et, r.lbl, sizeof(r.lbl), resp) != 0)
		return;
	if (!mmef_fqdn_ok(admin)) {
		mmef_refuse(req, resp, RSC_BAD_REQUEST, "registration", "adminFQDN is not a DNS name");
		return;
	}
	snprintf(r.admin_fqdn, sizeof(r.admin_fqdn), "%s", admin);
	snprintf(r.client_id, sizeof(r.client_id), "%s", req->peer->client.id);
	r.ct = r.lt = (int64_t)time(NULL);
	e = new_reg_id(r.ri);
	if (e == 0)
		e = store_mmef_reg_add(d->store, &r);
	if (e == MEF_EEXIST) {
		mmef_refuse(req, resp, RSC_CONFLICT, "registration",
			    "already registered with this adminFQDN");
		return;
	}
	if (e != 0) {
		log_err("registration of %s: %s", r.client_id, mef_strerror(e));
		proc_error(resp, RSC_INTERNAL_SERVER_ERROR, "internal error");
		return;
	}
	mmef_respond(resp, RSC_CREATED, MN_ROOT_REG, MMEF_TY_REG, reg_repr(&r));
	snprintf(resp->location, sizeof(resp->location), "/mef/%s", r.ri);
	log_info("%s %s: %s registered as %s for %s", transport_name(req->peer->transport),
		 req->peer->addr, r.client_id, r.ri, r.admin_fqdn);
}

int
mmef_reg_load_own(struct mefd *d, const struct mef_req *req, const char *ri, const char *what,
		  struct mmef_reg *ret, struct mef_resp *resp)
{
	int e = store_mmef_reg_get(d->store, ri, ret);

	if (e == 0 && ret->et <= (int64_t)time(NULL))
		e = MEF_ENOTFOUND;
	if (e == MEF_ENOTFOUND) {
		mmef_refuse(req, resp, RSC_NOT_FOUND, what, "no such registration");
		return -1;
	}
	if (e != 0) {
		log_err("%s %s: %s", what, ri, mef_strerror(e));
		proc_error(resp, RSC_INTERNAL_SERVER_ERROR, "internal error");
		return -1;
	}
	if (strcmp(ret->client_id, req->peer->client.id) != 0) {
		mmef_refuse(req, resp, RSC_ORIGINATOR_HAS_NO_PRIVILEGE, what,
			    "registration of another client");
		return -1;
	}
	return 0;
}

void
mmef_reg_retrieve(struct mefd *d, const struct mef_req *req, const char *ri, struct mef_resp *resp)
{
	static struct mmef_reg r;

	if (mmef_reg_load_own(d, req, ri, "registration retrieve", &r, resp) != 0)
		return;
	mmef_respond(resp, RSC_OK, MN_ROOT_REG, MMEF_TY_REG, reg_repr(&r));
}

void
mmef_reg_update(struct mefd *d, const struct mef_req *req, const char *ri, json_t *o,
		struct mef_resp *resp)
{
	static struct mmef_reg r;
	int e;

	if (mmef_reg_load_own(d, req, ri, "registration update", &r, resp) != 0 ||
	    mmef_common_attrs(req, o, &r.et, r.lbl, sizeof(r.lbl), resp) != 0)
		return;
	r.lt = (int64_t)time(NULL);
	if ((e = store_mmef_reg_update(d->store, &r)) != 0) {
		log_err("registration update %s: %s", ri, mef_strerror(e));
		proc_error(resp, e == MEF_ENOTFOUND ? RSC_NOT_FOUND : RSC_INTERNAL_SERVER_ERROR,
			   e == MEF_ENOTFOUND ? "no such registration" : "internal error");
		return;
	}
	mmef_respond(resp, RSC_UPDATED, MN_ROOT_REG, MMEF_TY_REG, reg_repr(&r));
	log_info("%s %s: %s updated registration %s", transport_name(req->peer->transport),
		 req->peer->addr, r.client_id, ri);
}

void
mmef_reg_delete(struct mefd *d, const struct mef_req *req, const char *ri, struct mef_resp *resp)
{
	static struct mmef_reg r;
	int e;

	if (mmef_reg_load_own(d, req, ri, "de-registration", &r, resp) != 0)
		return;
	if ((e = store_mmef_reg_remove(d->store, ri)) != 0 && e != MEF_ENOTFOUND) {
		log_err("de-registration %s: %s", ri, mef_strerror(e));
		proc_error(resp, RSC_INTERNAL_SERVER_ERROR, "internal error");
		return;
	}
	mef_resp_json(resp, RSC_DELETED, NULL);
	log_info("%s %s: %s de-registered %s", transport_name(req->peer->transport), req->peer->addr,
		 r.client_id, ri);
}
