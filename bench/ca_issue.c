/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The CA's own cost per EST enrolment, without TLS, HTTP or the store:
 * ca_issue (include/mef/ca.h) on one P-256 CSR, against the two operations
 * it cannot avoid, measured in the same run with plain OpenSSL EVP: an
 * ECDSA-SHA256 verification (the CSR's signature) and a signature (the
 * certificate's). Process CPU microseconds per call.
 * ca_issue CA_CERT CA_KEY [N]
 */
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mef/ca.h"

static struct ca_request req;
static struct ca_result res;

static double
cpu_now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* One CSR as a device makes it: P-256 key, one URI SAN, ECDSA-SHA256. */
static EVP_PKEY *
make_csr(void)
{
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	X509_REQ *r = X509_REQ_new();
	STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
	unsigned char *p = req.csr;

	sk_X509_EXTENSION_push(exts, X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name,
							 "URI:urn:bench:dev1"));
	X509_REQ_add_extensions(r, exts);
	X509_REQ_set_pubkey(r, k);
	X509_REQ_sign(r, k, EVP_sha256());
	req.csr_len = (size_t)i2d_X509_REQ(r, &p);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	X509_REQ_free(r);
	snprintf(req.san, sizeof(req.san), "urn:bench:dev1");
	snprintf(req.subject_cn, sizeof(req.subject_cn), "dev1");
	req.not_before = (int64_t)time(NULL);
	req.not_after = req.not_before + 3600;
	return k;
}

/* The floor: verify one ECDSA-SHA256 signature and make one, fresh contexts each. */
static int
bare_ops(EVP_PKEY *k, const unsigned char *msg, size_t len)
{
	unsigned char sig[80];
	size_t siglen = sizeof(sig);
	EVP_MD_CTX *s = EVP_MD_CTX_new(), *v = EVP_MD_CTX_new();
	int ok = s && v && EVP_DigestSignInit_ex(s, NULL, "SHA256", NULL, NULL, k, NULL) == 1 &&
		 EVP_DigestSign(s, sig, &siglen, msg, len) == 1 &&
		 EVP_DigestVerifyInit_ex(v, NULL, "SHA256", NULL, NULL, k, NULL) == 1 &&
		 EVP_DigestVerify(v, sig, siglen, msg, len) == 1;

	EVP_MD_CTX_free(s);
	EVP_MD_CTX_free(v);
	return ok ? 0 : -1;
}

int
main(int argc, char **argv)
{
	int n = argc > 3 ? atoi(argv[3]) : 2000;
	double t0, ca_us, bare_us;
	struct ca *ca;
	EVP_PKEY *k;

	if (argc < 3 || n <= 0 || ca_open(argv[1], argv[2], &ca) != 0) {
		fprintf(stderr, "usage: ca_issue CA_CERT CA_KEY [N] (and a readable CA)\n");
		return 2;
	}
	k = make_csr();
	t0 = cpu_now();
	for (int i = 0; i < n; i++)
		if (ca_issue(ca, &req, &res) != 0) {
			fprintf(stderr, "ca_issue: %s\n", res.why ? res.why : "failed");
			return 1;
		}
	ca_us = (cpu_now() - t0) / n * 1e6;
	t0 = cpu_now();
	for (int i = 0; i < n; i++)
		if (bare_ops(k, req.csr, req.csr_len) != 0)
			return 1;
	bare_us = (cpu_now() - t0) / n * 1e6;
	printf("ca_issue %.0f us per certificate, bare ECDSA-SHA256 verify+sign %.0f us: %.2fx\n",
	       ca_us, bare_us, bare_us / ca_us);
	EVP_PKEY_free(k);
	ca_free(ca);
	return 0;
}
