/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The SQLite body of the store (struct store_ops). One connection per handle
 * in WAL mode with synchronous=FULL and a busy timeout, because mefd and
 * mefctl use the same file at once. The schema is versioned with PRAGMA
 * user_version and moved forward by the migrations[] array, each step in
 * one transaction. Every statement is prepared once at open, from stmt_sql[].
 */
#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mef/err.h"
#include "mef/log.h"
#include "store_internal.h"

#define BUSY_TIMEOUT_MS 5000

/* One trigger per kind of change on table t: each bumps the credential stamp. */
#define STAMP_TRIGGER(t, op) \
	"CREATE TRIGGER " t "_stamp_" op " AFTER " op " ON " t \
	" BEGIN UPDATE cred_stamp SET n = n + 1 WHERE id = 1; END;"
#define STAMP_TRIGGERS(t) STAMP_TRIGGER(t, "INSERT") STAMP_TRIGGER(t, "UPDATE") STAMP_TRIGGER(t, "DELETE")

/* migrations[i] moves the schema from user_version i to i + 1. */
static const char *const migrations[] = {
	/* 0 -> 1: the first schema */
	"CREATE TABLE clients ("
	" id TEXT PRIMARY KEY NOT NULL,"
	" admin_fqdn TEXT NOT NULL DEFAULT '',"
	" kind INTEGER NOT NULL CHECK (kind IN (1, 2)),"
	" psk_identity TEXT UNIQUE,"
	" psk_wrapped BLOB,"
	" cert_san TEXT UNIQUE,"
	" enrolee_id TEXT NOT NULL DEFAULT '',"
	" expiry INTEGER NOT NULL DEFAULT 0,"
	" disabled INTEGER NOT NULL DEFAULT 0,"
	" created INTEGER NOT NULL,"
	" CHECK ((kind = 1 AND psk_identity IS NOT NULL AND psk_wrapped IS NOT NULL"
	"         AND cert_san IS NULL) OR"
	"        (kind = 2 AND cert_san IS NOT NULL AND psk_identity IS NULL"
	"         AND psk_wrapped IS NULL)));"
	"CREATE TABLE client_targets ("
	" client_id TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,"
	" pos INTEGER NOT NULL,"
	" target_id TEXT NOT NULL,"
	" suid INTEGER NOT NULL,"
	" PRIMARY KEY (client_id, pos));"
	"CREATE TABLE groups ("
	" name TEXT PRIMARY KEY NOT NULL,"
	" pattern TEXT NOT NULL UNIQUE,"
	" secret_wrapped BLOB NOT NULL,"
	" admin_fqdn TEXT NOT NULL DEFAULT '',"
	" enrolee_pattern TEXT NOT NULL DEFAULT '',"
	" expiry INTEGER NOT NULL DEFAULT 0,"
	" disabled INTEGER NOT NULL DEFAULT 0,"
	" created INTEGER NOT NULL);"
	"CREATE TABLE group_targets ("
	" group_name TEXT NOT NULL REFERENCES groups(name) ON DELETE CASCADE,"
	" pos INTEGER NOT NULL,"
	" target_id TEXT NOT NULL,"
	" suid INTEGER NOT NULL,"
	" PRIMARY KEY (group_name, pos));"
	"CREATE TABLE member_disabled (id TEXT PRIMARY KEY NOT NULL);"
	/* client_id is not a foreign key: group members are not client rows. */
	"CREATE TABLE ke ("
	" keid TEXT PRIMARY KEY NOT NULL,"
	" client_id TEXT NOT NULL,"
	" enrolee_id TEXT NOT NULL DEFAULT '',"
	" transport TEXT NOT NULL DEFAULT '',"
	" created INTEGER NOT NULL,"
	" expires INTEGER NOT NULL,"
	" revoked INTEGER NOT NULL DEFAULT 0,"
	" ke_wrapped BLOB NOT NULL);"
	"CREATE INDEX ke_client ON ke(client_id);"
	"CREATE INDEX ke_expires ON ke(expires);",
	/* 1 -> 2: certificates issued by the MEF CA (EST; src/store/sqlite_certs.c) */
	"CREATE TABLE IF NOT EXISTS certs ("
	" serial TEXT PRIMARY KEY NOT NULL,"
	" client_id TEXT NOT NULL,"
	" subject TEXT NOT NULL DEFAULT '',"
	" san TEXT NOT NULL,"
	" not_before INTEGER NOT NULL,"
	" not_after INTEGER NOT NULL,"
	" issued INTEGER NOT NULL,"
	" revoked INTEGER NOT NULL DEFAULT 0,"
	" revoked_at INTEGER NOT NULL DEFAULT 0,"
	" der BLOB NOT NULL);"
	"CREATE INDEX IF NOT EXISTS certs_client ON certs(client_id);"
	"CREATE INDEX IF NOT EXISTS certs_revoked ON certs(revoked);",
	/* 2 -> 3: Mmef registrations, key registrations, commands (src/store/sqlite_mmef.c) */
	sqlite_mmef_schema,
	/*
	 * 3 -> 4: the credential stamp (store_cred_stamp). Every row written to
	 * the tables a PSK or group resolution reads bumps it, whoever writes
	 * (mefd, mefctl, the sqlite3 shell); Ke, certificate and Mmef rows do not.
	 */
	"CREATE TABLE cred_stamp (id INTEGER PRIMARY KEY CHECK (id = 1), n INTEGER NOT NULL);"
	"INSERT INTO cred_stamp (id, n) VALUES (1, 0);"
	STAMP_TRIGGERS("clients") STAMP_TRIGGERS("client_targets") STAMP_TRIGGERS("groups")
	STAMP_TRIGGERS("group_targets") STAMP_TRIGGERS("member_disabled"),
};

