/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * mefctl's operations verbs: the audit trail (every change made with mefctl
 * is appended; `audit verify` checks the chain), and the fleet verbs
 * (client import / export, backup, stats) in ctl_fleet.c's spirit but kept
 * here with them. Only options known to carry no secret reach the trail.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctl.h"
#include "mef/audit.h"
#include "mef/err.h"

/*
 * Verb words that only read: a verb holding one is not recorded. Anything
 * else (verbs added later too) is recorded.
 */
static const char *const read_only_words[] = {"list", "show", "export", "stats", "verify"};

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
	char buf[64], *save = NULL;

	snprintf(buf, sizeof(buf), "%s", words);
	for (char *w = strtok_r(buf, " ", &save); w; w = strtok_r(NULL, " ", &save))
		for (size_t i = 0; i < sizeof(read_only_words) / sizeof(read_only_words[0]); i++)
			if (strcmp(w, read_only_words[i]) == 0)
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

/* ---- client import ---- */

#define PSK_MIN 16
#define PSK_MAX 64
#define ROW_MAX 8192

enum { COL_ID, COL_IDENTITY, COL_PSK, COL_ADMIN, COL_ENROLEE, COL_TARGETS, COL_EXPIRY, N_COLS };

static const char *const import_cols[N_COLS] = {
	"id", "psk_identity", "psk_hex", "admin_fqdn", "enrolee_id", "targets", "expiry",
};

struct import {
	const char *file;
	struct store *store;
	unsigned long rows, errors;
};

static void __attribute__((format(printf, 3, 4)))
import_error(struct import *im, unsigned long where, const char *fmt, ...)
{
	va_list ap;

	if (++im->errors > 50) /* enough to fix the file; the count comes at the end */
		return;
	fprintf(stderr, "%s:%lu: ", im->file, where);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static bool
name_ok(const char *s)
{
	if (!s[0] || strlen(s) >= MEF_ID_MAX)
		return false;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p <= ' ' || *p == 0x7f)
			return false;
	return true;
}

static int
hex_nibble(char ch)
{
	return ch >= '0' && ch <= '9' ? ch - '0'
	       : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
	       : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10 : -1;
}

static const char *
psk_decode(const char *hex, struct mef_secret **ret)
{
	size_t n = strlen(hex);
	struct mef_secret *s;

	if (n % 2 || n / 2 < PSK_MIN || n / 2 > PSK_MAX)
		return "psk_hex: want 16..64 bytes of hex";
	for (size_t i = 0; i < n; i++)
		if (hex_nibble(hex[i]) < 0)
			return "psk_hex: not hex";
	if (!(s = secret_new(n / 2)))
		return "out of memory";
	for (size_t i = 0; i < n / 2; i++)
		s->p[i] = (uint8_t)(hex_nibble(hex[2 * i]) << 4 | hex_nibble(hex[2 * i + 1]));
	*ret = s;
	return NULL;
}

/* "T1:21 T2:22" (spaces or semicolons between pairs). */
static const char *
targets_parse(const char *text, struct client_rec *c)
{
	char buf[ROW_MAX], *save = NULL;

	snprintf(buf, sizeof(buf), "%s", text);
	c->n_targets = 0;
	for (char *t = strtok_r(buf, " ;", &save); t; t = strtok_r(NULL, " ;", &save)) {
		char *colon = strrchr(t, ':'), *end = NULL;
		long suid;

		if (c->n_targets == MEF_MAX_TARGETS)
			return "targets: at most 16";
		if (!colon || colon == t)
			return "targets: want TARGETID:SUID";
		*colon = '\0';
		suid = strtol(colon + 1, &end, 10);
		if (!name_ok(t) || *end || end == colon + 1 || suid < 10 || suid > 99)
			return "targets: want TARGETID:SUID with SUID 10..99";
		snprintf(c->targets[c->n_targets].id, MEF_ID_MAX, "%s", t);
		c->targets[c->n_targets++].suid = (int)suid;
	}
	return NULL;
}

