/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * SQLite rows of the Mmef resources: client registrations, key
 * registrations (wrapped key, target list) and the per-registration command
 * queue. Shares the connection of store_sqlite.c; every call is one
 * transaction, so a request applies completely or not at all.
 */
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mef/err.h"
#include "mef/log.h"
#include "mmef_internal.h"

/* Schema version 2 (appended to store_sqlite.c's migrations[]). */
const char sqlite_mmef_schema[] =
	"CREATE TABLE mmef_reg ("
	" ri TEXT PRIMARY KEY NOT NULL,"
	" client_id TEXT NOT NULL,"
	" admin_fqdn TEXT NOT NULL,"
	" lbl TEXT NOT NULL DEFAULT '',"
	" et INTEGER NOT NULL, ct INTEGER NOT NULL, lt INTEGER NOT NULL,"
	" last_cmd_id INTEGER NOT NULL DEFAULT 0,"
	" next_cmd_id INTEGER NOT NULL DEFAULT 1,"
	" UNIQUE (client_id, admin_fqdn));"
	"CREATE INDEX mmef_reg_et ON mmef_reg(et);"
	"CREATE TABLE mmef_keyreg ("
	" rel_id TEXT PRIMARY KEY NOT NULL,"
	" source_id TEXT NOT NULL,"
	" admin_fqdn TEXT NOT NULL,"
	" suid INTEGER NOT NULL,"
	" lbl TEXT NOT NULL DEFAULT '',"
	" et INTEGER NOT NULL, ct INTEGER NOT NULL, lt INTEGER NOT NULL,"
	" exported INTEGER NOT NULL DEFAULT 0,"
	" key_wrapped BLOB NOT NULL);"
	"CREATE INDEX mmef_keyreg_et ON mmef_keyreg(et);"
	"CREATE TABLE mmef_keyreg_targets ("
	" rel_id TEXT NOT NULL,"
	" pos INTEGER NOT NULL,"
	" target_id TEXT NOT NULL,"
	" PRIMARY KEY (rel_id, pos));"
	"CREATE TABLE mmef_cmd ("
	" ri TEXT NOT NULL,"
	" seq INTEGER NOT NULL,"
	" cmd_id INTEGER NOT NULL DEFAULT 0,"
	" cls INTEGER NOT NULL,"
	" args TEXT NOT NULL,"
	" target_id TEXT NOT NULL DEFAULT '',"
	" state INTEGER NOT NULL DEFAULT 0,"
	" status INTEGER NOT NULL DEFAULT -1,"
	" queued INTEGER NOT NULL, issued INTEGER NOT NULL DEFAULT 0,"
	" updated INTEGER NOT NULL DEFAULT 0,"
	" PRIMARY KEY (ri, seq));";

#define REG_COLS "ri, client_id, admin_fqdn, lbl, et, ct, lt, last_cmd_id, next_cmd_id"
#define KEY_COLS "rel_id, source_id, admin_fqdn, suid, lbl, et, ct, lt, exported"
#define CMD_COLS "ri, seq, cmd_id, cls, args, target_id, state, status, queued, issued, updated"
#define OPEN_CMDS "(SELECT count(*) FROM mmef_cmd c WHERE c.ri = mmef_reg.ri AND c.state <> 1)"

/* --- small statement helpers: bind values from a NULL-terminated spec string --- */

/* Prepares sql and binds args: 's' text, 'i' int64, 'b' blob (struct store_blob *). */
static int
prep(sqlite3 *db, sqlite3_stmt **ret, const char *sql, const char *spec, ...)
{
	sqlite3_stmt *st;
	va_list ap;
	int rc = SQLITE_OK;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
		log_debug("sqlite prepare: %s", sqlite3_errmsg(db));
		return MEF_ESTORE;
	}
	va_start(ap, spec);
	for (int i = 1; spec[i - 1] && rc == SQLITE_OK; i++) {
		const struct store_blob *b;

		switch (spec[i - 1]) {
		case 's':
			rc = sqlite3_bind_text(st, i, va_arg(ap, const char *), -1, SQLITE_TRANSIENT);
			break;
		case 'i':
			rc = sqlite3_bind_int64(st, i, va_arg(ap, int64_t));
			break;
		default:
			b = va_arg(ap, const struct store_blob *);
			rc = sqlite3_bind_blob(st, i, b->p, (int)b->len, SQLITE_TRANSIENT);
			break;
		}
	}
	va_end(ap);
	if (rc != SQLITE_OK) {
		sqlite3_finalize(st);
		return MEF_ESTORE;
	}
	*ret = st;
	return 0;
}