#define N_MIGRATIONS ((int)(sizeof(migrations) / sizeof(migrations[0])))
_Static_assert(N_MIGRATIONS == STORE_SCHEMA_VERSION, "one migration per schema version");

#define CLIENT_COLS \
	"id, admin_fqdn, kind, psk_identity, cert_san, enrolee_id, expiry, disabled, created"
#define GROUP_COLS "name, pattern, admin_fqdn, enrolee_pattern, expiry, disabled, created"
#define KE_COLS "keid, client_id, enrolee_id, transport, created, expires, revoked"

enum stmt {
	ST_BEGIN,
	ST_COMMIT,
	ST_ROLLBACK,
	ST_CLIENT_INSERT,
	ST_CLIENT_UPDATE,
	ST_CLIENT_GET,
	ST_CLIENT_BY_PSK,
	ST_CLIENT_BY_CERT,
	ST_CLIENT_DELETE,
	ST_CLIENT_LIST,
	ST_CTARGET_INSERT,
	ST_CTARGET_DELETE,
	ST_CTARGET_LIST,
	ST_MEMBER_INSERT,
	ST_MEMBER_DELETE,
	ST_MEMBER_GET,
	ST_MEMBER_LIST,
	ST_GROUP_INSERT,
	ST_GROUP_GET,
	ST_GROUP_MATCH,
	ST_GROUP_SCAN,
	ST_GROUP_DELETE,
	ST_GROUP_LIST,
	ST_GTARGET_INSERT,
	ST_GTARGET_LIST,
	ST_KE_INSERT,
	ST_KE_GET,
	ST_KE_LIST_ALL,
	ST_KE_LIST_CLIENT,
	ST_KE_REVOKE,
	ST_KE_SWEEP,
	ST_KE_DELETE_CLIENT,
	ST_CRED_STAMP,
	ST_MAX,
};

static const char *const stmt_sql[ST_MAX] = {
	[ST_BEGIN] = "BEGIN IMMEDIATE",
	[ST_COMMIT] = "COMMIT",
	[ST_ROLLBACK] = "ROLLBACK",
	[ST_CLIENT_INSERT] = "INSERT INTO clients (" CLIENT_COLS ", psk_wrapped)"
			     " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
	[ST_CLIENT_UPDATE] = "UPDATE clients SET admin_fqdn = ?2, enrolee_id = ?3, expiry = ?4,"
			     " disabled = ?5 WHERE id = ?1",
	[ST_CLIENT_GET] = "SELECT " CLIENT_COLS " FROM clients WHERE id = ?",
	[ST_CLIENT_BY_PSK] = "SELECT " CLIENT_COLS ", psk_wrapped FROM clients"
			     " WHERE psk_identity = ? AND kind = 1",
	[ST_CLIENT_BY_CERT] = "SELECT " CLIENT_COLS " FROM clients WHERE cert_san = ? AND kind = 2",
	[ST_CLIENT_DELETE] = "DELETE FROM clients WHERE id = ?",
	[ST_CLIENT_LIST] = "SELECT " CLIENT_COLS " FROM clients ORDER BY id",
	[ST_CTARGET_INSERT] = "INSERT INTO client_targets (client_id, pos, target_id, suid)"
			      " VALUES (?, ?, ?, ?)",
	[ST_CTARGET_DELETE] = "DELETE FROM client_targets WHERE client_id = ?",
	[ST_CTARGET_LIST] = "SELECT target_id, suid FROM client_targets WHERE client_id = ?"
			    " ORDER BY pos",
	[ST_MEMBER_INSERT] = "INSERT OR IGNORE INTO member_disabled (id) VALUES (?)",
	[ST_MEMBER_DELETE] = "DELETE FROM member_disabled WHERE id = ?",
	[ST_MEMBER_GET] = "SELECT 1 FROM member_disabled WHERE id = ?",
	[ST_MEMBER_LIST] = "SELECT id FROM member_disabled",
	[ST_GROUP_INSERT] = "INSERT INTO groups (" GROUP_COLS ", secret_wrapped)"
			    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
	[ST_GROUP_GET] = "SELECT " GROUP_COLS " FROM groups WHERE name = ?",
	/* The most specific group wins: longest pattern, then name for a stable answer. */
	[ST_GROUP_MATCH] = "SELECT " GROUP_COLS ", secret_wrapped FROM groups"
			   " WHERE ?1 GLOB pattern ORDER BY length(pattern) DESC, name LIMIT 1",
	/* ST_GROUP_MATCH without the WHERE: every group, in the order it tries them */
	[ST_GROUP_SCAN] = "SELECT " GROUP_COLS ", secret_wrapped FROM groups"
			  " ORDER BY length(pattern) DESC, name",
	[ST_GROUP_DELETE] = "DELETE FROM groups WHERE name = ?",
	[ST_GROUP_LIST] = "SELECT " GROUP_COLS " FROM groups ORDER BY name",
	[ST_GTARGET_INSERT] = "INSERT INTO group_targets (group_name, pos, target_id, suid)"
			      " VALUES (?, ?, ?, ?)",
	[ST_GTARGET_LIST] = "SELECT target_id, suid FROM group_targets WHERE group_name = ?"
			    " ORDER BY pos",
	[ST_KE_INSERT] = "INSERT INTO ke (" KE_COLS ", ke_wrapped) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
	[ST_KE_GET] = "SELECT " KE_COLS ", ke_wrapped FROM ke WHERE keid = ?",
	[ST_KE_LIST_ALL] = "SELECT " KE_COLS ", ke_wrapped FROM ke ORDER BY created, rowid",
	[ST_KE_LIST_CLIENT] = "SELECT " KE_COLS ", ke_wrapped FROM ke WHERE client_id = ?"
			      " ORDER BY created, rowid",
	[ST_KE_REVOKE] = "UPDATE ke SET revoked = 1 WHERE keid = ?",
	[ST_KE_SWEEP] = "DELETE FROM ke WHERE expires <= ?",
	[ST_KE_DELETE_CLIENT] = "DELETE FROM ke WHERE client_id = ?",
	[ST_CRED_STAMP] = "SELECT n FROM cred_stamp WHERE id = 1",
};

