/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Secrets at rest: AES-256-GCM seal/open under the KEK, blob layout
 * version(1) || nonce(12) || ciphertext || tag(16). The caller's aad string
 * (the row name) is the GCM associated data, so a blob moved to another row
 * does not open. Pure apart from the random nonce.
 */
#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "mef/err.h"
#include "mef/wrap.h"

#define WRAP_VERSION 0x01
#define WRAP_NONCE_LEN 12
#define WRAP_TAG_LEN 16
#define WRAP_HDR_LEN (1 + WRAP_NONCE_LEN)

/* KEK must be an AES-256 key and aad a non-empty row name: an unbound blob is a bug. */
static int
args_valid(const struct mef_secret *kek, const char *aad)
{
	return kek && kek->p && kek->len == WRAP_KEK_LEN && aad && *aad &&
	       strlen(aad) <= INT_MAX;
}

/*
 * AES-256-GCM fetched from the provider once: behind EVP_aes_256_gcm() OpenSSL 3
 * fetches it again at every init, a locked name lookup per wrap (perf,
 * docs/performance.md). Immutable once set; freed with OpenSSL at exit.
 */
static EVP_CIPHER *wrap_aes_gcm;
static pthread_once_t wrap_aes_gcm_once = PTHREAD_ONCE_INIT;

static void
wrap_aes_gcm_fetch(void)
{
	wrap_aes_gcm = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
}

static const EVP_CIPHER *
aes_gcm(void)
{
	pthread_once(&wrap_aes_gcm_once, wrap_aes_gcm_fetch);
	return wrap_aes_gcm ? wrap_aes_gcm : EVP_aes_256_gcm();
}

/* Sets up ctx for AES-256-GCM with key, nonce and aad, in either direction. */
static int
gcm_init(EVP_CIPHER_CTX *ctx, int enc, const struct mef_secret *kek, const uint8_t *nonce,
	 const char *aad)
{
	int n;

	return EVP_CipherInit_ex(ctx, aes_gcm(), NULL, NULL, NULL, enc) &&
	       EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, WRAP_NONCE_LEN, NULL) &&
	       EVP_CipherInit_ex(ctx, NULL, NULL, kek->p, nonce, enc) &&
	       EVP_CipherUpdate(ctx, NULL, &n, (const uint8_t *)aad, (int)strlen(aad));
}

/* Encrypts pt into blob (already sized pt_len + WRAP_OVERHEAD, header written). */
static int
gcm_seal(const struct mef_secret *kek, const char *aad, const uint8_t *pt, size_t pt_len,
	 uint8_t *blob)
{
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	uint8_t *ct = blob + WRAP_HDR_LEN;
	int n = 0, fin = 0;
	int ok = ctx && gcm_init(ctx, 1, kek, blob + 1, aad);

	/* A zero-length update is skipped: OpenSSL rejects a NULL input pointer. */
	if (ok && pt_len)
		ok = EVP_CipherUpdate(ctx, ct, &n, pt, (int)pt_len);
	ok = ok && EVP_CipherFinal_ex(ctx, ct + n, &fin) && (size_t)n + (size_t)fin == pt_len &&
	     EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, WRAP_TAG_LEN, ct + pt_len);
	EVP_CIPHER_CTX_free(ctx);
	return ok ? 0 : MEF_ECRYPTO;
}

int
wrap_seal_with_nonce(const struct mef_secret *kek, const char *aad,
		     const uint8_t nonce[12], const uint8_t *pt, size_t pt_len,
		     uint8_t **ret_blob, size_t *ret_len)
{
	uint8_t *blob;
	int r;

	if (!args_valid(kek, aad) || !nonce || (!pt && pt_len) || !ret_blob || !ret_len ||
	    pt_len > (size_t)INT_MAX - WRAP_OVERHEAD)
		return MEF_EINVAL;
	blob = malloc(pt_len + WRAP_OVERHEAD);
	if (!blob)
		return MEF_ENOMEM;
	blob[0] = WRAP_VERSION;
	memcpy(blob + 1, nonce, WRAP_NONCE_LEN);
	r = gcm_seal(kek, aad, pt, pt_len, blob);
	if (r) {
		free(blob);
		return r;
	}
	*ret_blob = blob;
	*ret_len = pt_len + WRAP_OVERHEAD;
	return 0;
}

int
wrap_seal(const struct mef_secret *kek, const char *aad, const uint8_t *pt, size_t pt_len,
	  uint8_t **ret_blob, size_t *ret_len)
{
	uint8_t nonce[WRAP_NONCE_LEN];

	/* Random 96-bit nonces: SP 800-38D allows 2^32 seals per key, far beyond a store's needs. */
	if (RAND_bytes(nonce, sizeof(nonce)) != 1)
		return MEF_ECRYPTO;
	return wrap_seal_with_nonce(kek, aad, nonce, pt, pt_len, ret_blob, ret_len);
}

/* Decrypts and verifies into out (ct_len bytes). 0, MEF_EAUTH or MEF_ECRYPTO. */
static int
gcm_open(const struct mef_secret *kek, const char *aad, const uint8_t *blob, size_t ct_len,
	 uint8_t *out)
{
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	const uint8_t *ct = blob + WRAP_HDR_LEN;
	uint8_t tag[WRAP_TAG_LEN];
	int n = 0, fin = 0, r = MEF_ECRYPTO;

	/* The ctrl takes a non-const pointer; hand it a copy of the tag. */
	memcpy(tag, ct + ct_len, WRAP_TAG_LEN);
	if (ctx && gcm_init(ctx, 0, kek, blob + 1, aad) &&
	    (ct_len == 0 || EVP_CipherUpdate(ctx, out, &n, ct, (int)ct_len)) &&
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, WRAP_TAG_LEN, tag))
		r = EVP_CipherFinal_ex(ctx, out + n, &fin) == 1 ? 0 : MEF_EAUTH;
	EVP_CIPHER_CTX_free(ctx);
	return r;
}

int
wrap_open(const struct mef_secret *kek, const char *aad, const uint8_t *blob, size_t blob_len,
	  struct mef_secret **ret)
{
	struct mef_secret *s;
	size_t ct_len;
	int r;

	if (!args_valid(kek, aad) || !blob || !ret || blob_len < WRAP_OVERHEAD ||
	    blob_len > (size_t)INT_MAX)
		return MEF_EINVAL;
	if (blob[0] != WRAP_VERSION)
		return MEF_EINVAL; /* not a blob this code wrote; nothing to authenticate */
	ct_len = blob_len - WRAP_OVERHEAD;
	s = secret_new(ct_len);
	if (!s)
		return MEF_ENOMEM;
	r = gcm_open(kek, aad, blob, ct_len, s->p);
	if (r) {
		secret_free(s); /* wipes any unverified plaintext */
		return r;
	}
	*ret = s;
	return 0;
}