static int
fold(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_OK:
	case SQLITE_DONE:
	case SQLITE_ROW:
		return 0;
	case SQLITE_CONSTRAINT:
		return MEF_EEXIST;
	case SQLITE_NOMEM:
		return MEF_ENOMEM;
	default:
		return MEF_ESTORE;
	}
}

/* Steps a statement without rows and finalizes it; *ret_changes (may be NULL) gets the row count. */
static int
run(sqlite3 *db, sqlite3_stmt *st, unsigned *ret_changes)
{
	int rc = sqlite3_step(st);

	if (rc != SQLITE_DONE)
		log_debug("sqlite: %s", sqlite3_errmsg(db));
	sqlite3_finalize(st);
	if (rc == SQLITE_DONE && ret_changes)
		*ret_changes = (unsigned)sqlite3_changes(db);
	return rc == SQLITE_DONE ? 0 : (fold(rc) ? fold(rc) : MEF_ESTORE);
}

static int
exec(sqlite3 *db, const char *sql)
{
	return sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : MEF_ESTORE;
}

static int
tx_begin(sqlite3 *db)
{
	return exec(db, "BEGIN IMMEDIATE");
}

static int
tx_end(sqlite3 *db, int r)
{
	if (r == 0)
		r = exec(db, "COMMIT");
	if (r < 0 && !sqlite3_get_autocommit(db))
		(void)exec(db, "ROLLBACK");
	return r;
}

static void
col_text(sqlite3_stmt *st, int i, char *out, size_t outlen)
{
	const unsigned char *t = sqlite3_column_text(st, i);

	snprintf(out, outlen, "%s", t ? (const char *)t : "");
}

/* --- client registrations --- */

static void
reg_from_row(sqlite3_stmt *st, struct mmef_reg *r)
{
	memset(r, 0, sizeof(*r));
	col_text(st, 0, r->ri, sizeof(r->ri));
	col_text(st, 1, r->client_id, sizeof(r->client_id));
	col_text(st, 2, r->admin_fqdn, sizeof(r->admin_fqdn));
	col_text(st, 3, r->lbl, sizeof(r->lbl));
	r->et = sqlite3_column_int64(st, 4);
	r->ct = sqlite3_column_int64(st, 5);
	r->lt = sqlite3_column_int64(st, 6);
	r->last_cmd_id = sqlite3_column_int64(st, 7);
	r->next_cmd_id = sqlite3_column_int64(st, 8);
	r->cmds_pending = (unsigned)sqlite3_column_int(st, 9);
}

static int
sm_reg_add(struct store *s, const struct mmef_reg *r)
{
	sqlite3 *db = store_sqlite_db(s);
	sqlite3_stmt *st;
	int e;

	if ((e = prep(db, &st, "INSERT INTO mmef_reg (" REG_COLS ") VALUES (?,?,?,?,?,?,?,0,1)",
		      "ssssiii", r->ri, r->client_id, r->admin_fqdn, r->lbl, r->et, r->ct, r->lt)))
		return e;
	return run(db, st, NULL);
}

/* One row of a query into *ret: 0, MEF_ENOTFOUND or MEF_ESTORE; finalizes st. */
static int
one_reg(sqlite3_stmt *st, struct mmef_reg *ret)
{
	int rc = sqlite3_step(st), r = 0;

	if (rc == SQLITE_ROW)
		reg_from_row(st, ret);
	else
		r = rc == SQLITE_DONE ? MEF_ENOTFOUND : MEF_ESTORE;
	sqlite3_finalize(st);
	return r;
}

