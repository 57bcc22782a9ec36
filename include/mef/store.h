/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The store: every persistent record of mefd, behind one domain API. All SQL
 * lives in src/store/. The SQLite body is the first backend; the API is a
 * backend interface (struct store_ops inside) so a PostgreSQL body can be
 * added without touching callers. Secrets are wrapped with the KEK
 * (mef/wrap.h) before they reach the database; every multi-row change is one
 * transaction. The store never logs above debug: it returns MEF_E* codes.
 */
#ifndef MEF_STORE_H
#define MEF_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mef/kdf.h"
#include "mef/secret.h"

#define MEF_ID_MAX 256
#define MEF_MAX_TARGETS 16

struct store;

enum cred_kind {
	CRED_NONE = 0,
	CRED_PSK = 1,   /* KpmID + Kpm */
	CRED_CERT = 2,  /* certificate whose SAN equals cert_san */
	CRED_GROUP = 3, /* synthesised from an enrolment group (never stored as a client) */
};

/* An authorised Enrolment Target: (target ID, SUID). */
struct mef_target {
	char id[MEF_ID_MAX];
	int suid;
};

/* A client (decisions §3): its credential and its Bootstrap Instruction Configuration. */
struct client_rec {
	char id[MEF_ID_MAX];
	char admin_fqdn[MEF_ID_MAX];
	enum cred_kind kind;
	char psk_identity[MEF_ID_MAX]; /* kind PSK (and GROUP: the device's KpmID) */
	char cert_san[MEF_ID_MAX];     /* kind CERT */
	char enrolee_id[MEF_ID_MAX];   /* "" means: the client ID */
	int64_t expiry;                /* Enrolment Expiry in seconds; 0 means [mef] enrolment_expiry */
	bool disabled;
	size_t n_targets;
	struct mef_target targets[MEF_MAX_TARGETS];
	int64_t created;               /* unix seconds */
	char group[MEF_ID_MAX];        /* kind GROUP: the group it matched */
};

/* An enrolment group: devices whose KpmID matches pattern get Kpm = HMAC(secret, KpmID). */
struct group_rec {
	char name[MEF_ID_MAX];
	char pattern[MEF_ID_MAX];        /* glob, e.g. "*@factory-7.example.com" */
	char admin_fqdn[MEF_ID_MAX];
	char enrolee_pattern[MEF_ID_MAX]; /* "{id}" = KpmID, "{local}" = part before '@'; "" = KpmID */
	int64_t expiry;
	bool disabled;
	size_t n_targets;
	struct mef_target targets[MEF_MAX_TARGETS];
	int64_t created;
};

/* An Enrolment Key record. keid is canonical (kdf_keid_canon). */
struct ke_rec {
	char keid[MEF_KEYID_MAX];
	char client_id[MEF_ID_MAX];
	char enrolee_id[MEF_ID_MAX];
	char transport[16];   /* "dtls", "coap+tls", "https-psk", "https-cert" */
	int64_t created;      /* unix seconds */
	int64_t expires;      /* unix seconds */
	bool revoked;
};

/*
 * Opens (creating and migrating if needed) the store at path. kek is
 * borrowed and must outlive the store. readonly opens without migrating
 * (--check-config): the file must then exist at this build's schema version.
 * The file is created mode 0600. 0, MEF_EINVAL (kek not WRAP_KEK_LEN bytes),
 * MEF_ESTORE or MEF_ENOMEM.
 */
int store_open(const char *path, const struct mef_secret *kek, bool readonly, struct store **ret);
/*
 * As store_open, at a locator: "postgresql://..." or "postgres://..." (a
 * libpq URI without a password; password NULL lets libpq use PGPASSWORD or
 * ~/.pgpass), "sqlite:FILE" or a plain FILE (SQLite).
 */
int store_open_url(const char *url, const char *password, const struct mef_secret *kek,
		   bool readonly, struct store **ret);
struct mef_conf;
/*
 * As store_open, for the backend the config names: [store] backend "sqlite"
 * at [store] path, or "postgresql" at [store] url with the password read
 * from [store] password_file (if set). MEF_EIO if that file cannot be read.
 */
