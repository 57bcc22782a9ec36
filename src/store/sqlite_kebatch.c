/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Group commit of Enrolment Keys on the SQLite store (include/mef/kebatch.h).
 * Queued rows are written by the ordinary store_ke_put (sealed, one INSERT
 * each) inside one BEGIN IMMEDIATE ... COMMIT, so a batch costs one WAL
 * fsync. No transaction is held open between commits: other store calls
 * never see a half-written batch or a nested BEGIN.
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mef/err.h"
#include "mef/kebatch.h"
#include "mef/log.h"
#include "store_internal.h"

#define KEBATCH_FAILED 64 /* KeIDs whose row could not be written, answered with an error */
#define KEBATCH_WAITERS 8 /* owners of held answers (one per HTTPS daemon instance) */

struct kebatch {
	struct store *s;
	size_t n;
	uint64_t first_ms;
	struct ke_rec k[KEBATCH_MAX];
	struct mef_secret *ke[KEBATCH_MAX];
	char failed[KEBATCH_FAILED][MEF_KEYID_MAX];
	size_t n_failed;
	struct {
		void (*fn)(void *ctx);
		void *ctx;
	} waiter[KEBATCH_WAITERS];
	size_t n_waiters;
};

static uint64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

struct kebatch *
kebatch_new(struct store *s)
{
	struct kebatch *b;

	if (!s || strcmp(store_backend(s), "sqlite") != 0)
		return NULL;
	b = calloc(1, sizeof(*b));
	if (b)
		b->s = s;
	return b;
}

struct kebatch *
kebatch_free(struct kebatch *b)
{
	if (!b)
		return NULL;
	kebatch_sync(b);
	for (size_t i = 0; i < b->n; i++)
		secret_free(b->ke[i]);
	free(b);
	return NULL;
}

int
kebatch_put(struct kebatch *b, const struct ke_rec *k, const struct mef_secret *ke)
{
	int r;

	if (b->n == KEBATCH_MAX && (r = kebatch_sync(b)) != 0)
		return r;
	if (!(b->ke[b->n] = secret_dup(ke->p, ke->len)))
		return MEF_ENOMEM;
	if (b->n == 0)
		b->first_ms = mono_ms();
	b->k[b->n++] = *k;
	return 0;
}

static void
forget(struct kebatch *b, size_t i, bool failed)
{
	if (failed)
		snprintf(b->failed[b->n_failed++ % KEBATCH_FAILED], MEF_KEYID_MAX, "%s", b->k[i].keid);
	b->ke[i] = secret_free(b->ke[i]);
}

/* After a failed batch: each row alone (autocommit, durable); rows that still fail are dropped. */
static void
one_by_one(struct kebatch *b)
{
	for (size_t i = 0; i < b->n; i++) {
		int r = store_ke_put(b->s, &b->k[i], b->ke[i]);

		if (r != 0)
			log_debug("enrolment key %s not stored: %s", b->k[i].keid, mef_strerror(r));
		forget(b, i, r != 0);
	}
	b->n = 0;
}

static int
commit(struct kebatch *b)
{
	sqlite3 *db = store_sqlite_db(b->s);
	size_t i;
	int r = 0;

	if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		return MEF_ESTORE; /* busy past the timeout: the queue stays, retried later */
	for (i = 0; i < b->n && r == 0; i++)
		r = store_ke_put(b->s, &b->k[i], b->ke[i]);
	if (r == 0 && sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK) {
		for (i = 0; i < b->n; i++)
			forget(b, i, false);
		b->n = 0;
		return 0;
	}
	sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	one_by_one(b);
	return MEF_ESTORE;
}

/* Held answers are released after every attempt: a Ke still queued then answers 5000. */
int
kebatch_sync(struct kebatch *b)
{
	size_t n;
	int r;

	if (!b)
		return 0;
	r = b->n ? commit(b) : 0;
	n = b->n_waiters;
	b->n_waiters = 0;
	for (size_t i = 0; i < n; i++)
		b->waiter[i].fn(b->waiter[i].ctx);
	return r;
}

static bool
queued(const struct kebatch *b, const char *keid)
{
	for (size_t i = 0; i < b->n; i++)
		if (strcmp(b->k[i].keid, keid) == 0)
			return true;
	return false;
}

bool
kebatch_defer(struct kebatch *b, const char *keid, void (*on_commit)(void *ctx), void *ctx)
{
	size_t i;

	if (!b || !queued(b, keid))
		return false;
	for (i = 0; i < b->n_waiters; i++)
		if (b->waiter[i].fn == on_commit && b->waiter[i].ctx == ctx)
			return true;
	if (i == KEBATCH_WAITERS)
		return false; /* no room: the caller commits now (kebatch_require) */
	b->waiter[b->n_waiters].fn = on_commit;
	b->waiter[b->n_waiters++].ctx = ctx;
	return true;
}

bool
kebatch_waiting(const struct kebatch *b)
{
	return b && b->n_waiters > 0;
}

void
kebatch_forget(struct kebatch *b, void *ctx)
{
	size_t o = 0;

	for (size_t i = 0; b && i < b->n_waiters; i++)
		if (b->waiter[i].ctx != ctx)
			b->waiter[o++] = b->waiter[i];
	if (b)
		b->n_waiters = o;
}

int
kebatch_require(struct kebatch *b, const char *keid)
{
	if (queued(b, keid))
		kebatch_sync(b);
	if (queued(b, keid))
		return MEF_ESTORE;
	for (size_t i = 0; i < KEBATCH_FAILED && i < b->n_failed; i++)
		if (strcmp(b->failed[i], keid) == 0)
			return MEF_ESTORE;
	return 0;
}

size_t
kebatch_count(const struct kebatch *b)
{
	return b ? b->n : 0;
}

uint64_t
kebatch_age_ms(const struct kebatch *b)
{
	uint64_t now = mono_ms();

	return b && b->n && now > b->first_ms ? now - b->first_ms : 0;
}
