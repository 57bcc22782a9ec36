/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Enrolment groups in memory (mef/groupcache.h). Before, each group-member
 * handshake ran the GLOB query over every group, the targets query, the
 * member-disabled query and an AES-GCM open of the group secret; now it
 * reads one stamp and matches here, with the backend's own glob, in the
 * order the backend's query would have tried the groups.
 *
 * The group secrets are kept open, each in its own struct mef_secret, from
 * one load to the next invalidation (then wiped) or exit (wiped). Before,
 * each was opened at every handshake for the length of one HMAC. Keeping it
 * adds no exposure: this process holds the KEK, which opens any of them,
 * for its whole life, so whoever can read this memory can already have
 * them. They never leave the loop thread and are never logged.
 */
#include <stdlib.h>
#include <string.h>

#include "mef/err.h"
#include "mef/groupcache.h"

struct cached_group {
	struct group_rec g;
	struct mef_secret *secret; /* NULL: could not be opened */
};

struct groupcache {
	bool loaded;
	int64_t stamp; /* the store's credential stamp read before the load */
	struct cached_group *groups; /* in match order */
	size_t n_groups, cap_groups;
	char **members; /* disabled member identities, sorted by strcmp */
	size_t n_members, cap_members;
};

struct groupcache *
groupcache_new(void)
{
	return calloc(1, sizeof(struct groupcache));
}

static void
clear(struct groupcache *gc)
{
	for (size_t i = 0; i < gc->n_groups; i++)
		secret_free(gc->groups[i].secret);
	for (size_t i = 0; i < gc->n_members; i++)
		free(gc->members[i]);
	free(gc->groups);
	free(gc->members);
	*gc = (struct groupcache){ 0 };
}

struct groupcache *
groupcache_free(struct groupcache *gc)
{
	if (gc)
		clear(gc);
	free(gc);
	return NULL;
}

/* Makes room for one more element of size sz in *arr (capacity *cap, count n). */
static int
grow(void *arr, size_t *cap, size_t n, size_t sz)
{
	void **p = arr, *np;
	size_t ncap = *cap ? *cap * 2 : 8;

	if (n < *cap)
		return 0;
	np = realloc(*p, ncap * sz);
	if (!np)
		return MEF_ENOMEM;
	*p = np;
	*cap = ncap;
	return 0;
}

static int
add_group(void *ctx, const struct group_rec *g, struct mef_secret *secret)
{
	struct groupcache *gc = ctx;

	if (grow(&gc->groups, &gc->cap_groups, gc->n_groups, sizeof(gc->groups[0])) != 0) {
		secret_free(secret);
		return MEF_ENOMEM;
	}
	gc->groups[gc->n_groups].g = *g;
	gc->groups[gc->n_groups++].secret = secret;
	return 0;
}

static int
add_member(void *ctx, const char *id)
{
	struct groupcache *gc = ctx;
	char *dup;

	if (grow(&gc->members, &gc->cap_members, gc->n_members, sizeof(gc->members[0])) != 0 ||
	    !(dup = strdup(id)))
		return MEF_ENOMEM;
	gc->members[gc->n_members++] = dup;
	return 0;
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * The stamp is read before the tables: a change committed after that read
 * moves the stamp past the one kept, so the next lookup loads again. Read
 * after them, a change in between would be kept under the new stamp.
 */
static int
refresh(struct groupcache *gc, struct store *s, int64_t stamp)
{
	int r;

	if (gc->loaded && stamp == gc->stamp)
		return 0;
	clear(gc);
	r = store_group_scan(s, add_group, gc);
	if (r == 0)
		r = store_member_disabled_list(s, add_member, gc);
	if (r < 0) {
		clear(gc);
		return r;
	}
	if (gc->n_members)
		qsort(gc->members, gc->n_members, sizeof(gc->members[0]), cmp_str);
	gc->stamp = stamp;
	gc->loaded = true;
	return 0;
}

int
groupcache_match(struct groupcache *gc, struct store *s, const char *kpm_id, struct group_hit *ret)
{
	int64_t stamp;
	int r;

	if ((r = store_cred_stamp(s, &stamp)) < 0) {
		clear(gc);
		return r;
	}
	return groupcache_match_at(gc, s, stamp, kpm_id, ret);
}

int
groupcache_match_at(struct groupcache *gc, struct store *s, int64_t stamp, const char *kpm_id,
		    struct group_hit *ret)
{
	const struct cached_group *hit = NULL;
	int r;

	if (!kpm_id[0] || strnlen(kpm_id, MEF_ID_MAX) >= MEF_ID_MAX)
		return MEF_ENOTFOUND; /* as store_group_match */
	if ((r = refresh(gc, s, stamp)) < 0)
		return r;
	for (size_t i = 0; i < gc->n_groups && !hit; i++)
		if (store_group_glob(s, gc->groups[i].g.pattern, kpm_id))
			hit = &gc->groups[i];
	if (!hit)
		return MEF_ENOTFOUND;
	if (!hit->secret)
		return MEF_ECRYPTO;
	ret->group = &hit->g;
	ret->secret = hit->secret;
	ret->member_disabled = gc->n_members &&
			       bsearch(&kpm_id, gc->members, gc->n_members, sizeof(gc->members[0]),
				       cmp_str) != NULL;
	return 0;
}
