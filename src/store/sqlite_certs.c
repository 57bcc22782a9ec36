/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The SQLite body of the issued-certificate table (EST, decisions §5): one
 * row per certificate the MEF CA signed, with its status. Statements are
 * prepared per call on the handle's connection (issuance is rare next to the
 * handshake path); single-statement writes need no explicit transaction.
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mef/err.h"
#include "mef/log.h"
#include "store_internal.h"

#define CERT_COLS "serial, client_id, subject, san, not_before, not_after, issued, revoked, revoked_at"

static int
cq_prepare(struct store *s, const char *sql, sqlite3_stmt **ret)
{
	sqlite3 *db = store_sqlite_db(s);

	if ((*ret = store_sqlite_cached(s, sql)) != NULL)
		return 0;
	if (sqlite3_prepare_v2(db, sql, -1, ret, NULL) != SQLITE_OK) {
		log_debug("sqlite: %s", sqlite3_errmsg(db));
		return MEF_ESTORE;
	}
	return 0;
}

static int
cq_fail(int rc)
{
	if ((rc & 0xff) == SQLITE_CONSTRAINT)
		return MEF_EEXIST;
	return (rc & 0xff) == SQLITE_NOMEM ? MEF_ENOMEM : MEF_ESTORE;
}

static void
cq_text(sqlite3_stmt *st, int i, char *out, size_t n)
{
	const unsigned char *t = sqlite3_column_text(st, i);

	snprintf(out, n, "%s", t ? (const char *)t : "");
}

static void
cert_from_row(sqlite3_stmt *st, struct cert_rec *c)
{
	memset(c, 0, sizeof(*c));
	cq_text(st, 0, c->serial, sizeof(c->serial));
	cq_text(st, 1, c->client_id, sizeof(c->client_id));
	cq_text(st, 2, c->subject, sizeof(c->subject));
	cq_text(st, 3, c->san, sizeof(c->san));
	c->not_before = sqlite3_column_int64(st, 4);
	c->not_after = sqlite3_column_int64(st, 5);
	c->issued = sqlite3_column_int64(st, 6);
	c->revoked = sqlite3_column_int(st, 7) != 0;
	c->revoked_at = sqlite3_column_int64(st, 8);
}

int
sq_cert_put(struct store *s, const struct cert_rec *c, const uint8_t *der, size_t len)
{
	sqlite3_stmt *st;
	int rc;

	if (cq_prepare(s, "INSERT INTO certs (" CERT_COLS ", der) VALUES (?,?,?,?,?,?,?,?,?,?)", &st))
		return MEF_ESTORE;
	sqlite3_bind_text(st, 1, c->serial, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, c->client_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, c->subject, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, c->san, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, c->not_before);
	sqlite3_bind_int64(st, 6, c->not_after);
	sqlite3_bind_int64(st, 7, c->issued);
	sqlite3_bind_int(st, 8, c->revoked);
	sqlite3_bind_int64(st, 9, c->revoked_at);
	sqlite3_bind_blob(st, 10, der, (int)len, SQLITE_STATIC);
	rc = sqlite3_step(st);
	store_sqlite_done(s, st);
	return rc == SQLITE_DONE ? 0 : cq_fail(rc);
}

static int
der_copy(sqlite3_stmt *st, int i, struct store_blob *ret)
{
	const void *p = sqlite3_column_blob(st, i);
	int n = sqlite3_column_bytes(st, i);

	if (!p || n <= 0 || !(ret->p = malloc((size_t)n)))
		return p && n > 0 ? MEF_ENOMEM : MEF_ESTORE;
	memcpy(ret->p, p, (size_t)n);
	ret->len = (size_t)n;
	return 0;
}

int
sq_cert_get(struct store *s, const char *serial, struct cert_rec *ret, struct store_blob *ret_der)
{
	struct cert_rec c = {0}; /* only copied out after a row filled it */
	sqlite3_stmt *st;
	int rc, r = 0;

	if (cq_prepare(s, "SELECT " CERT_COLS ", der FROM certs WHERE serial = ?", &st))
		return MEF_ESTORE;
	sqlite3_bind_text(st, 1, serial, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		cert_from_row(st, &c);
		if (ret_der)
			r = der_copy(st, 9, ret_der);
	} else {
		r = rc == SQLITE_DONE ? MEF_ENOTFOUND : cq_fail(rc);
	}
	store_sqlite_done(s, st);
	if (r == 0)
		*ret = c;
	return r;
}

int
sq_cert_revoke(struct store *s, const char *serial, int64_t when)
{
	sqlite3_stmt *st;
	int rc, n;

	/* the first revocation time stays: the CRL must not move it */
	if (cq_prepare(s, "UPDATE certs SET revoked_at = CASE revoked WHEN 1 THEN revoked_at"
			  " ELSE ?2 END, revoked = 1 WHERE serial = ?1", &st))
		return MEF_ESTORE;
	sqlite3_bind_text(st, 1, serial, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, when);
	rc = sqlite3_step(st);
	store_sqlite_done(s, st);
	if (rc != SQLITE_DONE)
		return cq_fail(rc);
	n = sqlite3_changes(store_sqlite_db(s));
	return n == 0 ? MEF_ENOTFOUND : 0;
}

int
sq_cert_list(struct store *s, bool revoked_only, store_cert_cb cb, void *ctx)
{
	struct cert_rec c;
	sqlite3_stmt *st;
	int rc, r = 0;

	if (cq_prepare(s, revoked_only ? "SELECT " CERT_COLS " FROM certs WHERE revoked = 1"
					 " ORDER BY issued, rowid"
				       : "SELECT " CERT_COLS " FROM certs ORDER BY issued, rowid",
		       &st))
		return MEF_ESTORE;
	while (r == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		cert_from_row(st, &c);
		r = cb(ctx, &c);
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = cq_fail(rc);
	store_sqlite_done(s, st);
	return r;
}

int
sq_cert_revoked_count(struct store *s, int64_t *ret)
{
	sqlite3_stmt *st;
	int rc;

	if (cq_prepare(s, "SELECT count(*) FROM certs WHERE revoked = 1", &st))
		return MEF_ESTORE;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*ret = sqlite3_column_int64(st, 0);
	store_sqlite_done(s, st);
	return rc == SQLITE_ROW ? 0 : cq_fail(rc);
}
