/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Unit tests for src/crypto/wrap.c: the published GCM test case 16 (AES-256,
 * McGrew/Viega, also in NIST's gcmEncryptExtIV256 set) as a known answer,
 * round trips, every tamper and truncation, and a decryption of our blob by
 * Python's cryptography package when it is installed.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "mef/err.h"
#include "mef/wrap.h"

static void
unhex(const char *hex, uint8_t *out, size_t n)
{
	assert_int_equal(strlen(hex), 2 * n);
	for (size_t i = 0; i < n; i++) {
		unsigned v;

		assert_int_equal(sscanf(hex + 2 * i, "%2x", &v), 1);
		out[i] = (uint8_t)v;
	}
}

/* GCM test case 16: its AAD has no zero byte, so it can be our aad string. */
#define TC16_KEY "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308"
#define TC16_IV "cafebabefacedbaddecaf888"
#define TC16_PT                                                                                    \
	"d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e24" \
	"49a6b525b16aedf5aa0de657ba637b39"
#define TC16_AAD "\xfe\xed\xfa\xce\xde\xad\xbe\xef\xfe\xed\xfa\xce\xde\xad\xbe\xef\xab\xad\xda\xd2"
#define TC16_CT                                                                                    \
	"522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b10" \
	"56828838c5f61e6393ba7a0abcc9f662"
#define TC16_TAG "76fc6ece0f4e1768cddf8853bb2d551b"

static struct mef_secret *
kek_of(const char *hex)
{
	struct mef_secret *k = secret_new(WRAP_KEK_LEN);

	assert_non_null(k);
	unhex(hex, k->p, WRAP_KEK_LEN);
	return k;
}

static void
test_known_answer(void **state)
{
	struct mef_secret *kek = kek_of(TC16_KEY), *opened = NULL;
	uint8_t nonce[12], pt[60], want[WRAP_OVERHEAD + sizeof(pt)];
	uint8_t *blob = NULL;
	size_t len = 0;

	(void)state;
	unhex(TC16_IV, nonce, sizeof(nonce));
	unhex(TC16_PT, pt, sizeof(pt));
	want[0] = 0x01;
	memcpy(want + 1, nonce, sizeof(nonce));
	unhex(TC16_CT, want + 13, sizeof(pt));
	unhex(TC16_TAG, want + 13 + sizeof(pt), 16);

	assert_int_equal(wrap_seal_with_nonce(kek, TC16_AAD, nonce, pt, sizeof(pt), &blob, &len), 0);
	assert_int_equal(len, sizeof(want));
	assert_memory_equal(blob, want, sizeof(want));
	/* And the published blob opens to the published plaintext. */
	assert_int_equal(wrap_open(kek, TC16_AAD, want, sizeof(want), &opened), 0);
	assert_int_equal(opened->len, sizeof(pt));
	assert_memory_equal(opened->p, pt, sizeof(pt));
	secret_free(opened);
	free(blob);
	secret_free(kek);
}

#define KEK_A "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
#define KEK_B "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1e"
static const uint8_t PSK[] = "correct horse battery staple";

static void
test_round_trip(void **state)
{
	struct mef_secret *kek = kek_of(KEK_A), *s = NULL;
	uint8_t *b1 = NULL, *b2 = NULL, *b0 = NULL;
	size_t l1 = 0, l2 = 0, l0 = 0;

	(void)state;
	assert_int_equal(wrap_seal(kek, "client:a:psk", PSK, sizeof(PSK), &b1, &l1), 0);
	assert_int_equal(wrap_seal(kek, "client:a:psk", PSK, sizeof(PSK), &b2, &l2), 0);
	assert_int_equal(l1, sizeof(PSK) + WRAP_OVERHEAD);
	assert_int_equal(b1[0], 0x01);
	/* Fresh random nonce per seal: equal inputs, different blobs. */
	assert_memory_not_equal(b1 + 1, b2 + 1, 12);
	assert_int_equal(wrap_open(kek, "client:a:psk", b1, l1, &s), 0);
	assert_int_equal(s->len, sizeof(PSK));
	assert_memory_equal(s->p, PSK, sizeof(PSK));
	s = secret_free(s);
	assert_int_equal(wrap_open(kek, "client:a:psk", b2, l2, &s), 0);
	s = secret_free(s);
	/* Empty plaintext still carries a tag that binds KEK and aad. */
	assert_int_equal(wrap_seal(kek, "ke:x", NULL, 0, &b0, &l0), 0);
	assert_int_equal(l0, WRAP_OVERHEAD);
	assert_int_equal(wrap_open(kek, "ke:x", b0, l0, &s), 0);
	assert_int_equal(s->len, 0);
	s = secret_free(s);
	assert_int_equal(wrap_open(kek, "ke:y", b0, l0, &s), MEF_EAUTH);
	free(b0);
	free(b1);
	free(b2);
	secret_free(kek);
}

static void
test_wrong_kek_and_aad(void **state)
{
	struct mef_secret *ka = kek_of(KEK_A), *kb = kek_of(KEK_B);
	static struct mef_secret sentinel; /* *ret must stay untouched on failure */
	struct mef_secret *s = &sentinel;
	uint8_t *b = NULL;
	size_t l = 0;

	(void)state;
	assert_int_equal(wrap_seal(ka, "client:a:psk", PSK, sizeof(PSK), &b, &l), 0);
	assert_int_equal(wrap_open(kb, "client:a:psk", b, l, &s), MEF_EAUTH);
	/* Row binding: the same blob copied under another client's row. */
	assert_int_equal(wrap_open(ka, "client:b:psk", b, l, &s), MEF_EAUTH);
	assert_int_equal(wrap_open(ka, "client:a:psk ", b, l, &s), MEF_EAUTH);
	assert_int_equal(wrap_open(ka, "client:a:ps", b, l, &s), MEF_EAUTH);
	assert_ptr_equal(s, &sentinel);
	free(b);
	secret_free(ka);
	secret_free(kb);
}

static void
test_tamper_every_bit(void **state)
{
	struct mef_secret *kek = kek_of(KEK_A), *s = NULL;
	uint8_t *b = NULL;
	size_t l = 0;

	(void)state;
	assert_int_equal(wrap_seal(kek, "client:a:psk", PSK, sizeof(PSK), &b, &l), 0);
	for (size_t i = 0; i < l; i++) {
		for (int bit = 0; bit < 8; bit++) {
			int r;

			b[i] ^= (uint8_t)(1u << bit);
			r = wrap_open(kek, "client:a:psk", b, l, &s);
			b[i] ^= (uint8_t)(1u << bit);
			/* byte 0 is the version: an unknown one is malformed, the rest is forged */
			if (r != (i == 0 ? MEF_EINVAL : MEF_EAUTH))
				fail_msg("bit %d of byte %zu flipped: got %d", bit, i, r);
		}
	}
	assert_null(s);
	assert_int_equal(wrap_open(kek, "client:a:psk", b, l, &s), 0);
	secret_free(s);
	free(b);
	secret_free(kek);
}

static void
test_truncated_and_extended(void **state)
{
	struct mef_secret *kek = kek_of(KEK_A), *s = NULL;
	uint8_t *b = NULL, *longer;
	size_t l = 0;

	(void)state;
	assert_int_equal(wrap_seal(kek, "k", PSK, sizeof(PSK), &b, &l), 0);
	for (size_t n = 0; n < WRAP_OVERHEAD; n++)
		assert_int_equal(wrap_open(kek, "k", b, n, &s), MEF_EINVAL);
	for (size_t n = WRAP_OVERHEAD; n < l; n++)
		assert_int_equal(wrap_open(kek, "k", b, n, &s), MEF_EAUTH);
	longer = calloc(1, l + 1);
	assert_non_null(longer);
	memcpy(longer, b, l);
	assert_int_equal(wrap_open(kek, "k", longer, l + 1, &s), MEF_EAUTH);
	assert_null(s);
	free(longer);
	free(b);
	secret_free(kek);
}

static void
test_bad_args(void **state)
{
	struct mef_secret *kek = kek_of(KEK_A), *short_kek = secret_new(16), *s = NULL;
	uint8_t *b = NULL, nonce[12] = { 0 };
	size_t l = 0;

	(void)state;
	assert_int_equal(wrap_seal(short_kek, "k", PSK, sizeof(PSK), &b, &l), MEF_EINVAL);
	assert_int_equal(wrap_seal(NULL, "k", PSK, sizeof(PSK), &b, &l), MEF_EINVAL);
	assert_int_equal(wrap_seal(kek, NULL, PSK, sizeof(PSK), &b, &l), MEF_EINVAL);
	assert_int_equal(wrap_seal(kek, "", PSK, sizeof(PSK), &b, &l), MEF_EINVAL);
	assert_int_equal(wrap_seal(kek, "k", NULL, 5, &b, &l), MEF_EINVAL);
	assert_int_equal(wrap_seal_with_nonce(kek, "k", NULL, PSK, 5, &b, &l), MEF_EINVAL);
	assert_null(b);
	assert_int_equal(wrap_seal_with_nonce(kek, "k", nonce, PSK, sizeof(PSK), &b, &l), 0);
	assert_int_equal(wrap_open(short_kek, "k", b, l, &s), MEF_EINVAL);
	assert_int_equal(wrap_open(kek, NULL, b, l, &s), MEF_EINVAL);
	assert_int_equal(wrap_open(kek, "", b, l, &s), MEF_EINVAL);
	assert_int_equal(wrap_open(kek, "k", NULL, l, &s), MEF_EINVAL);
	assert_null(s);
	free(b);
	secret_free(short_kek);
	secret_free(kek);
}

static void
hex_of(const uint8_t *p, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", p[i]);
	out[2 * n] = '\0';
}

/* Python's AESGCM parses and opens our blob; the plaintext comes back as hex. */
static const char PY_OPEN[] =
	"import sys\n"
	"try:\n from cryptography.hazmat.primitives.ciphers.aead import AESGCM\n"
	"except ImportError:\n sys.exit(77)\n"
	"k, aad, b = bytes.fromhex(sys.argv[1]), sys.argv[2].encode(), bytes.fromhex(sys.argv[3])\n"
	"assert b[0] == 1\n"
	"print(AESGCM(k).decrypt(b[1:13], b[13:], aad).hex())\n";

static void
test_python_opens_our_blob(void **state)
{
	struct mef_secret *kek = kek_of(KEK_A);
	char blobhex[2 * (sizeof(PSK) + WRAP_OVERHEAD) + 1], pthex[2 * sizeof(PSK) + 1];
	char cmd[1024], got[256] = "";
	uint8_t *b = NULL;
	size_t l = 0;
	FILE *f;
	int st;

	(void)state;
	assert_int_equal(wrap_seal(kek, "client:a:psk", PSK, sizeof(PSK), &b, &l), 0);
	hex_of(b, l, blobhex);
	hex_of(PSK, sizeof(PSK), pthex);
	snprintf(cmd, sizeof(cmd), "/usr/bin/python3 -c '%s' %s client:a:psk %s 2>/dev/null",
		 PY_OPEN, KEK_A, blobhex);
	free(b);
	secret_free(kek);
	f = popen(cmd, "r");
	if (!f)
		skip();
	if (!fgets(got, sizeof(got), f))
		got[0] = '\0';
	st = pclose(f);
	if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) == 77 || WEXITSTATUS(st) == 127)
		skip(); /* no python3 or no python3-cryptography */
	assert_int_equal(WEXITSTATUS(st), 0);
	got[strcspn(got, "\n")] = '\0';
	assert_string_equal(got, pthex);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_known_answer),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_wrong_kek_and_aad),
		cmocka_unit_test(test_tamper_every_bit),
		cmocka_unit_test(test_truncated_and_extended),
		cmocka_unit_test(test_bad_args),
		cmocka_unit_test(test_python_opens_our_blob),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
