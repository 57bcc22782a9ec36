/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Unit tests of the group commit of Ke and certificate rows
 * (src/store/sqlite_kebatch.c) on a temporary SQLite file. What reached the disk is counted with a separate
 * plain SQLite connection, independently of the store's code; Ke values are
 * compared with the bytes the test queued.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <poll.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mef/err.h"
#include "mef/kebatch.h"
#include "mef/kdf.h"
#include "mef/secret.h"
#include "mef/store.h"
#include "mef/wrap.h"

struct fx {
	char dir[64];
	char path[128];
	struct mef_secret *kek;
	struct store *s;
	struct kebatch *b;
};

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/test_kebatch.XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->path, sizeof(f->path), "%s/mefd.db", f->dir);
	f->kek = secret_new(WRAP_KEK_LEN);
	for (size_t i = 0; f->kek && i < f->kek->len; i++)
		f->kek->p[i] = (uint8_t)(0x5A ^ i);
	if (!f->kek || store_open(f->path, f->kek, false, &f->s) != 0)
		return -1;
	f->b = kebatch_new(f->s, f->path, f->kek);
	*state = f;
	return f->b ? 0 : -1;
}

static int
teardown(void **state)
{
	struct fx *f = *state;
	char cmd[160];

	kebatch_free(f->b);
	store_close(f->s);
	secret_free(f->kek);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
	if (system(cmd) != 0)
		return -1;
	free(f);
	return 0;
}

/* Rows in a table (ke, certs), through a connection of its own. */
static int
count_on_disk(const char *path, const char *table)
{
	char sql[64];
	sqlite3 *db;
	sqlite3_stmt *st;
	int n = -1;

	snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", table);
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
		return -1;
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return n;
}

static int
rows_on_disk(const char *path)
{
	return count_on_disk(path, "ke");
}

static void
make_ke(int i, struct ke_rec *k, struct mef_secret *ke)
{
	uint8_t rel[MEF_RELID_LEN];

	memset(k, 0, sizeof(*k));
	memset(rel, 0, sizeof(rel));
	rel[0] = (uint8_t)(i >> 8);
	rel[1] = (uint8_t)i;
	assert_int_equal(kdf_keid(rel, "mef.example.com", k->keid, sizeof(k->keid)), 0);
	snprintf(k->client_id, sizeof(k->client_id), "c%d", i);
	snprintf(k->transport, sizeof(k->transport), "dtls");
	k->created = 1700000000;
	k->expires = 1900000000;
	for (size_t j = 0; j < ke->len; j++)
		ke->p[j] = (uint8_t)(i * 7 + j);
}

/* 300 rows cross the 256-row queue limit; sync writes all; each Ke reads back unwrapped. */
static void
test_sync_writes_everything(void **state)
{
	struct fx *f = *state;
	struct mef_secret *ke = secret_new(MEF_KEY_LEN), *got = NULL;
	struct ke_rec k, r;

	for (int i = 0; i < 300; i++) {
		make_ke(i, &k, ke);
		assert_int_equal(kebatch_put(f->b, &k, ke), 0);
	}
	assert_int_equal(kebatch_sync(f->b), 0);
	assert_int_equal(kebatch_count(f->b), 0);
	assert_int_equal(rows_on_disk(f->path), 300);
	make_ke(299, &k, ke);
	assert_int_equal(store_ke_get(f->s, k.keid, &r, &got), 0);
	assert_string_equal(r.client_id, "c299");
	assert_memory_equal(got->p, ke->p, MEF_KEY_LEN);
	secret_free(got);
	secret_free(ke);
}

/* Nothing is written before it is needed; kebatch_require writes the queue. */
static void
test_require_commits(void **state)
{
	struct fx *f = *state;
	struct mef_secret *ke = secret_new(MEF_KEY_LEN);
	struct ke_rec k;

	make_ke(1, &k, ke);
	assert_int_equal(kebatch_put(f->b, &k, ke), 0);
	assert_int_equal(rows_on_disk(f->path), 0);
	assert_int_equal(kebatch_require(f->b, k.keid), 0);
	assert_int_equal(rows_on_disk(f->path), 1);
	assert_int_equal(kebatch_require(f->b, "00000000000000000000000000000000@x"), 0);
	secret_free(ke);
}

static int released;

static void
on_commit(void *ctx)
{
	released += *(int *)ctx;
}

