/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The PostgreSQL body of the store (struct store_ops) through libpq, so that
 * several mefd instances share one replicated database (docs/scale-out.md).
 * Same logical schema as SQLite, versioned in a schema_version table and
 * moved forward one transaction per step under an advisory lock (instances
 * may start together). Uniqueness is the database's: primary keys and
 * UNIQUE constraints; allocations lock their row (store_pg_mmef.c).
 */
#include <fnmatch.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mef/err.h"
#include "mef/log.h"
#include "store_pg.h"

#define MAX_PARAMS 12
#define MIGRATE_LOCK "7233083219" /* pg_advisory_xact_lock key: "mefd" schema changes */

/* Any change to table t, TRUNCATE included, bumps the credential stamp in the same transaction. */
#define STAMP_TRIGGER(t) \
	"CREATE TRIGGER " t "_stamp AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON " t \
	" FOR EACH STATEMENT EXECUTE FUNCTION cred_stamp_bump();"

/* migrations[i] moves schema_version from i to i + 1 (the SQLite steps, in PostgreSQL types). */
static const char *const migrations[] = {
	/* 0 -> 1 */
	"CREATE TABLE clients ("
	" id TEXT PRIMARY KEY,"
	" admin_fqdn TEXT NOT NULL DEFAULT '',"
	" kind INTEGER NOT NULL CHECK (kind IN (1, 2)),"
	" psk_identity TEXT UNIQUE,"
	" psk_wrapped BYTEA,"
	" cert_san TEXT UNIQUE,"
	" enrolee_id TEXT NOT NULL DEFAULT '',"
	" expiry BIGINT NOT NULL DEFAULT 0,"
	" disabled INTEGER NOT NULL DEFAULT 0,"
	" created BIGINT NOT NULL,"
	" CHECK ((kind = 1 AND psk_identity IS NOT NULL AND psk_wrapped IS NOT NULL"
	"         AND cert_san IS NULL) OR"
	"        (kind = 2 AND cert_san IS NOT NULL AND psk_identity IS NULL"
	"         AND psk_wrapped IS NULL)));"
	"CREATE TABLE client_targets ("
	" client_id TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,"
	" pos INTEGER NOT NULL, target_id TEXT NOT NULL, suid INTEGER NOT NULL,"
	" PRIMARY KEY (client_id, pos));"
	"CREATE TABLE groups ("
	" name TEXT PRIMARY KEY,"
	" pattern TEXT NOT NULL UNIQUE,"
	" secret_wrapped BYTEA NOT NULL,"
	" admin_fqdn TEXT NOT NULL DEFAULT '',"
	" enrolee_pattern TEXT NOT NULL DEFAULT '',"
	" expiry BIGINT NOT NULL DEFAULT 0,"
	" disabled INTEGER NOT NULL DEFAULT 0,"
	" created BIGINT NOT NULL);"
	"CREATE TABLE group_targets ("
	" group_name TEXT NOT NULL REFERENCES groups(name) ON DELETE CASCADE,"
	" pos INTEGER NOT NULL, target_id TEXT NOT NULL, suid INTEGER NOT NULL,"
	" PRIMARY KEY (group_name, pos));"
	"CREATE TABLE member_disabled (id TEXT PRIMARY KEY);"
	/* ord keeps insertion order where SQLite orders by rowid */
	"CREATE TABLE ke ("
	" keid TEXT PRIMARY KEY,"
	" client_id TEXT NOT NULL,"
	" enrolee_id TEXT NOT NULL DEFAULT '',"
	" transport TEXT NOT NULL DEFAULT '',"
	" created BIGINT NOT NULL,"
	" expires BIGINT NOT NULL,"
	" revoked INTEGER NOT NULL DEFAULT 0,"
	" ke_wrapped BYTEA NOT NULL,"
	" ord BIGINT GENERATED ALWAYS AS IDENTITY);"
	"CREATE INDEX ke_client ON ke(client_id);"
	"CREATE INDEX ke_expires ON ke(expires);",
	/* 1 -> 2: certificates issued by the MEF CA */
	"CREATE TABLE certs ("
	" serial TEXT PRIMARY KEY,"
	" client_id TEXT NOT NULL,"
	" subject TEXT NOT NULL DEFAULT '',"
	" san TEXT NOT NULL,"
	" not_before BIGINT NOT NULL,"
	" not_after BIGINT NOT NULL,"
	" issued BIGINT NOT NULL,"
	" revoked INTEGER NOT NULL DEFAULT 0,"
	" revoked_at BIGINT NOT NULL DEFAULT 0,"
	" der BYTEA NOT NULL,"
	" ord BIGINT GENERATED ALWAYS AS IDENTITY);"
	"CREATE INDEX certs_client ON certs(client_id);"
	"CREATE INDEX certs_revoked ON certs(revoked);",
	/* 2 -> 3: Mmef resources (store_pg_mmef.c) */
	pg_mmef_schema,
	/* 3 -> 4: the credential stamp (store_cred_stamp), bumped once per changing statement */
	"CREATE TABLE cred_stamp (id INTEGER PRIMARY KEY CHECK (id = 1), n BIGINT NOT NULL);"
	"INSERT INTO cred_stamp (id, n) VALUES (1, 0);"
	"CREATE FUNCTION cred_stamp_bump() RETURNS trigger LANGUAGE plpgsql AS"
	" $$BEGIN UPDATE cred_stamp SET n = n + 1 WHERE id = 1; RETURN NULL; END$$;"
	STAMP_TRIGGER("clients") STAMP_TRIGGER("client_targets") STAMP_TRIGGER("groups")
	STAMP_TRIGGER("group_targets") STAMP_TRIGGER("member_disabled"),
};

