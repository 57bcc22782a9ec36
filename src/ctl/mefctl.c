/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * mefctl: the operator tool. `mefctl -c FILE VERB ...` edits the same store
 * mefd serves from (decisions.md §6). Verbs come from one table (words
 * pattern, handler, accepted and required options, usage), which also drives
 * --help; a generic parser matches the words and checks the options against
 * the row before any handler runs.
 */
#include <ctype.h>
#include <malloc.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "ctl_mmef.h"
#include "mef/err.h"
#include "mef/secret.h"
#include "mef/wrap.h"

struct ctl_verb {
	const char *words; /* literal words; an all-capitals word is the placeholder */
	int (*fn)(struct ctl *c, const struct ctl_args *a);
	unsigned opts;     /* accepted options */
	unsigned need;     /* required options */
	const char *usage; /* the options part of the usage line */
	const char *help;
};

static const struct ctl_verb verbs[] = {
	{ "client add ID", ctl_client_add,
	  OPT(PSK_IDENTITY) | OPT(PSK_HEX) | OPT(CERT_SAN) | OPT(ADMIN_FQDN), 0,
	  "(--psk-identity KPMID --psk-hex HEX | --cert-san VALUE) [--admin-fqdn F]",
	  "register a client with a PSK (16..64 bytes) or a certificate SAN" },
	{ "client set ID", ctl_client_set,
	  OPT(ENROLEE_ID) | OPT(TARGET) | OPT(CLEAR_TARGETS) | OPT(EXPIRY) | OPT(ADMIN_FQDN), 0,
	  "[--enrolee-id M2MID] [--target TARGETID:SUID]... [--clear-targets] [--expiry 30d]"
	  " [--admin-fqdn F]",
	  "change a client's bootstrap configuration; targets given replace the list" },
	{ "client list", ctl_client_list, OPT(JSON), 0, "[--json]", "list clients" },
	{ "client show ID", ctl_client_show, OPT(JSON), 0, "[--json]", "show one client" },
	{ "client remove ID", ctl_client_remove, OPT(JSON), 0, "[--json]",
	  "remove a client and its Enrolment Keys" },
	{ "client disable ID", ctl_client_disable, 0, 0, "",
	  "disable a client (or an enrolment-group member by its KpmID)" },
	{ "client enable ID", ctl_client_enable, 0, 0, "", "enable it again" },
	{ "ke list", ctl_ke_list, OPT(CLIENT) | OPT(JSON) | OPT(SHOW_SECRETS), 0,
	  "[--client ID] [--json] [--show-secrets]", "list Enrolment Keys (Ke only with --show-secrets)" },
	{ "ke revoke KEID", ctl_ke_revoke, 0, 0, "", "revoke an Enrolment Key" },
	{ "group add NAME", ctl_group_add,
	  OPT(PATTERN) | OPT(SECRET_HEX) | OPT(ADMIN_FQDN) | OPT(ENROLEE_PATTERN) | OPT(TARGET) |
		  OPT(EXPIRY),
	  OPT(PATTERN) | OPT(SECRET_HEX),
	  "--pattern GLOB --secret-hex HEX [--admin-fqdn F] [--enrolee-pattern P]"
	  " [--target TARGETID:SUID]... [--expiry 30d]",
	  "add an enrolment group: KpmIDs matching GLOB get Kpm = HMAC(secret, KpmID)" },
	{ "group list", ctl_group_list, OPT(JSON), 0, "[--json]", "list enrolment groups" },
	{ "group show NAME", ctl_group_show, OPT(JSON), 0, "[--json]", "show one group" },
	{ "group remove NAME", ctl_group_remove, OPT(JSON), 0, "[--json]", "remove a group" },
	{ "cert list", ctl_cert_list, OPT(JSON), 0, "[--json]", "list certificates the MEF CA issued" },
	{ "cert show SERIAL", ctl_cert_show, OPT(JSON), 0, "[--json]",
	  "show one issued certificate (PEM without --json)" },
	{ "cert revoke SERIAL", ctl_cert_revoke, 0, 0, "",
	  "revoke a certificate: refused at every handshake, listed in the CRL" },
	{ "cert crl", ctl_cert_crl, 0, 0, "", "print the current CRL (PEM)" },
	{ "ca init PREFIX", ctl_ca_init, 0, 0, "",
	  "make PREFIX.key and PREFIX.crt: a P-256 CA with [ca] name_constraints" },
	{ "audit verify", ctl_audit_verify, 0, 0, "",
	  "check the hash chain of [audit] path; exit 2 names the first broken line" },
	{ "audit verify FILE", ctl_audit_verify, 0, 0, "", "check the hash chain of FILE" },
	{ "client import FILE", ctl_client_import, 0, 0, "",
	  "add the clients of a CSV (id,psk_identity,psk_hex,admin_fqdn,enrolee_id,targets,expiry)"
	  " or JSON array file (- = stdin) in one transaction, all or nothing" },
	{ "client export", ctl_client_export, OPT(JSON) | OPT(SHOW_SECRETS), 0,
	  "[--json] [--show-secrets]", "print the clients in the import format" },
	{ "backup FILE", ctl_backup, 0, 0, "",
	  "write a consistent copy of the store to FILE (online backup; mefd may run)" },
	{ "stats", ctl_stats, OPT(JSON), 0, "[--json]", "count clients, groups and Enrolment Keys" },
	{ "reg list", ctl_reg_list, OPT(JSON), 0, "[--json]", "list MEF Client Registrations" },
	{ "reg show REGID", ctl_reg_show, OPT(JSON), 0, "[--json]", "show one MEF Client Registration" },
	{ "keyreg list", ctl_keyreg_list, OPT(JSON) | OPT(SHOW_SECRETS), 0, "[--json] [--show-secrets]",
	  "list MEF Key Registrations (key values only with --show-secrets)" },
	{ "keyreg show RELKEYID", ctl_keyreg_show, OPT(JSON) | OPT(SHOW_SECRETS), 0,
	  "[--json] [--show-secrets]", "show one MEF Key Registration" },
	{ "keyreg remove RELKEYID", ctl_keyreg_remove, 0, 0, "", "remove a MEF Key Registration" },
	{ "cmd queue REGID CLASS ARGS...", ctl_cmd_queue, 0, 0, "",
	  "queue a MEF Client Command (CERT_PROV, DEV_CFG, MO_NODE; key=value args, docs/mmef.md)" },
	{ "cmd list [REGID]...", ctl_cmd_list, OPT(JSON), 0, "[--json]",
	  "list MEF Client Commands (of one registration)" },
	{ "migrate", ctl_migrate, OPT(FROM) | OPT(TO), OPT(FROM) | OPT(TO),
	  "--from sqlite:FILE --to postgresql://USER@HOST:PORT/DB",
	  "copy a single-node store into PostgreSQL (same KEK); row counts checked per table" },
};

