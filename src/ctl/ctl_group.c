/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * mefctl group verbs: add, list, show, remove. A group's secret is decoded
 * into a struct mef_secret, wrapped by the store and wiped; it is never
 * printed.
 */
#include <stddef.h>
#include <stdio.h>

#include "ctl.h"
#include "mef/err.h"
#include "mef/secret.h"

#define GROUP_SECRET_MIN 16
#define GROUP_SECRET_MAX 64

static json_t *
group_json(const struct group_rec *g)
{
	char created[16];

	ctl_time(g->created, created);
	return json_pack("{s:s, s:s, s:s, s:s, s:o, s:I, s:b, s:s}", "name", g->name, "pattern",
			 g->pattern, "adminFQDN", g->admin_fqdn, "enroleePattern",
			 g->enrolee_pattern[0] ? g->enrolee_pattern : "{id}", "targets",
			 ctl_json_targets(g->targets, g->n_targets), "expiry", (json_int_t)g->expiry,
			 "disabled", g->disabled, "created", created);
}

static void
group_print(const struct group_rec *g)
{
	char created[16];

	ctl_time(g->created, created);
	printf("name:           %s\npattern:        %s\nadminFQDN:      %s\nenroleePattern: %s\n",
	       g->name, g->pattern, g->admin_fqdn, g->enrolee_pattern[0] ? g->enrolee_pattern : "{id}");
	for (size_t i = 0; i < g->n_targets; i++)
		printf("target:         %s:%d\n", g->targets[i].id, g->targets[i].suid);
	if (g->expiry)
		printf("expiry:         %lld s\n", (long long)g->expiry);
	else
		printf("expiry:         default ([mef] enrolment_expiry)\n");
	printf("state:          %s\ncreated:        %s\n", g->disabled ? "disabled" : "enabled",
	       created);
}

/* Optional text options of group add, each checked and copied into its field. */
static int
group_fields(const struct ctl_args *a, struct group_rec *g)
{
	static const struct {
		enum ctl_opt opt;
		const char *what;
		size_t off;
	} fields[] = {
		{ OPT_PATTERN, "--pattern", offsetof(struct group_rec, pattern) },
		{ OPT_ADMIN_FQDN, "--admin-fqdn", offsetof(struct group_rec, admin_fqdn) },
		{ OPT_ENROLEE_PATTERN, "--enrolee-pattern", offsetof(struct group_rec, enrolee_pattern) },
	};

	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		const char *v = a->opt[fields[i].opt];

		if (!v)
			continue;
		if (ctl_check_name(fields[i].what, v) != 0)
			return CTL_EXIT_USAGE;
		snprintf((char *)g + fields[i].off, MEF_ID_MAX, "%s", v);
	}
	if (a->opt[OPT_EXPIRY] && ctl_parse_expiry(a->opt[OPT_EXPIRY], &g->expiry) != 0)
		return CTL_EXIT_USAGE;
	return ctl_parse_targets(a, g->targets, &g->n_targets);
}

int
ctl_group_add(struct ctl *c, const struct ctl_args *a)
{
	struct group_rec g = { 0 };
	struct mef_secret *secret = NULL;
	int r;

	if (ctl_check_name("NAME", a->arg) != 0 || group_fields(a, &g) != 0)
		return CTL_EXIT_USAGE;
	snprintf(g.name, sizeof(g.name), "%s", a->arg);
	r = ctl_parse_secret("--secret-hex", a->opt[OPT_SECRET_HEX], GROUP_SECRET_MIN,
			     GROUP_SECRET_MAX, &secret);
	if (r == 0 && (r = ctl_open(c)) == 0) {
		r = store_group_add(c->store, &g, secret);
		if (r == MEF_EEXIST)
			r = ctl_fail(r, "group %s (its name or pattern is taken)", g.name);
		else if (r < 0)
			r = ctl_fail(r, "group %s", g.name);
	}
	secret_free(secret);
	return r;
}

static int
group_list_json(void *ctx, const struct group_rec *g)
{
	return json_array_append_new(ctx, group_json(g)) == 0 ? 0 : MEF_ENOMEM;
}

static int
group_list_line(void *ctx, const struct group_rec *g)
{
	(void)ctx;
	printf("%-24s %-40s %-16s %2zu %s\n", g->name, g->pattern,
	       g->enrolee_pattern[0] ? g->enrolee_pattern : "{id}", g->n_targets,
	       g->disabled ? "disabled" : "enabled");
	return 0;
}

int
ctl_group_list(struct ctl *c, const struct ctl_args *a)
{
	json_t *arr;
	int r;

	if ((r = ctl_open(c)) != 0)
		return r;
	if (!a->opt[OPT_JSON]) {
		printf("%-24s %-40s %-16s %2s %s\n", "NAME", "PATTERN", "ENROLEE", "T", "STATE");
		r = store_group_list(c->store, group_list_line, NULL);
		return r < 0 ? ctl_fail(r, "group list") : CTL_EXIT_OK;
	}
	if (!(arr = json_array()))
		return ctl_fail(MEF_ENOMEM, "group list");
	if ((r = store_group_list(c->store, group_list_json, arr)) < 0) {
		json_decref(arr);
		return ctl_fail(r, "group list");
	}
	return ctl_json_print(arr);
}

static int
group_get(struct ctl *c, const char *name, struct group_rec *g)
{
	int r;

	if ((r = ctl_check_name("NAME", name)) != 0 || (r = ctl_open(c)) != 0)
		return r;
	if ((r = store_group_get(c->store, name, g)) < 0)
		return ctl_fail(r, "group %s", name);
	return 0;
}

int
ctl_group_show(struct ctl *c, const struct ctl_args *a)
{
	struct group_rec g;
	int r;

	if ((r = group_get(c, a->arg, &g)) != 0)
		return r;
	if (a->opt[OPT_JSON])
		return ctl_json_print(group_json(&g));
	group_print(&g);
	return CTL_EXIT_OK;
}

int
ctl_group_remove(struct ctl *c, const struct ctl_args *a)
{
	struct group_rec g;
	int r;

	if ((r = group_get(c, a->arg, &g)) != 0)
		return r;
	if ((r = store_group_remove(c->store, a->arg)) < 0)
		return ctl_fail(r, "group %s", a->arg);
	return a->opt[OPT_JSON] ? ctl_json_print(group_json(&g)) : CTL_EXIT_OK;
}
