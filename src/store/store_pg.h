/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Private helpers of the PostgreSQL body (store_pg.c, store_pg_mmef.c,
 * store_pg_certs.c): one libpq connection per handle, statements with typed
 * parameters from a spec string, SQLSTATE folded into MEF_E* codes.
 */
#ifndef MEF_STORE_PG_H
#define MEF_STORE_PG_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

#include "store_internal.h"

/*
 * Runs sql with parameters from spec: 's' text (const char *), 'i' int64_t,
 * 'b' bytea (const struct store_blob *, NULL means SQL NULL). On success
 * *ret (caller PQclear()s) holds the rows; 0 or a MEF_E* code.
 */
int pg_query(struct store *s, PGresult **ret, const char *sql, const char *spec, ...);
/* As pg_query for statements without rows; *ret_n (may be NULL) gets the row count. */
int pg_run(struct store *s, unsigned *ret_n, const char *sql, const char *spec, ...);
/* BEGIN; pg_end commits when r is 0, else (or if COMMIT fails) rolls back, and returns the outcome. */
int pg_begin(struct store *s);
int pg_end(struct store *s, int r);

/* The connection of a handle opened by store_pg_open (store_pg_copy.c). */
PGconn *pg_conn(struct store *s);

void pg_text(const PGresult *res, int row, int col, char *out, size_t outlen);
int64_t pg_int(const PGresult *res, int row, int col);
bool pg_null(const PGresult *res, int row, int col);
/* A bytea column into a malloc()ed blob. */
int pg_blob(const PGresult *res, int row, int col, struct store_blob *ret);

extern const struct store_mmef_ops pg_mmef_ops;
extern const char pg_mmef_schema[];

int pg_cert_put(struct store *s, const struct cert_rec *c, const uint8_t *der, size_t len);
int pg_cert_get(struct store *s, const char *serial, struct cert_rec *ret, struct store_blob *ret_der);
int pg_cert_revoke(struct store *s, const char *serial, int64_t when);
int pg_cert_list(struct store *s, bool revoked_only, store_cert_cb cb, void *ctx);
int pg_cert_revoked_count(struct store *s, int64_t *ret);

#endif
