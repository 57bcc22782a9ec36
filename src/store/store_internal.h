/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The backend interface behind mef/store.h. store.c owns everything that is
 * the same for every database (argument checks, wrapping secrets under the
 * KEK with row-binding aad); a backend (store_sqlite.c; a PostgreSQL body
 * later) only moves rows and opaque wrapped blobs. Private to src/store/.
 */
#ifndef MEF_STORE_INTERNAL_H
#define MEF_STORE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mef/store.h"

/* Wrapped blob as it lives in a row; p is malloc()ed by the backend, caller frees. */
struct store_blob {
	uint8_t *p;
	size_t len;
};

typedef int (*store_ke_raw_cb)(void *ctx, const struct ke_rec *k, const struct store_blob *blob);
typedef int (*store_group_raw_cb)(void *ctx, const struct group_rec *g,
				  const struct store_blob *secret);

/*
 * Every function returns 0 or a MEF_E* code: MEF_ENOTFOUND when the row does
 * not exist, MEF_EEXIST on a uniqueness conflict, MEF_ESTORE otherwise.
 * Out-parameters are written only on success.
 */
struct store_ops {
	const char *name;
	int (*open)(const char *path, bool readonly, struct store **ret);
	void (*close)(struct store *s);

	int (*client_add)(struct store *s, const struct client_rec *c, const struct store_blob *psk);
	int (*client_update)(struct store *s, const struct client_rec *c);
	int (*client_get)(struct store *s, const char *id, struct client_rec *ret);
	int (*client_find_psk)(struct store *s, const char *identity, struct client_rec *ret,
			       struct store_blob *ret_psk);
	int (*client_find_cert)(struct store *s, const char *san, struct client_rec *ret);
	int (*client_remove)(struct store *s, const char *id);
	int (*client_list)(struct store *s, store_client_cb cb, void *ctx);

	int (*member_set_disabled)(struct store *s, const char *id, bool disabled);
	int (*member_is_disabled)(struct store *s, const char *id, bool *ret);
	int (*member_disabled_list)(struct store *s, store_id_cb cb, void *ctx);

	int (*group_add)(struct store *s, const struct group_rec *g, const struct store_blob *secret);
	int (*group_get)(struct store *s, const char *name, struct group_rec *ret);
	int (*group_match)(struct store *s, const char *kpm_id, struct group_rec *ret,
			   struct store_blob *ret_secret);
	/* every group in group_match's order; the blob is the backend's, valid during cb only */
	int (*group_scan)(struct store *s, store_group_raw_cb cb, void *ctx);
	/* the pattern match group_match applies (true: str matches pattern) */
	bool (*glob)(const char *pattern, const char *str);
	int (*group_remove)(struct store *s, const char *name);
	int (*group_list)(struct store *s, store_group_cb cb, void *ctx);

	int (*ke_put)(struct store *s, const struct ke_rec *k, const struct store_blob *ke);
	/* ret_ke NULL: the blob is not read. */
	int (*ke_get)(struct store *s, const char *keid, struct ke_rec *ret, struct store_blob *ret_ke);
	/* blob passed to cb only when with_blobs, else NULL. */
	int (*ke_list)(struct store *s, const char *client_id, bool with_blobs, store_ke_raw_cb cb,
		       void *ctx);
	int (*ke_revoke)(struct store *s, const char *keid);
	int (*ke_sweep)(struct store *s, int64_t now, unsigned *ret_n);

	int (*cert_put)(struct store *s, const struct cert_rec *c, const uint8_t *der, size_t len);
	int (*cert_get)(struct store *s, const char *serial, struct cert_rec *ret,
			struct store_blob *ret_der);
	int (*cert_revoke)(struct store *s, const char *serial, int64_t when);
	int (*cert_list)(struct store *s, bool revoked_only, store_cert_cb cb, void *ctx);
	int (*cert_revoked_count)(struct store *s, int64_t *ret);

	const struct store_mmef_ops *mmef; /* Mmef resources (mmef_internal.h) */

	/* what: 0 begin, 1 commit, 2 roll back (store_tx_begin / store_tx_end) */
	int (*tx_outer)(struct store *s, int what);
	int (*backup)(struct store *s, const char *path);
	int (*cred_stamp)(struct store *s, int64_t *ret);
};

/* The common head of every backend's handle (embedded first). */
struct store {
	const struct store_ops *ops;
	const struct mef_secret *kek; /* borrowed */
};

extern const struct store_ops store_sqlite_ops;

/* The SQLite connection of a handle opened by store_sqlite_ops (for sqlite_<topic>.c bodies). */
struct sqlite3;
struct sqlite3 *store_sqlite_db(struct store *s);
/*
 * sql (a string literal: its address is the key) prepared once per
 * connection and kept, as the statements of store_sqlite.c are; NULL when
 * it is in use (a nested call) or the cache is full: prepare it then.
 * Give it back with store_sqlite_done, which resets it (or finalizes one
 * that is not cached).
 */
struct sqlite3_stmt *store_sqlite_cached(struct store *s, const char *sql);
void store_sqlite_done(struct store *s, struct sqlite3_stmt *st);

/* sqlite_certs.c: the issued-certificate table (SQL only; see struct store_ops). */
int sq_cert_put(struct store *s, const struct cert_rec *c, const uint8_t *der, size_t len);
int sq_cert_get(struct store *s, const char *serial, struct cert_rec *ret, struct store_blob *ret_der);
int sq_cert_revoke(struct store *s, const char *serial, int64_t when);
int sq_cert_list(struct store *s, bool revoked_only, store_cert_cb cb, void *ctx);
int sq_cert_revoked_count(struct store *s, int64_t *ret);

/* sqlite_mmef.c: the Mmef tables (schema of migration 2 -> 3) and their SQL. */
struct store_mmef_ops;
extern const char sqlite_mmef_schema[];
extern const struct store_mmef_ops sqlite_mmef_ops;

/* store_pg.c: the PostgreSQL body; url is a libpq URI, password NULL for libpq's own sources. */
extern const struct store_ops store_pg_ops;
int store_pg_open(const char *url, const char *password, bool readonly, struct store **ret);

/* Schema version written by this build (all backends agree on it). */
#define STORE_SCHEMA_VERSION 4

#endif