#define N_VERBS (sizeof(verbs) / sizeof(verbs[0]))
#define MAX_WORDS 16

struct ctl_opt_def {
	const char *name;
	bool has_arg;
	bool repeat;
};

static const struct ctl_opt_def opt_defs[OPT_MAX] = {
	[OPT_PSK_IDENTITY] = { "--psk-identity", true, false },
	[OPT_PSK_HEX] = { "--psk-hex", true, false },
	[OPT_CERT_SAN] = { "--cert-san", true, false },
	[OPT_ADMIN_FQDN] = { "--admin-fqdn", true, false },
	[OPT_ENROLEE_ID] = { "--enrolee-id", true, false },
	[OPT_TARGET] = { "--target", true, true },
	[OPT_CLEAR_TARGETS] = { "--clear-targets", false, false },
	[OPT_EXPIRY] = { "--expiry", true, false },
	[OPT_JSON] = { "--json", false, false },
	[OPT_CLIENT] = { "--client", true, false },
	[OPT_SHOW_SECRETS] = { "--show-secrets", false, false },
	[OPT_PATTERN] = { "--pattern", true, false },
	[OPT_SECRET_HEX] = { "--secret-hex", true, false },
	[OPT_ENROLEE_PATTERN] = { "--enrolee-pattern", true, false },
	[OPT_FROM] = { "--from", true, false },
	[OPT_TO] = { "--to", true, false },
};

