/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * mefctl ke verbs: list (the Ke itself only with --show-secrets, as lowercase
 * hex) and revoke. KeIDs given on the command line are canonicalised with
 * kdf_keid_canon, so they match whatever case the operator typed.
 */
#include <stdio.h>
#include <time.h>

#include "ctl.h"
#include "mef/err.h"
#include "mef/kdf.h"
#include "mef/secret.h"

#define KE_HEX_MAX (2 * 64 + 1)

struct ke_out {
	json_t *arr; /* NULL: human-readable lines */
	time_t now;
};

static const char *
ke_state(const struct ke_rec *k, time_t now)
{
	return k->revoked ? "revoked" : k->expires <= now ? "expired" : "valid";
}

static int
ke_json(struct ke_out *out, const struct ke_rec *k, const char *hex)
{
	char created[16], expires[16];
	json_t *o;

	ctl_time(k->created, created);
	ctl_time(k->expires, expires);
	o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:b}", "keID", k->keid, "clientID",
		      k->client_id, "enroleeID", k->enrolee_id, "transport", k->transport,
		      "created", created, "expirationTime", expires, "revoked", k->revoked);
	if (o && hex && json_object_set_new(o, "ke", json_string(hex)) < 0)
		o = (json_decref(o), NULL);
	return o && json_array_append_new(out->arr, o) == 0 ? 0 : MEF_ENOMEM;
}

static int
ke_one(void *ctx, const struct ke_rec *k, const struct mef_secret *ke)
{
	struct ke_out *out = ctx;
	char hex[KE_HEX_MAX], created[16], expires[16];
	int r = 0;

	if (ke && ke->len * 2 >= sizeof(hex))
		return MEF_ETOOBIG;
	if (ke)
		ctl_hex_lower(ke->p, ke->len, hex);
	if (out->arr) {
		r = ke_json(out, k, ke ? hex : NULL);
	} else {
		ctl_time(k->created, created);
		ctl_time(k->expires, expires);
		printf("%-50s %-24s %-24s %-10s %s %s %-7s%s%s\n", k->keid, k->client_id,
		       k->enrolee_id, k->transport, created, expires, ke_state(k, out->now),
		       ke ? " " : "", ke ? hex : "");
	}
	secret_wipe(hex, sizeof(hex));
	return r;
}

int
ctl_ke_list(struct ctl *c, const struct ctl_args *a)
{
	struct ke_out out = { .now = time(NULL) };
	const char *client = a->opt[OPT_CLIENT];
	int r;

	if (client && ctl_check_name("--client", client) != 0)
		return CTL_EXIT_USAGE;
	if ((r = ctl_open(c)) != 0)
		return r;
	if (a->opt[OPT_JSON] && !(out.arr = json_array()))
		return ctl_fail(MEF_ENOMEM, "ke list");
	if (!out.arr)
		printf("%-50s %-24s %-24s %-10s %-15s %-15s %-7s%s\n", "KEID", "CLIENT", "ENROLEE",
		       "TRANSPORT", "CREATED", "EXPIRES", "STATE",
		       a->opt[OPT_SHOW_SECRETS] ? " KE" : "");
	r = store_ke_list(c->store, client, a->opt[OPT_SHOW_SECRETS] != NULL, ke_one, &out);
	if (r < 0) {
		json_decref(out.arr);
		return ctl_fail(r, "ke list");
	}
	return out.arr ? ctl_json_print(out.arr) : CTL_EXIT_OK;
}

int
ctl_ke_revoke(struct ctl *c, const struct ctl_args *a)
{
	char keid[MEF_KEYID_MAX];
	int r;

	if (kdf_keid_canon(a->arg, keid, sizeof(keid), NULL) < 0)
		return ctl_usage("KEID '%s': want 32 hex digits '@' the MEF FQDN", a->arg);
	if ((r = ctl_open(c)) != 0)
		return r;
	if ((r = store_ke_revoke(c->store, keid)) < 0)
		return ctl_fail(r, "ke %s", keid);
	return CTL_EXIT_OK;
}
