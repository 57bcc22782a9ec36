/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Individual PSK clients in memory, for the PSK callback
 * (docs/performance.md): the records store_client_find_psk found, with
 * their opened PSK, in a set-associative table of [store] client_cache
 * entries. The clients that handshake again and again (an M2M
 * Authentication Function or a Registrar fetching keys, a device
 * re-enrolling over EST) no longer pay an indexed read and an AES-GCM open
 * each time. Every lookup names the store's credential stamp, read by the
 * caller before it reads anything else for that handshake; a stamp other
 * than the one the entries were read under empties the table first, so a
 * client that mefctl changes or disables is seen at the very next lookup.
 * Only found clients are kept: an unknown identity always asks the store.
 * Loop thread only; one cache per store handle.
 */
#ifndef MEF_CLIENTCACHE_H
#define MEF_CLIENTCACHE_H

#include <stdint.h>

#include "mef/secret.h"
#include "mef/store.h"

struct clientcache;

/* A cache of at most cap clients (rounded up to whole sets; 0: every lookup asks the store); NULL on OOM. */
struct clientcache *clientcache_new(unsigned cap);
/* Wipes the records and secrets and frees; accepts NULL; returns NULL. */
struct clientcache *clientcache_free(struct clientcache *cc);

/*
 * What store_client_find_psk(s, identity, ret, ret_psk) would return at
 * this moment, given stamp = store_cred_stamp(s) read before this call.
 * *ret_psk (ret_psk may be NULL) is a new secret the caller frees.
 */
int clientcache_find_psk(struct clientcache *cc, struct store *s, int64_t stamp,
			 const char *identity, struct client_rec *ret, struct mef_secret **ret_psk);

#endif