#define N_MIGRATIONS ((int)(sizeof(migrations) / sizeof(migrations[0])))
_Static_assert(N_MIGRATIONS == STORE_SCHEMA_VERSION,
	       "a SQLite migration was added: add its PostgreSQL twin to store_pg.c migrations[]");

struct store_pg {
	struct store base; /* first */
	PGconn *conn;
	bool in_tx;
	bool outer; /* inside store_tx_begin: per-call transactions become savepoints */
};

static struct store_pg *
pgs(struct store *s)
{
	return (struct store_pg *)s;
}

/* --- statements --- */

/* SQLSTATE classes we tell apart: uniqueness, malformed rows, everything else. */
static int
pg_fold(const PGresult *res)
{
	const char *st = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;

	if (!st)
		return MEF_ESTORE;
	if (strcmp(st, "23505") == 0)
		return MEF_EEXIST;
	if (strcmp(st, "23502") == 0 || strcmp(st, "23514") == 0)
		return MEF_EINVAL;
	if (strcmp(st, "40001") == 0 || strcmp(st, "40P01") == 0)
		return MEF_EBUSY;
	return MEF_ESTORE;
}

struct pg_params {
	const char *v[MAX_PARAMS];
	int len[MAX_PARAMS];
	int fmt[MAX_PARAMS];
	char num[MAX_PARAMS][24];
	int n;
};

static int
params_fill(struct pg_params *p, const char *spec, va_list ap)
{
	for (p->n = 0; spec[p->n]; p->n++) {
		const struct store_blob *b;
		int i = p->n;

		if (i >= MAX_PARAMS)
			return MEF_EINVAL;
		p->fmt[i] = 0;
		p->len[i] = 0;
		switch (spec[i]) {
		case 's':
			p->v[i] = va_arg(ap, const char *);
			break;
		case 'i':
			snprintf(p->num[i], sizeof(p->num[i]), "%lld", (long long)va_arg(ap, int64_t));
			p->v[i] = p->num[i];
			break;
		default: /* 'b': binary bytea */
			b = va_arg(ap, const struct store_blob *);
			p->v[i] = b ? (const char *)b->p : NULL;
			p->len[i] = b ? (int)b->len : 0;
			p->fmt[i] = 1;
			break;
		}
	}
	return 0;
}

static PGresult *
exec_params(PGconn *conn, const char *sql, const struct pg_params *p)
{
	return PQexecParams(conn, sql, p->n, NULL, p->v, p->len, p->fmt, 0);
}

/*
 * One statement; a connection lost outside a transaction is re-opened and
 * the statement tried once more (the database restarted or failed over).
 */
static int
pg_vexec(struct store *s, PGresult **ret, const char *sql, const char *spec, va_list ap)
{
	struct store_pg *q = pgs(s);
	struct pg_params p;
	PGresult *res;
	ExecStatusType st;
	int r;

	if ((r = params_fill(&p, spec, ap)) < 0)
		return r;
	res = exec_params(q->conn, sql, &p);
	if (PQstatus(q->conn) == CONNECTION_BAD && !q->in_tx) {
		PQclear(res);
		PQreset(q->conn);
		res = exec_params(q->conn, sql, &p);
	}
	st = PQresultStatus(res);
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		r = pg_fold(res);
		log_debug("postgresql: %s", PQerrorMessage(q->conn));
		PQclear(res);
		return r;
	}
	*ret = res;
	return 0;
}

PGconn *
pg_conn(struct store *s)
{
	return pgs(s)->conn;
}

int
pg_query(struct store *s, PGresult **ret, const char *sql, const char *spec, ...)
{
	va_list ap;
	int r;

	va_start(ap, spec);
	r = pg_vexec(s, ret, sql, spec, ap);
	va_end(ap);
	return r;
}

int
pg_run(struct store *s, unsigned *ret_n, const char *sql, const char *spec, ...)
{
	PGresult *res = NULL;
	va_list ap;
	int r;

	va_start(ap, spec);
	r = pg_vexec(s, &res, sql, spec, ap);
	va_end(ap);
	if (r == 0 && ret_n)
		*ret_n = (unsigned)strtoul(PQcmdTuples(res), NULL, 10);
	PQclear(res);
	return r;
}

