/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Unit tests of the in-memory enrolment groups (src/mef/groupcache.c) on a
 * temporary SQLite store. The cache must answer what store_group_match and
 * store_member_is_disabled answer, at every moment: a second store handle
 * plays mefctl (another connection on the same file) and plain SQLite plays
 * an operator with the sqlite3 shell, and every change they commit must be
 * seen by the very next lookup. Ke rows, which the daemon writes all the
 * time, must not move the credential stamp.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mef/err.h"
#include "mef/groupcache.h"
#include "mef/secret.h"
#include "mef/store.h"
#include "mef/wrap.h"

#include "tmpstore.h"

struct fx {
	struct tmpstore t;
	struct groupcache *gc;
};

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (!f || tmpstore_open(&f->t, "test_groupcache", 0x30) != 0 || !(f->gc = groupcache_new()))
		return -1;
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	groupcache_free(f->gc);
	tmpstore_remove(&f->t);
	free(f);
	return 0;
}

static struct mef_secret *
secret_of(uint8_t seed)
{
	return tmpstore_secret(32, seed, 3);
}

static void
add_group(struct store *s, const char *name, const char *pattern, uint8_t seed, int suid)
{
	struct group_rec g = { .n_targets = 1 };
	struct mef_secret *secret = secret_of(seed);

	snprintf(g.name, sizeof(g.name), "%s", name);
	snprintf(g.pattern, sizeof(g.pattern), "%s", pattern);
	snprintf(g.targets[0].id, sizeof(g.targets[0].id), "maf.example.com");
	g.targets[0].suid = suid;
	assert_int_equal(store_group_add(s, &g, secret), 0);
	secret_free(secret);
}

/* The cache's answer for id equals the store's own (group, secret, member flag). */
static void
assert_same_as_store(struct fx *f, const char *id)
{
	struct mef_secret *secret = NULL;
	struct group_rec g;
	struct group_hit hit;
	bool off = false;
	int want = store_group_match(f->t.s, id, &g, &secret);

	assert_int_equal(groupcache_match(f->gc, f->t.s, id, &hit), want);
	if (want != 0)
		return;
	assert_string_equal(hit.group->name, g.name);
	assert_int_equal(hit.group->disabled, g.disabled);
	assert_int_equal(hit.group->n_targets, g.n_targets);
	assert_int_equal(hit.group->targets[0].suid, g.targets[0].suid);
	assert_int_equal(hit.secret->len, secret->len);
	assert_true(secret_equal(hit.secret, secret));
	assert_int_equal(store_member_is_disabled(f->t.s, id, &off), 0);
	assert_int_equal(hit.member_disabled, off);
	secret_free(secret);
}

static void
test_matches_like_the_store(void **state)
{
	struct fx *f = *state;
	static const char *const ids[] = {
		"dev-1@factory-7.example.com", "dev-1@line-2.factory-7.example.com",
		"x@other.example.com", "dev-[1]@factory-7.example.com", "DEV-1@FACTORY-7.EXAMPLE.COM",
		"", "a?b@factory-7.example.com",
	};

	assert_int_equal(groupcache_match(f->gc, f->t.s, "a@b", &(struct group_hit){ 0 }), MEF_ENOTFOUND);
	add_group(f->t.ctl, "factory-7", "*@factory-7.example.com", 1, 21);
	add_group(f->t.ctl, "line-2", "*@line-2.factory-7.example.com", 2, 22);
	/* same length as "factory-7"'s pattern: the name decides */
	add_group(f->t.ctl, "a-rival", "*@factory-7.example.co?", 3, 23);
	add_group(f->t.ctl, "classes", "dev-[0-9]@*", 4, 24);
	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++)
		assert_same_as_store(f, ids[i]);
}

