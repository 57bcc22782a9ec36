/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * `mefctl migrate --from sqlite:FILE --to postgresql://...`: copies a
 * single-node installation into PostgreSQL (store_copy) and prints each
 * table's row count on both sides. The KEK comes from the config (-c) and
 * is the same on both ends, so wrapped blobs move unopened; the database
 * password comes from the config's [store] password_file, else from libpq
 * (PGPASSWORD, ~/.pgpass).
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "ctl.h"
#include "mef/err.h"
#include "mef/secret.h"
#include "mef/wrap.h"

#define PASSWORD_MAX 1024

static int
print_count(void *ctx, const char *table, int64_t n_from, int64_t n_to)
{
	(void)ctx;
	printf("%-22s %10" PRId64 " %10" PRId64 "  %s\n", table, n_from, n_to,
	       n_from == n_to ? "ok" : "MISMATCH");
	return 0;
}

/* The first line of [store] password_file into out (NUL-terminated); "" when unset. */
static int
password_load(const struct mef_conf *conf, char *out, size_t outlen)
{
	struct mef_secret *pw = NULL;
	const char *why = NULL;
	size_t n;
	int r;

	out[0] = 0;
	if (!conf->store_password_file)
		return 0;
	r = secret_read_file(conf->store_password_file, 0, &pw, &why);
	if (r < 0) {
		fprintf(stderr, "mefctl: %s: %s%s%s\n", conf->store_password_file, mef_strerror(r),
			why ? ": " : "", why ? why : "");
		return CTL_EXIT_FAIL;
	}
	n = pw->len < outlen - 1 ? pw->len : outlen - 1;
	memcpy(out, pw->p, n);
	out[n] = 0;
	out[strcspn(out, "\r\n")] = 0;
	secret_free(pw);
	return 0;
}

static int
migrate_open(struct ctl *c, const struct ctl_args *a, struct store **from, struct store **to)
{
	char pw[PASSWORD_MAX];
	int r;

	if ((r = password_load(c->conf, pw, sizeof(pw))) != 0)
		return r;
	r = store_open_url(a->opt[OPT_FROM], NULL, c->kek, true, from);
	if (r < 0) {
		secret_wipe(pw, sizeof(pw));
		return ctl_fail(r, "source %s", a->opt[OPT_FROM]);
	}
	r = store_open_url(a->opt[OPT_TO], pw[0] ? pw : NULL, c->kek, false, to);
	secret_wipe(pw, sizeof(pw));
	if (r < 0)
		return ctl_fail(r, "target %s", a->opt[OPT_TO]);
	return 0;
}

int
ctl_migrate(struct ctl *c, const struct ctl_args *a)
{
	struct store *from = NULL, *to = NULL;
	const char *why = NULL;
	int r;

	if (strncmp(a->opt[OPT_TO], "postgres", 8) != 0 || strncmp(a->opt[OPT_FROM], "postgres", 8) == 0)
		return ctl_usage("migrate copies from sqlite:FILE to postgresql://...");
	if ((r = conf_load(c->conf_path, &c->conf, stderr)) < 0)
		return ctl_fail(r, "%s", c->conf_path);
	if ((r = secret_read_file(c->conf->kek_file, WRAP_KEK_LEN, &c->kek, &why)) < 0)
		return ctl_fail(r, "%s%s%s", c->conf->kek_file, why ? ": " : "", why ? why : "");
	if ((r = migrate_open(c, a, &from, &to)) == 0) {
		printf("%-22s %10s %10s\n", "TABLE", "FROM", "TO");
		r = store_copy(from, to, print_count, NULL);
		if (r == MEF_EEXIST)
			r = ctl_fail(r, "target %s is not empty", a->opt[OPT_TO]);
		else if (r < 0)
			r = ctl_fail(r, "migrate");
	}
	store_close(from);
	store_close(to);
	return r;
}
