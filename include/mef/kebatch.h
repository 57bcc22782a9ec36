/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Group commit of Enrolment Keys (docs/performance.md). mefd queues each new
 * Ke and writes a whole queue in one SQLite transaction: one fsync for many
 * handshakes. Durability stays exact because nothing that depends on a
 * queued Ke is answered before kebatch_require() has committed it.
 */
#ifndef MEF_KEBATCH_H
#define MEF_KEBATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mef/secret.h"
#include "mef/store.h"

#define KEBATCH_MAX 256 /* a full queue is committed at once */

struct kebatch;

/* A queue on s; NULL (no batching: callers use store_ke_put) for non-SQLite stores or ENOMEM. */
struct kebatch *kebatch_new(struct store *s);
/* Commits what is queued (kebatch_sync first to see an error), then frees; accepts NULL. */
struct kebatch *kebatch_free(struct kebatch *b);

/* Queues a copy of k and ke (not yet durable). 0 or MEF_ENOMEM / the commit's error when full. */
int kebatch_put(struct kebatch *b, const struct ke_rec *k, const struct mef_secret *ke);

/* Writes every queued Ke in one transaction. 0, or MEF_ESTORE (those left queued are retried). */
int kebatch_sync(struct kebatch *b);

/* 0 when keid is durable (committing the queue first if keid is in it), else MEF_ESTORE. */
int kebatch_require(struct kebatch *b, const char *keid);

/*
 * Instead of committing keid alone now: when keid is queued, registers
 * on_commit(ctx) to run after the next commit (kebatch_sync, successful or
 * not) and returns true; the caller holds its answer until then (HTTPS:
 * MHD_suspend_connection). False when keid is not queued (answer now).
 */
bool kebatch_defer(struct kebatch *b, const char *keid, void (*on_commit)(void *ctx), void *ctx);
/* True when an answer waits for the next commit: commit before the loop sleeps. */
bool kebatch_waiting(const struct kebatch *b);
/* Drops every on_commit registered with ctx (its owner is going away). */
void kebatch_forget(struct kebatch *b, void *ctx);

size_t kebatch_count(const struct kebatch *b);
/* Age in ms of the oldest queued Ke (0 when empty). */
uint64_t kebatch_age_ms(const struct kebatch *b);

#endif