static int
sm_reg_get(struct store *s, const char *ri, struct mmef_reg *ret)
{
	sqlite3_stmt *st;
	int e;

	if ((e = prep(store_sqlite_db(s), &st,
		      "SELECT " REG_COLS ", " OPEN_CMDS " FROM mmef_reg WHERE ri = ?", "s", ri)))
		return e;
	return one_reg(st, ret);
}

static int
sm_reg_update(struct store *s, const struct mmef_reg *r)
{
	sqlite3 *db = store_sqlite_db(s);
	sqlite3_stmt *st;
	unsigned n = 0;
	int e;

	if ((e = prep(db, &st, "UPDATE mmef_reg SET et = ?, lbl = ?, lt = ? WHERE ri = ?", "isis",
		      r->et, r->lbl, r->lt, r->ri)))
		return e;
	if ((e = run(db, st, &n)))
		return e;
	return n ? 0 : MEF_ENOTFOUND;
}

/* Deletes rows of ri from the registration and command tables. */
static int
reg_delete_rows(sqlite3 *db, const char *ri, unsigned *ret_n)
{
	sqlite3_stmt *st;
	int e;

	if ((e = prep(db, &st, "DELETE FROM mmef_cmd WHERE ri = ?", "s", ri)) || (e = run(db, st, NULL)))
		return e;
	if ((e = prep(db, &st, "DELETE FROM mmef_reg WHERE ri = ?", "s", ri)))
		return e;
	return run(db, st, ret_n);
}

static int
sm_reg_remove(struct store *s, const char *ri)
{
	sqlite3 *db = store_sqlite_db(s);
	unsigned n = 0;
	int r;

	if ((r = tx_begin(db)))
		return r;
	r = reg_delete_rows(db, ri, &n);
	if (r == 0 && n == 0)
		r = MEF_ENOTFOUND;
	return tx_end(db, r);
}

static int
sm_reg_list(struct store *s, store_mmef_reg_cb cb, void *ctx)
{
	static struct mmef_reg r;
	sqlite3_stmt *st;
	int e, rc;

	if ((e = prep(store_sqlite_db(s), &st,
		      "SELECT " REG_COLS ", " OPEN_CMDS " FROM mmef_reg ORDER BY client_id, ri", "")))
		return e;
	while (e == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		reg_from_row(st, &r);
		e = cb(ctx, &r);
	}
	if (e == 0 && rc != SQLITE_DONE)
		e = MEF_ESTORE;
	sqlite3_finalize(st);
	return e;
}

/* --- key registrations --- */

static void
key_from_row(sqlite3_stmt *st, struct mmef_keyreg *k)
{
	memset(k, 0, sizeof(*k));
	col_text(st, 0, k->rel_id, sizeof(k->rel_id));
	col_text(st, 1, k->source_id, sizeof(k->source_id));
	col_text(st, 2, k->admin_fqdn, sizeof(k->admin_fqdn));
	k->suid = sqlite3_column_int(st, 3);
	col_text(st, 4, k->lbl, sizeof(k->lbl));
	k->et = sqlite3_column_int64(st, 5);
	k->ct = sqlite3_column_int64(st, 6);
	k->lt = sqlite3_column_int64(st, 7);
	k->exported = sqlite3_column_int(st, 8) != 0;
}

static int
targets_load(sqlite3 *db, struct mmef_keyreg *k)
{
	sqlite3_stmt *st;
	int e, rc;

	if ((e = prep(db, &st, "SELECT target_id FROM mmef_keyreg_targets WHERE rel_id = ? ORDER BY pos",
		      "s", k->rel_id)))
		return e;
	k->n_targets = 0;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW && k->n_targets < MEF_MAX_TARGETS)
		col_text(st, 0, k->targets[k->n_targets++], MEF_ID_MAX);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : MEF_ESTORE;
}

