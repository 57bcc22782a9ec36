/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Enrolment groups in memory, for the PSK callback (docs/performance.md):
 * every group with its targets and opened secret, and the disabled
 * group-member identities. Each lookup first reads the store's credential
 * stamp (store_cred_stamp, one single-row SELECT) and reloads everything
 * when it moved, so a group or member that mefctl changes is seen at the
 * very next lookup, as it was when every lookup asked the store. Loop
 * thread only; one cache per store handle.
 */
#ifndef MEF_GROUPCACHE_H
#define MEF_GROUPCACHE_H

#include <stdbool.h>

#include "mef/secret.h"
#include "mef/store.h"

struct groupcache;

/* What a lookup found; the pointers are borrowed, valid until the next groupcache call. */
struct group_hit {
	const struct group_rec *group;
	const struct mef_secret *secret; /* the group secret */
	bool member_disabled;            /* the identity is a disabled member (store_member_is_disabled) */
};

/* An empty cache (loaded at its first lookup); NULL on OOM. */
struct groupcache *groupcache_new(void);
/* Wipes the secrets and frees; accepts NULL; returns NULL. */
struct groupcache *groupcache_free(struct groupcache *gc);

/*
 * The group store_group_match(s, kpm_id) would return at this moment.
 * 0, MEF_ENOTFOUND, MEF_ECRYPTO (the group's secret cannot be opened), or
 * the store's error (then nothing stays cached).
 */
int groupcache_match(struct groupcache *gc, struct store *s, const char *kpm_id,
		     struct group_hit *ret);
/*
 * The same, when the caller has read stamp = store_cred_stamp(s) itself,
 * before anything else it read from the store for this lookup (one read
 * serves this cache and the client cache, mef/clientcache.h).
 */
int groupcache_match_at(struct groupcache *gc, struct store *s, int64_t stamp, const char *kpm_id,
			struct group_hit *ret);

#endif
