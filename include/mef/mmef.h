/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The Mmef reference point (TS-0003 8.3.5, 8.3.9; decisions §4): MEF Client
 * Registration, MEF Key Registration / Retrieval and MEF Client Commands.
 * One names table (src/mef/mmef_names.c) holds every resource and attribute
 * name and the provisional ty numbers; the records and store API of these
 * resources (src/store/store_mmef.c, sqlite_mmef.c) live here too.
 */
#ifndef MEF_MMEF_H
#define MEF_MMEF_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mef/proc.h"
#include "mef/secret.h"
#include "mef/store.h"

struct mefd;

/* --- names (mmef_names.c): change TS-0032 spellings there only --- */
enum mmef_name {
	MN_ROOT_REG,      /* "sec:mefClientReg" */
	MN_ROOT_KEYREG,   /* "sec:mefKeyReg" */
	MN_ROOT_CMD,      /* "sec:mefClientCmd" */
	MN_RI, MN_RN, MN_PI, MN_TY, MN_CT, MN_LT, MN_ET, MN_LBL, MN_CH,
	MN_CH_NM, MN_CH_TYP, MN_CH_VAL,
	MN_ADMIN_FQDN, MN_CLIENT_ID, MN_SUID, MN_TARGET_IDS, MN_KEY_VALUE,
	MN_REL_KEY_ID, MN_KEY_ID, MN_SOURCE_CLIENT_ID,
	MN_CMD_ID, MN_CMD_DESC, MN_CMD_CLASS_ID, MN_CMD_ARGS, MN_TARGET_ID, MN_CMD_STATUS,
	MN_NO_MORE_ARGS, MN_RETRY_DURATION,
	MN_CERT_PROV_ARGS, MN_CERT_PROV_PROTOCOL, MN_URI, MN_CERT_SUBJECT_TYPE, MN_CERT_SUBJECT_ID,
	MN_DEV_CFG_ARGS, MN_DEVICE_CONFIG_URI,
	MN_MO_NODE_ARGS, MN_OBJECT_PATH, MN_OBJECT_TYPE_ID, MN_OBJECT_TYPE_ARGS,
	MN_CMD_SEGMENT,   /* "cmd": the <mefClientCmd> child path segment */
	MN__MAX,
};

const char *mmef_name(enum mmef_name n);

/* Provisional resource types (decisions §4; TS-0032 not available): see docs/mmef.md. */
enum mmef_ty {
	MMEF_TY_REG = 60001,
	MMEF_TY_KEYREG = 60002,
	MMEF_TY_CMD = 60003,
};

/* MEFClientRegIDs are "mcr-" + 16 lower-case hex digits; RelativeKeyIDs 32 upper-case hex. */
#define MMEF_REG_PREFIX "mcr-"
#define MMEF_RI_MAX 64
#define MMEF_RELID_MAX 65
#define MMEF_LBL_MAX 1024
#define MMEF_ARGS_MAX 2048
#define MMEF_JSON_DEPTH_MAX 8

/* sec:cmdClassID and sec:cmdStatusCode values (TS-0003 12.3.2). */
enum mmef_cmd_class {
	MMEF_CMD_NO_MORE = 0,
	MMEF_CMD_CERT_PROV = 1,
	MMEF_CMD_DEV_CFG = 2,
	MMEF_CMD_MO_NODE = 3,
};

enum mmef_cmd_state {
	MMEF_CMD_QUEUED = 0,    /* not yet issued */
	MMEF_CMD_DONE = 1,      /* a status came back */
	MMEF_CMD_ISSUED = 10,
	MMEF_CMD_REISSUED = 11,
};

/* --- records --- */
struct mmef_reg {
	char ri[MMEF_RI_MAX];
	char client_id[MEF_ID_MAX];
	char admin_fqdn[MEF_ID_MAX];
	char lbl[MMEF_LBL_MAX];   /* JSON array text, "" if none */
	int64_t et, ct, lt;       /* unix seconds */
	int64_t last_cmd_id;      /* last cmdID issued (0: none) */
	int64_t next_cmd_id;      /* next cmdID to hand out */
	unsigned cmds_pending;    /* commands queued or issued without a status (read only) */
};

struct mmef_keyreg {
	char rel_id[MMEF_RELID_MAX];
	char source_id[MEF_ID_MAX];
	char admin_fqdn[MEF_ID_MAX];
	int suid;
	char lbl[MMEF_LBL_MAX];
	int64_t et, ct, lt;
	bool exported;            /* key from EXPORTER-oneM2M-Connection, not a Key Value */
	size_t n_targets;
	char targets[MEF_MAX_TARGETS][MEF_ID_MAX];
};

