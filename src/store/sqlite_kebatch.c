/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Group commit of Ke and certificate rows on the SQLite store
 * (include/mef/kebatch.h). The loop collects rows in one queue while a
 * writer thread, on its own connection to the same file, commits the
 * previous queue: the ordinary store_ke_put / store_cert_put (one INSERT
 * each) inside one BEGIN IMMEDIATE ... COMMIT, one WAL fsync per batch, and
 * the loop never waits for the disk unless an answer needs a row that is not
 * yet on it. The writer signals each finished batch on an eventfd that the
 * loop watches (kebatch_fd).
 */
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "mef/err.h"
#include "mef/kebatch.h"
#include "mef/log.h"
#include "mef/mmef.h"
#include "store_internal.h"

#define KEBATCH_FAILED 64 /* keys of rows that could not be written, answered with an error */
#define KEBATCH_WAITERS 8 /* owners of held answers (one per HTTPS daemon instance) */

enum row_kind { ROW_KE, ROW_CERT, ROW_KEYREG };

/* One queued row: the record and the bytes it owns (wiped and freed in row_done). */
struct row {
	enum row_kind kind;
	union {
		struct ke_rec ke;
		struct cert_rec cert;
		struct {
			struct mmef_keyreg *k; /* owned (large: its target list) */
			int64_t now;           /* the registration must be unexpired at this time */
		} keyreg;
	} u;
	struct mef_secret *blob; /* the Ke, the certificate DER, or the registered key */
	bool bad;                /* written by the writer: this row could not be stored */
};

struct batch {
	size_t n;
	uint64_t gen;
	uint64_t started_us; /* handed to the writer (start) */
	uint64_t ran_us, wrote_us, done_us; /* written by the writer: its phases (kebatch_timing) */
	int sync_fd;      /* a dup of a file to fdatasync after the commit (kebatch_sync_with_next), or -1 */
	bool sync_failed; /* written by the writer */
	struct row r[KEBATCH_MAX];
};

struct kebatch {
	struct store *ws; /* the writer thread's own connection */
	struct batch q[2];
	int cur;          /* q[cur] collects; q[cur ^ 1] is in flight when busy */
	bool busy;
	uint64_t next_gen, done_gen, first_ms;
	pthread_t th;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool go, done, quit; /* under mu */
	int efd;
	char failed[KEBATCH_FAILED][MEF_KEYID_MAX];
	size_t n_failed;
	struct {
		void (*fn)(void *ctx);
		void *ctx;
		uint64_t gen; /* released when this batch is done */
	} waiter[KEBATCH_WAITERS];
	size_t n_waiters;
	bool released; /* held answers were released since kebatch_take_released */
	void (*on_batch)(void *ctx, const struct kebatch_timing *t);
	void *on_batch_ctx;
};

static uint64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t
mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static const char *
row_key(const struct row *r)
{
	return r->kind == ROW_KE ? r->u.ke.keid
	       : r->kind == ROW_CERT ? r->u.cert.serial
				     : r->u.keyreg.k->rel_id;
}

/* The ordinary store call for this row, on the writer's connection. */
static int
row_write(struct store *s, const struct row *r)
{
	if (r->kind == ROW_KE)
		return store_ke_put(s, &r->u.ke, r->blob);
	if (r->kind == ROW_KEYREG) /* its own savepoint inside the batch */
		return store_mmef_key_add(s, r->u.keyreg.k, r->blob, r->u.keyreg.now);
	return store_cert_put(s, &r->u.cert, r->blob->p, r->blob->len);
}

static void
row_free(struct row *r)
{
	r->blob = secret_free(r->blob);
	if (r->kind == ROW_KEYREG) {
		free(r->u.keyreg.k);
		r->u.keyreg.k = NULL;
	}
}

