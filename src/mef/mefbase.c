/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Retrieve <MEFBase> (TS-0003 Table 12.2-1; decisions §4): the MEF's FQDN,
 * the SUIDs it serves and who the requester is authenticated as.
 */
#include <jansson.h>

#include "mef/mefd.h"
#include "mef/proc.h"

void
proc_mefbase_retrieve(struct mefd *d, const struct mef_req *req, const char *const *params,
		      size_t n_params, struct mef_resp *resp)
{
	static const int suids[] = {21, 22, 23, 24, 25};
	json_t *list = json_array(), *o;

	(void)params;
	(void)n_params;
	for (size_t i = 0; list && i < sizeof(suids) / sizeof(suids[0]); i++)
		json_array_append_new(list, json_integer(suids[i]));
	o = json_pack("{s:{s:s,s:s,s:o,s:s}}", "sec:mefBase", "ri", "mef", "fqdn", d->conf->fqdn,
		      "supportedSUIDs", list, "clientID", req->peer->client.id);
	mef_resp_json(resp, RSC_OK, o ? json_dumps(o, JSON_COMPACT) : NULL);
	json_decref(o);
	if (!resp->body)
		proc_error(resp, RSC_INTERNAL_SERVER_ERROR, "out of memory");
}