/*
 * Inside an outer transaction a call's own transaction is a savepoint: a
 * failed call (a duplicate in an import) is undone alone and the outer one
 * stays usable, as with SQLite, where a failed statement does not abort it.
 */
int
pg_begin(struct store *s)
{
	int r;

	if (pgs(s)->outer)
		return pg_run(s, NULL, "SAVEPOINT mef_call", "");
	if ((r = pg_run(s, NULL, "BEGIN", "")) == 0)
		pgs(s)->in_tx = true;
	return r;
}

int
pg_end(struct store *s, int r)
{
	if (pgs(s)->outer) {
		if (r == 0)
			r = pg_run(s, NULL, "RELEASE SAVEPOINT mef_call", "");
		if (r < 0)
			(void)pg_run(s, NULL, "ROLLBACK TO SAVEPOINT mef_call", "");
		return r;
	}
	if (r == 0)
		r = pg_run(s, NULL, "COMMIT", "");
	if (r < 0)
		(void)pg_run(s, NULL, "ROLLBACK", "");
	pgs(s)->in_tx = false;
	return r;
}

/* store_tx_begin / store_tx_end: what 0 begin, 1 commit, 2 roll back (as sq_tx_outer). */
static int
pg_tx_outer(struct store *s, int what)
{
	struct store_pg *q = pgs(s);
	int r;

	if (what == 0) {
		if (q->outer)
			return MEF_EBUSY;
		if ((r = pg_begin(s)) == 0)
			q->outer = true;
		return r;
	}
	if (!q->outer)
		return MEF_EINVAL;
	q->outer = false;
	r = pg_end(s, what == 1 ? 0 : MEF_EINTERNAL);
	return r == 0 ? 0 : what == 1 ? MEF_ESTORE : 0;
}

void
pg_text(const PGresult *res, int row, int col, char *out, size_t outlen)
{
	snprintf(out, outlen, "%s", PQgetisnull(res, row, col) ? "" : PQgetvalue(res, row, col));
}

int64_t
pg_int(const PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col) ? 0 : strtoll(PQgetvalue(res, row, col), NULL, 10);
}

bool
pg_null(const PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col) != 0;
}

int
pg_blob(const PGresult *res, int row, int col, struct store_blob *ret)
{
	size_t n = 0;
	unsigned char *p;

	if (PQgetisnull(res, row, col))
		return MEF_ESTORE;
	p = PQunescapeBytea((const unsigned char *)PQgetvalue(res, row, col), &n);
	if (!p)
		return MEF_ENOMEM;
	if (n == 0) {
		PQfreemem(p);
		return MEF_ESTORE;
	}
	/* copy into malloc() memory: callers free() blobs */
	ret->p = malloc(n);
	if (ret->p)
		memcpy(ret->p, p, n);
	PQfreemem(p);
	if (!ret->p)
		return MEF_ENOMEM;
	ret->len = n;
	return 0;
}

/* --- open, migrate, close --- */

/* A query that yields exactly one integer (one row, one column). */
static int
one_int(struct store *s, const char *sql, int64_t *ret)
{
	PGresult *res;
	int r = pg_query(s, &res, sql, "");

	if (r < 0)
		return r;
	r = PQntuples(res) == 1 ? 0 : MEF_ESTORE;
	if (r == 0)
		*ret = pg_int(res, 0, 0);
	PQclear(res);
	return r;
}

static int
schema_version(struct store *s, int *ret)
{
	int64_t v = 0;
	int r = one_int(s, "SELECT version FROM schema_version", &v);

	if (r == 0)
		*ret = (int)v;
	return r;
}

/* PQexec runs a multi-statement migration text; it has no parameters. */
static int
exec_script(struct store *s, const char *sql)
{
	PGresult *res = PQexec(pgs(s)->conn, sql);
	int r = PQresultStatus(res) == PGRES_COMMAND_OK ? 0 : MEF_ESTORE;

	if (r < 0)
		log_debug("postgresql migration: %s", PQerrorMessage(pgs(s)->conn));
	PQclear(res);
	return r;
}

/* One step, in one transaction, with the version re-read under the lock. */
static int
migrate_step(struct store *s, int to)
{
	int v = -1, r;

	if ((r = pg_begin(s)) < 0)
		return r;
	r = pg_run(s, NULL, "SELECT pg_advisory_xact_lock(" MIGRATE_LOCK ")", "");
	if (r == 0)
		r = schema_version(s, &v);
	if (r == 0 && v == to - 1) {
		r = exec_script(s, migrations[to - 1]);
		if (r == 0)
			r = pg_run(s, NULL, "UPDATE schema_version SET version = $1", "i", (int64_t)to);
	}
	return pg_end(s, r);
}

