/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The Mmef store API (mef/mmef.h) over the backend's store_mmef_ops:
 * argument checks and the KEK wrapping of key-registration values, bound to
 * their row with aad "keyreg:<RelativeKeyID>" so a blob copied elsewhere
 * fails to open.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mef/err.h"
#include "mef/wrap.h"
#include "mmef_internal.h"

static const struct store_mmef_ops *
mops(const struct store *s)
{
	return s->ops->mmef;
}

static void
key_aad(const char *rel_id, char *out, size_t outlen)
{
	snprintf(out, outlen, "keyreg:%s", rel_id);
}

int
store_mmef_reg_add(struct store *s, const struct mmef_reg *r)
{
	if (!r->ri[0] || !r->client_id[0] || !r->admin_fqdn[0])
		return MEF_EINVAL;
	return mops(s)->reg_add(s, r);
}

int
store_mmef_reg_get(struct store *s, const char *ri, struct mmef_reg *ret)
{
	return mops(s)->reg_get(s, ri, ret);
}

int
store_mmef_reg_update(struct store *s, const struct mmef_reg *r)
{
	return mops(s)->reg_update(s, r);
}

int
store_mmef_reg_remove(struct store *s, const char *ri)
{
	return mops(s)->reg_remove(s, ri);
}

int
store_mmef_reg_list(struct store *s, store_mmef_reg_cb cb, void *ctx)
{
	return mops(s)->reg_list(s, cb, ctx);
}

int
store_mmef_key_check(struct store *s, const struct mmef_keyreg *k, int64_t now)
{
	if (!k->rel_id[0] || !k->source_id[0])
		return MEF_EINVAL;
	return mops(s)->key_check(s, k, now);
}

int
store_mmef_key_add(struct store *s, const struct mmef_keyreg *k, const struct mef_secret *key,
		   int64_t now)
{
	char aad[MMEF_RELID_MAX + 8];
	struct store_blob blob = {0};
	int r;

	if (!k->rel_id[0] || !k->source_id[0] || !key || !key->len || k->n_targets > MEF_MAX_TARGETS)
		return MEF_EINVAL;
	key_aad(k->rel_id, aad, sizeof(aad));
	if ((r = wrap_seal(s->kek, aad, key->p, key->len, &blob.p, &blob.len)) < 0)
		return r;
	r = mops(s)->key_add(s, k, &blob, now);
	free(blob.p);
	return r;
}

int
store_mmef_key_get(struct store *s, const char *rel_id, struct mmef_keyreg *ret,
		   struct mef_secret **ret_key)
{
	char aad[MMEF_RELID_MAX + 8];
	struct store_blob blob = {0};
	struct mef_secret *key = NULL;
	int r;

	if ((r = mops(s)->key_get(s, rel_id, ret, ret_key ? &blob : NULL)) < 0 || !ret_key)
		return r;
	key_aad(rel_id, aad, sizeof(aad));
	r = wrap_open(s->kek, aad, blob.p, blob.len, &key);
	free(blob.p);
	if (r == 0)
		*ret_key = key;
	return r;
}

int
store_mmef_key_update(struct store *s, const struct mmef_keyreg *k)
{
	if (k->n_targets > MEF_MAX_TARGETS)
		return MEF_EINVAL;
	return mops(s)->key_update(s, k);
}

int
store_mmef_key_remove(struct store *s, const char *rel_id)
{
	return mops(s)->key_remove(s, rel_id);
}

struct key_list_ctx {
	struct store *s;
	store_mmef_key_cb cb;
	void *ctx;
};

static int
key_list_open(void *arg, const struct mmef_keyreg *k, const struct store_blob *blob)
{
	struct key_list_ctx *lc = arg;
	char aad[MMEF_RELID_MAX + 8];
	struct mef_secret *key = NULL;
	int r;

	if (!blob)
		return lc->cb(lc->ctx, k, NULL);
	key_aad(k->rel_id, aad, sizeof(aad));
	if ((r = wrap_open(lc->s->kek, aad, blob->p, blob->len, &key)) < 0)
		return r;
	r = lc->cb(lc->ctx, k, key);
	secret_free(key);
	return r;
}

int
store_mmef_key_list(struct store *s, bool with_secrets, store_mmef_key_cb cb, void *ctx)
{
	struct key_list_ctx lc = {s, cb, ctx};

	return mops(s)->key_list(s, with_secrets, key_list_open, &lc);
}

int
store_mmef_cmd_queue(struct store *s, const struct mmef_cmd *c, int64_t now, int64_t *ret_seq)
{
	if (!c->ri[0] || c->cls <= MMEF_CMD_NO_MORE || c->cls > MMEF_CMD_MO_NODE)
		return MEF_EINVAL;
	return mops(s)->cmd_queue(s, c, now, ret_seq);
}

int
store_mmef_cmd_next(struct store *s, const char *ri, bool has_status, int64_t cmd_id, int status,
		    int64_t now, struct mmef_cmd *ret, bool *ret_none)
{
	return mops(s)->cmd_next(s, ri, has_status, cmd_id, status, now, ret, ret_none);
}

int
store_mmef_cmd_list(struct store *s, const char *ri, store_mmef_cmd_cb cb, void *ctx)
{
	return mops(s)->cmd_list(s, ri, cb, ctx);
}

int
store_mmef_sweep(struct store *s, int64_t now, unsigned *ret_regs, unsigned *ret_keys)
{
	return mops(s)->sweep(s, now, ret_regs, ret_keys);
}