static int
targets_put(sqlite3 *db, const struct mmef_keyreg *k)
{
	sqlite3_stmt *st;
	int e;

	if ((e = prep(db, &st, "DELETE FROM mmef_keyreg_targets WHERE rel_id = ?", "s", k->rel_id)) ||
	    (e = run(db, st, NULL)))
		return e;
	for (size_t i = 0; i < k->n_targets && e == 0; i++) {
		e = prep(db, &st, "INSERT INTO mmef_keyreg_targets VALUES (?,?,?)", "sis", k->rel_id,
			 (int64_t)i, k->targets[i]);
		if (e == 0)
			e = run(db, st, NULL);
	}
	return e;
}

/* MEF_EDENIED unless source holds an unexpired registration for admin_fqdn. */
static int
source_registered(sqlite3 *db, const struct mmef_keyreg *k, int64_t now)
{
	sqlite3_stmt *st;
	int e, rc;

	if ((e = prep(db, &st, "SELECT 1 FROM mmef_reg WHERE client_id = ? AND admin_fqdn = ? AND et > ?",
		      "ssi", k->source_id, k->admin_fqdn, now)))
		return e;
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc == SQLITE_ROW)
		return 0;
	return rc == SQLITE_DONE ? MEF_EDENIED : MEF_ESTORE;
}

/* MEF_EEXIST if rel_id is registered already. */
static int
rel_id_free(sqlite3 *db, const char *rel_id)
{
	sqlite3_stmt *st;
	int e, rc;

	if ((e = prep(db, &st, "SELECT 1 FROM mmef_keyreg WHERE rel_id = ?", "s", rel_id)))
		return e;
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc == SQLITE_DONE)
		return 0;
	return rc == SQLITE_ROW ? MEF_EEXIST : MEF_ESTORE;
}

static int
sm_key_check(struct store *s, const struct mmef_keyreg *k, int64_t now)
{
	sqlite3 *db = store_sqlite_db(s);
	int r = source_registered(db, k, now);

	return r ? r : rel_id_free(db, k->rel_id);
}

/*
 * Inside the group commit's transaction (the writer thread, kebatch) the
 * registration is a savepoint of its own, so a refusal undoes it alone.
 */
static int
sm_key_add(struct store *s, const struct mmef_keyreg *k, const struct store_blob *blob, int64_t now)
{
	sqlite3 *db = store_sqlite_db(s);
	bool nested = !sqlite3_get_autocommit(db);
	sqlite3_stmt *st;
	int r;

	if ((r = nested ? exec(db, "SAVEPOINT keyreg") : tx_begin(db)))
		return r;
	r = source_registered(db, k, now);
	if (r == 0)
		r = prep(db, &st,
			 "INSERT INTO mmef_keyreg (" KEY_COLS ", key_wrapped) VALUES (?,?,?,?,?,?,?,?,?,?)",
			 "sssisiiiib", k->rel_id, k->source_id, k->admin_fqdn, (int64_t)k->suid, k->lbl,
			 k->et, k->ct, k->lt, (int64_t)k->exported, blob);
	if (r == 0)
		r = run(db, st, NULL);
	if (r == 0)
		r = targets_put(db, k);
	if (!nested)
		return tx_end(db, r);
	if (r != 0)
		(void)exec(db, "ROLLBACK TO keyreg");
	(void)exec(db, "RELEASE keyreg");
	return r;
}

