/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * mefctl verbs for the Mmef resources: reg list/show (MEF Client
 * Registrations), keyreg list/show/remove (key values only with
 * --show-secrets, base64 as on the wire) and cmd queue/list (MEF Client
 * Commands; arguments checked by mmef_cmd_build, docs/mmef.md).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctl.h"
#include "ctl_mmef.h"
#include "mef/err.h"
#include "mef/mmef.h"
#include "mef/proc.h"
#include "mef/secret.h"

struct out {
	json_t *arr;       /* NULL: text lines */
	const char *only;  /* show: one id */
	bool found;
};

static json_t *
ts(int64_t t)
{
	char s[16];

	ctl_time(t, s);
	return json_string(s);
}

static int
reg_one(void *ctx, const struct mmef_reg *r)
{
	struct out *o = ctx;
	json_t *j;

	if (o->only && strcmp(o->only, r->ri) != 0)
		return 0;
	o->found = true;
	j = json_pack("{s:s,s:s,s:s,s:o,s:o,s:o,s:I,s:i}", "ri", r->ri, "clientID", r->client_id,
		      "adminFQDN", r->admin_fqdn, "ct", ts(r->ct), "lt", ts(r->lt), "et", ts(r->et),
		      "lastCmdID", (json_int_t)r->last_cmd_id, "pendingCommands", r->cmds_pending);
	if (j && r->lbl[0])
		json_object_set_new(j, "lbl", json_loads(r->lbl, 0, NULL));
	if (!j || json_array_append_new(o->arr, j) != 0)
		return MEF_ENOMEM;
	return 0;
}

/* Lists into a JSON array, then prints it as JSON or as text lines. */
static int
print_rows(json_t *arr, bool as_json, const char *const *cols)
{
	size_t i;
	json_t *e;

	if (as_json)
		return ctl_json_print(arr);
	json_array_foreach(arr, i, e) {
		for (size_t c = 0; cols[c]; c++) {
			json_t *v = json_object_get(e, cols[c]);
			char *s = v && !json_is_string(v) ? json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT)
							   : NULL;

			printf("%s%s", c ? "  " : "", s ? s : v ? json_string_value(v) : "-");
			free(s);
		}
		putchar('\n');
	}
	json_decref(arr);
	return CTL_EXIT_OK;
}

/* `show NAME --json` prints the one record itself, `list` the array (or text rows). */
static int
print_list_or_one(json_t *arr, bool one, bool as_json, const char *const *cols)
{
	if (one && as_json) {
		json_t *first = json_incref(json_array_get(arr, 0));

		json_decref(arr);
		return ctl_json_print(first);
	}
	return print_rows(arr, as_json, cols);
}

static int
reg_list_show(struct ctl *c, const struct ctl_args *a, const char *only)
{
	static const char *const cols[] = {"ri", "clientID", "adminFQDN", "et", "pendingCommands", NULL};
	struct out o = {json_array(), only, false};
	int r;

	if ((r = ctl_open(c)) != 0) {
		json_decref(o.arr);
		return r;
	}
	if (!o.arr || (r = store_mmef_reg_list(c->store, reg_one, &o)) < 0) {
		json_decref(o.arr);
		return ctl_fail(o.arr ? r : MEF_ENOMEM, "reg list");
	}
	if (only && !o.found) {
		json_decref(o.arr);
		return ctl_fail(MEF_ENOTFOUND, "reg %s", only);
	}
	return print_list_or_one(o.arr, only != NULL, a->opt[OPT_JSON] != NULL, cols);
}

int
ctl_reg_list(struct ctl *c, const struct ctl_args *a)
{
	return reg_list_show(c, a, NULL);
}

int
ctl_reg_show(struct ctl *c, const struct ctl_args *a)
{
	return reg_list_show(c, a, a->arg);
}

static int
key_one(void *ctx, const struct mmef_keyreg *k, const struct mef_secret *key)
{
	struct out *o = ctx;
	json_t *j, *t = json_array();
	char *b64;

	if (o->only && strcmp(o->only, k->rel_id) != 0)
		return 0;
	o->found = true;
	for (size_t i = 0; t && i < k->n_targets; i++)
		json_array_append_new(t, json_string(k->targets[i]));
	j = json_pack("{s:s,s:s,s:s,s:i,s:o,s:o,s:o,s:b}", "relativeKeyID", k->rel_id,
		      "sourceClientID", k->source_id, "adminFQDN", k->admin_fqdn, "SUID", k->suid,
		      "targetIDs", t, "ct", ts(k->ct), "et", ts(k->et), "exported", k->exported);
	if (j && key && (b64 = proc_base64(key->p, key->len))) {
		json_object_set_new(j, "keyValue", json_string(b64));
		secret_wipe(b64, strlen(b64));
		free(b64);
	}
	if (!j || json_array_append_new(o->arr, j) != 0)
		return MEF_ENOMEM;
	return 0;
}