struct store_sq {
	struct store base; /* first: struct store * and struct store_sq * convert */
	sqlite3 *db;
	sqlite3_stmt *st[ST_MAX];
	bool outer; /* inside store_tx_begin: per-call transactions join it */
	struct {    /* store_sqlite_cached: the other modules' statements (sqlite_certs.c) */
		const char *sql;
		sqlite3_stmt *st;
	} cached[16];
};

static struct store_sq *
sq(struct store *s)
{
	return (struct store_sq *)s;
}

/* Folds an (extended) SQLite result code into the MEF_E* space. */
static int
sq_err(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_OK:
	case SQLITE_ROW:
	case SQLITE_DONE:
		return 0;
	case SQLITE_CONSTRAINT:
		/* Unique and primary keys are conflicts; CHECK/NOT NULL mean a malformed row. */
		if (rc == SQLITE_CONSTRAINT_CHECK || rc == SQLITE_CONSTRAINT_NOTNULL)
			return MEF_EINVAL;
		return MEF_EEXIST;
	case SQLITE_NOMEM:
		return MEF_ENOMEM;
	default:
		return MEF_ESTORE;
	}
}

/* As sq_err, for a code already known to be a failure. */
static int
sq_fail(int rc)
{
	int r = sq_err(rc);

	return r ? r : MEF_ESTORE;
}

static void
sq_release(sqlite3_stmt *st)
{
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
}

/* Steps a statement that returns no rows, then releases it. */
static int
sq_run(struct store_sq *q, sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);

	if (rc != SQLITE_DONE)
		log_debug("sqlite: %s", sqlite3_errmsg(q->db));
	sq_release(st);
	return rc == SQLITE_DONE ? 0 : sq_fail(rc);
}

/* Steps a query expected to yield one row: 0 (row ready), MEF_ENOTFOUND or an error (released). */
static int
sq_row(struct store_sq *q, sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);

	if (rc == SQLITE_ROW)
		return 0;
	if (rc != SQLITE_DONE)
		log_debug("sqlite: %s", sqlite3_errmsg(q->db));
	sq_release(st);
	return rc == SQLITE_DONE ? MEF_ENOTFOUND : sq_fail(rc);
}

static int
bind_text(sqlite3_stmt *st, int i, const char *v)
{
	return sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC) == SQLITE_OK ? 0 : MEF_ESTORE;
}

/* Empty strings are stored as NULL so that UNIQUE columns allow many "none". */
static int
bind_text_or_null(sqlite3_stmt *st, int i, const char *v)
{
	if (!v || !v[0])
		return sqlite3_bind_null(st, i) == SQLITE_OK ? 0 : MEF_ESTORE;
	return bind_text(st, i, v);
}

/* Binds key to ?1 and steps to the first row: 0 with the row ready, MEF_ENOTFOUND or MEF_E*. */
static int
sq_row_by_key(struct store_sq *q, sqlite3_stmt *st, const char *key)
{
	if (bind_text(st, 1, key)) {
		sq_release(st);
		return MEF_ESTORE;
	}
	return sq_row(q, st);
}

/* Binds key to ?1 and runs a statement that returns no row. */
static int
sq_run_by_key(struct store_sq *q, sqlite3_stmt *st, const char *key)
{
	if (bind_text(st, 1, key)) {
		sq_release(st);
		return MEF_ESTORE;
	}
	return sq_run(q, st);
}

static int
bind_int(sqlite3_stmt *st, int i, int64_t v)
{
	return sqlite3_bind_int64(st, i, v) == SQLITE_OK ? 0 : MEF_ESTORE;
}

static int
bind_blob(sqlite3_stmt *st, int i, const struct store_blob *b)
{
	if (!b)
		return sqlite3_bind_null(st, i) == SQLITE_OK ? 0 : MEF_ESTORE;
	return sqlite3_bind_blob(st, i, b->p, (int)b->len, SQLITE_STATIC) == SQLITE_OK ? 0 : MEF_ESTORE;
}

static void
col_text(sqlite3_stmt *st, int i, char *out, size_t outlen)
{
	const unsigned char *t = sqlite3_column_text(st, i);

	snprintf(out, outlen, "%s", t ? (const char *)t : "");
}

static int
col_blob(sqlite3_stmt *st, int i, struct store_blob *ret)
{
	const void *p = sqlite3_column_blob(st, i);
	int n = sqlite3_column_bytes(st, i);

	if (!p || n <= 0)
		return MEF_ESTORE;
	ret->p = malloc((size_t)n);
	if (!ret->p)
		return MEF_ENOMEM;
	memcpy(ret->p, p, (size_t)n);
	ret->len = (size_t)n;
	return 0;
}

/* --- transactions --- */

