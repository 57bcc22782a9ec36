/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * mefctl's private interface: the parsed command line handed to each verb
 * handler, the shared handle (config, KEK, store; opened only once the
 * arguments are valid), argument validators and output helpers. The verb
 * table itself lives in mefctl.c.
 */
#ifndef MEF_CTL_H
#define MEF_CTL_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "mef/conf.h"
#include "mef/store.h"

/* Exit codes (docs/mefctl.md). */
enum {
	CTL_EXIT_OK = 0,
	CTL_EXIT_USAGE = 1, /* bad command line: message and usage line on stderr */
	CTL_EXIT_FAIL = 2,  /* not found, conflict, store, config or key-file failure */
};

/* Options a verb may accept; a verb's table row holds a mask of them. */
enum ctl_opt {
	OPT_PSK_IDENTITY,
	OPT_PSK_HEX,
	OPT_CERT_SAN,
	OPT_ADMIN_FQDN,
	OPT_ENROLEE_ID,
	OPT_TARGET,
	OPT_CLEAR_TARGETS,
	OPT_EXPIRY,
	OPT_JSON,
	OPT_CLIENT,
	OPT_SHOW_SECRETS,
	OPT_PATTERN,
	OPT_SECRET_HEX,
	OPT_ENROLEE_PATTERN,
	OPT_FROM,
	OPT_TO,
	OPT_MAX,
};

#define OPT(x) (1u << (OPT_##x))

struct ctl_args {
	const char *arg;              /* the verb's one placeholder (ID, KEID, NAME), or NULL */
	char *opt[OPT_MAX];           /* value given, "" for a flag, NULL if absent */
	char *targets[MEF_MAX_TARGETS + 1]; /* every --target, in order */
	size_t n_targets;
	char *const *words;           /* every positional word, verb words included */
	size_t n_words;
};

struct ctl {
	const char *conf_path;
	const char *usage;            /* the running verb's usage line */
	struct mef_conf *conf;
	struct mef_secret *kek;
	struct store *store;
};

/* Loads the config and the KEK and opens the store. An exit code. */
int ctl_open(struct ctl *c);

/* Prints "mefctl: <message>" to stderr; returns CTL_EXIT_USAGE (main adds the usage line). */
int ctl_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prints "mefctl: <what>: <mef_strerror(err)>" to stderr; returns CTL_EXIT_FAIL. */
int ctl_fail(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* --- validators (ctl_args.c); each returns 0 or CTL_EXIT_USAGE after printing why --- */
int ctl_check_name(const char *what, const char *s);
/* HEX (or "-": one line from stdin) decoding to min..max bytes; *ret new. The text is wiped. */
int ctl_parse_secret(const char *what, char *hex, size_t min, size_t max, struct mef_secret **ret);
/* Every --target TARGETID:SUID into t[] (SUID 10..99). */
int ctl_parse_targets(const struct ctl_args *a, struct mef_target *t, size_t *ret_n);
int ctl_parse_expiry(const char *s, int64_t *ret);

/* --- output (ctl_out.c) --- */
/* YYYYMMDDThhmmss UTC into out[16]. */
void ctl_time(int64_t t, char out[16]);
/* Prints root as indented JSON with a newline and drops the reference; an exit code. */
int ctl_json_print(json_t *root);
json_t *ctl_json_targets(const struct mef_target *t, size_t n);
/* Lowercase hex of a secret into out (2 * len + 1 bytes); callers wipe out. */
void ctl_hex_lower(const uint8_t *p, size_t len, char *out);

/* --- verb handlers --- */
int ctl_client_add(struct ctl *c, const struct ctl_args *a);
int ctl_client_set(struct ctl *c, const struct ctl_args *a);
int ctl_client_list(struct ctl *c, const struct ctl_args *a);
int ctl_client_show(struct ctl *c, const struct ctl_args *a);
int ctl_client_remove(struct ctl *c, const struct ctl_args *a);
int ctl_client_disable(struct ctl *c, const struct ctl_args *a);
int ctl_client_enable(struct ctl *c, const struct ctl_args *a);
int ctl_ke_list(struct ctl *c, const struct ctl_args *a);
int ctl_ke_revoke(struct ctl *c, const struct ctl_args *a);
int ctl_group_add(struct ctl *c, const struct ctl_args *a);
int ctl_group_list(struct ctl *c, const struct ctl_args *a);
int ctl_group_show(struct ctl *c, const struct ctl_args *a);
int ctl_group_remove(struct ctl *c, const struct ctl_args *a);
/* --- certificates (ctl_cert.c, docs/est.md) --- */
int ctl_cert_list(struct ctl *c, const struct ctl_args *a);
int ctl_cert_show(struct ctl *c, const struct ctl_args *a);
int ctl_cert_revoke(struct ctl *c, const struct ctl_args *a);
int ctl_cert_crl(struct ctl *c, const struct ctl_args *a);
int ctl_ca_init(struct ctl *c, const struct ctl_args *a);
/* --- scale-out (ctl_migrate.c, docs/scale-out.md) --- */
int ctl_migrate(struct ctl *c, const struct ctl_args *a);

/* --- operations (ctl_ops.c) --- */
int ctl_audit_verify(struct ctl *c, const struct ctl_args *a);
/*
 * After a verb ran: appends an "admin" line to the audit trail when the
 * config sets [audit] path and the verb changes something; returns rc, or
 * CTL_EXIT_FAIL if the line could not be written.
 */
int ctl_audit_admin(struct ctl *c, const char *words, const struct ctl_args *a, int rc);
int ctl_client_import(struct ctl *c, const struct ctl_args *a);
int ctl_client_export(struct ctl *c, const struct ctl_args *a);
int ctl_backup(struct ctl *c, const struct ctl_args *a);
int ctl_stats(struct ctl *c, const struct ctl_args *a);

#endif
