/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Token buckets for handshakes and requests, per identity and per source
 * address. Buckets live in one open-addressed table keyed by a 64-bit hash
 * of (kind, scope, key); a miss takes a free slot or the least recently used
 * one of its probe window, so the table never grows. An evicted bucket comes
 * back full: the per-address bucket still bounds a peer that cycles names.
 */
#include <stdlib.h>
#include <string.h>

#include "mef/conf.h"
#include "mef/err.h"
#include "mef/ratelimit.h"

#define PROBE 8

struct bucket {
	uint64_t key;      /* 0 = free */
	uint64_t last_ms;  /* last refill / use */
	double tokens;
};

struct ratelimit {
	size_t mask;
	struct bucket *b;
};

struct ratelimit *
ratelimit_new(unsigned slots)
{
	struct ratelimit *rl = calloc(1, sizeof(*rl));
	size_t n = 64;

	while (n < slots)
		n <<= 1;
	if (!rl || !(rl->b = calloc(n, sizeof(*rl->b)))) {
		free(rl);
		return NULL;
	}
	rl->mask = n - 1;
	return rl;
}

struct ratelimit *
ratelimit_free(struct ratelimit *rl)
{
	if (rl) {
		free(rl->b);
		free(rl);
	}
	return NULL;
}

/* FNV-1a over the tag byte and the key text (len bytes); never 0. */
static uint64_t
key_hash(char tag, const char *s, size_t len)
{
	uint64_t h = 1469598103934665603ull;

	h = (h ^ (unsigned char)tag) * 1099511628211ull;
	for (size_t i = 0; i < len; i++)
		h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
	return h ? h : 1;
}

/* The host part of "HOST:PORT" / "[V6]:PORT" (length of it). */
static size_t
host_len(const char *addr)
{
	const char *colon = strrchr(addr, ':');

	if (addr[0] == '[')
		return strcspn(addr, "]") + 1;
	if (colon && strchr(addr, ':') == colon)
		return (size_t)(colon - addr);
	return strlen(addr);
}

static struct bucket *
bucket_find(struct ratelimit *rl, uint64_t key, double burst, uint64_t now)
{
	struct bucket *victim = NULL;

	for (size_t i = 0; i < PROBE; i++) {
		struct bucket *b = &rl->b[(key + i) & rl->mask];

		if (b->key == key)
			return b;
		if (!victim || (victim->key != 0 && (b->key == 0 || b->last_ms < victim->last_ms)))
			victim = b;
	}
	*victim = (struct bucket){.key = key, .last_ms = now, .tokens = burst};
	return victim;
}

struct limit {
	double per_ms;
	double burst;
};

/* Refills b; the seconds until it holds one token (0 if it has one now). */
static unsigned
bucket_wait(struct bucket *b, const struct limit *l, uint64_t now)
{
	double s;

	if (now > b->last_ms) {
		b->tokens += (double)(now - b->last_ms) * l->per_ms;
		if (b->tokens > l->burst)
			b->tokens = l->burst;
		b->last_ms = now;
	}
	if (b->tokens >= 1.0)
		return 0;
	s = (1.0 - b->tokens) / l->per_ms / 1000.0;
	return (unsigned)s + ((double)(unsigned)s < s ? 1 : 0); /* ceil, >= 1 */
}

static void
limits_of(const struct mef_conf *c, enum rl_kind kind, struct limit *id, struct limit *addr)
{
	unsigned rate = kind == RL_HANDSHAKE ? c->handshake_rate : c->request_rate;
	unsigned burst = kind == RL_HANDSHAKE ? c->handshake_burst : c->request_burst;

	id->per_ms = rate / 60000.0;
	id->burst = burst;
	addr->per_ms = id->per_ms * c->addr_factor;
	addr->burst = id->burst * c->addr_factor;
}

int
ratelimit_take(struct ratelimit *rl, const struct mef_conf *c, enum rl_kind kind,
	       const char *addr, const char *identity, uint64_t now_ms, unsigned *ret_wait_s,
	       const char **ret_scope)
{
	struct limit lid, laddr;
	struct bucket *bi = NULL, *ba;
	unsigned wi = 0, wa;

	if (!rl)
		return 0;
	limits_of(c, kind, &lid, &laddr);
	ba = bucket_find(rl, key_hash((char)('A' + kind), addr, host_len(addr)), laddr.burst, now_ms);
	if (identity && identity[0]) {
		bi = bucket_find(rl, key_hash((char)('I' + kind), identity, strlen(identity)), lid.burst,
				 now_ms);
		if (bi == ba) /* evicted each other in one probe window: keep the address */
			bi = NULL;
		else
			wi = bucket_wait(bi, &lid, now_ms);
	}
	wa = bucket_wait(ba, &laddr, now_ms);
	if (wi || wa) {
		*ret_wait_s = wi > wa ? wi : wa;
		*ret_scope = wi >= wa ? "identity" : "address";
		return MEF_EBUSY;
	}
	ba->tokens -= 1.0;
	if (bi)
		bi->tokens -= 1.0;
	return 0;
}