static int
migrate_init(struct store *s)
{
	int r;

	if ((r = pg_begin(s)) < 0)
		return r;
	r = pg_run(s, NULL, "SELECT pg_advisory_xact_lock(" MIGRATE_LOCK ")", "");
	if (r == 0)
		r = pg_run(s, NULL, "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)", "");
	if (r == 0)
		r = pg_run(s, NULL, "INSERT INTO schema_version SELECT 0"
			   " WHERE NOT EXISTS (SELECT 1 FROM schema_version)", "");
	return pg_end(s, r);
}

/* 1 when the database has no schema_version table yet (never started), 0 if it has, or MEF_E*. */
static int
schema_absent(struct store *s)
{
	PGresult *res;
	int r = pg_query(s, &res,
			 "SELECT CASE WHEN to_regclass('schema_version') IS NULL THEN 1 ELSE 0 END", "");

	if (r < 0)
		return r;
	r = PQntuples(res) == 1 ? (int)pg_int(res, 0, 0) : MEF_ESTORE;
	PQclear(res);
	return r;
}

static int
migrate(struct store *s, bool readonly)
{
	int v = 0, r;

	if (readonly) {
		/*
		 * --check-config: an empty database gets its schema at the first
		 * start, an older one is migrated then; only a newer one is wrong.
		 */
		if ((r = schema_absent(s)) != 0)
			return r > 0 ? 0 : r;
		if ((r = schema_version(s, &v)) < 0)
			return r;
		return v > N_MIGRATIONS ? MEF_ESTORE : 0;
	}
	if ((r = migrate_init(s)) < 0)
		return r;
	if ((r = schema_version(s, &v)) < 0)
		return r;
	if (v > N_MIGRATIONS)
		return MEF_ESTORE;
	for (; v < N_MIGRATIONS; v++)
		if ((r = migrate_step(s, v + 1)) < 0)
			return r;
	return 0;
}

/* Session settings: a read-only handle cannot write; commits are durable before they return. */
static int
configure(struct store *s, bool readonly)
{
	PGresult *res;
	bool off;
	int r;

	if (readonly && (r = pg_run(s, NULL, "SET default_transaction_read_only = on", "")) < 0)
		return r;
	if ((r = pg_query(s, &res, "SHOW synchronous_commit", "")) < 0)
		return r;
	off = PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), "off") == 0;
	PQclear(res);
	return off ? pg_run(s, NULL, "SET synchronous_commit = on", "") : 0;
}

/* Server notices (e.g. "already exists, skipping") go to the debug log, not to stderr. */
static void
pg_notice(void *arg, const char *msg)
{
	(void)arg;
	log_debug("postgresql: %s", msg);
}

static void
pg_close(struct store *s)
{
	struct store_pg *q = pgs(s);

	PQfinish(q->conn);
	free(q);
}

int
store_pg_open(const char *url, const char *password, bool readonly, struct store **ret)
{
	/* defaults first: the URL may override them; the password is never in the URL */
	const char *keys[] = {"application_name", "connect_timeout", "dbname", "password", NULL};
	const char *vals[] = {"mefd", "10", url, password, NULL};
	struct store_pg *q = calloc(1, sizeof(*q));
	int r = 0;

	if (!q)
		return MEF_ENOMEM;
	if (!password)
		keys[3] = NULL;
	q->conn = PQconnectdbParams(keys, vals, 1);
	if (!q->conn)
		r = MEF_ENOMEM;
	else if (PQstatus(q->conn) != CONNECTION_OK)
		r = MEF_ESTORE;
	else
		PQsetNoticeProcessor(q->conn, pg_notice, NULL);
	if (r == 0)
		r = configure(&q->base, readonly);
	if (r == 0)
		r = migrate(&q->base, readonly);
	if (r < 0) {
		if (q->conn)
			log_debug("postgresql open: %s", PQerrorMessage(q->conn));
		pg_close(&q->base);
		return r;
	}
	*ret = &q->base;
	return 0;
}

/* ops->open: the URL alone; libpq then takes a password from PGPASSWORD or ~/.pgpass. */
static int
pg_open(const char *url, bool readonly, struct store **ret)
{
	return store_pg_open(url, NULL, readonly, ret);
}

/* --- targets --- */

/* Replaces owner's target rows (table client_targets or group_targets, column owner_col). */
static int
targets_put(struct store *s, const char *insert_sql, const char *owner, const struct mef_target *t,
	    size_t n)
{
	int r = 0;

	for (size_t i = 0; i < n && r == 0; i++)
		r = pg_run(s, NULL, insert_sql, "siis", owner, (int64_t)i, (int64_t)t[i].suid, t[i].id);
	return r;
}

