/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * PostgreSQL rows of the Mmef resources: client registrations, key
 * registrations and the per-registration command queue. Every call is one
 * transaction; queueing and issuing lock the registration row (SELECT ...
 * FOR UPDATE), so seq and cmdID stay unique when several instances serve
 * the same client at once.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mef/err.h"
#include "mmef_internal.h"
#include "store_pg.h"

/* Schema step 2 -> 3 (store_pg.c migrations[]), the tables of sqlite_mmef.c. */
const char pg_mmef_schema[] =
	"CREATE TABLE mmef_reg ("
	" ri TEXT PRIMARY KEY,"
	" client_id TEXT NOT NULL,"
	" admin_fqdn TEXT NOT NULL,"
	" lbl TEXT NOT NULL DEFAULT '',"
	" et BIGINT NOT NULL, ct BIGINT NOT NULL, lt BIGINT NOT NULL,"
	" last_cmd_id BIGINT NOT NULL DEFAULT 0,"
	" next_cmd_id BIGINT NOT NULL DEFAULT 1,"
	" UNIQUE (client_id, admin_fqdn));"
	"CREATE INDEX mmef_reg_et ON mmef_reg(et);"
	"CREATE TABLE mmef_keyreg ("
	" rel_id TEXT PRIMARY KEY,"
	" source_id TEXT NOT NULL,"
	" admin_fqdn TEXT NOT NULL,"
	" suid INTEGER NOT NULL,"
	" lbl TEXT NOT NULL DEFAULT '',"
	" et BIGINT NOT NULL, ct BIGINT NOT NULL, lt BIGINT NOT NULL,"
	" exported INTEGER NOT NULL DEFAULT 0,"
	" key_wrapped BYTEA NOT NULL);"
	"CREATE INDEX mmef_keyreg_et ON mmef_keyreg(et);"
	"CREATE TABLE mmef_keyreg_targets ("
	" rel_id TEXT NOT NULL,"
	" pos INTEGER NOT NULL,"
	" target_id TEXT NOT NULL,"
	" PRIMARY KEY (rel_id, pos));"
	"CREATE TABLE mmef_cmd ("
	" ri TEXT NOT NULL,"
	" seq BIGINT NOT NULL,"
	" cmd_id BIGINT NOT NULL DEFAULT 0,"
	" cls INTEGER NOT NULL,"
	" args TEXT NOT NULL,"
	" target_id TEXT NOT NULL DEFAULT '',"
	" state INTEGER NOT NULL DEFAULT 0,"
	" status INTEGER NOT NULL DEFAULT -1,"
	" queued BIGINT NOT NULL, issued BIGINT NOT NULL DEFAULT 0,"
	" updated BIGINT NOT NULL DEFAULT 0,"
	" PRIMARY KEY (ri, seq));";

#define REG_COLS "ri, client_id, admin_fqdn, lbl, et, ct, lt, last_cmd_id, next_cmd_id"
#define KEY_COLS "rel_id, source_id, admin_fqdn, suid, lbl, et, ct, lt, exported"
#define CMD_COLS "ri, seq, cmd_id, cls, args, target_id, state, status, queued, issued, updated"
#define OPEN_CMDS "(SELECT count(*) FROM mmef_cmd c WHERE c.ri = mmef_reg.ri AND c.state <> 1)"

/* --- client registrations --- */

static void
reg_from_row(const PGresult *res, int row, struct mmef_reg *r)
{
	memset(r, 0, sizeof(*r));
	pg_text(res, row, 0, r->ri, sizeof(r->ri));
	pg_text(res, row, 1, r->client_id, sizeof(r->client_id));
	pg_text(res, row, 2, r->admin_fqdn, sizeof(r->admin_fqdn));
	pg_text(res, row, 3, r->lbl, sizeof(r->lbl));
	r->et = pg_int(res, row, 4);
	r->ct = pg_int(res, row, 5);
	r->lt = pg_int(res, row, 6);
	r->last_cmd_id = pg_int(res, row, 7);
	r->next_cmd_id = pg_int(res, row, 8);
	r->cmds_pending = (unsigned)pg_int(res, row, 9);
}

