/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Fills a store for the scale run of make bench: N PSK clients
 * "s<i>@scale.example.com" (Kpm = HMAC-SHA-256(group secret, identity), so
 * bench -g reaches them) and M Enrolment Keys, all through the store API, so
 * every secret is wrapped under the KEK exactly as mefd would. Ke rows go in
 * one transaction; clients one by one with synchronous=OFF on this
 * connection only (a fill, not a promise).
 * populate DB KEKFILE GROUPSECRETHEX NCLIENTS NKE
 */
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mef/err.h"
#include "mef/kdf.h"
#include "mef/secret.h"
#include "mef/store.h"
#include "store_internal.h"

static size_t
hex2bin(const char *h, uint8_t *out, size_t max)
{
	size_t n = 0;

	for (unsigned v; h[0] && h[1] && n < max && sscanf(h, "%2x", &v) == 1; h += 2)
		out[n++] = (uint8_t)v;
	return n;
}

static int
add_clients(struct store *s, const uint8_t *gs, size_t gl, long n)
{
	static struct client_rec c;
	struct mef_secret *psk = secret_new(MEF_KEY_LEN);
	unsigned len = MEF_KEY_LEN;

	for (long i = 0; i < n && psk; i++) {
		memset(&c, 0, sizeof(c));
		snprintf(c.id, sizeof(c.id), "s%ld@scale.example.com", i);
		snprintf(c.psk_identity, sizeof(c.psk_identity), "%s", c.id);
		c.kind = CRED_PSK;
		c.created = time(NULL);
		HMAC(EVP_sha256(), gs, (int)gl, (const uint8_t *)c.id, strlen(c.id), psk->p, &len);
		int r = store_client_add(s, &c, psk);
		if (r != 0) {
			fprintf(stderr, "client %ld: %s\n", i, mef_strerror(r));
			return r;
		}
	}
	secret_free(psk);
	return 0;
}

static int
add_kes(struct store *s, long n)
{
	struct mef_secret *ke = secret_new(MEF_KEY_LEN);
	struct ke_rec k;
	sqlite3 *db = store_sqlite_db(s);
	int64_t now = time(NULL);
	int r = 0;

	if (!ke || sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		return MEF_ESTORE;
	for (long i = 0; i < n && r == 0; i++) {
		uint8_t rel[MEF_RELID_LEN];

		memset(&k, 0, sizeof(k));
		RAND_bytes(rel, sizeof(rel));
		RAND_bytes(ke->p, (int)ke->len);
		kdf_keid(rel, "mef.example.com", k.keid, sizeof(k.keid));
		snprintf(k.client_id, sizeof(k.client_id), "s%ld@scale.example.com", i % 100000);
		snprintf(k.transport, sizeof(k.transport), "dtls");
		k.created = now;
		k.expires = now + 30 * 86400;
		r = store_ke_put(s, &k, ke);
	}
	secret_free(ke);
	if (r != 0 || sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		return r ? r : MEF_ESTORE;
	return 0;
}

int
main(int argc, char **argv)
{
	struct mef_secret *kek = NULL;
	struct store *s = NULL;
	uint8_t gs[64];
	size_t gl;
	const char *why = "";
	int r;

	if (argc != 6) {
		fprintf(stderr, "usage: populate DB KEKFILE GROUPSECRETHEX NCLIENTS NKE\n");
		return 2;
	}
	gl = hex2bin(argv[3], gs, sizeof(gs));
	r = secret_read_file(argv[2], 32, &kek, &why);
	if (r == 0)
		r = store_open(argv[1], kek, false, &s);
	if (r == 0)
		r = sqlite3_exec(store_sqlite_db(s), "PRAGMA synchronous = OFF", NULL, NULL, NULL) ==
				 SQLITE_OK ? 0 : MEF_ESTORE;
	if (r == 0)
		r = add_clients(s, gs, gl, atol(argv[4]));
	if (r == 0)
		r = add_kes(s, atol(argv[5]));
	if (r != 0)
		fprintf(stderr, "populate: %s %s\n", mef_strerror(r), why);
	store_close(s);
	secret_free(kek);
	return r != 0;
}