/* Appends the target in columns tcol, tcol + 1 of row (NULL after a LEFT JOIN: none). */
static void
target_add(const PGresult *res, int row, int tcol, struct mef_target *t, size_t *n)
{
	if (pg_null(res, row, tcol) || *n >= MEF_MAX_TARGETS)
		return;
	pg_text(res, row, tcol, t[*n].id, sizeof(t[*n].id));
	t[*n].suid = (int)pg_int(res, row, tcol + 1);
	(*n)++;
}

/* --- clients --- */

/*
 * One statement reads a client and its targets (LEFT JOIN, one row per
 * target) so both come from the same snapshot. Columns: 0-8 the record,
 * 9-10 target, 11 the wrapped PSK or NULL.
 */
#define CLIENT_SELECT(blob)                                                                        \
	"SELECT c.id, c.admin_fqdn, c.kind, c.psk_identity, c.cert_san, c.enrolee_id, c.expiry,"   \
	" c.disabled, c.created, t.target_id, t.suid, " blob " FROM clients c"                     \
	" LEFT JOIN client_targets t ON t.client_id = c.id "
#define CT_INSERT "INSERT INTO client_targets (client_id, pos, suid, target_id) VALUES ($1, $2, $3, $4)"

static void
client_from_row(const PGresult *res, int row, struct client_rec *c)
{
	memset(c, 0, sizeof(*c));
	pg_text(res, row, 0, c->id, sizeof(c->id));
	pg_text(res, row, 1, c->admin_fqdn, sizeof(c->admin_fqdn));
	c->kind = (enum cred_kind)pg_int(res, row, 2);
	pg_text(res, row, 3, c->psk_identity, sizeof(c->psk_identity));
	pg_text(res, row, 4, c->cert_san, sizeof(c->cert_san));
	pg_text(res, row, 5, c->enrolee_id, sizeof(c->enrolee_id));
	c->expiry = pg_int(res, row, 6);
	c->disabled = pg_int(res, row, 7) != 0;
	c->created = pg_int(res, row, 8);
}

/*
 * Walks rows grouped by client id: fills *c from row *i and the targets of
 * the following rows of the same client; *i ends on the next client.
 */
static void
client_gather(const PGresult *res, int *i, struct client_rec *c)
{
	int n = PQntuples(res);

	client_from_row(res, *i, c);
	for (; *i < n && strcmp(PQgetvalue(res, *i, 0), c->id) == 0; (*i)++)
		target_add(res, *i, 9, c->targets, &c->n_targets);
}

static int
client_query(struct store *s, const char *sql, const char *key, struct client_rec *ret,
	     struct store_blob *ret_psk)
{
	struct store_blob blob = {0};
	struct client_rec c;
	PGresult *res;
	int i = 0, r;

	if ((r = pg_query(s, &res, sql, "s", key)) < 0)
		return r;
	if (PQntuples(res) == 0) {
		PQclear(res);
		return MEF_ENOTFOUND;
	}
	client_gather(res, &i, &c);
	if (ret_psk)
		r = pg_blob(res, 0, 11, &blob);
	PQclear(res);
	if (r < 0)
		return r;
	*ret = c;
	if (ret_psk)
		*ret_psk = blob;
	return 0;
}

static int
pg_client_add(struct store *s, const struct client_rec *c, const struct store_blob *psk)
{
	bool is_psk = c->kind == CRED_PSK;
	int r;

	if ((r = pg_begin(s)) < 0)
		return r;
	r = pg_run(s, NULL,
		   "INSERT INTO clients (id, admin_fqdn, kind, psk_identity, cert_san, enrolee_id,"
		   " expiry, disabled, created, psk_wrapped) VALUES ($1, $2, $3, NULLIF($4, ''),"
		   " NULLIF($5, ''), $6, $7, $8, $9, $10)",
		   "ssisssiiib", c->id, c->admin_fqdn, (int64_t)c->kind, is_psk ? c->psk_identity : "",
		   is_psk ? "" : c->cert_san, c->enrolee_id, c->expiry, (int64_t)c->disabled,
		   c->created, psk);
	if (r == 0)
		r = targets_put(s, CT_INSERT, c->id, c->targets, c->n_targets);
	return pg_end(s, r);
}

/* All or nothing: the row and the whole target list change in one transaction. */
static int
pg_client_update(struct store *s, const struct client_rec *c)
{
	unsigned n = 0;
	int r;

	if ((r = pg_begin(s)) < 0)
		return r;
	r = pg_run(s, &n, "UPDATE clients SET admin_fqdn = $2, enrolee_id = $3, expiry = $4,"
		   " disabled = $5 WHERE id = $1", "sssii", c->id, c->admin_fqdn, c->enrolee_id,
		   c->expiry, (int64_t)c->disabled);
	if (r == 0 && n == 0)
		r = MEF_ENOTFOUND;
	if (r == 0)
		r = pg_run(s, NULL, "DELETE FROM client_targets WHERE client_id = $1", "s", c->id);
	if (r == 0)
		r = targets_put(s, CT_INSERT, c->id, c->targets, c->n_targets);
	return pg_end(s, r);
}