static int
pm_reg_add(struct store *s, const struct mmef_reg *r)
{
	return pg_run(s, NULL, "INSERT INTO mmef_reg (" REG_COLS ") VALUES ($1, $2, $3, $4, $5, $6, $7, 0, 1)",
		      "ssssiii", r->ri, r->client_id, r->admin_fqdn, r->lbl, r->et, r->ct, r->lt);
}

/* sql selects REG_COLS and OPEN_CMDS for ri = $1; lock: FOR UPDATE (inside a transaction). */
static int
reg_load(struct store *s, const char *ri, bool lock, struct mmef_reg *ret)
{
	PGresult *res;
	int r;

	r = pg_query(s, &res, lock ? "SELECT " REG_COLS ", " OPEN_CMDS " FROM mmef_reg WHERE ri = $1 FOR UPDATE"
				   : "SELECT " REG_COLS ", " OPEN_CMDS " FROM mmef_reg WHERE ri = $1",
		     "s", ri);
	if (r < 0)
		return r;
	if (PQntuples(res) == 0)
		r = MEF_ENOTFOUND;
	else
		reg_from_row(res, 0, ret);
	PQclear(res);
	return r;
}

static int
pm_reg_get(struct store *s, const char *ri, struct mmef_reg *ret)
{
	return reg_load(s, ri, false, ret);
}

static int
pm_reg_update(struct store *s, const struct mmef_reg *r)
{
	unsigned n = 0;
	int e = pg_run(s, &n, "UPDATE mmef_reg SET et = $1, lbl = $2, lt = $3 WHERE ri = $4", "isis",
		       r->et, r->lbl, r->lt, r->ri);

	return e < 0 ? e : n ? 0 : MEF_ENOTFOUND;
}

static int
pm_reg_remove(struct store *s, const char *ri)
{
	unsigned n = 0;
	int r;

	if ((r = pg_begin(s)) < 0)
		return r;
	r = pg_run(s, NULL, "DELETE FROM mmef_cmd WHERE ri = $1", "s", ri);
	if (r == 0)
		r = pg_run(s, &n, "DELETE FROM mmef_reg WHERE ri = $1", "s", ri);
	if (r == 0 && n == 0)
		r = MEF_ENOTFOUND;
	return pg_end(s, r);
}

static int
pm_reg_list(struct store *s, store_mmef_reg_cb cb, void *ctx)
{
	struct mmef_reg reg;
	PGresult *res;
	int e = pg_query(s, &res, "SELECT " REG_COLS ", " OPEN_CMDS " FROM mmef_reg"
			 " ORDER BY client_id COLLATE \"C\", ri COLLATE \"C\"", "");

	if (e < 0)
		return e;
	for (int i = 0; e == 0 && i < PQntuples(res); i++) {
		reg_from_row(res, i, &reg);
		e = cb(ctx, &reg);
	}
	PQclear(res);
	return e;
}

/* --- key registrations --- */

static void
key_from_row(const PGresult *res, int row, struct mmef_keyreg *k)
{
	memset(k, 0, sizeof(*k));
	pg_text(res, row, 0, k->rel_id, sizeof(k->rel_id));
	pg_text(res, row, 1, k->source_id, sizeof(k->source_id));
	pg_text(res, row, 2, k->admin_fqdn, sizeof(k->admin_fqdn));
	k->suid = (int)pg_int(res, row, 3);
	pg_text(res, row, 4, k->lbl, sizeof(k->lbl));
	k->et = pg_int(res, row, 5);
	k->ct = pg_int(res, row, 6);
	k->lt = pg_int(res, row, 7);
	k->exported = pg_int(res, row, 8) != 0;
}

static int
targets_load(struct store *s, struct mmef_keyreg *k)
{
	PGresult *res;
	int r = pg_query(s, &res, "SELECT target_id FROM mmef_keyreg_targets WHERE rel_id = $1 ORDER BY pos",
			 "s", k->rel_id);

	if (r < 0)
		return r;
	k->n_targets = 0;
	for (int i = 0; i < PQntuples(res) && k->n_targets < MEF_MAX_TARGETS; i++)
		pg_text(res, i, 0, k->targets[k->n_targets++], MEF_ID_MAX);
	PQclear(res);
	return 0;
}

