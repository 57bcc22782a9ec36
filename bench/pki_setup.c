/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * What libcoap 4.3.1 pays per handshake when it sets the PKI up on each new
 * SSL (every certificate session, and every TLS 1.3 session over TCP):
 * certificate, key and client CA from PEM files (what mefd gave it before),
 * from DER buffers (what coapb gives it now), and from ready objects (the
 * floor). Microseconds per SSL, OpenSSL 3 as installed.
 * pki_setup CERT KEY CA [N]
 */
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double
now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int
load(const char *path, X509 **x, EVP_PKEY **k)
{
	FILE *f = fopen(path, "r");

	if (!f)
		return -1;
	if (x)
		*x = PEM_read_X509(f, NULL, NULL, NULL);
	else
		*k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	return (x ? *x != NULL : *k != NULL) ? 0 : -1;
}

int
main(int argc, char **argv)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	int n = argc > 4 ? atoi(argv[4]) : 2000, ok = 1, xl, kl, cl;
	unsigned char *xd = NULL, *kd = NULL, *cd = NULL;
	X509 *x = NULL, *ca = NULL;
	EVP_PKEY *k = NULL;
	double t0;

	if (argc < 4 || !ctx || n <= 0 || load(argv[1], &x, NULL) || load(argv[2], NULL, &k) ||
	    load(argv[3], &ca, NULL)) {
		fprintf(stderr, "usage: pki_setup CERT KEY CA [N]\n");
		return 2;
	}
	xl = i2d_X509(x, &xd);
	kl = i2d_PrivateKey(k, &kd);
	cl = i2d_X509(ca, &cd);
	t0 = now();
	for (int i = 0; i < n; i++) {
		SSL *s = SSL_new(ctx);
		STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(argv[3]);

		ok &= SSL_use_certificate_file(s, argv[1], SSL_FILETYPE_PEM) == 1 &&
		      SSL_use_PrivateKey_file(s, argv[2], SSL_FILETYPE_PEM) == 1 && names;
		SSL_set_client_CA_list(s, names);
		SSL_free(s);
	}
	printf("PEM files: %.0f us per SSL\n", (now() - t0) / n * 1e6);
	t0 = now();
	for (int i = 0; i < n; i++) {
		SSL *s = SSL_new(ctx);
		const unsigned char *p = cd;
		X509 *c = d2i_X509(NULL, &p, cl);

		ok &= SSL_use_certificate_ASN1(s, xd, xl) == 1 &&
		      SSL_use_PrivateKey_ASN1(EVP_PKEY_get_base_id(k), s, kd, kl) == 1 && c &&
		      SSL_add_client_CA(s, c) == 1;
		X509_free(c);
		SSL_free(s);
	}
	printf("DER buffers: %.0f us per SSL\n", (now() - t0) / n * 1e6);
	t0 = now();
	for (int i = 0; i < n; i++) {
		SSL *s = SSL_new(ctx);

		ok &= SSL_use_certificate(s, x) == 1 && SSL_use_PrivateKey(s, k) == 1 &&
		      SSL_add_client_CA(s, ca) == 1;
		SSL_free(s);
	}
	printf("objects: %.0f us per SSL\n", (now() - t0) / n * 1e6);
	OPENSSL_free(xd);
	OPENSSL_free(kd);
	OPENSSL_free(cd);
	X509_free(x);
	X509_free(ca);
	EVP_PKEY_free(k);
	SSL_CTX_free(ctx);
	if (!ok)
		fprintf(stderr, "pki_setup: a call failed\n");
	return ok ? 0 : 1;
}
