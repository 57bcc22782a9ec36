/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * store_copy(): moves a single-node SQLite installation into PostgreSQL
 * (`mefctl migrate`). Rows travel as they are, wrapped blobs included, so
 * no secret is ever opened: both ends must use the same KEK. The source is
 * read in one snapshot, the target written in one transaction, and every
 * table's row count is compared on both sides afterwards.
 */
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

#include "mef/err.h"
#include "mef/log.h"
#include "store_pg.h"

#define MAX_COLS 12

/* Parents before children (foreign keys); order columns keep list order. */
static const struct copy_table {
	const char *name;
	const char *cols;
	const char *order;
} tables[] = {
	{"clients", "id, admin_fqdn, kind, psk_identity, psk_wrapped, cert_san, enrolee_id, expiry,"
		    " disabled, created", "rowid"},
	{"client_targets", "client_id, pos, target_id, suid", "rowid"},
	{"groups", "name, pattern, secret_wrapped, admin_fqdn, enrolee_pattern, expiry, disabled,"
		   " created", "rowid"},
	{"group_targets", "group_name, pos, target_id, suid", "rowid"},
	{"member_disabled", "id", "rowid"},
	{"ke", "keid, client_id, enrolee_id, transport, created, expires, revoked, ke_wrapped",
	 "created, rowid"},
	{"certs", "serial, client_id, subject, san, not_before, not_after, issued, revoked,"
		  " revoked_at, der", "issued, rowid"},
	{"mmef_reg", "ri, client_id, admin_fqdn, lbl, et, ct, lt, last_cmd_id, next_cmd_id", "rowid"},
	{"mmef_keyreg", "rel_id, source_id, admin_fqdn, suid, lbl, et, ct, lt, exported, key_wrapped",
	 "rowid"},
	{"mmef_keyreg_targets", "rel_id, pos, target_id", "rowid"},
	{"mmef_cmd", "ri, seq, cmd_id, cls, args, target_id, state, status, queued, issued, updated",
	 "rowid"},
};

#define N_TABLES (sizeof(tables) / sizeof(tables[0]))
/* schema 4 added only cred_stamp, which the target keeps itself (its triggers count the copy) */
_Static_assert(STORE_SCHEMA_VERSION == 4, "a new schema version: add its tables to tables[]");

static int
sq_count(sqlite3 *db, const char *table, int64_t *ret)
{
	char sql[128];
	sqlite3_stmt *st;
	int rc;

	snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", table);
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		return MEF_ESTORE;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*ret = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 0 : MEF_ESTORE;
}

static int
pg_count(struct store *s, const char *table, int64_t *ret)
{
	char sql[128];
	PGresult *res;
	int r;

	snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", table);
	if ((r = pg_query(s, &res, sql, "")) < 0)
		return r;
	*ret = pg_int(res, 0, 0);
	PQclear(res);
	return 0;
}

/* "INSERT INTO t (cols) VALUES ($1, ..., $n)" for n columns. */
static void
insert_sql(const struct copy_table *t, int n, char *out, size_t outlen)
{
	size_t len = (size_t)snprintf(out, outlen, "INSERT INTO %s (%s) VALUES (", t->name, t->cols);

	for (int i = 1; i <= n && len < outlen; i++)
		len += (size_t)snprintf(out + len, outlen - len, "$%d%s", i, i < n ? ", " : ")");
}

/* One SQLite row as libpq parameters: text for numbers and text, binary for blobs. */
static void
row_params(sqlite3_stmt *st, int n, const char **v, int *len, int *fmt, char num[][24])
{
	for (int i = 0; i < n; i++) {
		int type = sqlite3_column_type(st, i);

		fmt[i] = type == SQLITE_BLOB;
		len[i] = sqlite3_column_bytes(st, i);
		if (type == SQLITE_NULL) {
			v[i] = NULL;
		} else if (type == SQLITE_INTEGER) {
			snprintf(num[i], sizeof(num[i]), "%lld", (long long)sqlite3_column_int64(st, i));
			v[i] = num[i];
		} else if (type == SQLITE_BLOB) {
			v[i] = sqlite3_column_blob(st, i);
		} else {
			v[i] = (const char *)sqlite3_column_text(st, i);
		}
	}
}

static int
copy_table(sqlite3 *db, PGconn *conn, const struct copy_table *t)
{
	char sql[512], ins[512], num[MAX_COLS][24];
	const char *v[MAX_COLS];
	int len[MAX_COLS], fmt[MAX_COLS], n, rc, r = 0;
	sqlite3_stmt *st;

	snprintf(sql, sizeof(sql), "SELECT %s FROM %s ORDER BY %s", t->cols, t->name, t->order);
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		return MEF_ESTORE;
	n = sqlite3_column_count(st);
	insert_sql(t, n, ins, sizeof(ins));
	while (r == 0 && n <= MAX_COLS && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		PGresult *res;

		row_params(st, n, v, len, fmt, num);
		res = PQexecParams(conn, ins, n, NULL, v, len, fmt, 0);
		if (PQresultStatus(res) != PGRES_COMMAND_OK) {
			log_debug("postgresql copy %s: %s", t->name, PQerrorMessage(conn));
			r = MEF_ESTORE;
		}
		PQclear(res);
	}
	if (r == 0 && (n > MAX_COLS || rc != SQLITE_DONE))
		r = MEF_ESTORE;
	sqlite3_finalize(st);
	return r;
}

static int
target_empty(struct store *to)
{
	int64_t n;
	int r;

	for (size_t i = 0; i < N_TABLES; i++) {
		if ((r = pg_count(to, tables[i].name, &n)) < 0)
			return r;
		if (n != 0)
			return MEF_EEXIST;
	}
	return 0;
}

/* Counts each table on both sides (source still in its snapshot) and reports them. */
static int
verify(sqlite3 *db, struct store *to, store_copy_cb cb, void *ctx)
{
	int64_t a, b;
	int r = 0, e;

	for (size_t i = 0; i < N_TABLES; i++) {
		if ((e = sq_count(db, tables[i].name, &a)) < 0 || (e = pg_count(to, tables[i].name, &b)) < 0)
			return e;
		if (cb && (e = cb(ctx, tables[i].name, a, b)) != 0)
			return e;
		if (a != b)
			r = MEF_EINTERNAL;
	}
	return r;
}

int
store_copy(struct store *from, struct store *to, store_copy_cb cb, void *ctx)
{
	sqlite3 *db;
	int r;

	if (from->ops != &store_sqlite_ops || to->ops != &store_pg_ops)
		return MEF_EUNSUPP;
	db = store_sqlite_db(from);
	if (sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
		return MEF_ESTORE;
	r = target_empty(to);
	if (r == 0)
		r = pg_begin(to);
	if (r == 0) {
		for (size_t i = 0; i < N_TABLES && r == 0; i++)
			r = copy_table(db, pg_conn(to), &tables[i]);
		r = pg_end(to, r);
	}
	if (r == 0)
		r = verify(db, to, cb, ctx);
	sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	return r;
}
