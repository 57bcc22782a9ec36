/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The PostgreSQL body of the issued-certificate table (EST): one row per
 * certificate the MEF CA signed, with its revocation. The serial is the
 * primary key, so two instances can never record the same serial twice.
 */
#include <stdlib.h>
#include <string.h>

#include "mef/err.h"
#include "store_pg.h"

#define CERT_COLS "serial, client_id, subject, san, not_before, not_after, issued, revoked, revoked_at"

static void
cert_from_row(const PGresult *res, int row, struct cert_rec *c)
{
	memset(c, 0, sizeof(*c));
	pg_text(res, row, 0, c->serial, sizeof(c->serial));
	pg_text(res, row, 1, c->client_id, sizeof(c->client_id));
	pg_text(res, row, 2, c->subject, sizeof(c->subject));
	pg_text(res, row, 3, c->san, sizeof(c->san));
	c->not_before = pg_int(res, row, 4);
	c->not_after = pg_int(res, row, 5);
	c->issued = pg_int(res, row, 6);
	c->revoked = pg_int(res, row, 7) != 0;
	c->revoked_at = pg_int(res, row, 8);
}

int
pg_cert_put(struct store *s, const struct cert_rec *c, const uint8_t *der, size_t len)
{
	struct store_blob b = {(uint8_t *)der, len};

	return pg_run(s, NULL, "INSERT INTO certs (" CERT_COLS ", der)"
		      " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
		      "ssssiiiiib", c->serial, c->client_id, c->subject, c->san, c->not_before,
		      c->not_after, c->issued, (int64_t)c->revoked, c->revoked_at, &b);
}

int
pg_cert_get(struct store *s, const char *serial, struct cert_rec *ret, struct store_blob *ret_der)
{
	struct store_blob der = {0};
	struct cert_rec c;
	PGresult *res;
	int r = pg_query(s, &res, "SELECT " CERT_COLS ", der FROM certs WHERE serial = $1", "s", serial);

	if (r < 0)
		return r;
	if (PQntuples(res) == 0) {
		PQclear(res);
		return MEF_ENOTFOUND;
	}
	cert_from_row(res, 0, &c);
	if (ret_der)
		r = pg_blob(res, 0, 9, &der);
	PQclear(res);
	if (r < 0)
		return r;
	*ret = c;
	if (ret_der)
		*ret_der = der;
	return 0;
}

int
pg_cert_revoke(struct store *s, const char *serial, int64_t when)
{
	unsigned n = 0;
	int r;

	/* the first revocation time stays: the CRL must not move it */
	r = pg_run(s, &n, "UPDATE certs SET revoked_at = CASE revoked WHEN 1 THEN revoked_at"
		   " ELSE $2 END, revoked = 1 WHERE serial = $1", "si", serial, when);
	return r < 0 ? r : n == 0 ? MEF_ENOTFOUND : 0;
}

int
pg_cert_list(struct store *s, bool revoked_only, store_cert_cb cb, void *ctx)
{
	struct cert_rec c;
	PGresult *res;
	int r;

	r = pg_query(s, &res, revoked_only ? "SELECT " CERT_COLS " FROM certs WHERE revoked = 1"
					     " ORDER BY issued, ord"
					   : "SELECT " CERT_COLS " FROM certs ORDER BY issued, ord", "");
	if (r < 0)
		return r;
	for (int i = 0; r == 0 && i < PQntuples(res); i++) {
		cert_from_row(res, i, &c);
		r = cb(ctx, &c);
	}
	PQclear(res);
	return r;
}

int
pg_cert_revoked_count(struct store *s, int64_t *ret)
{
	PGresult *res;
	int r = pg_query(s, &res, "SELECT count(*) FROM certs WHERE revoked = 1", "");

	if (r < 0)
		return r;
	*ret = pg_int(res, 0, 0);
	PQclear(res);
	return 0;
}
