/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Unit tests of the in-memory individual PSK clients (src/mef/clientcache.c)
 * on a temporary SQLite store. The cache must answer what
 * store_client_find_psk answers under the stamp it is given: a second store
 * handle plays mefctl and plain SQLite plays an operator with the sqlite3
 * shell, and every change they commit must be seen by the next lookup made
 * with the new stamp. A lookup made with the old stamp proves the answer
 * came from memory. Eviction must never give one client's record or PSK for
 * another's identity.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mef/clientcache.h"
#include "mef/err.h"
#include "mef/secret.h"
#include "mef/store.h"
#include "mef/wrap.h"

#include "tmpstore.h"

struct fx {
	struct tmpstore t;
	struct clientcache *cc;
};

static int
setup_cap(void **state, unsigned cap)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (!f || tmpstore_open(&f->t, "test_clientcache", 0x40) != 0 ||
	    !(f->cc = clientcache_new(cap)))
		return -1;
	*state = f;
	return 0;
}

static int
setup(void **state)
{
	return setup_cap(state, 1024);
}

/* One set of four: the fifth client evicts. */
static int
setup_small(void **state)
{
	return setup_cap(state, 4);
}

static int
setup_off(void **state)
{
	return setup_cap(state, 0);
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	clientcache_free(f->cc);
	tmpstore_remove(&f->t);
	free(f);
	return 0;
}

static struct mef_secret *
psk_of(uint8_t seed)
{
	return tmpstore_secret(16, seed, 7);
}

static void
add_client(struct store *s, const char *id, uint8_t seed)
{
	struct client_rec c = { .kind = CRED_PSK, .n_targets = 1 };
	struct mef_secret *psk = psk_of(seed);

	snprintf(c.id, sizeof(c.id), "%s", id);
	snprintf(c.psk_identity, sizeof(c.psk_identity), "%s@psk.example.com", id);
	snprintf(c.targets[0].id, sizeof(c.targets[0].id), "maf.example.com");
	c.targets[0].suid = seed;
	assert_int_equal(store_client_add(s, &c, psk), 0);
	secret_free(psk);
}

static int64_t
stamp(struct fx *f)
{
	int64_t n = 0;

	assert_int_equal(store_cred_stamp(f->t.s, &n), 0);
	return n;
}

/* The cache's answer under the current stamp equals the store's own. */
static void
assert_same_as_store(struct fx *f, const char *identity)
{
	struct mef_secret *want_psk = NULL, *got_psk = NULL;
	struct client_rec want, got;
	int64_t st = stamp(f);
	int want_r = store_client_find_psk(f->t.s, identity, &want, &want_psk);

	assert_int_equal(clientcache_find_psk(f->cc, f->t.s, st, identity, &got, &got_psk), want_r);
	if (want_r == 0) {
		assert_string_equal(got.id, want.id);
		assert_string_equal(got.psk_identity, want.psk_identity);
		assert_int_equal(got.disabled, want.disabled);
		assert_int_equal(got.n_targets, want.n_targets);
		assert_int_equal(got.targets[0].suid, want.targets[0].suid);
		assert_true(secret_equal(got_psk, want_psk));
	}
	secret_free(want_psk);
	secret_free(got_psk);
	/* the record alone, without the PSK */
	assert_int_equal(clientcache_find_psk(f->cc, f->t.s, st, identity, &got, NULL), want_r);
}

static void
test_answers_like_the_store(void **state)
{
	struct fx *f = *state;

	assert_same_as_store(f, "nobody@psk.example.com");
	add_client(f->t.ctl, "cse1", 1);
	add_client(f->t.ctl, "maf1", 2);
	for (int i = 0; i < 2; i++) { /* the second round comes from memory */
		assert_same_as_store(f, "cse1@psk.example.com");
		assert_same_as_store(f, "maf1@psk.example.com");
		assert_same_as_store(f, "CSE1@psk.example.com");
		assert_same_as_store(f, "");
	}
}

static void
test_every_change_seen_under_the_new_stamp(void **state)
{
	struct fx *f = *state;
	const char *id = "cse1@psk.example.com";
	struct mef_secret *psk = NULL, *want = psk_of(9);
	struct client_rec c;
	int64_t old;

	add_client(f->t.ctl, "cse1", 1);
	assert_same_as_store(f, id);
	old = stamp(f);

	/* mefctl disables it: the old stamp still answers from memory, the new one sees it */
	assert_int_equal(store_client_get(f->t.ctl, "cse1", &c), 0);
	c.disabled = true;
	assert_int_equal(store_client_update(f->t.ctl, &c), 0);
	assert_true(stamp(f) != old);
	assert_int_equal(clientcache_find_psk(f->cc, f->t.s, old, id, &c, NULL), 0);
	assert_false(c.disabled);
	assert_same_as_store(f, id);
	assert_int_equal(clientcache_find_psk(f->cc, f->t.s, stamp(f), id, &c, NULL), 0);
	assert_true(c.disabled);

	/* mefctl replaces the client with a new PSK */
	store_client_remove(f->t.ctl, "cse1");
	add_client(f->t.ctl, "cse1", 9);
	assert_int_equal(clientcache_find_psk(f->cc, f->t.s, stamp(f), id, &c, &psk), 0);
	assert_true(secret_equal(psk, want));
	psk = secret_free(psk);
	secret_free(want);

	tmpstore_shell(&f->t, "DELETE FROM client_targets; DELETE FROM clients");
	assert_same_as_store(f, id);
	assert_int_equal(clientcache_find_psk(f->cc, f->t.s, stamp(f), id, &c, NULL), MEF_ENOTFOUND);
}

static void
test_ke_rows_keep_the_entries(void **state)
{
	struct fx *f = *state;
	struct ke_rec k = { .created = 1 };
	struct mef_secret *ke = psk_of(5);
	int64_t before;

	add_client(f->t.ctl, "cse1", 1);
	assert_same_as_store(f, "cse1@psk.example.com");
	before = stamp(f);
	snprintf(k.keid, sizeof(k.keid), "ke1");
	snprintf(k.client_id, sizeof(k.client_id), "cse1");
	snprintf(k.transport, sizeof(k.transport), "dtls");
	k.expires = 4000000000;
	assert_int_equal(store_ke_put(f->t.ctl, &k, ke), 0);
	assert_int_equal(stamp(f), before);
	secret_free(ke);
}

/* More clients than entries: each identity still gets exactly its own record and PSK. */
static void
test_eviction_never_mixes_clients(void **state)
{
	struct fx *f = *state;
	char id[32], identity[64];

	for (int i = 0; i < 12; i++) {
		snprintf(id, sizeof(id), "dev%d", i);
		add_client(f->t.ctl, id, (uint8_t)(10 + i));
	}
	for (int round = 0; round < 3; round++)
		for (int i = 0; i < 12; i++) {
			int j = (i * 5 + round) % 12;

			snprintf(identity, sizeof(identity), "dev%d@psk.example.com", j);
			assert_same_as_store(f, identity);
		}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_answers_like_the_store, setup, teardown),
		cmocka_unit_test_setup_teardown(test_every_change_seen_under_the_new_stamp, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_ke_rows_keep_the_entries, setup, teardown),
		cmocka_unit_test_setup_teardown(test_eviction_never_mixes_clients, setup_small, teardown),
		cmocka_unit_test_setup_teardown(test_answers_like_the_store, setup_off, teardown),
		cmocka_unit_test_setup_teardown(test_eviction_never_mixes_clients, setup_off, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