/* A held answer is released only once its batch is on disk (writer, eventfd, loop side). */
static void
test_defer_releases_after_commit(void **state)
{
	struct fx *f = *state;
	struct mef_secret *ke = secret_new(MEF_KEY_LEN);
	struct pollfd p = {.fd = kebatch_fd(f->b), .events = POLLIN};
	struct ke_rec k;
	int one = 1;

	make_ke(2, &k, ke);
	assert_int_equal(kebatch_put(f->b, &k, ke), 0);
	assert_true(kebatch_defer(f->b, k.keid, on_commit, &one));
	assert_false(kebatch_defer(f->b, "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF@x", on_commit, &one));
	assert_true(kebatch_waiting(f->b));
	assert_int_equal(released, 0);
	kebatch_kick(f->b);
	assert_int_equal(poll(&p, 1, 5000), 1);
	kebatch_on_fd(f->b);
	assert_int_equal(released, 1);
	assert_true(kebatch_take_released(f->b));
	assert_false(kebatch_waiting(f->b));
	assert_int_equal(rows_on_disk(f->path), 1);
	secret_free(ke);
}

/* A KeID stored twice: the batch falls back to single rows and reports the duplicate. */
static void
test_failed_row_is_reported(void **state)
{
	struct fx *f = *state;
	struct mef_secret *ke = secret_new(MEF_KEY_LEN);
	struct ke_rec k, k2;

	make_ke(3, &k, ke);
	assert_int_equal(kebatch_put(f->b, &k, ke), 0);
	make_ke(4, &k2, ke);
	assert_int_equal(kebatch_put(f->b, &k2, ke), 0);
	assert_int_equal(kebatch_put(f->b, &k, ke), 0);
	assert_int_equal(kebatch_sync(f->b), MEF_ESTORE);
	assert_int_equal(rows_on_disk(f->path), 2);
	assert_int_equal(kebatch_require(f->b, k2.keid), 0);
	assert_int_equal(kebatch_require(f->b, k.keid), MEF_ESTORE); /* its duplicate failed */
	secret_free(ke);
}

static void
make_cert(int i, struct cert_rec *c)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->serial, sizeof(c->serial), "%032X", i);
	snprintf(c->client_id, sizeof(c->client_id), "c%d", i);
	snprintf(c->san, sizeof(c->san), "urn:x-onem2m-mef:client:c%d", i);
	c->not_before = 1700000000;
	c->not_after = 1900000000;
	c->issued = 1700000000;
}

/*
 * Certificate rows share the queue with Ke rows: held until their commit,
 * then on disk with their DER; a duplicate serial fails alone and is
 * reported by serial (its answer becomes 5000).
 */
static void
test_cert_rows(void **state)
{
	struct fx *f = *state;
	struct mef_secret *ke = secret_new(MEF_KEY_LEN);
	struct pollfd p = {.fd = kebatch_fd(f->b), .events = POLLIN};
	const uint8_t der[] = {0x30, 0x03, 0x02, 0x01, 0x07};
	struct cert_rec c, c2, got;
	uint8_t *got_der = NULL;
	size_t got_len = 0;
	struct ke_rec k;
	int one = 1;

	released = 0;
	make_cert(1, &c);
	make_ke(5, &k, ke);
	assert_int_equal(kebatch_put(f->b, &k, ke), 0);
	assert_int_equal(kebatch_put_cert(f->b, &c, der, sizeof(der)), 0);
	assert_true(kebatch_defer(f->b, c.serial, on_commit, &one));
	/*
	 * kebatch_defer has already handed the batch to the writer, which may
	 * have committed it by now: what must not have happened yet is the
	 * answer's release, which only the loop side (kebatch_on_fd) does.
	 */
	assert_int_equal(released, 0);
	kebatch_kick(f->b);
	assert_int_equal(poll(&p, 1, 5000), 1);
	kebatch_on_fd(f->b);
	assert_int_equal(released, 1);
	assert_int_equal(count_on_disk(f->path, "certs"), 1);
	assert_int_equal(rows_on_disk(f->path), 1);
	assert_int_equal(kebatch_require(f->b, c.serial), 0);
	assert_int_equal(store_cert_get(f->s, c.serial, &got, &got_der, &got_len), 0);
	assert_string_equal(got.client_id, "c1");
	assert_int_equal(got_len, sizeof(der));
	assert_memory_equal(got_der, der, sizeof(der));
	free(got_der);

	make_cert(2, &c2);
	assert_int_equal(kebatch_put_cert(f->b, &c, der, sizeof(der)), 0); /* serial 1 again */
	assert_int_equal(kebatch_put_cert(f->b, &c2, der, sizeof(der)), 0);
	assert_int_equal(kebatch_require(f->b, c2.serial), 0);
	assert_int_equal(kebatch_require(f->b, c.serial), MEF_ESTORE);
	assert_int_equal(count_on_disk(f->path, "certs"), 2);
	secret_free(ke);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_sync_writes_everything, setup, teardown),
		cmocka_unit_test_setup_teardown(test_require_commits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_defer_releases_after_commit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_failed_row_is_reported, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cert_rows, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
