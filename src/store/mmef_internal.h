/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The backend half of the Mmef store (mef/mmef.h): rows and opaque wrapped
 * blobs only; store_mmef.c does the KEK wrapping. One transaction per call.
 * Private to src/store/.
 */
#ifndef MEF_MMEF_INTERNAL_H
#define MEF_MMEF_INTERNAL_H

#include "mef/mmef.h"
#include "store_internal.h"

typedef int (*store_mmef_key_raw_cb)(void *ctx, const struct mmef_keyreg *k,
				     const struct store_blob *blob);

struct store_mmef_ops {
	int (*reg_add)(struct store *s, const struct mmef_reg *r);
	int (*reg_get)(struct store *s, const char *ri, struct mmef_reg *ret);
	int (*reg_update)(struct store *s, const struct mmef_reg *r);
	int (*reg_remove)(struct store *s, const char *ri);
	int (*reg_list)(struct store *s, store_mmef_reg_cb cb, void *ctx);
	int (*key_add)(struct store *s, const struct mmef_keyreg *k, const struct store_blob *blob,
		       int64_t now);
	int (*key_check)(struct store *s, const struct mmef_keyreg *k, int64_t now);
	int (*key_get)(struct store *s, const char *rel_id, struct mmef_keyreg *ret,
		       struct store_blob *ret_blob);
	int (*key_update)(struct store *s, const struct mmef_keyreg *k);
	int (*key_remove)(struct store *s, const char *rel_id);
	int (*key_list)(struct store *s, bool with_blobs, store_mmef_key_raw_cb cb, void *ctx);
	int (*cmd_queue)(struct store *s, const struct mmef_cmd *c, int64_t now, int64_t *ret_seq);
	int (*cmd_next)(struct store *s, const char *ri, bool has_status, int64_t cmd_id, int status,
			int64_t now, struct mmef_cmd *ret, bool *ret_none);
	int (*cmd_list)(struct store *s, const char *ri, store_mmef_cmd_cb cb, void *ctx);
	int (*sweep)(struct store *s, int64_t now, unsigned *ret_regs, unsigned *ret_keys);
};


#endif