static int
key_list_show(struct ctl *c, const struct ctl_args *a, const char *only)
{
	static const char *const cols[] = {"relativeKeyID", "sourceClientID", "SUID", "targetIDs",
					   "et", "keyValue", NULL};
	struct out o = {json_array(), only, false};
	int r;

	if ((r = ctl_open(c)) != 0) {
		json_decref(o.arr);
		return r;
	}
	r = o.arr ? store_mmef_key_list(c->store, a->opt[OPT_SHOW_SECRETS] != NULL, key_one, &o)
		  : MEF_ENOMEM;
	if (r < 0 || (only && !o.found)) {
		json_decref(o.arr);
		return ctl_fail(r < 0 ? r : MEF_ENOTFOUND, "keyreg %s", only ? only : "list");
	}
	return print_list_or_one(o.arr, only != NULL, a->opt[OPT_JSON] != NULL, cols);
}

int
ctl_keyreg_list(struct ctl *c, const struct ctl_args *a)
{
	return key_list_show(c, a, NULL);
}

int
ctl_keyreg_show(struct ctl *c, const struct ctl_args *a)
{
	return key_list_show(c, a, a->arg);
}

int
ctl_keyreg_remove(struct ctl *c, const struct ctl_args *a)
{
	int r;

	if ((r = ctl_open(c)) != 0)
		return r;
	if ((r = store_mmef_key_remove(c->store, a->arg)) < 0)
		return ctl_fail(r, "keyreg %s", a->arg);
	return CTL_EXIT_OK;
}

/* `cmd queue REGID CLASS [key=value...]`: the words after "cmd queue". */
int
ctl_cmd_queue(struct ctl *c, const struct ctl_args *a)
{
	static struct mmef_cmd cmd;
	char why[200];
	int64_t seq = 0;
	int r;

	if (a->n_words < 4)
		return ctl_usage("cmd queue needs REGID and CLASS");
	if ((r = ctl_open(c)) != 0)
		return r;
	if (mmef_cmd_build(c->conf->fqdn, a->words[3], a->words + 4, a->n_words - 4, &cmd, why,
			   sizeof(why)) != 0)
		return ctl_usage("%s", why);
	snprintf(cmd.ri, sizeof(cmd.ri), "%s", a->words[2]);
	if ((r = store_mmef_cmd_queue(c->store, &cmd, (int64_t)time(NULL), &seq)) < 0)
		return ctl_fail(r, "reg %s", cmd.ri);
	printf("queued %s as #%lld on %s\n", mmef_cmd_class_name(cmd.cls), (long long)seq, cmd.ri);
	return CTL_EXIT_OK;
}

static int
cmd_one(void *ctx, const struct mmef_cmd *m)
{
	static const struct {
		int state;
		const char *name;
	} states[] = {{MMEF_CMD_QUEUED, "queued"}, {MMEF_CMD_DONE, "done"},
		      {MMEF_CMD_ISSUED, "issued"}, {MMEF_CMD_REISSUED, "reissued"}};
	struct out *o = ctx;
	const char *state = "?";
	json_t *j;

	for (size_t i = 0; i < sizeof(states) / sizeof(states[0]); i++)
		if (states[i].state == m->state)
			state = states[i].name;
	j = json_pack("{s:s,s:I,s:I,s:s,s:o,s:s,s:o}", "ri", m->ri, "seq", (json_int_t)m->seq,
		      "cmdID", (json_int_t)m->cmd_id, "class", mmef_cmd_class_name(m->cls),
		      "cmdArgs", json_loads(m->args, 0, NULL), "state", state, "queued",
		      ts(m->queued));
	if (j && m->status >= 0)
		json_object_set_new(j, "cmdStatusCode", json_integer(m->status));
	if (j && m->target_id[0])
		json_object_set_new(j, "targetID", json_string(m->target_id));
	if (!j || json_array_append_new(o->arr, j) != 0)
		return MEF_ENOMEM;
	return 0;
}

int
ctl_cmd_list(struct ctl *c, const struct ctl_args *a)
{
	static const char *const cols[] = {"ri", "seq", "cmdID", "class", "state", "cmdStatusCode",
					   NULL};
	struct out o = {json_array(), NULL, false};
	const char *ri = a->n_words > 2 ? a->words[2] : NULL;
	int r;

	if (a->n_words > 3) {
		json_decref(o.arr);
		return ctl_usage("cmd list takes at most one REGID");
	}
	if ((r = ctl_open(c)) != 0) {
		json_decref(o.arr);
		return r;
	}
	r = o.arr ? store_mmef_cmd_list(c->store, ri, cmd_one, &o) : MEF_ENOMEM;
	if (r < 0) {
		json_decref(o.arr);
		return ctl_fail(r, "cmd list");
	}
	return print_rows(o.arr, a->opt[OPT_JSON] != NULL, cols);
}