static int
pg_client_get(struct store *s, const char *id, struct client_rec *ret)
{
	return client_query(s, CLIENT_SELECT("NULL") "WHERE c.id = $1 ORDER BY t.pos", id, ret, NULL);
}

static int
pg_client_find_psk(struct store *s, const char *identity, struct client_rec *ret,
		   struct store_blob *ret_psk)
{
	return client_query(s, CLIENT_SELECT("c.psk_wrapped")
			    "WHERE c.psk_identity = $1 AND c.kind = 1 ORDER BY t.pos",
			    identity, ret, ret_psk);
}

static int
pg_client_find_cert(struct store *s, const char *san, struct client_rec *ret)
{
	return client_query(s, CLIENT_SELECT("NULL") "WHERE c.cert_san = $1 AND c.kind = 2 ORDER BY t.pos",
			    san, ret, NULL);
}

/* Removing a client also drops its Enrolment Keys: they must not outlive their owner. */
static int
pg_client_remove(struct store *s, const char *id)
{
	unsigned n = 0;
	int r;

	if ((r = pg_begin(s)) < 0)
		return r;
	r = pg_run(s, NULL, "DELETE FROM ke WHERE client_id = $1", "s", id);
	if (r == 0)
		r = pg_run(s, &n, "DELETE FROM clients WHERE id = $1", "s", id);
	if (r == 0 && n == 0)
		r = MEF_ENOTFOUND;
	return pg_end(s, r);
}

/* The whole result is fetched first, so a callback may use the store (unlike SQLite's). */
static int
pg_client_list(struct store *s, store_client_cb cb, void *ctx)
{
	struct client_rec c;
	PGresult *res;
	int i = 0, r;

	r = pg_query(s, &res, CLIENT_SELECT("NULL") "ORDER BY c.id COLLATE \"C\", t.pos", "");
	if (r < 0)
		return r;
	while (r == 0 && i < PQntuples(res)) {
		client_gather(res, &i, &c);
		r = cb(ctx, &c);
	}
	PQclear(res);
	return r;
}

/* --- member_disabled --- */

static int
pg_member_set_disabled(struct store *s, const char *id, bool disabled)
{
	if (disabled)
		return pg_run(s, NULL, "INSERT INTO member_disabled (id) VALUES ($1) ON CONFLICT DO NOTHING",
			      "s", id);
	return pg_run(s, NULL, "DELETE FROM member_disabled WHERE id = $1", "s", id);
}

static int
pg_member_is_disabled(struct store *s, const char *id, bool *ret)
{
	PGresult *res;
	int r = pg_query(s, &res, "SELECT 1 FROM member_disabled WHERE id = $1", "s", id);

	if (r < 0)
		return r;
	*ret = PQntuples(res) > 0;
	PQclear(res);
	return 0;
}

static int
pg_member_disabled_list(struct store *s, store_id_cb cb, void *ctx)
{
	char id[MEF_ID_MAX];
	PGresult *res;
	int r = pg_query(s, &res, "SELECT id FROM member_disabled", "");

	if (r < 0)
		return r;
	for (int i = 0; r == 0 && i < PQntuples(res); i++) {
		pg_text(res, i, 0, id, sizeof(id));
		r = cb(ctx, id);
	}
	PQclear(res);
	return r;
}

static int
pg_cred_stamp(struct store *s, int64_t *ret)
{
	return one_int(s, "SELECT n FROM cred_stamp WHERE id = 1", ret);
}

/* --- groups --- */

/* As CLIENT_SELECT: 0-6 the record, 7-8 target, 9 the wrapped secret or NULL. */
#define GROUP_SELECT(blob)                                                                         \
	"SELECT g.name, g.pattern, g.admin_fqdn, g.enrolee_pattern, g.expiry, g.disabled,"          \
	" g.created, t.target_id, t.suid, " blob " FROM groups g"                                  \
	" LEFT JOIN group_targets t ON t.group_name = g.name "
#define GT_INSERT "INSERT INTO group_targets (group_name, pos, suid, target_id) VALUES ($1, $2, $3, $4)"

static void
group_gather(const PGresult *res, int *i, struct group_rec *g)
{
	int n = PQntuples(res), row = *i;

	memset(g, 0, sizeof(*g));
	pg_text(res, row, 0, g->name, sizeof(g->name));
	pg_text(res, row, 1, g->pattern, sizeof(g->pattern));
	pg_text(res, row, 2, g->admin_fqdn, sizeof(g->admin_fqdn));
	pg_text(res, row, 3, g->enrolee_pattern, sizeof(g->enrolee_pattern));
	g->expiry = pg_int(res, row, 4);
	g->disabled = pg_int(res, row, 5) != 0;
	g->created = pg_int(res, row, 6);
	for (; *i < n && strcmp(PQgetvalue(res, *i, 0), g->name) == 0; (*i)++)
		target_add(res, *i, 7, g->targets, &g->n_targets);
}