/* Checks one row and fills c and *ret_psk; NULL or the reason. */
static const char *
row_to_client(const char *const *v, struct client_rec *c, struct mef_secret **ret_psk)
{
	const char *why;

	memset(c, 0, sizeof(*c));
	if (!name_ok(v[COL_ID]))
		return "id: empty, too long, or has spaces or control characters";
	if (!name_ok(v[COL_IDENTITY]))
		return "psk_identity: empty, too long, or has spaces or control characters";
	if ((v[COL_ENROLEE][0] && !name_ok(v[COL_ENROLEE])) ||
	    (v[COL_ADMIN][0] && !name_ok(v[COL_ADMIN])))
		return "enrolee_id / admin_fqdn: too long, or has spaces or control characters";
	if (v[COL_EXPIRY][0] && (conf_parse_duration(v[COL_EXPIRY], &c->expiry) < 0 || c->expiry <= 0))
		return "expiry: want a positive duration such as 3600, 12h, 30d";
	if ((why = targets_parse(v[COL_TARGETS], c)) != NULL)
		return why;
	c->kind = CRED_PSK;
	snprintf(c->id, sizeof(c->id), "%s", v[COL_ID]);
	snprintf(c->psk_identity, sizeof(c->psk_identity), "%s", v[COL_IDENTITY]);
	snprintf(c->admin_fqdn, sizeof(c->admin_fqdn), "%s", v[COL_ADMIN]);
	snprintf(c->enrolee_id, sizeof(c->enrolee_id), "%s", v[COL_ENROLEE]);
	return psk_decode(v[COL_PSK], ret_psk);
}

static void
import_row(struct import *im, unsigned long where, const char *const *v)
{
	static struct client_rec c; /* 5 KiB; one row at a time */
	struct mef_secret *psk = NULL;
	const char *why = row_to_client(v, &c, &psk);
	int r;

	im->rows++;
	if (why) {
		import_error(im, where, "%s", why);
		secret_free(psk);
		return;
	}
	r = store_client_add(im->store, &c, psk);
	secret_free(psk);
	if (r == MEF_EEXIST)
		import_error(im, where, "client %s: id or psk_identity already exists", c.id);
	else if (r != 0)
		import_error(im, where, "client %s: %s", c.id, mef_strerror(r));
}

/* Splits one CSV line in place: fields by ',', "quoted" fields with "" escapes. */
static int
csv_split(char *line, char **f, int max)
{
	int n = 0;
	char *p = line;

	line[strcspn(line, "\r\n")] = '\0';
	while (n < max) {
		char *out = p;

		f[n++] = p;
		if (*p == '"') {
			char *q = ++p;

			for (; *q && !(q[0] == '"' && q[1] != '"'); q++)
				*out++ = *q == '"' ? *++q : *q;
			if (*q != '"')
				return -1;
			p = q + 1;
			*out = '\0';
			if (*p != ',' && *p != '\0')
				return -1;
		} else {
			p += strcspn(p, ",");
		}
		if (*p == '\0')
			return n;
		*p++ = '\0';
	}
	return -1;
}

static int
csv_header(struct import *im, char *line)
{
	char *f[N_COLS + 1];
	int n = csv_split(line, f, N_COLS + 1);

	for (int i = 0; n == N_COLS && i < N_COLS; i++)
		if (strcmp(f[i], import_cols[i]) != 0)
			n = -1;
	if (n != N_COLS) {
		import_error(im, 1, "header must be id,psk_identity,psk_hex,admin_fqdn,enrolee_id,targets,expiry");
		return -1;
	}
	return 0;
}

static void
import_csv(struct import *im, FILE *in)
{
	char *line = NULL, *f[N_COLS + 1];
	size_t cap = 0;
	unsigned long no = 0;
	ssize_t len;

	while ((len = getline(&line, &cap, in)) >= 0) {
		no++;
		if (no == 1) {
			if (csv_header(im, line) != 0)
				break;
			continue;
		}
		if (line[strspn(line, " \t\r\n")] == '\0')
			continue;
		if (csv_split(line, f, N_COLS + 1) != N_COLS)
			import_error(im, no, "want 7 comma-separated fields");
		else
			import_row(im, no, (const char *const *)f);
		secret_wipe(line, (size_t)len); /* held a PSK */
	}
	free(line);
}

