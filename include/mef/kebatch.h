/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Group commit of store rows whose answer can wait (docs/performance.md):
 * Enrolment Keys and issued certificates. mefd queues each new row; a writer
 * thread with its own store connection writes a whole queue in one SQLite
 * transaction (one fsync for many handshakes and enrolments) while the loop
 * goes on. Durability stays exact because nothing that depends on a queued
 * row is answered before it is committed (kebatch_require, kebatch_defer).
 * A row is named by its key: the KeID of a Ke, the serial of a certificate
 * (the two never collide: a KeID holds an '@', a serial is hex).
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

/*
 * A queue for the SQLite store s at path (the writer opens its own
 * connection with kek, borrowed); NULL (no batching: callers use
 * store_ke_put) for other backends or when the writer cannot start.
 */
struct kebatch *kebatch_new(struct store *s, const char *path, const struct mef_secret *kek);
/* Readable when the writer finished a batch: the loop then calls kebatch_on_fd. */
int kebatch_fd(const struct kebatch *b);
void kebatch_on_fd(struct kebatch *b);
/* Hands what is queued to the writer if it is idle (before the loop sleeps). */
void kebatch_kick(struct kebatch *b);
/*
 * Where one batch's time went, in consecutive phases (microseconds). Their
 * sum runs from its hand-over to the writer until the loop learnt it was
 * done: the wait an answer held for it had beyond the queueing.
 */
enum kebatch_phase {
	KEBATCH_HANDOFF, /* until the writer thread ran: a CPU to run it on */
	KEBATCH_WRITE,   /* the rows' INSERTs */
	KEBATCH_COMMIT,  /* COMMIT (WAL writes, fsync, checkpoint) and a file to sync */
	KEBATCH_NOTIFY,  /* from the writer's signal until the loop read it */
	KEBATCH_PHASES
};
struct kebatch_timing {
	size_t rows; /* rows it held (0: only a file to sync) */
	uint64_t us[KEBATCH_PHASES];
};
/* fn(ctx, timing) after each batch is on disk, on the loop thread (mefd_group_commit_*). */
void kebatch_on_batch(struct kebatch *b, void (*fn)(void *ctx, const struct kebatch_timing *t),
		      void *ctx);
/* True once after held answers were released: the loop should poll, not sleep. */
bool kebatch_take_released(struct kebatch *b);
/* Commits what is queued (kebatch_sync first to see an error), then frees; accepts NULL. */
struct kebatch *kebatch_free(struct kebatch *b);

/* Queues a copy of k and ke (not yet durable). 0 or MEF_ENOMEM / the commit's error when full. */
int kebatch_put(struct kebatch *b, const struct ke_rec *k, const struct mef_secret *ke);
/* Queues a copy of the certificate row c and its DER, key c->serial; as kebatch_put. */
int kebatch_put_cert(struct kebatch *b, const struct cert_rec *c, const uint8_t *der, size_t len);
struct mmef_keyreg;
/*
 * Queues a key registration (sec:mefKeyReg) with a copy of its key; the
 * writer adds it with store_mmef_key_add at now, in a savepoint of its own,
 * so the caller checks first (store_mmef_key_check, kebatch_queued) and a
 * refusal at the commit (a registration removed meanwhile) is a failed row.
 */
int kebatch_put_keyreg(struct kebatch *b, const struct mmef_keyreg *k, const struct mef_secret *key,
		       int64_t now);
/* True if a row with this key (KeID, serial, RelativeKeyID) is queued or in flight. */
bool kebatch_queued(const struct kebatch *b, const char *key);

/*
 * Makes the next commit also fdatasync fd (a dup is kept until then), so a
 * file written next to the store (the audit trail) becomes durable with the
 * rows queued alongside, and answers held for those rows wait for it too.
 * A commit is started even with no row queued. 0, or MEF_EIO (dup failed:
 * the caller syncs itself). Shaped for audit_defer_sync().
 */
int kebatch_sync_with_next(void *b, int fd);

/* Blocks until every queued row is written. 0, or MEF_ESTORE when some could not be stored. */
int kebatch_sync(struct kebatch *b);

/* 0 when the row key is durable (committing the queue first if key is in it), else MEF_ESTORE. */
int kebatch_require(struct kebatch *b, const char *key);

/*
 * Instead of committing the row key alone now: when key is queued, registers
 * on_commit(ctx) to run after the next commit (kebatch_sync, successful or
 * not) and returns true; the caller holds its answer until then (HTTPS:
 * MHD_suspend_connection). False when key is not queued (answer now).
 */
bool kebatch_defer(struct kebatch *b, const char *key, void (*on_commit)(void *ctx), void *ctx);
/* True when an answer waits for the next commit: commit before the loop sleeps. */
bool kebatch_waiting(const struct kebatch *b);
/* Drops every on_commit registered with ctx (its owner is going away). */
void kebatch_forget(struct kebatch *b, void *ctx);

size_t kebatch_count(const struct kebatch *b);
/* Age in ms of the oldest row not yet handed to the writer (0 when none). */
uint64_t kebatch_age_ms(const struct kebatch *b);

#endif