static int
sm_key_get(struct store *s, const char *rel_id, struct mmef_keyreg *ret, struct store_blob *ret_blob)
{
	static struct mmef_keyreg k;
	sqlite3 *db = store_sqlite_db(s);
	struct store_blob b = {0};
	sqlite3_stmt *st;
	int e, rc;

	if ((e = prep(db, &st, "SELECT " KEY_COLS ", key_wrapped FROM mmef_keyreg WHERE rel_id = ?", "s",
		      rel_id)))
		return e;
	if ((rc = sqlite3_step(st)) != SQLITE_ROW) {
		sqlite3_finalize(st);
		return rc == SQLITE_DONE ? MEF_ENOTFOUND : MEF_ESTORE;
	}
	key_from_row(st, &k);
	if (ret_blob) {
		int n = sqlite3_column_bytes(st, 9);

		b.p = n > 0 ? malloc((size_t)n) : NULL;
		if (b.p) {
			memcpy(b.p, sqlite3_column_blob(st, 9), (size_t)n);
			b.len = (size_t)n;
		}
	}
	sqlite3_finalize(st);
	e = ret_blob && !b.p ? MEF_ENOMEM : targets_load(db, &k);
	if (e) {
		free(b.p);
		return e;
	}
	*ret = k;
	if (ret_blob)
		*ret_blob = b;
	return 0;
}

static int
sm_key_update(struct store *s, const struct mmef_keyreg *k)
{
	sqlite3 *db = store_sqlite_db(s);
	sqlite3_stmt *st;
	unsigned n = 0;
	int r;

	if ((r = tx_begin(db)))
		return r;
	r = prep(db, &st, "UPDATE mmef_keyreg SET et = ?, lbl = ?, lt = ? WHERE rel_id = ?", "isis",
		 k->et, k->lbl, k->lt, k->rel_id);
	if (r == 0)
		r = run(db, st, &n);
	if (r == 0 && n == 0)
		r = MEF_ENOTFOUND;
	if (r == 0)
		r = targets_put(db, k);
	return tx_end(db, r);
}

static int
key_delete_rows(sqlite3 *db, const char *where, const char *spec, const void *arg, unsigned *ret_n)
{
	char sql[256];
	sqlite3_stmt *st;
	int e;

	snprintf(sql, sizeof(sql),
		 "DELETE FROM mmef_keyreg_targets WHERE rel_id IN (SELECT rel_id FROM mmef_keyreg WHERE %s)",
		 where);
	e = spec[0] == 's' ? prep(db, &st, sql, "s", (const char *)arg)
			   : prep(db, &st, sql, "i", *(const int64_t *)arg);
	if (e || (e = run(db, st, NULL)))
		return e;
	snprintf(sql, sizeof(sql), "DELETE FROM mmef_keyreg WHERE %s", where);
	e = spec[0] == 's' ? prep(db, &st, sql, "s", (const char *)arg)
			   : prep(db, &st, sql, "i", *(const int64_t *)arg);
	return e ? e : run(db, st, ret_n);
}

static int
sm_key_remove(struct store *s, const char *rel_id)
{
	sqlite3 *db = store_sqlite_db(s);
	unsigned n = 0;
	int r;

	if ((r = tx_begin(db)))
		return r;
	r = key_delete_rows(db, "rel_id = ?", "s", rel_id, &n);
	if (r == 0 && n == 0)
		r = MEF_ENOTFOUND;
	return tx_end(db, r);
}

static int
sm_key_list(struct store *s, bool with_blobs, store_mmef_key_raw_cb cb, void *ctx)
{
	static struct mmef_keyreg k;
	sqlite3 *db = store_sqlite_db(s);
	sqlite3_stmt *st;
	int e, rc = SQLITE_DONE;

	if ((e = prep(db, &st, "SELECT " KEY_COLS ", key_wrapped FROM mmef_keyreg ORDER BY ct, rel_id", "")))
		return e;
	while (e == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct store_blob b = {(uint8_t *)sqlite3_column_blob(st, 9),
				       (size_t)sqlite3_column_bytes(st, 9)};

		key_from_row(st, &k);
		e = targets_load(db, &k);
		if (e == 0)
			e = cb(ctx, &k, with_blobs ? &b : NULL);
	}
	if (e == 0 && rc != SQLITE_DONE)
		e = MEF_ESTORE;
	sqlite3_finalize(st);
	return e;
}

/* --- commands --- */

