/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Unit tests of the store (src/store/) on a temporary SQLite file. Where a
 * test needs to see what really reached the disk (schema version, journal
 * mode, wrapped blobs, raw file bytes) it opens the file with plain SQLite or
 * reads it byte by byte, independently of the store's own code.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ftw.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mef/err.h"
#include "mef/secret.h"
#include "mef/store.h"
#include "mef/wrap.h"

static char tmpdir[64];
static struct mef_secret *kek;

struct fx {
	char path[128];
	struct store *s;
};

static int
rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	return remove(p);
}

static int
group_setup(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_store.XXXXXX");
	if (!mkdtemp(tmpdir))
		return -1;
	kek = secret_new(WRAP_KEK_LEN);
	for (size_t i = 0; kek && i < kek->len; i++)
		kek->p[i] = (uint8_t)(0xA0 + i);
	return kek ? 0 : -1;
}

static int
group_teardown(void **state)
{
	(void)state;
	kek = secret_free(kek);
	return nftw(tmpdir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

static int
setup(void **state)
{
	static int n;
	struct fx *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	snprintf(f->path, sizeof(f->path), "%s/store%d.db", tmpdir, n++);
	if (store_open(f->path, kek, false, &f->s) != 0)
		return -1;
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	store_close(f->s);
	free(f);
	return 0;
}

/* --- raw SQLite helpers, independent of src/store/ --- */

static sqlite3 *
raw_open(const char *path)
{
	sqlite3 *db = NULL;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	return db;
}

static void
raw_exec(const char *path, const char *sql)
{
	sqlite3 *db = raw_open(path);
	char *err = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK)
		fail_msg("%s: %s", sql, err);
	sqlite3_close(db);
}

static int64_t
raw_int(const char *path, const char *sql)
{
	sqlite3 *db = raw_open(path);
	sqlite3_stmt *st;
	int64_t v;

	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return v;
}

static void
raw_text(const char *path, const char *sql, char *out, size_t outlen)
{
	sqlite3 *db = raw_open(path);
	sqlite3_stmt *st;

	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	snprintf(out, outlen, "%s", (const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	sqlite3_close(db);
}

/* True if needle occurs in the file (a missing file holds nothing). */
static bool
file_contains(const char *path, const uint8_t *needle, size_t n)
{
	FILE *fp = fopen(path, "rb");
	uint8_t *buf;
	long len;
	bool found;

	if (!fp)
		return false;
	fseek(fp, 0, SEEK_END);
	len = ftell(fp);
	rewind(fp);
	buf = malloc(len > 0 ? (size_t)len : 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)len, fp), (size_t)len);
	fclose(fp);
	found = memmem(buf, (size_t)len, needle, n) != NULL;
	free(buf);
	return found;
}

/* --- record builders --- */

static struct client_rec
psk_client(const char *id, const char *kpmid)
{
	struct client_rec c = { .kind = CRED_PSK };

	snprintf(c.id, sizeof(c.id), "%s", id);
	snprintf(c.psk_identity, sizeof(c.psk_identity), "%s", kpmid);
	snprintf(c.admin_fqdn, sizeof(c.admin_fqdn), "admin.example.com");
	return c;
}

static struct client_rec
cert_client(const char *id, const char *san)
{
	struct client_rec c = { .kind = CRED_CERT };

	snprintf(c.id, sizeof(c.id), "%s", id);
	snprintf(c.cert_san, sizeof(c.cert_san), "%s", san);
	return c;
}

static void
add_target(struct mef_target *t, size_t *n, const char *id, int suid)
{
	snprintf(t[*n].id, sizeof(t[*n].id), "%s", id);
	t[*n].suid = suid;
	(*n)++;
}

static struct mef_secret *
pattern_secret(size_t len, uint8_t seed)
{
	struct mef_secret *s = secret_new(len);

	for (size_t i = 0; i < len; i++)
		s->p[i] = (uint8_t)(seed + 7 * i);
	return s;
}

static struct ke_rec
ke_row(const char *keid, const char *client, int64_t created, int64_t expires)
{
	struct ke_rec k = { .created = created, .expires = expires };

	snprintf(k.keid, sizeof(k.keid), "%s", keid);
	snprintf(k.client_id, sizeof(k.client_id), "%s", client);
	snprintf(k.enrolee_id, sizeof(k.enrolee_id), "%s", client);
	snprintf(k.transport, sizeof(k.transport), "dtls");
	return k;
}

/* --- open and migration --- */

static void
test_open_migrates_and_reopens(void **state)
{
	struct fx *f = *state;
	struct store *ro = NULL;
	char mode[16];
	struct stat st;

	assert_true(store_schema_version() >= 1);
	assert_int_equal(raw_int(f->path, "PRAGMA user_version"), store_schema_version());
	raw_text(f->path, "PRAGMA journal_mode", mode, sizeof(mode));
	assert_string_equal(mode, "wal");
	assert_int_equal(raw_int(f->path, "SELECT count(*) FROM sqlite_master WHERE type = 'table'"
				 " AND name IN ('clients', 'client_targets', 'groups',"
				 " 'group_targets', 'member_disabled', 'ke')"), 6);
	assert_int_equal(raw_int(f->path, "SELECT count(*) FROM sqlite_master WHERE type = 'index'"
				 " AND tbl_name = 'ke' AND sql LIKE '%client_id%'"), 1);
	assert_int_equal(stat(f->path, &st), 0);
	assert_int_equal(st.st_mode & 077, 0);

	struct client_rec c = cert_client("C-1", "c1.example.com");
	assert_int_equal(store_client_add(f->s, &c, NULL), 0);
	f->s = store_close(f->s);
	assert_int_equal(store_open(f->path, kek, false, &f->s), 0);
	assert_int_equal(store_client_get(f->s, "C-1", &c), 0);
	assert_int_equal(raw_int(f->path, "PRAGMA user_version"), store_schema_version());

	/* Read-only (mefd --check-config), alone on the file and beside a writer. */
	f->s = store_close(f->s);
	assert_int_equal(store_open(f->path, kek, true, &ro), 0);
	assert_int_equal(store_client_get(ro, "C-1", &c), 0);
	assert_int_equal(store_open(f->path, kek, false, &f->s), 0);
	c = cert_client("C-2", "c2.example.com");
	assert_int_equal(store_client_add(ro, &c, NULL), MEF_ESTORE);
	assert_int_equal(store_client_add(f->s, &c, NULL), 0);
	assert_int_equal(store_client_get(ro, "C-2", &c), 0);
	store_close(ro);
}

static void
test_open_refuses(void **state)
{
	struct fx *f = *state;
	struct store *s = NULL;
	char p[160];
	struct mef_secret *short_kek = secret_new(16);

	assert_null(store_close(NULL));
	snprintf(p, sizeof(p), "%s/missing.db", tmpdir);
	assert_int_equal(store_open(p, kek, true, &s), MEF_ESTORE);
	assert_int_equal(store_open(f->path, short_kek, false, &s), MEF_EINVAL);
	secret_free(short_kek);
	/* A file written by a newer build. */
	f->s = store_close(f->s);
	raw_exec(f->path, "PRAGMA user_version = 99");
	assert_int_equal(store_open(f->path, kek, false, &s), MEF_ESTORE);
	assert_null(s);
	{
		char q[64];

		snprintf(q, sizeof(q), "PRAGMA user_version = %d", store_schema_version());
		raw_exec(f->path, q);
	}
	assert_int_equal(store_open(f->path, kek, false, &f->s), 0);
}

/* --- clients --- */

static void
test_client_add_get_find(void **state)
{
	struct fx *f = *state;
	struct client_rec c = psk_client("CAE-1", "kpm-1@example.com"), got;
	struct mef_secret *psk = pattern_secret(32, 1), *out = NULL;

	add_target(c.targets, &c.n_targets, "maf.example.com", 21);
	add_target(c.targets, &c.n_targets, "/cse-1", 22);
	c.expiry = 3600;
	assert_int_equal(store_client_add(f->s, &c, psk), 0);
	assert_int_equal(store_client_get(f->s, "CAE-1", &got), 0);
	assert_string_equal(got.psk_identity, "kpm-1@example.com");
	assert_string_equal(got.admin_fqdn, "admin.example.com");
	assert_int_equal(got.kind, CRED_PSK);
	assert_int_equal(got.expiry, 3600);
	assert_true(got.created > 0);
	assert_int_equal(got.n_targets, 2);
	assert_string_equal(got.targets[1].id, "/cse-1");
	assert_int_equal(got.targets[1].suid, 22);

	assert_int_equal(store_client_find_psk(f->s, "kpm-1@example.com", &got, &out), 0);
	assert_string_equal(got.id, "CAE-1");
	assert_true(secret_equal(out, psk));
	out = secret_free(out);
	memset(&got, 0, sizeof(got));
	assert_int_equal(store_client_find_psk(f->s, "kpm-1@example.com", &got, NULL), 0);
	assert_string_equal(got.id, "CAE-1");
	assert_int_equal(store_client_find_psk(f->s, "nobody", &got, &out), MEF_ENOTFOUND);
	assert_null(out);

	c = cert_client("CAE-2", "dev2.example.com");
	assert_int_equal(store_client_add(f->s, &c, NULL), 0);
	assert_int_equal(store_client_find_cert(f->s, "dev2.example.com", &got), 0);
	assert_string_equal(got.id, "CAE-2");
	assert_int_equal(got.n_targets, 0);
	assert_int_equal(store_client_find_cert(f->s, "DEV2.example.com", &got), MEF_ENOTFOUND);
	assert_int_equal(store_client_get(f->s, "CAE-3", &got), MEF_ENOTFOUND);
	secret_free(psk);
}

static void
test_client_duplicates(void **state)
{
	struct fx *f = *state;
	struct client_rec c = psk_client("A", "kpm-a");
	struct mef_secret *psk = pattern_secret(16, 2);

	assert_int_equal(store_client_add(f->s, &c, psk), 0);
	assert_int_equal(store_client_add(f->s, &c, psk), MEF_EEXIST);           /* same id */
	c = psk_client("B", "kpm-a");
	assert_int_equal(store_client_add(f->s, &c, psk), MEF_EEXIST);           /* same KpmID */
	c = cert_client("A", "a.example.com");
	assert_int_equal(store_client_add(f->s, &c, NULL), MEF_EEXIST);          /* same id, other kind */
	c = cert_client("C", "c.example.com");
	assert_int_equal(store_client_add(f->s, &c, NULL), 0);
	c = cert_client("D", "c.example.com");
	assert_int_equal(store_client_add(f->s, &c, NULL), MEF_EEXIST);          /* same SAN */
	c = cert_client("E", "e.example.com");
	assert_int_equal(store_client_add(f->s, &c, NULL), 0);                   /* NULL KpmIDs coexist */
	assert_int_equal(raw_int(f->path, "SELECT count(*) FROM clients"), 3);
	secret_free(psk);
}

static void
test_client_invalid(void **state)
{
	struct fx *f = *state;
	struct client_rec c = psk_client("A", "kpm-a");
	struct mef_secret *psk = pattern_secret(16, 2);

	assert_int_equal(store_client_add(f->s, &c, NULL), MEF_EINVAL);          /* PSK without key */
	c = cert_client("B", "b.example.com");
	assert_int_equal(store_client_add(f->s, &c, psk), MEF_EINVAL);           /* cert with key */
	c = psk_client("", "kpm-x");
	assert_int_equal(store_client_add(f->s, &c, psk), MEF_EINVAL);
	c = psk_client("X", "kpm-x");
	c.n_targets = MEF_MAX_TARGETS + 1;
	assert_int_equal(store_client_add(f->s, &c, psk), MEF_EINVAL);
	c.n_targets = 1; /* target with an empty id */
	assert_int_equal(store_client_add(f->s, &c, psk), MEF_EINVAL);
	c.kind = CRED_GROUP;
	c.n_targets = 0;
	assert_int_equal(store_client_add(f->s, &c, psk), MEF_EINVAL);
	assert_int_equal(raw_int(f->path, "SELECT count(*) FROM clients"), 0);
	secret_free(psk);
}

static void
test_client_update_replaces_targets(void **state)
{
	struct fx *f = *state;
	struct client_rec c = cert_client("U", "u.example.com"), got;

	add_target(c.targets, &c.n_targets, "old-1", 10);
	add_target(c.targets, &c.n_targets, "old-2", 11);
	assert_int_equal(store_client_add(f->s, &c, NULL), 0);

	c.n_targets = 0;
	add_target(c.targets, &c.n_targets, "new-1", 21);
	snprintf(c.enrolee_id, sizeof(c.enrolee_id), "CAE-enrolee");
	c.disabled = true;
	c.expiry = 7200;
	assert_int_equal(store_client_update(f->s, &c), 0);
	assert_int_equal(store_client_get(f->s, "U", &got), 0);
	assert_int_equal(got.n_targets, 1);
	assert_string_equal(got.targets[0].id, "new-1");
	assert_string_equal(got.enrolee_id, "CAE-enrolee");
	assert_true(got.disabled);
	assert_int_equal(got.expiry, 7200);
	assert_string_equal(got.cert_san, "u.example.com");

	/* A failure on the second target must leave the first update intact (all or nothing). */
	raw_exec(f->path, "CREATE TRIGGER t_bad BEFORE INSERT ON client_targets"
			  " WHEN NEW.target_id = 'bad' BEGIN SELECT RAISE(ABORT, 'bad'); END");
	c.n_targets = 0;
	add_target(c.targets, &c.n_targets, "good", 30);
	add_target(c.targets, &c.n_targets, "bad", 31);
	snprintf(c.enrolee_id, sizeof(c.enrolee_id), "changed");
	c.disabled = false;
	assert_true(store_client_update(f->s, &c) < 0);
	assert_int_equal(store_client_get(f->s, "U", &got), 0);
	assert_int_equal(got.n_targets, 1);
	assert_string_equal(got.targets[0].id, "new-1");
	assert_string_equal(got.enrolee_id, "CAE-enrolee");
	assert_true(got.disabled);

	c = cert_client("nobody", "x");
	assert_int_equal(store_client_update(f->s, &c), MEF_ENOTFOUND);
}

static int
collect_ids(void *ctx, const struct client_rec *c)
{
	char *buf = ctx;

	strcat(buf, c->id);
	strcat(buf, ",");
	return strcmp(c->id, "stop") == 0 ? 42 : 0;
}

static void
test_client_list_remove(void **state)
{
	struct fx *f = *state;
	const char *ids[] = { "m", "b", "z", "stop", "a" };
	char buf[128] = "";
	struct client_rec c;
	char san[32];

	for (size_t i = 0; i < 5; i++) {
		snprintf(san, sizeof(san), "san-%zu", i);
		c = cert_client(ids[i], san);
		add_target(c.targets, &c.n_targets, "t", 10);
		assert_int_equal(store_client_add(f->s, &c, NULL), 0);
	}
	assert_int_equal(store_client_list(f->s, collect_ids, buf), 42);
	assert_string_equal(buf, "a,b,m,stop,");
	assert_int_equal(store_client_remove(f->s, "stop"), 0);
	assert_int_equal(store_client_remove(f->s, "stop"), MEF_ENOTFOUND);
	buf[0] = 0;
	assert_int_equal(store_client_list(f->s, collect_ids, buf), 0);
	assert_string_equal(buf, "a,b,m,z,");
	/* Targets go with the client (ON DELETE CASCADE). */
	assert_int_equal(raw_int(f->path, "SELECT count(*) FROM client_targets"), 4);
}

static void
test_member_disabled(void **state)
{
	struct fx *f = *state;
	bool d = true;

	assert_int_equal(store_member_is_disabled(f->s, "dev-1@f7", &d), 0);
	assert_false(d);
	assert_int_equal(store_member_set_disabled(f->s, "dev-1@f7", true), 0);
	assert_int_equal(store_member_set_disabled(f->s, "dev-1@f7", true), 0);
	assert_int_equal(store_member_is_disabled(f->s, "dev-1@f7", &d), 0);
	assert_true(d);
	assert_int_equal(store_member_is_disabled(f->s, "dev-2@f7", &d), 0);
	assert_false(d);
	assert_int_equal(store_member_set_disabled(f->s, "dev-1@f7", false), 0);
	assert_int_equal(store_member_is_disabled(f->s, "dev-1@f7", &d), 0);
	assert_false(d);
}

/* --- groups --- */

static void
add_group(struct fx *f, const char *name, const char *pattern, uint8_t seed, int expect)
{
	struct group_rec g = { .expiry = 86400 };
	struct mef_secret *sec = pattern_secret(32, seed);

	snprintf(g.name, sizeof(g.name), "%s", name);
	snprintf(g.pattern, sizeof(g.pattern), "%s", pattern);
	snprintf(g.enrolee_pattern, sizeof(g.enrolee_pattern), "{local}");
	add_target(g.targets, &g.n_targets, "maf.example.com", 21);
	assert_int_equal(store_group_add(f->s, &g, sec), expect);
	secret_free(sec);
}

static int
count_groups(void *ctx, const struct group_rec *g)
{
	(void)g;
	++*(int *)ctx;
	return 0;
}

static void
test_groups(void **state)
{
	struct fx *f = *state;
	struct group_rec g;
	struct mef_secret *sec = NULL, *want = pattern_secret(32, 9);
	int n = 0;

	add_group(f, "factory", "*@factory-7.example.com", 8, 0);
	add_group(f, "line-a", "dev-a-*@factory-7.example.com", 9, 0);
	add_group(f, "factory", "*@other.example.com", 8, MEF_EEXIST);
	add_group(f, "dup-pattern", "*@factory-7.example.com", 8, MEF_EEXIST);

	assert_int_equal(store_group_match(f->s, "dev-a-17@factory-7.example.com", &g, &sec), 0);
	assert_string_equal(g.name, "line-a");
	assert_true(secret_equal(sec, want));
	sec = secret_free(sec);
	assert_int_equal(store_group_match(f->s, "dev-b-1@factory-7.example.com", &g, &sec), 0);
	assert_string_equal(g.name, "factory");
	assert_string_equal(g.enrolee_pattern, "{local}");
	assert_int_equal(g.n_targets, 1);
	assert_int_equal(g.expiry, 86400);
	sec = secret_free(sec);
	assert_int_equal(store_group_match(f->s, "dev-a-1@factory-7.example.com", &g, NULL), 0);
	assert_string_equal(g.name, "line-a");
	assert_int_equal(store_group_match(f->s, "dev@else.example.com", &g, &sec), MEF_ENOTFOUND);
	assert_null(sec);

	assert_int_equal(store_group_get(f->s, "factory", &g), 0);
	assert_string_equal(g.pattern, "*@factory-7.example.com");
	assert_int_equal(store_group_list(f->s, count_groups, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(store_group_remove(f->s, "line-a"), 0);
	assert_int_equal(store_group_remove(f->s, "line-a"), MEF_ENOTFOUND);
	assert_int_equal(store_group_get(f->s, "line-a", &g), MEF_ENOTFOUND);
	assert_int_equal(raw_int(f->path, "SELECT count(*) FROM group_targets"), 1);
	secret_free(want);
}

/* --- enrolment keys --- */

#define KEID1 "00112233445566778899AABBCCDDEEFF@mef.example.com"
#define KEID2 "0F112233445566778899AABBCCDDEEFF@mef.example.com"
#define KEID3 "1F112233445566778899AABBCCDDEEFF@mef.example.com"

struct ke_seen {
	char keids[512];
	int with_key;
};

static int
collect_ke(void *ctx, const struct ke_rec *k, const struct mef_secret *ke)
{
	struct ke_seen *seen = ctx;

	strcat(seen->keids, k->keid);
	strcat(seen->keids, ",");
	if (ke && ke->len == 32)
		seen->with_key++;
	return 0;
}

static void
test_ke(void **state)
{
	struct fx *f = *state;
	struct mef_secret *ke = pattern_secret(32, 3), *out = NULL;
	struct ke_rec k = ke_row(KEID1, "CAE-1", 2000, 5000), got;
	struct ke_seen seen = { 0 };
	unsigned n = 99;

	assert_int_equal(store_ke_put(f->s, &k, ke), 0);
	assert_int_equal(store_ke_put(f->s, &k, ke), MEF_EEXIST);
	k = ke_row(KEID2, "CAE-2", 1000, 3000);
	assert_int_equal(store_ke_put(f->s, &k, ke), 0);
	k = ke_row(KEID3, "CAE-1", 3000, 9000);
	assert_int_equal(store_ke_put(f->s, &k, ke), 0);

	assert_int_equal(store_ke_get(f->s, KEID1, &got, &out), 0);
	assert_string_equal(got.client_id, "CAE-1");
	assert_string_equal(got.transport, "dtls");
	assert_int_equal(got.expires, 5000);
	assert_false(got.revoked);
	assert_true(secret_equal(out, ke));
	out = secret_free(out);
	assert_int_equal(store_ke_get(f->s, KEID1, &got, NULL), 0);
	assert_int_equal(store_ke_get(f->s, "FFFF2233445566778899AABBCCDDEEFF@mef.example.com", &got,
				      &out), MEF_ENOTFOUND);
	assert_null(out);

	assert_int_equal(store_ke_list(f->s, NULL, false, collect_ke, &seen), 0);
	assert_string_equal(seen.keids, KEID2 "," KEID1 "," KEID3 ",");
	assert_int_equal(seen.with_key, 0);
	memset(&seen, 0, sizeof(seen));
	assert_int_equal(store_ke_list(f->s, "CAE-1", true, collect_ke, &seen), 0);
	assert_string_equal(seen.keids, KEID1 "," KEID3 ",");
	assert_int_equal(seen.with_key, 2);

	assert_int_equal(store_ke_revoke(f->s, KEID1), 0);
	assert_int_equal(store_ke_get(f->s, KEID1, &got, NULL), 0);
	assert_true(got.revoked);
	assert_int_equal(store_ke_revoke(f->s, "FFFF2233445566778899AABBCCDDEEFF@x"), MEF_ENOTFOUND);

	assert_int_equal(store_ke_sweep(f->s, 5000, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(store_ke_get(f->s, KEID1, &got, NULL), MEF_ENOTFOUND);
	assert_int_equal(store_ke_get(f->s, KEID3, &got, NULL), 0);
	assert_int_equal(store_ke_sweep(f->s, 5000, NULL), 0);
	secret_free(ke);
}

static void
test_client_remove_drops_ke(void **state)
{
	struct fx *f = *state;
	struct client_rec c = cert_client("CAE-1", "c1");
	struct mef_secret *ke = pattern_secret(32, 3);
	struct ke_rec k = ke_row(KEID1, "CAE-1", 1, 2), got;

	assert_int_equal(store_client_add(f->s, &c, NULL), 0);
	assert_int_equal(store_ke_put(f->s, &k, ke), 0);
	k = ke_row(KEID2, "member@f7", 1, 2);
	assert_int_equal(store_ke_put(f->s, &k, ke), 0);
	assert_int_equal(store_client_remove(f->s, "CAE-1"), 0);
	assert_int_equal(store_ke_get(f->s, KEID1, &got, NULL), MEF_ENOTFOUND);
	assert_int_equal(store_ke_get(f->s, KEID2, &got, NULL), 0);
	secret_free(ke);
}

/* --- secret hygiene --- */

static void
assert_not_on_disk(const char *path, const struct mef_secret *s)
{
	char p[200];

	assert_false(file_contains(path, s->p, s->len));
	snprintf(p, sizeof(p), "%s-wal", path);
	assert_false(file_contains(p, s->p, s->len));
	/* Also no 8-byte window of it (a partial leak). */
	for (size_t i = 0; i + 8 <= s->len; i += 8) {
		assert_false(file_contains(path, s->p + i, 8));
		assert_false(file_contains(p, s->p + i, 8));
	}
}

static void
test_secrets_never_in_clear(void **state)
{
	struct fx *f = *state;
	struct client_rec a = psk_client("A", "kpm-a"), b = psk_client("B", "kpm-b"), got;
	struct mef_secret *psk_a = pattern_secret(32, 0x11), *psk_b = pattern_secret(32, 0x55);
	struct mef_secret *ke = pattern_secret(32, 0x33), *gs = pattern_secret(32, 0x77), *out = NULL;
	struct ke_rec k = ke_row(KEID1, "A", 1, 4102444800), kg;
	struct group_rec g = { 0 };
	char walpath[200];

	snprintf(g.name, sizeof(g.name), "g");
	snprintf(g.pattern, sizeof(g.pattern), "*@g");
	assert_int_equal(store_client_add(f->s, &a, psk_a), 0);
	assert_int_equal(store_client_add(f->s, &b, psk_b), 0);
	assert_int_equal(store_ke_put(f->s, &k, ke), 0);
	k = ke_row(KEID2, "B", 1, 4102444800);
	assert_int_equal(store_ke_put(f->s, &k, psk_b), 0);
	assert_int_equal(store_group_add(f->s, &g, gs), 0);

	/* Positive control: the scan does find what is stored in clear. */
	assert_true(file_contains(f->path, (const uint8_t *)"kpm-a", 5) ||
		    file_contains(strcat(strcpy(walpath, f->path), "-wal"), (const uint8_t *)"kpm-a", 5));
	assert_not_on_disk(f->path, psk_a);
	assert_not_on_disk(f->path, ke);
	assert_not_on_disk(f->path, gs);
	assert_int_equal(raw_int(f->path, "SELECT length(psk_wrapped) FROM clients WHERE id = 'A'"),
			 32 + WRAP_OVERHEAD);
	assert_int_equal(raw_int(f->path, "SELECT length(ke_wrapped) FROM ke"
					  " WHERE keid = '" KEID1 "'"), 32 + WRAP_OVERHEAD);

	/* A's blob moved into B's row must not open as B's key. */
	raw_exec(f->path, "UPDATE clients SET psk_wrapped ="
			  " (SELECT psk_wrapped FROM clients WHERE id = 'A') WHERE id = 'B'");
	assert_int_equal(store_client_find_psk(f->s, "kpm-b", &got, &out), MEF_EAUTH);
	assert_null(out);
	assert_int_equal(store_client_find_psk(f->s, "kpm-a", &got, &out), 0);
	out = secret_free(out);
	raw_exec(f->path, "UPDATE ke SET ke_wrapped = (SELECT ke_wrapped FROM ke"
			  " WHERE keid = '" KEID1 "') WHERE keid = '" KEID2 "'");
	assert_int_equal(store_ke_get(f->s, KEID2, &kg, &out), MEF_EAUTH);
	assert_null(out);

	secret_free(psk_a), secret_free(psk_b), secret_free(ke), secret_free(gs);
}

static void
test_wrong_kek_fails(void **state)
{
	struct fx *f = *state;
	struct client_rec a = psk_client("A", "kpm-a"), got;
	struct mef_secret *psk = pattern_secret(32, 0x11), *other = pattern_secret(32, 0x99);
	struct mef_secret *out = NULL;
	struct store *s2 = NULL;

	assert_int_equal(store_client_add(f->s, &a, psk), 0);
	assert_int_equal(store_open(f->path, other, false, &s2), 0);
	assert_int_equal(store_client_find_psk(s2, "kpm-a", &got, &out), MEF_EAUTH);
	/* The two handles share the file: a write on one is read by the other. */
	a = cert_client("Z", "z");
	assert_int_equal(store_client_add(s2, &a, NULL), 0);
	assert_int_equal(store_client_get(f->s, "Z", &got), 0);
	store_close(s2);
	secret_free(psk), secret_free(other);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_open_migrates_and_reopens, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_refuses, setup, teardown),
		cmocka_unit_test_setup_teardown(test_client_add_get_find, setup, teardown),
		cmocka_unit_test_setup_teardown(test_client_duplicates, setup, teardown),
		cmocka_unit_test_setup_teardown(test_client_invalid, setup, teardown),
		cmocka_unit_test_setup_teardown(test_client_update_replaces_targets, setup, teardown),
		cmocka_unit_test_setup_teardown(test_client_list_remove, setup, teardown),
		cmocka_unit_test_setup_teardown(test_member_disabled, setup, teardown),
		cmocka_unit_test_setup_teardown(test_groups, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ke, setup, teardown),
		cmocka_unit_test_setup_teardown(test_client_remove_drops_ke, setup, teardown),
		cmocka_unit_test_setup_teardown(test_secrets_never_in_clear, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wrong_kek_fails, setup, teardown),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