int store_open_conf(const struct mef_conf *conf, const struct mef_secret *kek, bool readonly,
		    struct store **ret);
/* "sqlite" or "postgresql". */
const char *store_backend(const struct store *s);
typedef int (*store_copy_cb)(void *ctx, const char *table, int64_t n_from, int64_t n_to);
/*
 * Copies every row of an SQLite store into an empty PostgreSQL store
 * (store_pg_copy.c) in one transaction, wrapped blobs as they are (both must
 * use the same KEK), then calls cb with the row count of each table on both
 * sides. MEF_EEXIST if to is not empty, MEF_EUNSUPP for other backends,
 * MEF_EINTERNAL if a count differs.
 */
int store_copy(struct store *from, struct store *to, store_copy_cb cb, void *ctx);
/* Closes; accepts NULL; returns NULL. */
struct store *store_close(struct store *s);
/* Schema version (PRAGMA user_version) this build writes. */
int store_schema_version(void);

/* --- clients --- */
/* Adds a client; psk required for CRED_PSK, NULL for CRED_CERT. MEF_EEXIST on duplicate id, KpmID or SAN. */
int store_client_add(struct store *s, const struct client_rec *c, const struct mef_secret *psk);
/* Replaces the Bootstrap Instruction Configuration, admin_fqdn and disabled flag of c->id. MEF_ENOTFOUND. */
int store_client_update(struct store *s, const struct client_rec *c);
int store_client_get(struct store *s, const char *id, struct client_rec *ret);
/*
 * Finds the individual client whose KpmID is identity; *ret_psk is a new
 * secret (caller frees). ret_psk may be NULL when only the record is wanted.
 */
int store_client_find_psk(struct store *s, const char *identity, struct client_rec *ret,
			  struct mef_secret **ret_psk);
/* Finds the client whose registered cert SAN equals san (exact). */
int store_client_find_cert(struct store *s, const char *san, struct client_rec *ret);
/* Removes the client, its targets and its Ke records in one transaction. MEF_ENOTFOUND. */
int store_client_remove(struct store *s, const char *id);
typedef int (*store_client_cb)(void *ctx, const struct client_rec *c);
/*
 * Calls cb for each client ordered by id; a non-zero cb return stops and is
 * returned. The *_list functions must not be re-entered from their own cb
 * (each keeps one prepared statement open while it iterates).
 */
int store_client_list(struct store *s, store_client_cb cb, void *ctx);

/* Disable flags for identities that are not individual clients (group members). */
int store_member_set_disabled(struct store *s, const char *id, bool disabled);
int store_member_is_disabled(struct store *s, const char *id, bool *ret);
typedef int (*store_id_cb)(void *ctx, const char *id);
/* Calls cb with every identity store_member_set_disabled has disabled, in no particular order. */
int store_member_disabled_list(struct store *s, store_id_cb cb, void *ctx);

/* --- enrolment groups --- */
int store_group_add(struct store *s, const struct group_rec *g, const struct mef_secret *secret);
int store_group_get(struct store *s, const char *name, struct group_rec *ret);
/*
 * The most specific (longest pattern) enabled-or-not group matching kpm_id;
 * *ret_secret new (caller frees); ret_secret may be NULL.
 */
int store_group_match(struct store *s, const char *kpm_id, struct group_rec *ret,
		      struct mef_secret **ret_secret);
int store_group_remove(struct store *s, const char *name);
typedef int (*store_group_cb)(void *ctx, const struct group_rec *g);
int store_group_list(struct store *s, store_group_cb cb, void *ctx);
/*
 * Every group in the order store_group_match tries them (longest pattern
 * first, then name): the first one whose pattern store_group_glob matches
 * is the group store_group_match returns. secret is the group's opened
 * secret, a new secret that cb owns; NULL if it cannot be opened (wrong KEK,
 * a damaged row), the error store_group_match would return for that group.
 */
typedef int (*store_group_secret_cb)(void *ctx, const struct group_rec *g,
				     struct mef_secret *secret);