/* Writer thread: one transaction for the whole batch; on failure each row alone. */
static void
write_batch(struct store *s, struct batch *w)
{
	sqlite3 *db = store_sqlite_db(s);
	int r = 0;

	for (size_t i = 0; i < w->n; i++)
		w->r[i].bad = false;
	w->wrote_us = w->ran_us;
	if (w->n == 0) /* only a file to sync */
		return;
	if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		r = MEF_ESTORE;
	for (size_t i = 0; i < w->n && r == 0; i++)
		r = row_write(s, &w->r[i]);
	w->wrote_us = mono_us();
	if (r == 0 && sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK)
		return;
	if (!sqlite3_get_autocommit(db))
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	for (size_t i = 0; i < w->n; i++)
		w->r[i].bad = row_write(s, &w->r[i]) != 0;
}

static void *
writer(void *arg)
{
	struct kebatch *b = arg;
	struct batch *w;
	uint64_t one = 1;

	pthread_mutex_lock(&b->mu);
	for (;;) {
		while (!b->go && !b->quit)
			pthread_cond_wait(&b->cv, &b->mu);
		if (!b->go)
			break;
		b->go = false;
		pthread_mutex_unlock(&b->mu);
		w = &b->q[b->cur ^ 1]; /* cur only changes while !done */
		w->ran_us = mono_us();
		write_batch(b->ws, w);
		if (w->sync_fd >= 0)
			w->sync_failed = fdatasync(w->sync_fd) != 0;
		w->done_us = mono_us();
		pthread_mutex_lock(&b->mu);
		b->done = true;
		pthread_cond_broadcast(&b->cv);
		if (write(b->efd, &one, sizeof(one)) < 0) {
			/* the loop also finds done when it waits; nothing else to do */
		}
	}
	pthread_mutex_unlock(&b->mu);
	return NULL;
}

struct kebatch *
kebatch_new(struct store *s, const char *path, const struct mef_secret *kek)
{
	struct kebatch *b;

	if (!s || !path || strcmp(store_backend(s), "sqlite") != 0)
		return NULL;
	if (!(b = calloc(1, sizeof(*b))))
		return NULL;
	b->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	b->next_gen = 1;
	b->q[0].sync_fd = b->q[1].sync_fd = -1;
	pthread_mutex_init(&b->mu, NULL);
	pthread_cond_init(&b->cv, NULL);
	if (b->efd < 0 || store_open(path, kek, false, &b->ws) != 0 ||
	    pthread_create(&b->th, NULL, writer, b) != 0) {
		if (b->ws)
			store_close(b->ws);
		if (b->efd >= 0)
			close(b->efd);
		free(b);
		return NULL;
	}
	return b;
}

int
kebatch_fd(const struct kebatch *b)
{
	return b ? b->efd : -1;
}

/* Loop side, after the writer finished: forget the batch, release the answers waiting for it. */
static void
finish(struct kebatch *b)
{
	struct batch *w = &b->q[b->cur ^ 1];
	size_t o = 0, n;

	if (b->on_batch) {
		struct kebatch_timing t = {w->n, {0}};

		t.us[KEBATCH_HANDOFF] = w->ran_us - w->started_us;
		t.us[KEBATCH_WRITE] = w->wrote_us - w->ran_us;
		t.us[KEBATCH_COMMIT] = w->done_us - w->wrote_us;
		t.us[KEBATCH_NOTIFY] = mono_us() - w->done_us;
		b->on_batch(b->on_batch_ctx, &t);
	}
	for (size_t i = 0; i < w->n; i++) {
		if (w->r[i].bad)
			snprintf(b->failed[b->n_failed++ % KEBATCH_FAILED], MEF_KEYID_MAX, "%s",
				 row_key(&w->r[i]));
		row_free(&w->r[i]);
	}
	w->n = 0;
	if (w->sync_fd >= 0) {
		if (w->sync_failed)
			log_err("audit trail: fdatasync after the group commit failed");
		close(w->sync_fd);
		w->sync_fd = -1;
	}
	if (w->gen > b->done_gen)
		b->done_gen = w->gen;
	b->busy = false;
	n = b->n_waiters;
	for (size_t i = 0; i < n; i++) {
		if (b->waiter[i].gen <= b->done_gen) {
			b->waiter[i].fn(b->waiter[i].ctx);
			b->released = true;
		} else
			b->waiter[o++] = b->waiter[i];
	}
	b->n_waiters = o;
}

