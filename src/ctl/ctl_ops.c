/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * mefctl's operations verbs: the audit trail (every change made with mefctl
 * is appended; `audit verify` checks the chain), and the fleet verbs
 * (client import / export, backup, stats) in ctl_fleet.c's spirit but kept
 * here with them. Only options known to carry no secret reach the trail.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "mef/audit.h"
#include "mef/err.h"

/* Verbs that change nothing: not recorded. Anything else (new verbs too) is. */
static const char *const read_only_verbs[] = {
	"client list", "client show ID", "client export", "ke list", "group list",
	"group show NAME", "stats", "audit verify", "audit verify FILE",
};

/* Options whose values may appear in the trail; secrets (--psk-hex, --secret-hex) never do. */
static const struct {
	enum ctl_opt opt;
	const char *key;
} audit_opts[] = {
	{OPT_PSK_IDENTITY, "psk_identity"}, {OPT_CERT_SAN, "cert_san"},
	{OPT_ADMIN_FQDN, "admin_fqdn"},     {OPT_ENROLEE_ID, "enrolee_id"},
	{OPT_EXPIRY, "expiry"},             {OPT_CLIENT, "client"},
	{OPT_PATTERN, "pattern"},           {OPT_ENROLEE_PATTERN, "enrolee_pattern"},
};

#define N_AUDIT_OPTS (sizeof(audit_opts) / sizeof(audit_opts[0]))

static bool
verb_is_read_only(const char *words)
{
	for (size_t i = 0; i < sizeof(read_only_verbs) / sizeof(read_only_verbs[0]); i++)
		if (strcmp(words, read_only_verbs[i]) == 0)
			return true;
	return false;
}

/* "a:21 b:22" from the --target list. */
static void
targets_text(const struct ctl_args *a, char *out, size_t len)
{
	size_t o = 0;

	out[0] = '\0';
	for (size_t i = 0; i < a->n_targets && o < len; i++)
		o += (size_t)snprintf(out + o, len - o, "%s%s", i ? " " : "", a->targets[i]);
}

/* Pairs for audit_append: verb, argument, safe options, outcome; NULL-terminated. */
static void
admin_fields(const char *words, const struct ctl_args *a, int rc, const char **kv, char *tg,
	     size_t tglen)
{
	size_t n = 0;

	kv[n++] = "verb", kv[n++] = words;
	kv[n++] = "arg", kv[n++] = a->arg;
	for (size_t i = 0; i < N_AUDIT_OPTS; i++)
		kv[n++] = audit_opts[i].key, kv[n++] = a->opt[audit_opts[i].opt];
	targets_text(a, tg, tglen);
	kv[n++] = "targets", kv[n++] = a->n_targets ? tg : NULL;
	kv[n++] = "psk", kv[n++] = a->opt[OPT_PSK_HEX] ? "(given, not recorded)" : NULL;
	kv[n++] = "result", kv[n++] = rc == CTL_EXIT_OK ? "ok" : rc == CTL_EXIT_USAGE ? "usage" : "failed";
	kv[n] = NULL;
}

int
ctl_audit_admin(struct ctl *c, const char *words, const struct ctl_args *a, int rc)
{
	const char *kv[2 * (N_AUDIT_OPTS + 8) + 1];
	char tg[(MEF_MAX_TARGETS + 1) * (MEF_ID_MAX + 8)];
	struct audit *au = NULL;
	int r;

	/* nothing was loaded (usage error before the store) or nothing changed */
	if (!c->conf || !c->conf->audit_path || verb_is_read_only(words))
		return rc;
	admin_fields(words, a, rc, kv, tg, sizeof(tg));
	r = audit_open(c->conf->audit_path, &au);
	if (r == 0)
		r = audit_append_kv(au, "admin", kv);
	audit_close(au);
	if (r != 0) {
		ctl_fail(r, "audit trail %s: the change was made but not recorded",
			 c->conf->audit_path);
		return rc == CTL_EXIT_OK ? CTL_EXIT_FAIL : rc;
	}
	return rc;
}

int
ctl_audit_verify(struct ctl *c, const struct ctl_args *a)
{
	const char *path = a->arg, *why = "";
	unsigned long lines = 0, bad = 0;
	int r;

	if (!path) {
		if ((r = conf_load(c->conf_path, &c->conf, stderr)) < 0)
			return ctl_fail(r, "%s", c->conf_path);
		if (!(path = c->conf->audit_path)) {
			fprintf(stderr, "mefctl: [audit] path is not set in %s\n", c->conf_path);
			return CTL_EXIT_FAIL;
		}
	}
	r = audit_verify(path, &lines, &bad, &why);
	if (r == MEF_EAUTH) {
		fprintf(stderr, "%s:%lu: audit chain broken: %s\n", path, bad, why);
		return CTL_EXIT_FAIL;
	}
	if (r != 0)
		return ctl_fail(r, "%s", path);
	printf("%s: %lu line(s), chain intact\n", path, lines);
	return CTL_EXIT_OK;
}
