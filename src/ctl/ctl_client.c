/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * mefctl client verbs: add, set, list, show, remove, disable, enable. A PSK
 * is decoded into a struct mef_secret, handed to the store (which wraps it)
 * and wiped; no output path ever prints it.
 */
#include <stdio.h>
#include <string.h>

#include "ctl.h"
#include "mef/err.h"
#include "mef/secret.h"

#define PSK_MIN 16
#define PSK_MAX 64

static void
set_field(char dst[MEF_ID_MAX], const char *src)
{
	snprintf(dst, MEF_ID_MAX, "%s", src);
}

static const char *
kind_name(enum cred_kind k)
{
	return k == CRED_PSK ? "psk" : k == CRED_CERT ? "cert" : "?";
}

static json_t *
client_json(const struct client_rec *c)
{
	char created[16];
	json_t *o;

	ctl_time(c->created, created);
	o = json_pack("{s:s, s:s, s:s, s:s, s:o, s:I, s:b, s:s}", "clientID", c->id, "kind",
		      kind_name(c->kind), "adminFQDN", c->admin_fqdn, "enroleeID",
		      c->enrolee_id[0] ? c->enrolee_id : c->id, "targets",
		      ctl_json_targets(c->targets, c->n_targets), "expiry", (json_int_t)c->expiry,
		      "disabled", c->disabled, "created", created);
	if (o && c->kind == CRED_PSK)
		json_object_set_new(o, "pskIdentity", json_string(c->psk_identity));
	if (o && c->kind == CRED_CERT)
		json_object_set_new(o, "certSAN", json_string(c->cert_san));
	return o;
}

static void
client_print(const struct client_rec *c)
{
	char created[16];

	ctl_time(c->created, created);
	printf("clientID:    %s\nkind:        %s\n", c->id, kind_name(c->kind));
	if (c->kind == CRED_PSK)
		printf("pskIdentity: %s\n", c->psk_identity);
	else
		printf("certSAN:     %s\n", c->cert_san);
	printf("adminFQDN:   %s\nenroleeID:   %s\n", c->admin_fqdn,
	       c->enrolee_id[0] ? c->enrolee_id : c->id);
	for (size_t i = 0; i < c->n_targets; i++)
		printf("target:      %s:%d\n", c->targets[i].id, c->targets[i].suid);
	if (c->expiry)
		printf("expiry:      %lld s\n", (long long)c->expiry);
	else
		printf("expiry:      default ([mef] enrolment_expiry)\n");
	printf("state:       %s\ncreated:     %s\n", c->disabled ? "disabled" : "enabled", created);
}

/* Fills the credential part of a new client from --psk-* or --cert-san. */
static int
client_credential(const struct ctl_args *a, struct client_rec *rec, struct mef_secret **ret_psk)
{
	bool by_psk = a->opt[OPT_PSK_IDENTITY] || a->opt[OPT_PSK_HEX];

	if (by_psk == (a->opt[OPT_CERT_SAN] != NULL))
		return ctl_usage("give either --psk-identity and --psk-hex, or --cert-san");
	if (!by_psk) {
		rec->kind = CRED_CERT;
		set_field(rec->cert_san, a->opt[OPT_CERT_SAN]);
		return ctl_check_name("--cert-san", a->opt[OPT_CERT_SAN]);
	}
	if (!a->opt[OPT_PSK_IDENTITY] || !a->opt[OPT_PSK_HEX])
		return ctl_usage("--psk-identity and --psk-hex go together");
	if (ctl_check_name("--psk-identity", a->opt[OPT_PSK_IDENTITY]) != 0)
		return CTL_EXIT_USAGE;
	rec->kind = CRED_PSK;
	set_field(rec->psk_identity, a->opt[OPT_PSK_IDENTITY]);
	return ctl_parse_secret("--psk-hex", a->opt[OPT_PSK_HEX], PSK_MIN, PSK_MAX, ret_psk);
}

int
ctl_client_add(struct ctl *c, const struct ctl_args *a)
{
	struct client_rec rec = { 0 };
	struct mef_secret *psk = NULL;
	int r;

	if (ctl_check_name("ID", a->arg) != 0 ||
	    (a->opt[OPT_ADMIN_FQDN] && ctl_check_name("--admin-fqdn", a->opt[OPT_ADMIN_FQDN]) != 0))
		return CTL_EXIT_USAGE;
	set_field(rec.id, a->arg);
	if (a->opt[OPT_ADMIN_FQDN])
		set_field(rec.admin_fqdn, a->opt[OPT_ADMIN_FQDN]);
	if ((r = client_credential(a, &rec, &psk)) == 0 && (r = ctl_open(c)) == 0) {
		r = store_client_add(c->store, &rec, psk);
		if (r == MEF_EEXIST)
			r = ctl_fail(r, "client %s (its ID, KpmID or SAN is taken)", rec.id);
		else if (r < 0)
			r = ctl_fail(r, "client %s", rec.id);
	}
	secret_free(psk);
	return r;
}

