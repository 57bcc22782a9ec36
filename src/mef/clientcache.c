/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Individual PSK clients in memory (mef/clientcache.h). Before, every
 * handshake of a registered client read its row and targets from the store
 * and opened its wrapped PSK: about 20 us on the loop, most of it SQLite
 * re-reading pages, because the writer thread's group commits reset the
 * loop connection's page cache (docs/performance.md section 8).
 *
 * The table is set-associative, SET_WAYS entries per set: a lookup looks at
 * one set, an insert replaces the set's least recently used entry, and no
 * entry ever moves. Only identities the store found get in, so a flood of
 * unknown identities cannot push the known ones out.
 *
 * The PSKs are kept open, each in its own struct mef_secret, until the
 * stamp moves (then wiped), their entry is replaced (wiped) or exit
 * (wiped). As with the group secrets (groupcache.c), keeping them adds no
 * exposure: this process holds the KEK, which opens any of them, for its
 * whole life. They never leave the loop thread and are never logged.
 */
#include <stdlib.h>
#include <string.h>

#include "mef/clientcache.h"
#include "mef/err.h"

#define SET_WAYS 4

struct entry {
	uint64_t hash; /* of the identity; 0: empty */
	uint64_t used; /* the lookup count at its last use */
	struct client_rec c;
	struct mef_secret *psk;
};

struct clientcache {
	size_t n_sets; /* a power of two; 0: caching is off */
	struct entry *e; /* n_sets * SET_WAYS */
	int64_t stamp;   /* the stamp every entry was read under */
	uint64_t ticks;
};

/* FNV-1a; never 0, which marks an empty entry. */
static uint64_t
identity_hash(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
	return h | 1;
}

static void
entry_clear(struct entry *e)
{
	if (!e->hash)
		return;
	e->psk = secret_free(e->psk);
	secret_wipe(e, sizeof(*e));
}

static void
clear_all(struct clientcache *cc)
{
	for (size_t i = 0; i < cc->n_sets * SET_WAYS; i++)
		entry_clear(&cc->e[i]);
}

struct clientcache *
clientcache_new(unsigned cap)
{
	struct clientcache *cc = calloc(1, sizeof(*cc));
	size_t sets = 1;

	if (!cc || cap == 0)
		return cc;
	while (sets * SET_WAYS < cap)
		sets <<= 1;
	if (!(cc->e = calloc(sets * SET_WAYS, sizeof(cc->e[0])))) {
		free(cc);
		return NULL;
	}
	cc->n_sets = sets;
	return cc;
}

struct clientcache *
clientcache_free(struct clientcache *cc)
{
	if (cc) {
		clear_all(cc);
		free(cc->e);
		free(cc);
	}
	return NULL;
}

/* The caller's copy: the record, and the PSK if it wants one. */
static int
give(const struct entry *e, struct client_rec *ret, struct mef_secret **ret_psk)
{
	if (ret_psk && !(*ret_psk = secret_dup(e->psk->p, e->psk->len)))
		return MEF_ENOMEM;
	*ret = e->c;
	return 0;
}

int
clientcache_find_psk(struct clientcache *cc, struct store *s, int64_t stamp,
		     const char *identity, struct client_rec *ret, struct mef_secret **ret_psk)
{
	struct entry *set, *victim;
	struct mef_secret *psk = NULL;
	uint64_t h;
	int r;

	if (!cc || cc->n_sets == 0)
		return store_client_find_psk(s, identity, ret, ret_psk);
	if (stamp != cc->stamp) {
		clear_all(cc);
		cc->stamp = stamp;
	}
	h = identity_hash(identity);
	set = &cc->e[(h & (cc->n_sets - 1)) * SET_WAYS];
	victim = &set[0];
	cc->ticks++;
	for (int w = 0; w < SET_WAYS; w++) {
		if (set[w].hash == h && strcmp(set[w].c.psk_identity, identity) == 0) {
			set[w].used = cc->ticks;
			return give(&set[w], ret, ret_psk);
		}
		if (set[w].used < victim->used)
			victim = &set[w];
	}
	/* the entry is read in full, PSK included, whatever this caller wants */
	if ((r = store_client_find_psk(s, identity, ret, &psk)) != 0)
		return r;
	if (!psk || strcmp(ret->psk_identity, identity) != 0) { /* not kept: it could never be found */
		if (ret_psk)
			*ret_psk = psk;
		else
			secret_free(psk);
		return 0;
	}
	entry_clear(victim);
	victim->hash = h;
	victim->used = cc->ticks;
	victim->c = *ret;
	victim->psk = psk;
	return give(victim, ret, ret_psk);
}