static void
cmd_from_row(sqlite3_stmt *st, struct mmef_cmd *c)
{
	memset(c, 0, sizeof(*c));
	col_text(st, 0, c->ri, sizeof(c->ri));
	c->seq = sqlite3_column_int64(st, 1);
	c->cmd_id = sqlite3_column_int64(st, 2);
	c->cls = sqlite3_column_int(st, 3);
	col_text(st, 4, c->args, sizeof(c->args));
	col_text(st, 5, c->target_id, sizeof(c->target_id));
	c->state = sqlite3_column_int(st, 6);
	c->status = sqlite3_column_int(st, 7);
	c->queued = sqlite3_column_int64(st, 8);
	c->issued = sqlite3_column_int64(st, 9);
	c->updated = sqlite3_column_int64(st, 10);
}

static int
sm_cmd_queue(struct store *s, const struct mmef_cmd *c, int64_t now, int64_t *ret_seq)
{
	sqlite3 *db = store_sqlite_db(s);
	static struct mmef_reg reg;
	sqlite3_stmt *st;
	int64_t seq = 0;
	int r;

	if ((r = tx_begin(db)))
		return r;
	r = sm_reg_get(s, c->ri, &reg);
	if (r == 0)
		r = prep(db, &st, "SELECT coalesce(max(seq), 0) + 1 FROM mmef_cmd WHERE ri = ?", "s", c->ri);
	if (r == 0) {
		r = sqlite3_step(st) == SQLITE_ROW ? 0 : MEF_ESTORE;
		seq = sqlite3_column_int64(st, 0);
		sqlite3_finalize(st);
	}
	if (r == 0)
		r = prep(db, &st,
			 "INSERT INTO mmef_cmd (ri, seq, cls, args, target_id, queued) VALUES (?,?,?,?,?,?)",
			 "siissi", c->ri, seq, (int64_t)c->cls, c->args, c->target_id, now);
	if (r == 0)
		r = run(db, st, NULL);
	if ((r = tx_end(db, r)) == 0)
		*ret_seq = seq;
	return r;
}

/* The status of the last issued command, if it is still open (TS-0003 8.3.9.3: else discarded). */
static int
cmd_record(sqlite3 *db, const struct mmef_reg *reg, int64_t cmd_id, int status, int64_t now)
{
	sqlite3_stmt *st;
	int e;

	if (cmd_id != reg->last_cmd_id)
		return 0;
	if ((e = prep(db, &st,
		      "UPDATE mmef_cmd SET state = 1, status = ?, updated = ? WHERE ri = ? AND cmd_id = ?"
		      " AND state IN (10, 11)",
		      "iisi", (int64_t)status, now, reg->ri, cmd_id)))
		return e;
	return run(db, st, NULL);
}

/* The first open command of ri into *ret; MEF_ENOTFOUND when none. */
static int
cmd_first_open(sqlite3 *db, const char *ri, struct mmef_cmd *ret)
{
	sqlite3_stmt *st;
	int e, rc;

	if ((e = prep(db, &st,
		      "SELECT " CMD_COLS " FROM mmef_cmd WHERE ri = ? AND state <> 1 ORDER BY seq LIMIT 1",
		      "s", ri)))
		return e;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		cmd_from_row(st, ret);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? MEF_ENOTFOUND : MEF_ESTORE;
}

/* Issues (or re-issues) c, or a NO_MORE_COMMANDS id when none; updates the registration counters. */
static int
cmd_issue(sqlite3 *db, struct mmef_reg *reg, struct mmef_cmd *c, bool none, int64_t now)
{
	sqlite3_stmt *st;
	int e;

	if (none || c->state == MMEF_CMD_QUEUED) {
		c->cmd_id = reg->next_cmd_id++;
		c->state = MMEF_CMD_ISSUED;
	} else {
		c->state = MMEF_CMD_REISSUED;
	}
	c->issued = now;
	reg->last_cmd_id = c->cmd_id;
	if ((e = prep(db, &st, "UPDATE mmef_reg SET last_cmd_id = ?, next_cmd_id = ? WHERE ri = ?",
		      "iis", reg->last_cmd_id, reg->next_cmd_id, reg->ri)) ||
	    (e = run(db, st, NULL)) || none)
		return e;
	if ((e = prep(db, &st, "UPDATE mmef_cmd SET cmd_id = ?, state = ?, issued = ? WHERE ri = ? AND seq = ?",
		      "iiisi", c->cmd_id, (int64_t)c->state, now, c->ri, c->seq)))
		return e;
	return run(db, st, NULL);
}