static int
targets_put(struct store *s, const struct mmef_keyreg *k)
{
	int e = pg_run(s, NULL, "DELETE FROM mmef_keyreg_targets WHERE rel_id = $1", "s", k->rel_id);

	for (size_t i = 0; i < k->n_targets && e == 0; i++)
		e = pg_run(s, NULL, "INSERT INTO mmef_keyreg_targets VALUES ($1, $2, $3)", "sis", k->rel_id,
			   (int64_t)i, k->targets[i]);
	return e;
}

/* MEF_EDENIED unless source holds an unexpired registration for admin_fqdn. */
static int
source_registered(struct store *s, const struct mmef_keyreg *k, int64_t now)
{
	PGresult *res;
	int r = pg_query(s, &res, "SELECT 1 FROM mmef_reg WHERE client_id = $1 AND admin_fqdn = $2"
			 " AND et > $3 FOR SHARE", "ssi", k->source_id, k->admin_fqdn, now);

	if (r < 0)
		return r;
	r = PQntuples(res) > 0 ? 0 : MEF_EDENIED;
	PQclear(res);
	return r;
}

static int
pm_key_add(struct store *s, const struct mmef_keyreg *k, const struct store_blob *blob, int64_t now)
{
	int r;

	if ((r = pg_begin(s)) < 0)
		return r;
	r = source_registered(s, k, now);
	if (r == 0)
		r = pg_run(s, NULL, "INSERT INTO mmef_keyreg (" KEY_COLS ", key_wrapped)"
			   " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
			   "sssisiiiib", k->rel_id, k->source_id, k->admin_fqdn, (int64_t)k->suid, k->lbl,
			   k->et, k->ct, k->lt, (int64_t)k->exported, blob);
	if (r == 0)
		r = targets_put(s, k);
	return pg_end(s, r);
}

static int
pm_key_check(struct store *s, const struct mmef_keyreg *k, int64_t now)
{
	PGresult *res;
	int r = source_registered(s, k, now);

	if (r == 0 && (r = pg_query(s, &res, "SELECT 1 FROM mmef_keyreg WHERE rel_id = $1", "s",
				    k->rel_id)) == 0) {
		r = PQntuples(res) > 0 ? MEF_EEXIST : 0;
		PQclear(res);
	}
	return r;
}

static int
pm_key_get(struct store *s, const char *rel_id, struct mmef_keyreg *ret, struct store_blob *ret_blob)
{
	struct store_blob b = {0};
	struct mmef_keyreg k;
	PGresult *res;
	int r = pg_query(s, &res, "SELECT " KEY_COLS ", key_wrapped FROM mmef_keyreg WHERE rel_id = $1",
			 "s", rel_id);

	if (r < 0)
		return r;
	if (PQntuples(res) == 0) {
		PQclear(res);
		return MEF_ENOTFOUND;
	}
	key_from_row(res, 0, &k);
	if (ret_blob)
		r = pg_blob(res, 0, 9, &b);
	PQclear(res);
	if (r == 0)
		r = targets_load(s, &k);
	if (r < 0) {
		free(b.p);
		return r;
	}
	*ret = k;
	if (ret_blob)
		*ret_blob = b;
	return 0;
}

static int
pm_key_update(struct store *s, const struct mmef_keyreg *k)
{
	unsigned n = 0;
	int r;

	if ((r = pg_begin(s)) < 0)
		return r;
	r = pg_run(s, &n, "UPDATE mmef_keyreg SET et = $1, lbl = $2, lt = $3 WHERE rel_id = $4", "isis",
		   k->et, k->lbl, k->lt, k->rel_id);
	if (r == 0 && n == 0)
		r = MEF_ENOTFOUND;
	if (r == 0)
		r = targets_put(s, k);
	return pg_end(s, r);
}

static int
pm_key_remove(struct store *s, const char *rel_id)
{
	unsigned n = 0;
	int r;

	if ((r = pg_begin(s)) < 0)
		return r;
	r = pg_run(s, NULL, "DELETE FROM mmef_keyreg_targets WHERE rel_id = $1", "s", rel_id);
	if (r == 0)
		r = pg_run(s, &n, "DELETE FROM mmef_keyreg WHERE rel_id = $1", "s", rel_id);
	if (r == 0 && n == 0)
		r = MEF_ENOTFOUND;
	return pg_end(s, r);
}

