/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Token-bucket rate limits ([limits] handshake_rate/_burst, request_rate/
 * _burst, addr_factor), one bucket per (kind, identity) and per (kind,
 * source address), in a fixed-size table: memory is bounded whatever peers
 * do, the least recently used bucket of a probe window is evicted.
 */
#ifndef MEF_RATELIMIT_H
#define MEF_RATELIMIT_H

#include <stdint.h>

struct mef_conf;
struct ratelimit;

enum rl_kind { RL_HANDSHAKE = 0, RL_REQUEST = 1 };

/* A table of at least slots buckets (rounded up to a power of two). NULL on OOM. */
struct ratelimit *ratelimit_new(unsigned slots);
struct ratelimit *ratelimit_free(struct ratelimit *rl);

/*
 * Takes one token from the identity's bucket and from the source address's
 * (addr "HOST:PORT" or "[V6]:PORT"; the port is ignored), only if both have
 * one. identity may be NULL or "" (only the address is limited). 0, or
 * MEF_EBUSY with *ret_wait_s (>= 1) seconds until a token is available and
 * *ret_scope "identity" or "address". now_ms is monotonic.
 */
int ratelimit_take(struct ratelimit *rl, const struct mef_conf *c, enum rl_kind kind,
		   const char *addr, const char *identity, uint64_t now_ms, unsigned *ret_wait_s,
		   const char **ret_scope);

#endif