static int
tx_begin(struct store_sq *q)
{
	if (q->outer)
		return 0;
	return sq_run(q, q->st[ST_BEGIN]);
}

/* Commits when r is 0, else (or if the commit fails) rolls back; returns the outcome. */
static int
tx_end(struct store_sq *q, int r)
{
	if (q->outer) /* the caller of store_tx_end decides */
		return r;
	if (r == 0)
		r = sq_run(q, q->st[ST_COMMIT]);
	if (r < 0 && !sqlite3_get_autocommit(q->db))
		(void)sq_run(q, q->st[ST_ROLLBACK]);
	return r;
}

/* --- targets (shared by clients and groups) --- */

static int
targets_put(struct store_sq *q, enum stmt which, const char *owner, const struct mef_target *t,
	    size_t n)
{
	sqlite3_stmt *st = q->st[which];
	int r = 0;

	for (size_t i = 0; i < n && r == 0; i++) {
		if (bind_text(st, 1, owner) || bind_int(st, 2, (int64_t)i) ||
		    bind_text(st, 3, t[i].id) || bind_int(st, 4, t[i].suid)) {
			sq_release(st);
			return MEF_ESTORE;
		}
		r = sq_run(q, st);
	}
	return r;
}

static int
targets_load(struct store_sq *q, enum stmt which, const char *owner, struct mef_target *t,
	     size_t *ret_n)
{
	sqlite3_stmt *st = q->st[which];
	size_t n = 0;
	int rc;

	if (bind_text(st, 1, owner)) {
		sq_release(st);
		return MEF_ESTORE;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW && n < MEF_MAX_TARGETS) {
		col_text(st, 0, t[n].id, sizeof(t[n].id));
		t[n].suid = sqlite3_column_int(st, 1);
		n++;
	}
	sq_release(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return sq_fail(rc);
	*ret_n = n;
	return 0;
}

/* --- open, migrate, close --- */

static int
user_version(sqlite3 *db, int *ret)
{
	sqlite3_stmt *st;
	int rc = sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL);

	if (rc != SQLITE_OK)
		return MEF_ESTORE;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*ret = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 0 : MEF_ESTORE;
}

/* One migration step in one transaction; the version is re-read under the write lock. */
static int
migrate_step(sqlite3 *db, int to)
{
	char sql[64];
	int v, r;

	if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		return MEF_ESTORE;
	r = user_version(db, &v);
	if (r == 0 && v == to - 1) {
		snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", to);
		if (sqlite3_exec(db, migrations[to - 1], NULL, NULL, NULL) != SQLITE_OK ||
		    sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
			r = MEF_ESTORE;
	}
	if (r == 0 && sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK)
		return 0;
	log_debug("sqlite migration to %d: %s", to, sqlite3_errmsg(db));
	sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	return MEF_ESTORE;
}

static int
migrate(sqlite3 *db, bool readonly)
{
	int v, r;

	if ((r = user_version(db, &v)) < 0)
		return r;
	/* A newer schema than this build knows, or a read-only look at an old one: refuse. */
	if (v > N_MIGRATIONS || (readonly && v != N_MIGRATIONS))
		return MEF_ESTORE;
	for (; v < N_MIGRATIONS; v++)
		if ((r = migrate_step(db, v + 1)) < 0)
			return r;
	return 0;
}

/* SQLite creates files 0644; the store holds wrapped secrets, so make it 0600 (the WAL follows). */
static int
create_private(const char *path)
{
	struct stat st;
	int fd;

	/*
	 * Never open an existing file here: close() drops every POSIX lock this
	 * process holds on it, including those of another open connection (the
	 * group-commit writer, sqlite_kebatch.c); SQLite then takes the other
	 * connection for gone and deletes the WAL under it.
	 */
	if (stat(path, &st) == 0)
		return 0;
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);

	if (fd < 0)
		return MEF_ESTORE;
	close(fd);
	return 0;
}

static int
configure(sqlite3 *db, bool readonly)
{
	static const char *const pragmas =
		"PRAGMA foreign_keys = ON;"
		"PRAGMA synchronous = FULL;"
		"PRAGMA secure_delete = ON;";
	char *mode = NULL;
	sqlite3_stmt *st;
	int ok;

	sqlite3_extended_result_codes(db, 1);
	if (sqlite3_busy_timeout(db, BUSY_TIMEOUT_MS) != SQLITE_OK ||
	    sqlite3_exec(db, pragmas, NULL, NULL, NULL) != SQLITE_OK)
		return MEF_ESTORE;
	if (readonly)
		return 0;
	if (sqlite3_prepare_v2(db, "PRAGMA journal_mode = WAL", -1, &st, NULL) != SQLITE_OK)
		return MEF_ESTORE;
	ok = sqlite3_step(st) == SQLITE_ROW;
	if (ok)
		mode = (char *)sqlite3_column_text(st, 0);
	ok = ok && mode && strcmp(mode, "wal") == 0;
	sqlite3_finalize(st);
	return ok ? 0 : MEF_ESTORE;
}

static void
sq_close(struct store *s)
{
	struct store_sq *q = sq(s);

	for (int i = 0; i < ST_MAX; i++)
		sqlite3_finalize(q->st[i]);
	for (size_t i = 0; i < sizeof(q->cached) / sizeof(q->cached[0]); i++)
		sqlite3_finalize(q->cached[i].st);
	sqlite3_close(q->db);
	free(q);
}