static int
pm_key_list(struct store *s, bool with_blobs, store_mmef_key_raw_cb cb, void *ctx)
{
	struct mmef_keyreg k;
	struct store_blob b;
	PGresult *res;
	int e = pg_query(s, &res, "SELECT " KEY_COLS ", key_wrapped FROM mmef_keyreg"
			 " ORDER BY ct, rel_id COLLATE \"C\"", "");

	if (e < 0)
		return e;
	for (int i = 0; e == 0 && i < PQntuples(res); i++) {
		key_from_row(res, i, &k);
		if ((e = targets_load(s, &k)) < 0 || (with_blobs && (e = pg_blob(res, i, 9, &b)) < 0))
			break;
		e = cb(ctx, &k, with_blobs ? &b : NULL);
		if (with_blobs)
			free(b.p);
	}
	PQclear(res);
	return e;
}

/* --- commands --- */

static void
cmd_from_row(const PGresult *res, int row, struct mmef_cmd *c)
{
	memset(c, 0, sizeof(*c));
	pg_text(res, row, 0, c->ri, sizeof(c->ri));
	c->seq = pg_int(res, row, 1);
	c->cmd_id = pg_int(res, row, 2);
	c->cls = (int)pg_int(res, row, 3);
	pg_text(res, row, 4, c->args, sizeof(c->args));
	pg_text(res, row, 5, c->target_id, sizeof(c->target_id));
	c->state = (int)pg_int(res, row, 6);
	c->status = (int)pg_int(res, row, 7);
	c->queued = pg_int(res, row, 8);
	c->issued = pg_int(res, row, 9);
	c->updated = pg_int(res, row, 10);
}

/* The registration row is locked first: two instances queueing at once take turns for seq. */
static int
pm_cmd_queue(struct store *s, const struct mmef_cmd *c, int64_t now, int64_t *ret_seq)
{
	struct mmef_reg reg;
	PGresult *res;
	int64_t seq = 0;
	int r;

	if ((r = pg_begin(s)) < 0)
		return r;
	r = reg_load(s, c->ri, true, &reg);
	if (r == 0 && (r = pg_query(s, &res, "SELECT coalesce(max(seq), 0) + 1 FROM mmef_cmd WHERE ri = $1",
				    "s", c->ri)) == 0) {
		seq = pg_int(res, 0, 0);
		PQclear(res);
	}
	if (r == 0)
		r = pg_run(s, NULL, "INSERT INTO mmef_cmd (ri, seq, cls, args, target_id, queued)"
			   " VALUES ($1, $2, $3, $4, $5, $6)",
			   "siissi", c->ri, seq, (int64_t)c->cls, c->args, c->target_id, now);
	if ((r = pg_end(s, r)) == 0)
		*ret_seq = seq;
	return r;
}

/* The status of the last issued command, if it is still open (TS-0003 8.3.9.3: else discarded). */
static int
cmd_record(struct store *s, const struct mmef_reg *reg, int64_t cmd_id, int status, int64_t now)
{
	if (cmd_id != reg->last_cmd_id)
		return 0;
	return pg_run(s, NULL, "UPDATE mmef_cmd SET state = 1, status = $1, updated = $2"
		      " WHERE ri = $3 AND cmd_id = $4 AND state IN (10, 11)",
		      "iisi", (int64_t)status, now, reg->ri, cmd_id);
}

static int
cmd_first_open(struct store *s, const char *ri, struct mmef_cmd *ret)
{
	PGresult *res;
	int r = pg_query(s, &res, "SELECT " CMD_COLS " FROM mmef_cmd WHERE ri = $1 AND state <> 1"
			 " ORDER BY seq LIMIT 1", "s", ri);

	if (r < 0)
		return r;
	if (PQntuples(res) == 0)
		r = MEF_ENOTFOUND;
	else
		cmd_from_row(res, 0, ret);
	PQclear(res);
	return r;
}