/* Hands the collecting queue to the writer (it must be idle). */
static void
start(struct kebatch *b)
{
	if (b->busy || (b->q[b->cur].n == 0 && b->q[b->cur].sync_fd < 0))
		return;
	b->q[b->cur].started_us = mono_us();
	pthread_mutex_lock(&b->mu);
	b->cur ^= 1;
	b->busy = true;
	b->done = false;
	b->go = true;
	pthread_cond_signal(&b->cv);
	pthread_mutex_unlock(&b->mu);
}

/* Blocks until the batch in flight is written, then finishes it. */
static void
wait_done(struct kebatch *b)
{
	if (!b->busy)
		return;
	pthread_mutex_lock(&b->mu);
	while (!b->done)
		pthread_cond_wait(&b->cv, &b->mu);
	pthread_mutex_unlock(&b->mu);
	finish(b);
}

void
kebatch_on_fd(struct kebatch *b)
{
	uint64_t v;
	bool done;

	if (!b)
		return;
	if (read(b->efd, &v, sizeof(v)) < 0) {
		/* EAGAIN: already finished by wait_done */
	}
	pthread_mutex_lock(&b->mu);
	done = b->busy && b->done;
	pthread_mutex_unlock(&b->mu);
	if (done)
		finish(b);
	start(b); /* what queued meanwhile goes next: batches grow with the disk's latency */
}

void
kebatch_on_batch(struct kebatch *b, void (*fn)(void *ctx, const struct kebatch_timing *t),
		 void *ctx)
{
	if (b) {
		b->on_batch = fn;
		b->on_batch_ctx = ctx;
	}
}

void
kebatch_kick(struct kebatch *b)
{
	if (b)
		start(b);
}

struct kebatch *
kebatch_free(struct kebatch *b)
{
	if (!b)
		return NULL;
	kebatch_sync(b);
	pthread_mutex_lock(&b->mu);
	b->quit = true;
	pthread_cond_signal(&b->cv);
	pthread_mutex_unlock(&b->mu);
	pthread_join(b->th, NULL);
	for (int q = 0; q < 2; q++) {
		for (size_t i = 0; i < b->q[q].n; i++)
			row_free(&b->q[q].r[i]);
		if (b->q[q].sync_fd >= 0)
			close(b->q[q].sync_fd);
	}
	store_close(b->ws);
	close(b->efd);
	pthread_mutex_destroy(&b->mu);
	pthread_cond_destroy(&b->cv);
	free(b);
	return NULL;
}

/* The next free row of the collecting queue, its blob a copy of p (a full queue is written first). */
static struct row *
put(struct kebatch *b, enum row_kind kind, const uint8_t *p, size_t len)
{
	struct batch *q = &b->q[b->cur];
	struct row *r;

	if (q->n == KEBATCH_MAX) {
		wait_done(b);
		start(b);
		q = &b->q[b->cur];
	}
	r = &q->r[q->n];
	if (!(r->blob = secret_dup(p, len)))
		return NULL;
	if (q->n == 0) {
		b->first_ms = mono_ms();
		q->gen = b->next_gen++;
	}
	r->kind = kind;
	q->n++;
	return r;
}

int
kebatch_put(struct kebatch *b, const struct ke_rec *k, const struct mef_secret *ke)
{
	struct row *r = put(b, ROW_KE, ke->p, ke->len);

	if (!r)
		return MEF_ENOMEM;
	r->u.ke = *k;
	return 0;
}