struct mmef_cmd {
	char ri[MMEF_RI_MAX];
	int64_t seq;              /* queue order, assigned by the store */
	int64_t cmd_id;           /* 0 until first issued */
	int cls;                  /* enum mmef_cmd_class */
	char args[MMEF_ARGS_MAX]; /* the cmdArgs object, JSON text */
	char target_id[MEF_ID_MAX];
	int state;                /* enum mmef_cmd_state */
	int status;               /* client's sec:cmdStatusCode, -1 none */
	int64_t queued, issued, updated;
};

/* --- store (one transaction per call) --- */
/* MEF_EEXIST when ri exists or (client_id, admin_fqdn) is already registered. */
int store_mmef_reg_add(struct store *s, const struct mmef_reg *r);
int store_mmef_reg_get(struct store *s, const char *ri, struct mmef_reg *ret);
/* Replaces et, lbl, lt. MEF_ENOTFOUND. */
int store_mmef_reg_update(struct store *s, const struct mmef_reg *r);
/* Removes the registration and its commands. MEF_ENOTFOUND. */
int store_mmef_reg_remove(struct store *s, const char *ri);
typedef int (*store_mmef_reg_cb)(void *ctx, const struct mmef_reg *r);
int store_mmef_reg_list(struct store *s, store_mmef_reg_cb cb, void *ctx);

/*
 * Adds a key registration (key wrapped with aad "keyreg:<rel_id>") if
 * k->source_id holds an unexpired registration for k->admin_fqdn at now:
 * else MEF_EDENIED. MEF_EEXIST if rel_id exists.
 */
int store_mmef_key_add(struct store *s, const struct mmef_keyreg *k, const struct mef_secret *key,
		       int64_t now);
/* The same conditions without writing: 0, MEF_EDENIED or MEF_EEXIST (the group commit checks first). */
int store_mmef_key_check(struct store *s, const struct mmef_keyreg *k, int64_t now);
/* *ret_key (may be NULL) receives a new secret. */
int store_mmef_key_get(struct store *s, const char *rel_id, struct mmef_keyreg *ret,
		       struct mef_secret **ret_key);
/* Replaces et, lbl, lt and the target list. MEF_ENOTFOUND. */
int store_mmef_key_update(struct store *s, const struct mmef_keyreg *k);
int store_mmef_key_remove(struct store *s, const char *rel_id);
typedef int (*store_mmef_key_cb)(void *ctx, const struct mmef_keyreg *k, const struct mef_secret *key);
/* key passed only with with_secrets. */
int store_mmef_key_list(struct store *s, bool with_secrets, store_mmef_key_cb cb, void *ctx);

/* Queues a command on c->ri (seq, cmd_id, state assigned here). MEF_ENOTFOUND. */
int store_mmef_cmd_queue(struct store *s, const struct mmef_cmd *c, int64_t now,
			 int64_t *ret_seq);
/*
 * TS-0003 8.3.9 in one transaction: when has_status, records status for
 * cmd_id if that is the last issued command and it has none yet (else the
 * status is discarded); then issues the next command into *ret (ISSUED, or
 * REISSUED when the first open one was issued before). When nothing is open,
 * *ret_none is set and ret->cmd_id is a fresh cmdID for NO_MORE_COMMANDS.
 */
int store_mmef_cmd_next(struct store *s, const char *ri, bool has_status, int64_t cmd_id,
			int status, int64_t now, struct mmef_cmd *ret, bool *ret_none);
typedef int (*store_mmef_cmd_cb)(void *ctx, const struct mmef_cmd *c);
/* All commands (ri NULL) or those of ri, by ri then seq. */
int store_mmef_cmd_list(struct store *s, const char *ri, store_mmef_cmd_cb cb, void *ctx);

/* Deletes registrations (with their commands) and key registrations with et <= now. */
int store_mmef_sweep(struct store *s, int64_t now, unsigned *ret_regs, unsigned *ret_keys);

/* Housekeeping: deletes expired registrations and key registrations, logs the counts. */
void mmef_sweep(struct mefd *d);

/* --- commands (mmef_cmd.c) --- */
/*
 * Builds a command of class name (CERT_PROV, DEV_CFG, MO_NODE) from
 * "key=value" arguments, validated per TS-0003 8.3.9 (docs/mmef.md lists
 * the rules). fqdn is the MEF FQDN. 0 or MEF_EINVAL with *ret_why static.
 */
int mmef_cmd_build(const char *fqdn, const char *cls, char *const *args, size_t n_args,
		   struct mmef_cmd *ret, char *why, size_t why_len);