/* A JSON array of objects with the CSV's column names; "where" is the 1-based element. */
static void
import_json(struct import *im, FILE *in)
{
	json_error_t err;
	json_t *arr = json_loadf(in, 0, &err), *o;
	size_t i;

	if (!json_is_array(arr)) {
		import_error(im, (unsigned long)err.line, "%s", arr ? "not a JSON array" : err.text);
		json_decref(arr);
		return;
	}
	json_array_foreach(arr, i, o) {
		const char *v[N_COLS];
		char num[24];
		bool ok = json_is_object(o);

		for (int k = 0; ok && k < N_COLS; k++) {
			json_t *x = json_object_get(o, import_cols[k]);

			v[k] = json_is_string(x) ? json_string_value(x) : "";
			ok = !x || json_is_string(x) || (k == COL_EXPIRY && json_is_integer(x));
			if (k == COL_EXPIRY && json_is_integer(x))
				v[k] = NULL;
		}
		if (!ok) {
			import_error(im, i + 1, "element %zu: want an object of strings", i + 1);
			continue;
		}
		if (!v[COL_EXPIRY]) {
			snprintf(num, sizeof(num), "%lld",
				 (long long)json_integer_value(json_object_get(o, "expiry")));
			v[COL_EXPIRY] = num;
		}
		import_row(im, i + 1, v);
	}
	json_decref(arr);
}

int
ctl_client_import(struct ctl *c, const struct ctl_args *a)
{
	struct import im = {.file = a->arg};
	FILE *in = strcmp(a->arg, "-") == 0 ? stdin : fopen(a->arg, "re");
	int r, ch;

	if (!in)
		return ctl_fail(MEF_EIO, "%s", a->arg);
	r = ctl_open(c);
	if (r == 0 && (r = store_tx_begin(c->store)) != 0)
		r = ctl_fail(r, "store transaction");
	if (r != 0) {
		if (in != stdin)
			fclose(in);
		return r;
	}
	im.store = c->store;
	while ((ch = fgetc(in)) == ' ' || ch == '\n' || ch == '\t' || ch == '\r')
		;
	ungetc(ch, in);
	if (ch == '[')
		import_json(&im, in);
	else
		import_csv(&im, in);
	if (in != stdin)
		fclose(in);
	r = store_tx_end(c->store, im.errors == 0);
	if (im.errors) {
		fprintf(stderr, "mefctl: %lu error(s) in %lu row(s); nothing imported\n", im.errors,
			im.rows);
		return CTL_EXIT_FAIL;
	}
	if (r != 0)
		return ctl_fail(r, "commit");
	printf("imported %lu client(s)\n", im.rows);
	return CTL_EXIT_OK;
}

/* ---- client export ---- */

struct export {
	struct store *store;
	bool json, secrets;
	json_t *arr;
	int err;
};

static void
targets_join(const struct client_rec *c, char *out, size_t len)
{
	size_t o = 0;

	out[0] = '\0';
	for (size_t i = 0; i < c->n_targets && o < len; i++)
		o += (size_t)snprintf(out + o, len - o, "%s%s:%d", i ? " " : "", c->targets[i].id,
				      c->targets[i].suid);
}

/* The PSK in hex (only with --show-secrets); "" otherwise. The caller wipes out. */
static int
export_psk(struct export *ex, const struct client_rec *c, char *out)
{
	static struct client_rec tmp;
	struct mef_secret *psk = NULL;
	int r;

	out[0] = '\0';
	if (!ex->secrets || c->kind != CRED_PSK)
		return 0;
	if ((r = store_client_find_psk(ex->store, c->psk_identity, &tmp, &psk)) != 0)
		return r;
	ctl_hex_lower(psk->p, psk->len, out);
	secret_free(psk);
	return 0;
}

/* CSV field: quoted when it holds a comma or a quote. */
static void
csv_field(const char *s, bool last)
{
	if (strpbrk(s, ",\"\n")) {
		putchar('"');
		for (; *s; s++)
			printf(*s == '"' ? "\"\"" : "%c", *s);
		putchar('"');
	} else {
		fputs(s, stdout);
	}
	putchar(last ? '\n' : ',');
}

static int
export_one(void *ctx, const struct client_rec *c)
{
	struct export *ex = ctx;
	char hex[2 * PSK_MAX + 1], tg[(MEF_MAX_TARGETS + 1) * (MEF_ID_MAX + 8)], exp[24];
	int r = export_psk(ex, c, hex);

	if (r != 0)
		return ex->err = r;
	targets_join(c, tg, sizeof(tg));
	snprintf(exp, sizeof(exp), "%lld", (long long)c->expiry);
	if (ex->json) {
		json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:I,s:b}", "id", c->id,
				      "psk_identity", c->psk_identity, "cert_san", c->cert_san,
				      "admin_fqdn", c->admin_fqdn, "enrolee_id", c->enrolee_id,
				      "targets", tg, "expiry", (json_int_t)c->expiry, "disabled",
				      c->disabled);

		if (o && hex[0])
			json_object_set_new(o, "psk_hex", json_string(hex));
		if (!o || json_array_append_new(ex->arr, o) != 0)
			r = ex->err = MEF_ENOMEM;
	} else if (c->kind == CRED_PSK) {
		const char *f[N_COLS] = {c->id, c->psk_identity, hex, c->admin_fqdn, c->enrolee_id,
					 tg, c->expiry ? exp : ""};

		for (int i = 0; i < N_COLS; i++)
			csv_field(f[i], i == N_COLS - 1);
	}
	secret_wipe(hex, sizeof(hex));
	return r;
}

