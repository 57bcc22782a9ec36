/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * A throw-away SQLite store for the cache unit tests: a temporary
 * directory, a fixed KEK, the daemon's handle and a second handle on the
 * same file (mefctl, another connection), and plain SQLite for what an
 * operator does with the sqlite3 shell. Header-only, for the test files.
 */
#ifndef MEF_TEST_TMPSTORE_H
#define MEF_TEST_TMPSTORE_H

#include <sqlite3.h>
#include <stdio.h>
#include <unistd.h>

#include "mef/secret.h"
#include "mef/store.h"
#include "mef/wrap.h"

struct tmpstore {
	char dir[64], path[96];
	struct mef_secret *kek;
	struct store *s;   /* the daemon's handle */
	struct store *ctl; /* another writer on the same file */
};

/* A len-byte secret whose bytes are seed, seed + step, ...: distinct keys per seed; NULL on OOM. */
static inline struct mef_secret *
tmpstore_secret(size_t len, uint8_t seed, uint8_t step)
{
	struct mef_secret *s = secret_new(len);

	for (size_t i = 0; s && i < s->len; i++)
		s->p[i] = (uint8_t)(seed + step * i);
	return s;
}

/* 0, or -1 (the fixture fails). name ends up in the directory name. */
static inline int
tmpstore_open(struct tmpstore *t, const char *name, uint8_t kek_seed)
{
	snprintf(t->dir, sizeof(t->dir), "/tmp/%s.XXXXXX", name);
	if (!mkdtemp(t->dir))
		return -1;
	snprintf(t->path, sizeof(t->path), "%s/store.db", t->dir);
	t->kek = tmpstore_secret(WRAP_KEK_LEN, kek_seed, 1);
	if (!t->kek || store_open(t->path, t->kek, false, &t->s) != 0 ||
	    store_open(t->path, t->kek, false, &t->ctl) != 0)
		return -1;
	return 0;
}

static inline void
tmpstore_remove(struct tmpstore *t)
{
	char p[128];

	store_close(t->ctl);
	store_close(t->s);
	t->kek = secret_free(t->kek);
	for (const char *const *sfx = (const char *const[]){ "", "-wal", "-shm", NULL }; *sfx; sfx++) {
		snprintf(p, sizeof(p), "%s%s", t->path, *sfx);
		unlink(p);
	}
	rmdir(t->dir);
}

/* Runs sql on the file through plain SQLite, as an operator's sqlite3 shell would. */
static inline void
tmpstore_shell(const struct tmpstore *t, const char *sql)
{
	sqlite3 *db = NULL;
	char *err = NULL;

	assert_int_equal(sqlite3_open(t->path, &db), SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK)
		fail_msg("%s: %s", sql, err);
	sqlite3_close(db);
}

#endif