static int
pg_group_add(struct store *s, const struct group_rec *g, const struct store_blob *secret)
{
	int r;

	if ((r = pg_begin(s)) < 0)
		return r;
	r = pg_run(s, NULL,
		   "INSERT INTO groups (name, pattern, admin_fqdn, enrolee_pattern, expiry, disabled,"
		   " created, secret_wrapped) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
		   "ssssiiib", g->name, g->pattern, g->admin_fqdn, g->enrolee_pattern, g->expiry,
		   (int64_t)g->disabled, g->created, secret);
	if (r == 0)
		r = targets_put(s, GT_INSERT, g->name, g->targets, g->n_targets);
	return pg_end(s, r);
}

static int
group_by_name(struct store *s, const char *name, struct group_rec *ret, struct store_blob *ret_secret)
{
	struct store_blob blob = {0};
	struct group_rec g;
	PGresult *res;
	int i = 0, r;

	r = pg_query(s, &res, ret_secret ? GROUP_SELECT("g.secret_wrapped") "WHERE g.name = $1 ORDER BY t.pos"
					 : GROUP_SELECT("NULL") "WHERE g.name = $1 ORDER BY t.pos",
		     "s", name);
	if (r < 0)
		return r;
	if (PQntuples(res) == 0) {
		PQclear(res);
		return MEF_ENOTFOUND;
	}
	group_gather(res, &i, &g);
	if (ret_secret)
		r = pg_blob(res, 0, 9, &blob);
	PQclear(res);
	if (r < 0)
		return r;
	*ret = g;
	if (ret_secret)
		*ret_secret = blob;
	return 0;
}

static int
pg_group_get(struct store *s, const char *name, struct group_rec *ret)
{
	return group_by_name(s, name, ret, NULL);
}

/*
 * SQLite's GLOB (no escape character, '*' crosses every character) is
 * fnmatch(3) with FNM_NOESCAPE; PostgreSQL has no GLOB, so the few groups
 * are read in one statement (one round trip on the handshake path) and
 * matched here, most specific (longest pattern) first.
 */
static bool
pg_glob(const char *pattern, const char *str)
{
	return fnmatch(pattern, str, FNM_NOESCAPE) == 0;
}

/* Every group with its secret, most specific (longest pattern) first: the order of pg_group_match. */
#define GROUP_BY_PRECEDENCE \
	GROUP_SELECT("g.secret_wrapped") "ORDER BY length(g.pattern) DESC, g.name COLLATE \"C\", t.pos"

static int
pg_group_match(struct store *s, const char *kpm_id, struct group_rec *ret,
	       struct store_blob *ret_secret)
{
	struct group_rec g;
	PGresult *res;
	int i = 0, row, r;

	r = pg_query(s, &res, GROUP_BY_PRECEDENCE, "");
	if (r < 0)
		return r;
	r = MEF_ENOTFOUND;
	while (r == MEF_ENOTFOUND && i < PQntuples(res)) {
		row = i;
		group_gather(res, &i, &g);
		if (pg_glob(g.pattern, kpm_id))
			r = ret_secret ? pg_blob(res, row, 9, ret_secret) : 0;
	}
	PQclear(res);
	if (r == 0)
		*ret = g;
	return r;
}

/* As pg_group_match, handing every group to cb in turn. */
static int
pg_group_scan(struct store *s, store_group_raw_cb cb, void *ctx)
{
	struct store_blob blob = {0};
	struct group_rec g;
	PGresult *res;
	int i = 0, row, r;

	if ((r = pg_query(s, &res, GROUP_BY_PRECEDENCE, "")) < 0)
		return r;
	while (r == 0 && i < PQntuples(res)) {
		row = i;
		group_gather(res, &i, &g);
		if ((r = pg_blob(res, row, 9, &blob)) == 0)
			r = cb(ctx, &g, &blob);
		free(blob.p);
		blob.p = NULL;
	}
	PQclear(res);
	return r;
}

static int
pg_group_remove(struct store *s, const char *name)
{
	unsigned n = 0;
	int r = pg_run(s, &n, "DELETE FROM groups WHERE name = $1", "s", name);

	return r < 0 ? r : n == 0 ? MEF_ENOTFOUND : 0;
}

static int
pg_group_list(struct store *s, store_group_cb cb, void *ctx)
{
	struct group_rec g;
	PGresult *res;
	int i = 0, r;

	r = pg_query(s, &res, GROUP_SELECT("NULL") "ORDER BY g.name COLLATE \"C\", t.pos", "");
	if (r < 0)
		return r;
	while (r == 0 && i < PQntuples(res)) {
		group_gather(res, &i, &g);
		r = cb(ctx, &g);
	}
	PQclear(res);
	return r;
}

/* --- enrolment keys --- */

#define KE_COLS "keid, client_id, enrolee_id, transport, created, expires, revoked, ke_wrapped"