int
ctl_client_export(struct ctl *c, const struct ctl_args *a)
{
	struct export ex = {.json = a->opt[OPT_JSON] != NULL, .secrets = a->opt[OPT_SHOW_SECRETS] != NULL};
	int r;

	if ((r = ctl_open(c)) != 0)
		return r;
	ex.store = c->store;
	if (ex.json && !(ex.arr = json_array()))
		return ctl_fail(MEF_ENOMEM, "export");
	if (!ex.json)
		printf("id,psk_identity,psk_hex,admin_fqdn,enrolee_id,targets,expiry\n");
	r = store_client_list(c->store, export_one, &ex);
	if (r != 0) {
		json_decref(ex.arr);
		return ctl_fail(r, "export");
	}
	if (!ex.json && !ex.secrets)
		fprintf(stderr, "mefctl: psk_hex left empty (--show-secrets includes the PSKs); "
				"certificate clients are only in --json\n");
	return ex.json ? ctl_json_print(ex.arr) : CTL_EXIT_OK;
}

/* ---- backup ---- */

int
ctl_backup(struct ctl *c, const struct ctl_args *a)
{
	int r;

	if ((r = ctl_open(c)) != 0)
		return r;
	if ((r = store_backup(c->store, a->arg)) != 0)
		return ctl_fail(r, "backup to %s", a->arg);
	printf("%s: backup written\n", a->arg);
	return CTL_EXIT_OK;
}

/* ---- stats ---- */

struct stats {
	int64_t now;
	unsigned long clients, psk, cert, disabled, groups, ke, ke_live, ke_revoked, ke_expired;
};

static int
stats_client(void *ctx, const struct client_rec *c)
{
	struct stats *st = ctx;

	st->clients++;
	st->psk += c->kind == CRED_PSK;
	st->cert += c->kind == CRED_CERT;
	st->disabled += c->disabled;
	return 0;
}

static int
stats_group(void *ctx, const struct group_rec *g)
{
	(void)g;
	((struct stats *)ctx)->groups++;
	return 0;
}

static int
stats_ke(void *ctx, const struct ke_rec *k, const struct mef_secret *ke)
{
	struct stats *st = ctx;

	(void)ke;
	st->ke++;
	if (k->revoked)
		st->ke_revoked++;
	else if (k->expires <= st->now)
		st->ke_expired++;
	else
		st->ke_live++;
	return 0;
}

int
ctl_stats(struct ctl *c, const struct ctl_args *a)
{
	struct stats st = {.now = (int64_t)time(NULL)};
	int r;

	if ((r = ctl_open(c)) != 0)
		return r;
	r = store_client_list(c->store, stats_client, &st);
	if (r == 0)
		r = store_group_list(c->store, stats_group, &st);
	if (r == 0)
		r = store_ke_list(c->store, NULL, false, stats_ke, &st);
	if (r != 0)
		return ctl_fail(r, "stats");
	if (a->opt[OPT_JSON])
		return ctl_json_print(json_pack(
			"{s:{s:I,s:I,s:I,s:I},s:I,s:{s:I,s:I,s:I,s:I}}", "clients", "total",
			(json_int_t)st.clients, "psk", (json_int_t)st.psk, "cert", (json_int_t)st.cert,
			"disabled", (json_int_t)st.disabled, "groups", (json_int_t)st.groups,
			"enrolment_keys", "total", (json_int_t)st.ke, "live", (json_int_t)st.ke_live,
			"revoked", (json_int_t)st.ke_revoked, "expired", (json_int_t)st.ke_expired));
	printf("clients         %lu (psk %lu, certificate %lu, disabled %lu)\n"
	       "groups          %lu\n"
	       "enrolment keys  %lu (live %lu, revoked %lu, expired %lu)\n",
	       st.clients, st.psk, st.cert, st.disabled, st.groups, st.ke, st.ke_live,
	       st.ke_revoked, st.ke_expired);
	return CTL_EXIT_OK;
}