int
ctl_usage(const char *fmt, ...)
{
	va_list ap;

	fputs("mefctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return CTL_EXIT_USAGE;
}

int
ctl_fail(int err, const char *fmt, ...)
{
	va_list ap;

	fputs("mefctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, ": %s\n", mef_strerror(err));
	return CTL_EXIT_FAIL;
}

static void
print_usage_line(FILE *out, const struct ctl_verb *v)
{
	fprintf(out, "usage: mefctl -c FILE %s%s%s\n", v->words, v->usage[0] ? " " : "", v->usage);
}

static void
print_help(FILE *out)
{
	fputs("usage: mefctl -c FILE VERB [ARGS]\n\nverbs:\n", out);
	for (size_t i = 0; i < N_VERBS; i++)
		fprintf(out, "  %s%s%s\n      %s\n", verbs[i].words, verbs[i].usage[0] ? " " : "",
			verbs[i].usage, verbs[i].help);
	fputs("\nexit status: 0 success, 1 usage error, 2 not found, conflict or any other failure\n",
	      out);
}

/* --- command-line parsing --- */

static int
opt_lookup(const char *name, size_t len)
{
	for (int i = 0; i < OPT_MAX; i++)
		if (strlen(opt_defs[i].name) == len && strncmp(opt_defs[i].name, name, len) == 0)
			return i;
	return -1;
}

/* Takes "--name", "--name VALUE" or "--name=VALUE" at argv[*i]. */
static int
take_option(int argc, char **argv, int *i, struct ctl_args *a, unsigned *seen)
{
	char *arg = argv[*i], *eq = strchr(arg, '=');
	int o = opt_lookup(arg, eq ? (size_t)(eq - arg) : strlen(arg));
	char *val = (char *)"";

	if (o < 0)
		return ctl_usage("unknown option '%s'", arg);
	if (opt_defs[o].has_arg) {
		if (eq)
			val = eq + 1;
		else if (*i + 1 < argc)
			val = argv[++*i];
		else
			return ctl_usage("option %s needs a value", opt_defs[o].name);
	} else if (eq) {
		return ctl_usage("option %s takes no value", opt_defs[o].name);
	}
	if ((*seen & (1u << o)) && !opt_defs[o].repeat)
		return ctl_usage("option %s given twice", opt_defs[o].name);
	if (o == OPT_TARGET) {
		if (a->n_targets >= MEF_MAX_TARGETS)
			return ctl_usage("at most %d --target", MEF_MAX_TARGETS);
		a->targets[a->n_targets++] = val;
	}
	*seen |= 1u << o;
	a->opt[o] = val;
	return 0;
}

static bool
is_placeholder(const char *w)
{
	for (; *w; w++)
		if (!isupper((unsigned char)*w))
			return false;
	return true;
}

/*
 * How well the positional words fit v: the number of leading literal words
 * that match; *ret_exact when every word matches and the counts agree.
 */
static int
verb_fit(const struct ctl_verb *v, char **words, size_t n, const char **ret_arg, bool *ret_exact)
{
	char buf[64], *save = NULL, *w;
	size_t i = 0;
	int lit = 0;

	snprintf(buf, sizeof(buf), "%s", v->words);
	for (w = strtok_r(buf, " ", &save); w; w = strtok_r(NULL, " ", &save), i++) {
		if (strstr(w, "...")) { /* a trailing "ARGS..." takes any further words */
			*ret_exact = true;
			return lit;
		}
		if (is_placeholder(w)) {
			if (i < n)
				*ret_arg = words[i];
			continue;
		}
		if (i >= n || strcmp(w, words[i]) != 0)
			return lit;
		lit++;
	}
	*ret_exact = i == n;
	return lit;
}

/* Picks the row for the words; on a miss prints the usage of the nearest rows. */
static const struct ctl_verb *
verb_find(char **words, size_t n, const char **ret_arg)
{
	int fit[N_VERBS], best = 0;

	for (size_t i = 0; i < N_VERBS; i++) {
		const char *arg = NULL;
		bool exact = false;

		fit[i] = verb_fit(&verbs[i], words, n, &arg, &exact);
		if (exact) {
			*ret_arg = arg;
			return &verbs[i];
		}
		if (fit[i] > best)
			best = fit[i];
	}
	if (best == 0) {
		ctl_usage("unknown verb '%s'", words[0]);
		print_help(stderr);
	} else {
		ctl_usage("unknown or incomplete command");
	}
	for (size_t i = 0; best > 0 && i < N_VERBS; i++)
		if (fit[i] == best)
			print_usage_line(stderr, &verbs[i]);
	return NULL;
}

static int
check_options(const struct ctl_verb *v, unsigned seen)
{
	for (int o = 0; o < OPT_MAX; o++) {
		if ((seen & (1u << o)) && !(v->opts & (1u << o)))
			return ctl_usage("%s does not accept %s", v->words, opt_defs[o].name);
		if ((v->need & (1u << o)) && !(seen & (1u << o)))
			return ctl_usage("%s needs %s", v->words, opt_defs[o].name);
	}
	return 0;
}

/* The positional words of argv: everything that is neither an option nor its value. */
static int
collect_words(int argc, char **argv, char **words, size_t *ret_n)
{
	size_t n = 0;

	for (int i = 0; i < argc; i++) {
		if (strncmp(argv[i], "--", 2) == 0) {
			int o = opt_lookup(argv[i], strcspn(argv[i], "="));

			if (o >= 0 && opt_defs[o].has_arg && !strchr(argv[i], '='))
				i++;
		} else if (n < MAX_WORDS) {
			words[n++] = argv[i];
		} else {
			return ctl_usage("unexpected argument '%s'", argv[i]);
		}
	}
	*ret_n = n;
	return 0;
}

/* Finds the verb from the words, then takes the options against its table row. */
static int
parse_verb(int argc, char **argv, const struct ctl_verb **ret_v, struct ctl_args *a)
{
	static char *words[MAX_WORDS]; /* a->words points here */
	size_t n = 0;
	unsigned seen = 0;
	int r;

	if ((r = collect_words(argc, argv, words, &n)) != 0)
		return r;
	if (n == 0) {
		print_help(stderr);
		return CTL_EXIT_USAGE;
	}
	if (!(*ret_v = verb_find(words, n, &a->arg)))
		return CTL_EXIT_USAGE;
	a->words = words;
	a->n_words = n;
	for (int i = 0; i < argc && r == 0; i++)
		if (strncmp(argv[i], "--", 2) == 0)
			r = take_option(argc, argv, &i, a, &seen);
	if (r == 0)
		r = check_options(*ret_v, seen);
	if (r != 0)
		print_usage_line(stderr, *ret_v);
	return r;
}

/* --- the shared handle --- */

int
ctl_open(struct ctl *c)
{
	const char *why = NULL;
	int r;

	if (c->store)
		return 0;
	if ((r = conf_load(c->conf_path, &c->conf, stderr)) < 0)
		return ctl_fail(r, "%s", c->conf_path);
	r = secret_read_file(c->conf->kek_file, WRAP_KEK_LEN, &c->kek, &why);
	if (r < 0) {
		fprintf(stderr, "mefctl: %s: %s%s%s\n", c->conf->kek_file, mef_strerror(r),
			why ? ": " : "", why ? why : "");
		return CTL_EXIT_FAIL;
	}
	if ((r = store_open_conf(c->conf, c->kek, false, &c->store)) < 0)
		return ctl_fail(r, "store %s", c->conf->store_path ? c->conf->store_path : c->conf->store_url);
	return 0;
}

static void
ctl_done(struct ctl *c)
{
	c->store = store_close(c->store);
	c->kek = secret_free(c->kek);
	c->conf = conf_free(c->conf);
}

/* jansson may hold a Ke in hex (--show-secrets): wipe every block it frees. */
static void
json_free_wipe(void *p)
{
	if (p)
		secret_wipe(p, malloc_usable_size(p));
	free(p);
}

/* -c FILE and --help, which come before the verb. */
static int
parse_global(int argc, char **argv, struct ctl *c, int *ret_next)
{
	int i = 1;

	for (; i < argc && argv[i][0] == '-'; i++) {
		if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			print_help(stdout);
			exit(CTL_EXIT_OK);
		}
		if (strcmp(argv[i], "-c") != 0 || i + 1 >= argc)
			return ctl_usage("expected -c FILE before the verb");
		c->conf_path = argv[++i];
	}
	if (!c->conf_path)
		return ctl_usage("missing -c FILE");
	*ret_next = i;
	return 0;
}

int
main(int argc, char **argv)
{
	struct ctl c = { 0 };
	struct ctl_args a = { 0 };
	const struct ctl_verb *v = NULL;
	int next = 0, r;

	json_set_alloc_funcs(malloc, json_free_wipe);
	if ((r = parse_global(argc, argv, &c, &next)) != 0) {
		fputs("usage: mefctl -c FILE VERB [ARGS]   (mefctl --help lists the verbs)\n", stderr);
		return r;
	}
	if ((r = parse_verb(argc - next, argv + next, &v, &a)) != 0)
		return r;
	r = v->fn(&c, &a);
	if (r == CTL_EXIT_USAGE)
		print_usage_line(stderr, v);
	r = ctl_audit_admin(&c, v->words, &a, r);
	ctl_done(&c);
	return r;
}