static int
sm_cmd_next(struct store *s, const char *ri, bool has_status, int64_t cmd_id, int status,
	    int64_t now, struct mmef_cmd *ret, bool *ret_none)
{
	static struct mmef_reg reg;
	static struct mmef_cmd c;
	sqlite3 *db = store_sqlite_db(s);
	bool none = false;
	int r;

	if ((r = tx_begin(db)))
		return r;
	memset(&c, 0, sizeof(c));
	r = sm_reg_get(s, ri, &reg);
	if (r == 0 && has_status)
		r = cmd_record(db, &reg, cmd_id, status, now);
	if (r == 0 && (r = cmd_first_open(db, ri, &c)) == MEF_ENOTFOUND) {
		none = true;
		snprintf(c.ri, sizeof(c.ri), "%s", ri);
		c.cls = MMEF_CMD_NO_MORE;
		r = 0;
	}
	if (r == 0)
		r = cmd_issue(db, &reg, &c, none, now);
	if ((r = tx_end(db, r)) == 0) {
		*ret = c;
		*ret_none = none;
	}
	return r;
}

static int
sm_cmd_list(struct store *s, const char *ri, store_mmef_cmd_cb cb, void *ctx)
{
	static struct mmef_cmd c;
	sqlite3_stmt *st;
	int e, rc = SQLITE_DONE;

	e = ri ? prep(store_sqlite_db(s), &st,
		      "SELECT " CMD_COLS " FROM mmef_cmd WHERE ri = ? ORDER BY ri, seq", "s", ri)
	       : prep(store_sqlite_db(s), &st, "SELECT " CMD_COLS " FROM mmef_cmd ORDER BY ri, seq", "");
	if (e)
		return e;
	while (e == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		cmd_from_row(st, &c);
		e = cb(ctx, &c);
	}
	if (e == 0 && rc != SQLITE_DONE)
		e = MEF_ESTORE;
	sqlite3_finalize(st);
	return e;
}

static int
sm_sweep(struct store *s, int64_t now, unsigned *ret_regs, unsigned *ret_keys)
{
	sqlite3 *db = store_sqlite_db(s);
	unsigned nr = 0, nk = 0;
	sqlite3_stmt *st;
	int r;

	if ((r = tx_begin(db)))
		return r;
	r = prep(db, &st, "DELETE FROM mmef_cmd WHERE ri IN (SELECT ri FROM mmef_reg WHERE et <= ?)", "i",
		 now);
	if (r == 0)
		r = run(db, st, NULL);
	if (r == 0)
		r = prep(db, &st, "DELETE FROM mmef_reg WHERE et <= ?", "i", now);
	if (r == 0)
		r = run(db, st, &nr);
	if (r == 0)
		r = key_delete_rows(db, "et <= ?", "i", &now, &nk);
	if ((r = tx_end(db, r)) == 0) {
		if (ret_regs)
			*ret_regs = nr;
		if (ret_keys)
			*ret_keys = nk;
	}
	return r;
}

const struct store_mmef_ops sqlite_mmef_ops = {
	.reg_add = sm_reg_add,
	.reg_get = sm_reg_get,
	.reg_update = sm_reg_update,
	.reg_remove = sm_reg_remove,
	.reg_list = sm_reg_list,
	.key_add = sm_key_add,
	.key_check = sm_key_check,
	.key_get = sm_key_get,
	.key_update = sm_key_update,
	.key_remove = sm_key_remove,
	.key_list = sm_key_list,
	.cmd_queue = sm_cmd_queue,
	.cmd_next = sm_cmd_next,
	.cmd_list = sm_cmd_list,
	.sweep = sm_sweep,
};