static void
test_every_change_seen_next_lookup(void **state)
{
	struct fx *f = *state;
	const char *dev = "dev-9@factory-7.example.com";
	struct client_rec c = { .kind = CRED_CERT };
	struct group_hit hit;
	struct mef_secret *s2 = secret_of(2);

	add_group(f->t.ctl, "factory-7", "*@factory-7.example.com", 1, 21);
	assert_same_as_store(f, dev);
	/* mefctl client disable DEV (a group member), then enable */
	assert_int_equal(store_member_set_disabled(f->t.ctl, dev, true), 0);
	assert_int_equal(groupcache_match(f->gc, f->t.s, dev, &hit), 0);
	assert_true(hit.member_disabled);
	assert_int_equal(store_member_set_disabled(f->t.ctl, dev, false), 0);
	assert_int_equal(groupcache_match(f->gc, f->t.s, dev, &hit), 0);
	assert_false(hit.member_disabled);
	/* group disabled from the sqlite3 shell */
	tmpstore_shell(&f->t, "UPDATE groups SET disabled = 1 WHERE name = 'factory-7'");
	assert_int_equal(groupcache_match(f->gc, f->t.s, dev, &hit), 0);
	assert_true(hit.group->disabled);
	/* a new secret: removed and added again */
	assert_int_equal(store_group_remove(f->t.ctl, "factory-7"), 0);
	assert_int_equal(groupcache_match(f->gc, f->t.s, dev, &hit), MEF_ENOTFOUND);
	add_group(f->t.ctl, "factory-7", "*@factory-7.example.com", 2, 21);
	assert_int_equal(groupcache_match(f->gc, f->t.s, dev, &hit), 0);
	assert_true(secret_equal(hit.secret, s2));
	assert_false(hit.group->disabled);
	/* a target changed in place */
	tmpstore_shell(&f->t, "UPDATE group_targets SET suid = 99 WHERE group_name = 'factory-7'");
	assert_int_equal(groupcache_match(f->gc, f->t.s, dev, &hit), 0);
	assert_int_equal(hit.group->targets[0].suid, 99);
	/* a more specific group added by another writer takes over at once */
	add_group(f->t.ctl, "narrow", "dev-9@factory-7.example.com", 3, 31);
	assert_same_as_store(f, dev);
	/* client rows move the stamp too */
	int64_t a, b;

	assert_int_equal(store_cred_stamp(f->t.s, &a), 0);
	snprintf(c.id, sizeof(c.id), "c1");
	snprintf(c.cert_san, sizeof(c.cert_san), "c1.example.com");
	assert_int_equal(store_client_add(f->t.ctl, &c, NULL), 0);
	assert_int_equal(store_cred_stamp(f->t.s, &b), 0);
	assert_true(b != a);
	secret_free(s2);
}

static void
test_ke_writes_leave_the_stamp(void **state)
{
	struct fx *f = *state;
	struct ke_rec k = { .created = 1, .expires = 2 };
	struct mef_secret *ke = secret_of(9);
	int64_t a, b;

	add_group(f->t.ctl, "factory-7", "*@factory-7.example.com", 1, 21);
	assert_int_equal(store_cred_stamp(f->t.s, &a), 0);
	snprintf(k.keid, sizeof(k.keid), "00112233445566778899aabbccddeeff@mef.example.com");
	snprintf(k.client_id, sizeof(k.client_id), "dev-1@factory-7.example.com");
	assert_int_equal(store_ke_put(f->t.ctl, &k, ke), 0);
	assert_int_equal(store_ke_revoke(f->t.ctl, k.keid), 0);
	assert_int_equal(store_ke_sweep(f->t.ctl, 10, NULL), 0);
	assert_int_equal(store_cred_stamp(f->t.s, &b), 0);
	assert_int_equal(a, b);
	secret_free(ke);
}

/* A group whose secret cannot be opened is an error for its members only, as in the store. */
static void
test_unopenable_secret(void **state)
{
	struct fx *f = *state;
	struct group_hit hit;

	add_group(f->t.ctl, "good", "*@good.example.com", 1, 21);
	add_group(f->t.ctl, "bad", "*@bad.example.com", 2, 22);
	tmpstore_shell(&f->t, "UPDATE groups SET secret_wrapped = (SELECT secret_wrapped FROM groups"
		 " WHERE name = 'good') WHERE name = 'bad'");
	assert_int_equal(groupcache_match(f->gc, f->t.s, "x@good.example.com", &hit), 0);
	assert_int_not_equal(groupcache_match(f->gc, f->t.s, "x@bad.example.com", &hit), 0);
	assert_int_not_equal(groupcache_match(f->gc, f->t.s, "x@bad.example.com", &hit), MEF_ENOTFOUND);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_matches_like_the_store, setup, teardown),
		cmocka_unit_test_setup_teardown(test_every_change_seen_next_lookup, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ke_writes_leave_the_stamp, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unopenable_secret, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