static int
sq_open(const char *path, bool readonly, struct store **ret)
{
	int flags = readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
	struct store_sq *q = calloc(1, sizeof(*q));
	int r = 0;

	if (!q)
		return MEF_ENOMEM;
	if (!readonly)
		r = create_private(path);
	if (r == 0 && sqlite3_open_v2(path, &q->db, flags, NULL) != SQLITE_OK)
		r = MEF_ESTORE;
	if (r == 0)
		r = configure(q->db, readonly);
	if (r == 0)
		r = migrate(q->db, readonly);
	for (int i = 0; r == 0 && i < ST_MAX; i++)
		if (sqlite3_prepare_v3(q->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &q->st[i],
				       NULL) != SQLITE_OK)
			r = MEF_ESTORE;
	if (r < 0) {
		if (q->db)
			log_debug("sqlite open %s: %s", path, sqlite3_errmsg(q->db));
		sq_close(&q->base);
		return r;
	}
	*ret = &q->base;
	return 0;
}

/* --- clients --- */

static void
client_from_row(sqlite3_stmt *st, struct client_rec *c)
{
	memset(c, 0, sizeof(*c));
	col_text(st, 0, c->id, sizeof(c->id));
	col_text(st, 1, c->admin_fqdn, sizeof(c->admin_fqdn));
	c->kind = (enum cred_kind)sqlite3_column_int(st, 2);
	col_text(st, 3, c->psk_identity, sizeof(c->psk_identity));
	col_text(st, 4, c->cert_san, sizeof(c->cert_san));
	col_text(st, 5, c->enrolee_id, sizeof(c->enrolee_id));
	c->expiry = sqlite3_column_int64(st, 6);
	c->disabled = sqlite3_column_int(st, 7) != 0;
	c->created = sqlite3_column_int64(st, 8);
}

static int
client_bind(sqlite3_stmt *st, const struct client_rec *c, const struct store_blob *psk)
{
	bool is_psk = c->kind == CRED_PSK;

	if (bind_text(st, 1, c->id) || bind_text(st, 2, c->admin_fqdn) ||
	    bind_int(st, 3, c->kind) || bind_text_or_null(st, 4, is_psk ? c->psk_identity : NULL) ||
	    bind_text_or_null(st, 5, is_psk ? NULL : c->cert_san) ||
	    bind_text(st, 6, c->enrolee_id) || bind_int(st, 7, c->expiry) ||
	    bind_int(st, 8, c->disabled) || bind_int(st, 9, c->created) || bind_blob(st, 10, psk))
		return MEF_ESTORE;
	return 0;
}

static int
sq_client_add(struct store *s, const struct client_rec *c, const struct store_blob *psk)
{
	struct store_sq *q = sq(s);
	sqlite3_stmt *st = q->st[ST_CLIENT_INSERT];
	int r;

	if ((r = tx_begin(q)) < 0)
		return r;
	r = client_bind(st, c, psk);
	r = r ? (sq_release(st), r) : sq_run(q, st);
	if (r == 0)
		r = targets_put(q, ST_CTARGET_INSERT, c->id, c->targets, c->n_targets);
	return tx_end(q, r);
}

static int
client_update_row(struct store_sq *q, const struct client_rec *c)
{
	sqlite3_stmt *st = q->st[ST_CLIENT_UPDATE];
	int r;

	if (bind_text(st, 1, c->id) || bind_text(st, 2, c->admin_fqdn) ||
	    bind_text(st, 3, c->enrolee_id) || bind_int(st, 4, c->expiry) ||
	    bind_int(st, 5, c->disabled)) {
		sq_release(st);
		return MEF_ESTORE;
	}
	if ((r = sq_run(q, st)) < 0)
		return r;
	return sqlite3_changes(q->db) == 0 ? MEF_ENOTFOUND : 0;
}

/* All or nothing: the row and the whole target list change in one transaction. */
static int
sq_client_update(struct store *s, const struct client_rec *c)
{
	struct store_sq *q = sq(s);
	sqlite3_stmt *del = q->st[ST_CTARGET_DELETE];
	int r;

	if ((r = tx_begin(q)) < 0)
		return r;
	r = client_update_row(q, c);
	if (r == 0)
		r = bind_text(del, 1, c->id) ? (sq_release(del), MEF_ESTORE) : sq_run(q, del);
	if (r == 0)
		r = targets_put(q, ST_CTARGET_INSERT, c->id, c->targets, c->n_targets);
	return tx_end(q, r);
}

/*
 * Runs a one-row client query with key bound to ?1 and fills *ret (and the
 * wrapped PSK from column 9 if ret_psk). The query stays open while the
 * targets are read, so both come from the same snapshot.
 */
static int
client_query(struct store_sq *q, enum stmt which, const char *key, struct client_rec *ret,
	     struct store_blob *ret_psk)
{
	sqlite3_stmt *st = q->st[which];
	struct client_rec c;
	struct store_blob blob = { 0 };
	int r;

	if ((r = sq_row_by_key(q, st, key)) < 0)
		return r;
	client_from_row(st, &c);
	r = targets_load(q, ST_CTARGET_LIST, c.id, c.targets, &c.n_targets);
	if (r == 0 && ret_psk)
		r = col_blob(st, 9, &blob);
	sq_release(st);
	if (r < 0)
		return r;
	*ret = c;
	if (ret_psk)
		*ret_psk = blob;
	return 0;
}

static int
sq_client_get(struct store *s, const char *id, struct client_rec *ret)
{
	return client_query(sq(s), ST_CLIENT_GET, id, ret, NULL);
}