static void
ke_from_row(const PGresult *res, int row, struct ke_rec *k)
{
	memset(k, 0, sizeof(*k));
	pg_text(res, row, 0, k->keid, sizeof(k->keid));
	pg_text(res, row, 1, k->client_id, sizeof(k->client_id));
	pg_text(res, row, 2, k->enrolee_id, sizeof(k->enrolee_id));
	pg_text(res, row, 3, k->transport, sizeof(k->transport));
	k->created = pg_int(res, row, 4);
	k->expires = pg_int(res, row, 5);
	k->revoked = pg_int(res, row, 6) != 0;
}

/* One INSERT in autocommit: committed (synchronous_commit on) when it returns. */
static int
pg_ke_put(struct store *s, const struct ke_rec *k, const struct store_blob *ke)
{
	return pg_run(s, NULL, "INSERT INTO ke (" KE_COLS ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
		      "ssssiiib", k->keid, k->client_id, k->enrolee_id, k->transport, k->created,
		      k->expires, (int64_t)k->revoked, ke);
}

static int
pg_ke_get(struct store *s, const char *keid, struct ke_rec *ret, struct store_blob *ret_ke)
{
	struct store_blob blob = {0};
	struct ke_rec k;
	PGresult *res;
	int r = pg_query(s, &res, "SELECT " KE_COLS " FROM ke WHERE keid = $1", "s", keid);

	if (r < 0)
		return r;
	if (PQntuples(res) == 0) {
		PQclear(res);
		return MEF_ENOTFOUND;
	}
	ke_from_row(res, 0, &k);
	if (ret_ke)
		r = pg_blob(res, 0, 7, &blob);
	PQclear(res);
	if (r < 0)
		return r;
	*ret = k;
	if (ret_ke)
		*ret_ke = blob;
	return 0;
}

static int
pg_ke_list(struct store *s, const char *client_id, bool with_blobs, store_ke_raw_cb cb, void *ctx)
{
	struct store_blob blob;
	struct ke_rec k;
	PGresult *res;
	int r;

	r = client_id ? pg_query(s, &res, "SELECT " KE_COLS " FROM ke WHERE client_id = $1"
				 " ORDER BY created, ord", "s", client_id)
		      : pg_query(s, &res, "SELECT " KE_COLS " FROM ke ORDER BY created, ord", "");
	if (r < 0)
		return r;
	for (int i = 0; r == 0 && i < PQntuples(res); i++) {
		ke_from_row(res, i, &k);
		if (with_blobs && (r = pg_blob(res, i, 7, &blob)) < 0)
			break;
		r = cb(ctx, &k, with_blobs ? &blob : NULL);
		if (with_blobs)
			free(blob.p);
	}
	PQclear(res);
	return r;
}

static int
pg_ke_revoke(struct store *s, const char *keid)
{
	unsigned n = 0;
	int r = pg_run(s, &n, "UPDATE ke SET revoked = 1 WHERE keid = $1", "s", keid);

	return r < 0 ? r : n == 0 ? MEF_ENOTFOUND : 0;
}

static int
pg_ke_sweep(struct store *s, int64_t now, unsigned *ret_n)
{
	unsigned n = 0;
	int r = pg_run(s, &n, "DELETE FROM ke WHERE expires <= $1", "i", now);

	if (r == 0 && ret_n)
		*ret_n = n;
	return r;
}

const struct store_ops store_pg_ops = {
	.name = "postgresql",
	.open = pg_open,
	.close = pg_close,
	.client_add = pg_client_add,
	.client_update = pg_client_update,
	.client_get = pg_client_get,
	.client_find_psk = pg_client_find_psk,
	.client_find_cert = pg_client_find_cert,
	.client_remove = pg_client_remove,
	.client_list = pg_client_list,
	.member_set_disabled = pg_member_set_disabled,
	.member_is_disabled = pg_member_is_disabled,
	.member_disabled_list = pg_member_disabled_list,
	.group_add = pg_group_add,
	.group_get = pg_group_get,
	.group_match = pg_group_match,
	.group_scan = pg_group_scan,
	.glob = pg_glob,
	.group_remove = pg_group_remove,
	.group_list = pg_group_list,
	.ke_put = pg_ke_put,
	.ke_get = pg_ke_get,
	.ke_list = pg_ke_list,
	.ke_revoke = pg_ke_revoke,
	.ke_sweep = pg_ke_sweep,
	.cert_put = pg_cert_put,
	.cert_get = pg_cert_get,
	.cert_revoke = pg_cert_revoke,
	.cert_list = pg_cert_list,
	.cert_revoked_count = pg_cert_revoked_count,
	.mmef = &pg_mmef_ops,
	.tx_outer = pg_tx_outer,
	.cred_stamp = pg_cred_stamp,
	/* .backup: none; a PostgreSQL database is backed up with pg_dump / base backups */
};