int
kebatch_put_keyreg(struct kebatch *b, const struct mmef_keyreg *k, const struct mef_secret *key,
		   int64_t now)
{
	struct mmef_keyreg *copy = malloc(sizeof(*copy));
	struct row *r = copy ? put(b, ROW_KEYREG, key->p, key->len) : NULL;

	if (!r) {
		free(copy);
		return MEF_ENOMEM;
	}
	*copy = *k;
	r->u.keyreg.k = copy;
	r->u.keyreg.now = now;
	return 0;
}

int
kebatch_put_cert(struct kebatch *b, const struct cert_rec *c, const uint8_t *der, size_t len)
{
	struct row *r = put(b, ROW_CERT, der, len);

	if (!r)
		return MEF_ENOMEM;
	r->u.cert = *c;
	return 0;
}

int
kebatch_sync_with_next(void *arg, int fd)
{
	struct kebatch *b = arg;
	struct batch *q = b ? &b->q[b->cur] : NULL;

	if (!q || fd < 0)
		return MEF_EIO;
	if (q->sync_fd >= 0)
		return 0;
	if ((q->sync_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0)) < 0)
		return MEF_EIO;
	if (q->n == 0) { /* a batch of its own until a row joins it (put) */
		b->first_ms = mono_ms();
		q->gen = b->next_gen++;
	}
	return 0;
}

/* 0 when nothing is queued or in flight any more. */
int
kebatch_sync(struct kebatch *b)
{
	size_t before;

	if (!b)
		return 0;
	before = b->n_failed;
	wait_done(b);
	start(b);
	wait_done(b);
	return b->n_failed == before ? 0 : MEF_ESTORE;
}

/* Which queue holds the row key: 0 none, 1 collecting, 2 in flight. */
static int
where(const struct kebatch *b, const char *key)
{
	for (int q = 0; q < 2; q++) {
		const struct batch *w = &b->q[b->cur ^ q];

		for (size_t i = 0; i < w->n; i++)
			if (strcmp(row_key(&w->r[i]), key) == 0)
				return q + 1;
	}
	return 0;
}

bool
kebatch_queued(const struct kebatch *b, const char *key)
{
	return b && where(b, key) != 0;
}

int
kebatch_require(struct kebatch *b, const char *key)
{
	int w = where(b, key);

	if (w == 2) {
		wait_done(b);
	} else if (w == 1) {
		wait_done(b);
		start(b);
		wait_done(b);
	}
	for (size_t i = 0; i < KEBATCH_FAILED && i < b->n_failed; i++)
		if (strcmp(b->failed[i], key) == 0)
			return MEF_ESTORE;
	return 0;
}

bool
kebatch_defer(struct kebatch *b, const char *key, void (*on_commit)(void *ctx), void *ctx)
{
	int w;
	uint64_t gen;
	size_t i;

	if (!b || !(w = where(b, key)))
		return false;
	gen = b->q[w == 1 ? b->cur : b->cur ^ 1].gen;
	for (i = 0; i < b->n_waiters; i++) {
		if (b->waiter[i].fn == on_commit && b->waiter[i].ctx == ctx) {
			if (gen > b->waiter[i].gen)
				b->waiter[i].gen = gen;
			return true;
		}
	}
	if (i == KEBATCH_WAITERS)
		return false; /* no room: the caller commits now (kebatch_require) */
	b->waiter[i].fn = on_commit;
	b->waiter[i].ctx = ctx;
	b->waiter[i].gen = gen;
	b->n_waiters++;
	start(b);
	return true;
}

bool
kebatch_take_released(struct kebatch *b)
{
	bool r = b && b->released;

	if (b)
		b->released = false;
	return r;
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

size_t
kebatch_count(const struct kebatch *b)
{
	return b ? b->q[0].n + b->q[1].n : 0;
}

uint64_t
kebatch_age_ms(const struct kebatch *b)
{
	uint64_t now = mono_ms();

	return b && b->q[b->cur].n && now > b->first_ms ? now - b->first_ms : 0;
}