const char *mmef_cmd_class_name(int cls);

/* --- decoding helpers (mmef_names.c) --- */
/*
 * Parses a request body: content type, nesting depth, JSON object with one
 * root among roots[] (and a ty, if given, that agrees). Fills *ret_root with
 * the index into roots and *ret_obj with the inner object (new reference).
 * On refusal fills resp and returns non-zero.
 */
int mmef_body(const struct mef_req *req, const enum mmef_name *roots, size_t n_roots,
	      size_t *ret_root, json_t **ret_obj, struct mef_resp *resp);
/* "YYYYMMDDThhmmss" (UTC) to unix seconds. 0 or MEF_EINVAL. */
int mmef_timestamp_parse(const char *s, int64_t *ret);
/* A DNS name (letters, digits, '.', '-'; at most 253); NULL is not. */
bool mmef_fqdn_ok(const char *s);
/* An ISO 8601 duration (PnYnMnDTnHnMnS). */
bool mmef_duration_ok(const char *s);
/* Sets resp to a representation {root: o} (steals o) with rsc, ty and ctype. */
void mmef_respond(struct mef_resp *resp, int rsc, enum mmef_name root, int ty, json_t *o);

/* --- procedures (router rows) --- */
void proc_mmef_create(struct mefd *d, const struct mef_req *req, const char *const *params,
		      size_t n_params, struct mef_resp *resp);
void proc_mmef_retrieve(struct mefd *d, const struct mef_req *req, const char *const *params,
			size_t n_params, struct mef_resp *resp);
void proc_mmef_update(struct mefd *d, const struct mef_req *req, const char *const *params,
		      size_t n_params, struct mef_resp *resp);
void proc_mmef_delete(struct mefd *d, const struct mef_req *req, const char *const *params,
		      size_t n_params, struct mef_resp *resp);
void proc_mmef_cmd_retrieve(struct mefd *d, const struct mef_req *req, const char *const *params,
			    size_t n_params, struct mef_resp *resp);
void proc_mmef_cmd_update(struct mefd *d, const struct mef_req *req, const char *const *params,
			  size_t n_params, struct mef_resp *resp);

/* Registration and key-registration halves, called by the dispatchers above. */
void mmef_reg_create(struct mefd *d, const struct mef_req *req, json_t *o, struct mef_resp *resp);
void mmef_reg_retrieve(struct mefd *d, const struct mef_req *req, const char *ri,
		       struct mef_resp *resp);
void mmef_reg_update(struct mefd *d, const struct mef_req *req, const char *ri, json_t *o,
		     struct mef_resp *resp);
void mmef_reg_delete(struct mefd *d, const struct mef_req *req, const char *ri,
		     struct mef_resp *resp);
void mmef_key_create(struct mefd *d, const struct mef_req *req, json_t *o, struct mef_resp *resp);
void mmef_key_retrieve(struct mefd *d, const struct mef_req *req, const char *rel,
		       struct mef_resp *resp);
void mmef_key_update(struct mefd *d, const struct mef_req *req, const char *rel, json_t *o,
		     struct mef_resp *resp);
void mmef_key_delete(struct mefd *d, const struct mef_req *req, const char *rel,
		     struct mef_resp *resp);

/*
 * Checks o's members against the attribute rules of root for op (create or
 * update): unknown or read-only names, JSON types, mandatory members. On
 * refusal fills resp (RSC 4000) and returns non-zero.
 */
int mmef_attrs_check(const struct mef_req *req, enum mmef_name root, enum mef_op op, json_t *o,
		     struct mef_resp *resp);
/* m2m:labels: an array of >= 1 non-empty strings without spaces, as JSON text into out. */
int mmef_labels(json_t *v, char *out, size_t outlen);
/* et (in the future) and lbl of a create or update body; absent members leave the outputs alone. */
int mmef_common_attrs(const struct mef_req *req, json_t *o, int64_t *et, char *lbl, size_t lbl_len,
		      struct mef_resp *resp);
/*
 * Loads registration ri for its owner: 0, or non-zero with resp filled
 * (4004 unknown or expired, 4103 another client's registration).
 */
int mmef_reg_load_own(struct mefd *d, const struct mef_req *req, const char *ri, const char *what,
		      struct mmef_reg *ret, struct mef_resp *resp);
/* Logs one refusal line (notice) naming peer, client and why. */
void mmef_log_refusal(const struct mef_req *req, const char *what, const char *why);
/* Refuses: logs and sets resp. */
void mmef_refuse(const struct mef_req *req, struct mef_resp *resp, int rsc, const char *what,
		 const char *why);

#endif