/* Applies the options of `client set` to rec; what is not given is kept. */
static int
client_apply(const struct ctl_args *a, struct client_rec *rec)
{
	int r;

	if (a->opt[OPT_ENROLEE_ID]) {
		if ((r = ctl_check_name("--enrolee-id", a->opt[OPT_ENROLEE_ID])) != 0)
			return r;
		set_field(rec->enrolee_id, a->opt[OPT_ENROLEE_ID]);
	}
	if (a->opt[OPT_ADMIN_FQDN]) {
		if ((r = ctl_check_name("--admin-fqdn", a->opt[OPT_ADMIN_FQDN])) != 0)
			return r;
		set_field(rec->admin_fqdn, a->opt[OPT_ADMIN_FQDN]);
	}
	if (a->opt[OPT_EXPIRY] && (r = ctl_parse_expiry(a->opt[OPT_EXPIRY], &rec->expiry)) != 0)
		return r;
	if (a->opt[OPT_CLEAR_TARGETS])
		rec->n_targets = 0;
	if (a->n_targets)
		return ctl_parse_targets(a, rec->targets, &rec->n_targets);
	return 0;
}

int
ctl_client_set(struct ctl *c, const struct ctl_args *a)
{
	struct client_rec rec, probe = { 0 };
	int r;

	if (ctl_check_name("ID", a->arg) != 0)
		return CTL_EXIT_USAGE;
	if (!a->opt[OPT_ENROLEE_ID] && !a->opt[OPT_ADMIN_FQDN] && !a->opt[OPT_EXPIRY] &&
	    !a->opt[OPT_CLEAR_TARGETS] && !a->n_targets)
		return ctl_usage("nothing to change");
	/* Validate everything before touching the store. */
	if ((r = client_apply(a, &probe)) != 0 || (r = ctl_open(c)) != 0)
		return r;
	if ((r = store_client_get(c->store, a->arg, &rec)) < 0)
		return ctl_fail(r, "client %s", a->arg);
	if ((r = client_apply(a, &rec)) != 0)
		return r;
	if ((r = store_client_update(c->store, &rec)) < 0)
		return ctl_fail(r, "client %s", a->arg);
	return CTL_EXIT_OK;
}

static int
client_list_json(void *ctx, const struct client_rec *rec)
{
	return json_array_append_new(ctx, client_json(rec)) == 0 ? 0 : MEF_ENOMEM;
}

static int
client_list_line(void *ctx, const struct client_rec *rec)
{
	(void)ctx;
	printf("%-24s %-4s %-32s %-24s %2zu %s\n", rec->id, kind_name(rec->kind),
	       rec->kind == CRED_PSK ? rec->psk_identity : rec->cert_san,
	       rec->enrolee_id[0] ? rec->enrolee_id : rec->id, rec->n_targets,
	       rec->disabled ? "disabled" : "enabled");
	return 0;
}

int
ctl_client_list(struct ctl *c, const struct ctl_args *a)
{
	json_t *arr = NULL;
	int r;

	if ((r = ctl_open(c)) != 0)
		return r;
	if (a->opt[OPT_JSON]) {
		if (!(arr = json_array()))
			return ctl_fail(MEF_ENOMEM, "client list");
		if ((r = store_client_list(c->store, client_list_json, arr)) < 0) {
			json_decref(arr);
			return ctl_fail(r, "client list");
		}
		return ctl_json_print(arr);
	}
	printf("%-24s %-4s %-32s %-24s %2s %s\n", "ID", "KIND", "KPMID/SAN", "ENROLEE", "T", "STATE");
	if ((r = store_client_list(c->store, client_list_line, NULL)) < 0)
		return ctl_fail(r, "client list");
	return CTL_EXIT_OK;
}

static int
client_get(struct ctl *c, const char *id, struct client_rec *rec)
{
	int r;

	if ((r = ctl_check_name("ID", id)) != 0 || (r = ctl_open(c)) != 0)
		return r;
	if ((r = store_client_get(c->store, id, rec)) < 0)
		return ctl_fail(r, "client %s", id);
	return 0;
}

int
ctl_client_show(struct ctl *c, const struct ctl_args *a)
{
	struct client_rec rec;
	int r;

	if ((r = client_get(c, a->arg, &rec)) != 0)
		return r;
	if (a->opt[OPT_JSON])
		return ctl_json_print(client_json(&rec));
	client_print(&rec);
	return CTL_EXIT_OK;
}

/* With --json, prints the record that was removed. */
int
ctl_client_remove(struct ctl *c, const struct ctl_args *a)
{
	struct client_rec rec;
	int r;

	if ((r = client_get(c, a->arg, &rec)) != 0)
		return r;
	if ((r = store_client_remove(c->store, a->arg)) < 0)
		return ctl_fail(r, "client %s", a->arg);
	return a->opt[OPT_JSON] ? ctl_json_print(client_json(&rec)) : CTL_EXIT_OK;
}

/* An individual client gets its flag; any other ID is taken as a group member's KpmID. */
static int
client_set_disabled(struct ctl *c, const char *id, bool disabled)
{
	struct client_rec rec;
	int r;

	if ((r = ctl_check_name("ID", id)) != 0 || (r = ctl_open(c)) != 0)
		return r;
	r = store_client_get(c->store, id, &rec);
	if (r == 0) {
		rec.disabled = disabled;
		r = store_client_update(c->store, &rec);
	} else if (r == MEF_ENOTFOUND) {
		fprintf(stderr, "mefctl: %s is not a registered client; %s it as an enrolment-group member\n",
			id, disabled ? "disabling" : "enabling");
		r = store_member_set_disabled(c->store, id, disabled);
	}
	return r < 0 ? ctl_fail(r, "client %s", id) : CTL_EXIT_OK;
}

int
ctl_client_disable(struct ctl *c, const struct ctl_args *a)
{
	return client_set_disabled(c, a->arg, true);
}

int
ctl_client_enable(struct ctl *c, const struct ctl_args *a)
{
	return client_set_disabled(c, a->arg, false);
}