/* Issues (or re-issues) c, or a NO_MORE_COMMANDS id when none; updates the registration counters. */
static int
cmd_issue(struct store *s, struct mmef_reg *reg, struct mmef_cmd *c, bool none, int64_t now)
{
	int e;

	if (none || c->state == MMEF_CMD_QUEUED) {
		c->cmd_id = reg->next_cmd_id++;
		c->state = MMEF_CMD_ISSUED;
	} else {
		c->state = MMEF_CMD_REISSUED;
	}
	c->issued = now;
	reg->last_cmd_id = c->cmd_id;
	e = pg_run(s, NULL, "UPDATE mmef_reg SET last_cmd_id = $1, next_cmd_id = $2 WHERE ri = $3", "iis",
		   reg->last_cmd_id, reg->next_cmd_id, reg->ri);
	if (e || none)
		return e;
	return pg_run(s, NULL, "UPDATE mmef_cmd SET cmd_id = $1, state = $2, issued = $3"
		      " WHERE ri = $4 AND seq = $5", "iiisi", c->cmd_id, (int64_t)c->state, now, c->ri,
		      c->seq);
}

/* cmdIDs come from the locked registration row: unique across instances. */
static int
pm_cmd_next(struct store *s, const char *ri, bool has_status, int64_t cmd_id, int status,
	    int64_t now, struct mmef_cmd *ret, bool *ret_none)
{
	struct mmef_reg reg;
	struct mmef_cmd c;
	bool none = false;
	int r;

	if ((r = pg_begin(s)) < 0)
		return r;
	memset(&c, 0, sizeof(c));
	r = reg_load(s, ri, true, &reg);
	if (r == 0 && has_status)
		r = cmd_record(s, &reg, cmd_id, status, now);
	if (r == 0 && (r = cmd_first_open(s, ri, &c)) == MEF_ENOTFOUND) {
		none = true;
		snprintf(c.ri, sizeof(c.ri), "%s", ri);
		c.cls = MMEF_CMD_NO_MORE;
		r = 0;
	}
	if (r == 0)
		r = cmd_issue(s, &reg, &c, none, now);
	if ((r = pg_end(s, r)) == 0) {
		*ret = c;
		*ret_none = none;
	}
	return r;
}

static int
pm_cmd_list(struct store *s, const char *ri, store_mmef_cmd_cb cb, void *ctx)
{
	struct mmef_cmd c;
	PGresult *res;
	int e;

	e = ri ? pg_query(s, &res, "SELECT " CMD_COLS " FROM mmef_cmd WHERE ri = $1 ORDER BY seq", "s", ri)
	       : pg_query(s, &res, "SELECT " CMD_COLS " FROM mmef_cmd ORDER BY ri COLLATE \"C\", seq", "");
	if (e < 0)
		return e;
	for (int i = 0; e == 0 && i < PQntuples(res); i++) {
		cmd_from_row(res, i, &c);
		e = cb(ctx, &c);
	}
	PQclear(res);
	return e;
}

static int
pm_sweep(struct store *s, int64_t now, unsigned *ret_regs, unsigned *ret_keys)
{
	unsigned nr = 0, nk = 0;
	int r;

	if ((r = pg_begin(s)) < 0)
		return r;
	r = pg_run(s, NULL, "DELETE FROM mmef_cmd WHERE ri IN (SELECT ri FROM mmef_reg WHERE et <= $1)",
		   "i", now);
	if (r == 0)
		r = pg_run(s, &nr, "DELETE FROM mmef_reg WHERE et <= $1", "i", now);
	if (r == 0)
		r = pg_run(s, NULL, "DELETE FROM mmef_keyreg_targets WHERE rel_id IN"
			   " (SELECT rel_id FROM mmef_keyreg WHERE et <= $1)", "i", now);
	if (r == 0)
		r = pg_run(s, &nk, "DELETE FROM mmef_keyreg WHERE et <= $1", "i", now);
	if ((r = pg_end(s, r)) == 0) {
		if (ret_regs)
			*ret_regs = nr;
		if (ret_keys)
			*ret_keys = nk;
	}
	return r;
}

const struct store_mmef_ops pg_mmef_ops = {
	.reg_add = pm_reg_add,
	.reg_get = pm_reg_get,
	.reg_update = pm_reg_update,
	.reg_remove = pm_reg_remove,
	.reg_list = pm_reg_list,
	.key_add = pm_key_add,
	.key_check = pm_key_check,
	.key_get = pm_key_get,
	.key_update = pm_key_update,
	.key_remove = pm_key_remove,
	.key_list = pm_key_list,
	.cmd_queue = pm_cmd_queue,
	.cmd_next = pm_cmd_next,
	.cmd_list = pm_cmd_list,
	.sweep = pm_sweep,
};