int store_group_scan(struct store *s, store_group_secret_cb cb, void *ctx);
/* Whether kpm_id matches a group pattern exactly as store_group_match decides it. */
bool store_group_glob(const struct store *s, const char *pattern, const char *kpm_id);

/*
 * The credential stamp: a number that changes with every committed change
 * to clients, their targets, groups, their targets and member disable
 * flags, by any process on the store (triggers of schema 4), and with no
 * other write (Ke, certificates, Mmef). What was read from those tables
 * after the stamp was read is current while the stamp stays the same.
 */
int store_cred_stamp(struct store *s, int64_t *ret);

/* --- enrolment keys --- */
/*
 * Ke records are not tied to a client row (group members have none).
 * Stores a Ke durably (committed and synced before return). MEF_EEXIST if keid exists.
 */
int store_ke_put(struct store *s, const struct ke_rec *k, const struct mef_secret *ke);
/* keid must be canonical. *ret_ke may be NULL if the key is not wanted. */
int store_ke_get(struct store *s, const char *keid, struct ke_rec *ret, struct mef_secret **ret_ke);
typedef int (*store_ke_cb)(void *ctx, const struct ke_rec *k, const struct mef_secret *ke);
/* Lists Ke (all, or of client_id), oldest first; ke passed to cb only when with_secrets. */
int store_ke_list(struct store *s, const char *client_id, bool with_secrets, store_ke_cb cb, void *ctx);
int store_ke_revoke(struct store *s, const char *keid);
/* Deletes Ke with expires <= now; *ret_n (may be NULL) receives the count. */
int store_ke_sweep(struct store *s, int64_t now, unsigned *ret_n);

/* --- issued certificates (EST, src/store/sqlite_certs.c) --- */
#define STORE_SERIAL_MAX 41 /* uppercase hex serial (ca_serial_canon), NUL included */

/* One certificate the MEF CA issued: kept for listing, revocation and the CRL. */
struct cert_rec {
	char serial[STORE_SERIAL_MAX];
	char client_id[MEF_ID_MAX];
	char subject[MEF_ID_MAX];
	char san[MEF_ID_MAX];
	int64_t not_before;   /* unix seconds */
	int64_t not_after;
	int64_t issued;
	bool revoked;
	int64_t revoked_at;   /* 0 unless revoked */
};

/* Records an issued certificate and its DER. MEF_EEXIST on a duplicate serial. */
int store_cert_put(struct store *s, const struct cert_rec *c, const uint8_t *der, size_t der_len);
/* serial canonical; *ret_der (malloc()ed, caller frees) may be NULL if not wanted. MEF_ENOTFOUND. */
int store_cert_get(struct store *s, const char *serial, struct cert_rec *ret, uint8_t **ret_der,
		   size_t *ret_der_len);
/* Marks revoked at when (keeps the first revocation time). MEF_ENOTFOUND. */
int store_cert_revoke(struct store *s, const char *serial, int64_t when);
typedef int (*store_cert_cb)(void *ctx, const struct cert_rec *c);
/* All certificates (revoked_only: only the revoked ones), oldest first. */
int store_cert_list(struct store *s, bool revoked_only, store_cert_cb cb, void *ctx);
/* Number of revoked certificates (changes exactly when the CRL must change). */
int store_cert_revoked_count(struct store *s, int64_t *ret);

/* --- bulk and maintenance (mefctl import, backup; src/store/sqlite_ops.c) --- */
/*
 * One transaction around many calls (client import): store_* calls made
 * between begin and end join it instead of committing on their own. end
 * commits when ok, else rolls everything back. Not nestable: MEF_EBUSY.
 */
int store_tx_begin(struct store *s);
int store_tx_end(struct store *s, bool ok);
/*
 * Writes a consistent copy of the whole database to path, which must not
 * exist (created mode 0600), while others keep writing (SQLite online
 * backup of one read snapshot). Secrets stay wrapped under the same KEK.
 * 0, MEF_EEXIST, MEF_EIO or MEF_ESTORE.
 */
int store_backup(struct store *s, const char *path);

#endif