static int
sq_client_find_psk(struct store *s, const char *identity, struct client_rec *ret,
		   struct store_blob *ret_psk)
{
	return client_query(sq(s), ST_CLIENT_BY_PSK, identity, ret, ret_psk);
}

static int
sq_client_find_cert(struct store *s, const char *san, struct client_rec *ret)
{
	return client_query(sq(s), ST_CLIENT_BY_CERT, san, ret, NULL);
}

/* Removing a client also drops its Enrolment Keys: they must not outlive their owner. */
static int
sq_client_remove(struct store *s, const char *id)
{
	struct store_sq *q = sq(s);
	sqlite3_stmt *ke = q->st[ST_KE_DELETE_CLIENT], *del = q->st[ST_CLIENT_DELETE];
	int r;

	if ((r = tx_begin(q)) < 0)
		return r;
	r = bind_text(ke, 1, id) ? (sq_release(ke), MEF_ESTORE) : sq_run(q, ke);
	if (r == 0)
		r = bind_text(del, 1, id) ? (sq_release(del), MEF_ESTORE) : sq_run(q, del);
	if (r == 0 && sqlite3_changes(q->db) == 0)
		r = MEF_ENOTFOUND;
	return tx_end(q, r);
}

static int
sq_client_list(struct store *s, store_client_cb cb, void *ctx)
{
	struct store_sq *q = sq(s);
	sqlite3_stmt *st = q->st[ST_CLIENT_LIST];
	struct client_rec c;
	int rc, r = 0;

	while (r == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		client_from_row(st, &c);
		r = targets_load(q, ST_CTARGET_LIST, c.id, c.targets, &c.n_targets);
		if (r == 0)
			r = cb(ctx, &c);
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = sq_fail(rc);
	sq_release(st);
	return r;
}

/* --- member_disabled --- */

static int
sq_member_set_disabled(struct store *s, const char *id, bool disabled)
{
	struct store_sq *q = sq(s);
	sqlite3_stmt *st = q->st[disabled ? ST_MEMBER_INSERT : ST_MEMBER_DELETE];

	return sq_run_by_key(q, st, id);
}

static int
sq_member_is_disabled(struct store *s, const char *id, bool *ret)
{
	struct store_sq *q = sq(s);
	sqlite3_stmt *st = q->st[ST_MEMBER_GET];
	int r;

	r = sq_row_by_key(q, st, id);
	if (r == 0)
		sq_release(st);
	if (r < 0 && r != MEF_ENOTFOUND)
		return r;
	*ret = r == 0;
	return 0;
}

static int
sq_member_disabled_list(struct store *s, store_id_cb cb, void *ctx)
{
	struct store_sq *q = sq(s);
	sqlite3_stmt *st = q->st[ST_MEMBER_LIST];
	char id[MEF_ID_MAX];
	int rc, r = 0;

	while (r == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		col_text(st, 0, id, sizeof(id));
		r = cb(ctx, id);
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = sq_fail(rc);
	sq_release(st);
	return r;
}

/* --- groups --- */

static void
group_from_row(sqlite3_stmt *st, struct group_rec *g)
{
	memset(g, 0, sizeof(*g));
	col_text(st, 0, g->name, sizeof(g->name));
	col_text(st, 1, g->pattern, sizeof(g->pattern));
	col_text(st, 2, g->admin_fqdn, sizeof(g->admin_fqdn));
	col_text(st, 3, g->enrolee_pattern, sizeof(g->enrolee_pattern));
	g->expiry = sqlite3_column_int64(st, 4);
	g->disabled = sqlite3_column_int(st, 5) != 0;
	g->created = sqlite3_column_int64(st, 6);
}

static int
sq_group_add(struct store *s, const struct group_rec *g, const struct store_blob *secret)
{
	struct store_sq *q = sq(s);
	sqlite3_stmt *st = q->st[ST_GROUP_INSERT];
	int r;

	if ((r = tx_begin(q)) < 0)
		return r;
	if (bind_text(st, 1, g->name) || bind_text(st, 2, g->pattern) ||
	    bind_text(st, 3, g->admin_fqdn) || bind_text(st, 4, g->enrolee_pattern) ||
	    bind_int(st, 5, g->expiry) || bind_int(st, 6, g->disabled) ||
	    bind_int(st, 7, g->created) || bind_blob(st, 8, secret)) {
		sq_release(st);
		r = MEF_ESTORE;
	} else {
		r = sq_run(q, st);
	}
	if (r == 0)
		r = targets_put(q, ST_GTARGET_INSERT, g->name, g->targets, g->n_targets);
	return tx_end(q, r);
}

/* As client_query, for groups; the secret blob is column 7. */
static int
group_query(struct store_sq *q, enum stmt which, const char *key, struct group_rec *ret,
	    struct store_blob *ret_secret)
{
	sqlite3_stmt *st = q->st[which];
	struct group_rec g;
	struct store_blob blob = { 0 };
	int r;

	if ((r = sq_row_by_key(q, st, key)) < 0)
		return r;
	group_from_row(st, &g);
	r = targets_load(q, ST_GTARGET_LIST, g.name, g.targets, &g.n_targets);
	if (r == 0 && ret_secret)
		r = col_blob(st, 7, &blob);
	sq_release(st);
	if (r < 0)
		return r;
	*ret = g;
	if (ret_secret)
		*ret_secret = blob;
	return 0;
}

static int
sq_group_get(struct store *s, const char *name, struct group_rec *ret)
{
	return group_query(sq(s), ST_GROUP_GET, name, ret, NULL);
}

static int
sq_group_match(struct store *s, const char *kpm_id, struct group_rec *ret,
	       struct store_blob *ret_secret)
{
	return group_query(sq(s), ST_GROUP_MATCH, kpm_id, ret, ret_secret);
}

/* The blob passed to cb points into SQLite's row: valid during the call only. */
static int
sq_group_scan(struct store *s, store_group_raw_cb cb, void *ctx)
{
	struct store_sq *q = sq(s);
	sqlite3_stmt *st = q->st[ST_GROUP_SCAN];
	struct store_blob blob;
	struct group_rec g;
	int rc, r = 0;

	while (r == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		group_from_row(st, &g);
		r = targets_load(q, ST_GTARGET_LIST, g.name, g.targets, &g.n_targets);
		blob.p = (uint8_t *)sqlite3_column_blob(st, 7);
		blob.len = (size_t)sqlite3_column_bytes(st, 7);
		if (r == 0)
			r = cb(ctx, &g, &blob);
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = sq_fail(rc);
	sq_release(st);
	return r;
}

/* The GLOB operator of ST_GROUP_MATCH, as a function (same code in SQLite). */
static bool
sq_glob(const char *pattern, const char *str)
{
	return sqlite3_strglob(pattern, str) == 0;
}

static int
sq_group_remove(struct store *s, const char *name)
{
	struct store_sq *q = sq(s);
	sqlite3_stmt *st = q->st[ST_GROUP_DELETE];
	int r;

	if ((r = sq_run_by_key(q, st, name)) < 0)
		return r;
	return sqlite3_changes(q->db) == 0 ? MEF_ENOTFOUND : 0;
}

static int
sq_group_list(struct store *s, store_group_cb cb, void *ctx)
{
	struct store_sq *q = sq(s);
	sqlite3_stmt *st = q->st[ST_GROUP_LIST];
	struct group_rec g;
	int rc, r = 0;

	while (r == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		group_from_row(st, &g);
		r = targets_load(q, ST_GTARGET_LIST, g.name, g.targets, &g.n_targets);
		if (r == 0)
			r = cb(ctx, &g);
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = sq_fail(rc);
	sq_release(st);
	return r;
}

/* --- enrolment keys --- */

static void
ke_from_row(sqlite3_stmt *st, struct ke_rec *k)
{
	memset(k, 0, sizeof(*k));
	col_text(st, 0, k->keid, sizeof(k->keid));
	col_text(st, 1, k->client_id, sizeof(k->client_id));
	col_text(st, 2, k->enrolee_id, sizeof(k->enrolee_id));
	col_text(st, 3, k->transport, sizeof(k->transport));
	k->created = sqlite3_column_int64(st, 4);
	k->expires = sqlite3_column_int64(st, 5);
	k->revoked = sqlite3_column_int(st, 6) != 0;
}

/* A single INSERT in autocommit mode: durable (synchronous=FULL) when step returns. */
static int
sq_ke_put(struct store *s, const struct ke_rec *k, const struct store_blob *ke)
{
	struct store_sq *q = sq(s);
	sqlite3_stmt *st = q->st[ST_KE_INSERT];

	if (bind_text(st, 1, k->keid) || bind_text(st, 2, k->client_id) ||
	    bind_text(st, 3, k->enrolee_id) || bind_text(st, 4, k->transport) ||
	    bind_int(st, 5, k->created) || bind_int(st, 6, k->expires) ||
	    bind_int(st, 7, k->revoked) || bind_blob(st, 8, ke)) {
		sq_release(st);
		return MEF_ESTORE;
	}
	return sq_run(q, st);
}

static int
sq_ke_get(struct store *s, const char *keid, struct ke_rec *ret, struct store_blob *ret_ke)
{
	struct store_sq *q = sq(s);
	sqlite3_stmt *st = q->st[ST_KE_GET];
	struct store_blob blob = { 0 };
	struct ke_rec k;
	int r;

	if ((r = sq_row_by_key(q, st, keid)) < 0)
		return r;
	ke_from_row(st, &k);
	if (ret_ke)
		r = col_blob(st, 7, &blob);
	sq_release(st);
	if (r < 0)
		return r;
	*ret = k;
	if (ret_ke)
		*ret_ke = blob;
	return 0;
}

static int
sq_ke_list(struct store *s, const char *client_id, bool with_blobs, store_ke_raw_cb cb, void *ctx)
{
	struct store_sq *q = sq(s);
	sqlite3_stmt *st = q->st[client_id ? ST_KE_LIST_CLIENT : ST_KE_LIST_ALL];
	struct store_blob blob;
	struct ke_rec k;
	int rc = SQLITE_DONE, r = 0;

	if (client_id && bind_text(st, 1, client_id))
		r = MEF_ESTORE;
	while (r == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		ke_from_row(st, &k);
		/* The blob points into SQLite's row buffer: valid until the next step. */
		blob.p = (uint8_t *)sqlite3_column_blob(st, 7);
		blob.len = (size_t)sqlite3_column_bytes(st, 7);
		r = cb(ctx, &k, with_blobs ? &blob : NULL);
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = sq_fail(rc);
	sq_release(st);
	return r;
}

static int
sq_ke_revoke(struct store *s, const char *keid)
{
	struct store_sq *q = sq(s);
	sqlite3_stmt *st = q->st[ST_KE_REVOKE];
	int r;

	if ((r = sq_run_by_key(q, st, keid)) < 0)
		return r;
	return sqlite3_changes(q->db) == 0 ? MEF_ENOTFOUND : 0;
}

static int
sq_ke_sweep(struct store *s, int64_t now, unsigned *ret_n)
{
	struct store_sq *q = sq(s);
	sqlite3_stmt *st = q->st[ST_KE_SWEEP];
	int r;

	if (bind_int(st, 1, now)) {
		sq_release(st);
		return MEF_ESTORE;
	}
	if ((r = sq_run(q, st)) < 0)
		return r;
	if (ret_n)
		*ret_n = (unsigned)sqlite3_changes(q->db);
	return 0;
}

/*
 * Online backup of one read snapshot (WAL: writers go on meanwhile) into a
 * new private file, left in rollback-journal mode so it is one
 * self-contained file.
 */
static int
sq_backup(struct store *s, const char *path)
{
	sqlite3 *dst = NULL;
	sqlite3_backup *b;
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	int rc;

	if (fd < 0)
		return errno == EEXIST ? MEF_EEXIST : MEF_EIO;
	close(fd);
	rc = sqlite3_open_v2(path, &dst, SQLITE_OPEN_READWRITE, NULL);
	b = rc == SQLITE_OK ? sqlite3_backup_init(dst, "main", sq(s)->db, "main") : NULL;
	if (b) {
		while ((rc = sqlite3_backup_step(b, -1)) == SQLITE_BUSY || rc == SQLITE_LOCKED)
			sqlite3_sleep(20);
		rc = sqlite3_backup_finish(b) == SQLITE_OK && rc == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
	} else {
		rc = SQLITE_ERROR;
	}
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(dst, "PRAGMA journal_mode=DELETE", NULL, NULL, NULL);
	if (rc != SQLITE_OK && dst)
		log_debug("backup to %s: %s", path, sqlite3_errmsg(dst));
	sqlite3_close(dst);
	if (rc != SQLITE_OK)
		unlink(path);
	return rc == SQLITE_OK ? 0 : MEF_ESTORE;
}

static int
sq_cred_stamp(struct store *s, int64_t *ret)
{
	struct store_sq *q = sq(s);
	sqlite3_stmt *st = q->st[ST_CRED_STAMP];
	int r;

	if ((r = sq_row(q, st)) < 0)
		return r == MEF_ENOTFOUND ? MEF_ESTORE : r;
	*ret = sqlite3_column_int64(st, 0);
	sq_release(st);
	return 0;
}

/* Outer transaction (store_tx_begin / store_tx_end). */
static int
sq_tx_outer(struct store *s, int what)
{
	struct store_sq *q = sq(s);
	int r;

	if (what == 0) {
		if (q->outer)
			return MEF_EBUSY;
		if ((r = tx_begin(q)) == 0)
			q->outer = true;
		return r;
	}
	if (!q->outer)
		return MEF_EINVAL;
	q->outer = false;
	return tx_end(q, what == 1 ? 0 : MEF_EINTERNAL) == 0 ? 0 : what == 1 ? MEF_ESTORE : 0;
}

const struct store_ops store_sqlite_ops = {
	.name = "sqlite",
	.open = sq_open,
	.close = sq_close,
	.client_add = sq_client_add,
	.client_update = sq_client_update,
	.client_get = sq_client_get,
	.client_find_psk = sq_client_find_psk,
	.client_find_cert = sq_client_find_cert,
	.client_remove = sq_client_remove,
	.client_list = sq_client_list,
	.member_set_disabled = sq_member_set_disabled,
	.member_is_disabled = sq_member_is_disabled,
	.member_disabled_list = sq_member_disabled_list,
	.group_add = sq_group_add,
	.group_get = sq_group_get,
	.group_match = sq_group_match,
	.group_scan = sq_group_scan,
	.glob = sq_glob,
	.group_remove = sq_group_remove,
	.group_list = sq_group_list,
	.ke_put = sq_ke_put,
	.ke_get = sq_ke_get,
	.ke_list = sq_ke_list,
	.ke_revoke = sq_ke_revoke,
	.ke_sweep = sq_ke_sweep,
	.cert_put = sq_cert_put,
	.cert_get = sq_cert_get,
	.cert_revoke = sq_cert_revoke,
	.cert_list = sq_cert_list,
	.cert_revoked_count = sq_cert_revoked_count,
	.mmef = &sqlite_mmef_ops,
	.tx_outer = sq_tx_outer,
	.backup = sq_backup,
	.cred_stamp = sq_cred_stamp,
};

sqlite3_stmt *
store_sqlite_cached(struct store *s, const char *sql)
{
	struct store_sq *q = sq(s);
	size_t n = sizeof(q->cached) / sizeof(q->cached[0]), i;

	for (i = 0; i < n && q->cached[i].sql; i++)
		if (q->cached[i].sql == sql)
			return sqlite3_stmt_busy(q->cached[i].st) ? NULL : q->cached[i].st;
	if (i == n || sqlite3_prepare_v3(q->db, sql, -1, SQLITE_PREPARE_PERSISTENT,
					 &q->cached[i].st, NULL) != SQLITE_OK)
		return NULL;
	q->cached[i].sql = sql;
	return q->cached[i].st;
}

void
store_sqlite_done(struct store *s, sqlite3_stmt *st)
{
	struct store_sq *q = sq(s);

	for (size_t i = 0; i < sizeof(q->cached) / sizeof(q->cached[0]); i++) {
		if (q->cached[i].st == st && st) {
			sqlite3_reset(st);
			sqlite3_clear_bindings(st);
			return;
		}
	}
	sqlite3_finalize(st);
}

struct sqlite3 *
store_sqlite_db(struct store *s)
{
	return sq(s)->db;
}
