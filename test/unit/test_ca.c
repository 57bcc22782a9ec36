/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Unit tests for src/crypto/ca.c and the EST wire helpers: CSRs and the CA
 * are made with OpenSSL's own API here (independent of ca.c), issued
 * certificates and CRLs are checked with X509_verify / X509_CRL_verify and
 * by reading their fields back; CBOR and base64 against hand-computed bytes.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "mef/ca.h"
#include "mef/der.h"
#include "mef/err.h"
#include "mef/est.h"
#include "mef/secret.h"

static char dir[] = "/tmp/test_ca.XXXXXX";
static char crt_path[128], key_path[128];
static struct ca *ca;
static EVP_PKEY *ca_key;

/* A self-signed P-256 CA written by OpenSSL directly (not by ca_generate). */
static int
setup(void **state)
{
	X509 *x = X509_new();
	FILE *f;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(crt_path, sizeof(crt_path), "%s/ca.crt", dir);
	snprintf(key_path, sizeof(key_path), "%s/ca.key", dir);
	ca_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	ASN1_INTEGER_set(X509_get_serialNumber(x), 7);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
				   (const unsigned char *)"unit CA", -1, -1, 0);
	X509_set_issuer_name(x, X509_get_subject_name(x));
	X509_gmtime_adj(X509_getm_notBefore(x), -60);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	X509_set_pubkey(x, ca_key);
	X509_sign(x, ca_key, EVP_sha256());
	f = fopen(crt_path, "w");
	PEM_write_X509(f, x);
	fclose(f);
	f = fopen(key_path, "w");
	fchmod(fileno(f), 0600);
	PEM_write_PrivateKey(f, ca_key, NULL, NULL, 0, NULL, NULL);
	fclose(f);
	X509_free(x);
	return ca_open(crt_path, key_path, &ca);
}

static int
teardown(void **state)
{
	char cmd[160];

	(void)state;
	ca = ca_free(ca);
	EVP_PKEY_free(ca_key);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static const EVP_MD *(*csr_md)(void) = EVP_sha256; /* what make_csr signs with */

/* A DER CSR by OpenSSL: key of curve (NULL = RSA), the given URI SANs. */
static size_t
make_csr(const char *curve, const char *const *uris, size_t n, bool corrupt, uint8_t *out)
{
	EVP_PKEY *k = curve ? EVP_PKEY_Q_keygen(NULL, NULL, "EC", curve)
			    : EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	X509_REQ *r = X509_REQ_new();
	STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
	GENERAL_NAMES *g = GENERAL_NAMES_new();
	unsigned char *p = out;
	int len;

	for (size_t i = 0; i < n; i++) {
		GENERAL_NAME *gn = GENERAL_NAME_new();
		ASN1_IA5STRING *s = ASN1_IA5STRING_new();

		ASN1_STRING_set(s, uris[i], -1);
		GENERAL_NAME_set0_value(gn, GEN_URI, s);
		sk_GENERAL_NAME_push(g, gn);
	}
	if (n)
		sk_X509_EXTENSION_push(exts, X509V3_EXT_i2d(NID_subject_alt_name, 0, g));
	X509_REQ_add_extensions(r, exts);
	X509_REQ_set_pubkey(r, k);
	X509_REQ_sign(r, k, csr_md());
	len = i2d_X509_REQ(r, &p);
	if (corrupt)
		out[len - 3] ^= 0x40;
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	GENERAL_NAMES_free(g);
	X509_REQ_free(r);
	EVP_PKEY_free(k);
	return (size_t)len;
}

static struct ca_request req;
static struct ca_result res;

static int
issue(const char *curve, const char *const *uris, size_t n, bool corrupt, const char *want)
{
	memset(&req, 0, sizeof(req));
	memset(&res, 0, sizeof(res));
	req.csr_len = make_csr(curve, uris, n, corrupt, req.csr);
	snprintf(req.san, sizeof(req.san), "%s", want);
	snprintf(req.subject_cn, sizeof(req.subject_cn), "dev1");
	req.not_before = (int64_t)time(NULL) - 60;
	req.not_after = req.not_before + 3600;
	return ca_issue(ca, &req, &res);
}

static void
test_issue_profile(void **state)
{
	const char *uris[] = {"//example.net/cse1/Cae1"};
	const unsigned char *p;
	X509 *x;
	EXTENDED_KEY_USAGE *eku;
	GENERAL_NAMES *g;
	const ASN1_INTEGER *sn;

	(void)state;
	assert_int_equal(issue("P-256", uris, 1, false, uris[0]), 0);
	p = res.cert;
	x = d2i_X509(NULL, &p, (long)res.cert_len);
	assert_non_null(x);
	assert_int_equal(X509_verify(x, ca_key), 1);
	/* the subject key is the CSR's, bit for bit (ca.c copies the SubjectPublicKeyInfo) */
	{
		const unsigned char *q = req.csr;
		X509_REQ *csr = d2i_X509_REQ(NULL, &q, (long)req.csr_len);

		assert_non_null(csr);
		assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(x), X509_REQ_get0_pubkey(csr)), 1);
		X509_REQ_free(csr);
	}
	assert_int_equal(X509_get_signature_nid(x), NID_ecdsa_with_SHA256);
	/* RFC 5280 4.2.1.2 method 1: SKI = SHA-1 of the subjectPublicKey BIT STRING */
	{
		const unsigned char *bits = NULL;
		unsigned char md[20];
		int nbits = 0;

		assert_int_equal(X509_PUBKEY_get0_param(NULL, &bits, &nbits, NULL,
							X509_get_X509_PUBKEY(x)),
				 1);
		assert_int_equal(EVP_Digest(bits, (size_t)nbits, md, NULL, EVP_sha1(), NULL), 1);
		assert_int_equal(ASN1_STRING_length(X509_get0_subject_key_id(x)), 20);
		assert_memory_equal(ASN1_STRING_get0_data(X509_get0_subject_key_id(x)), md, 20);
	}
	assert_int_equal(X509_get_key_usage(x), KU_DIGITAL_SIGNATURE);
	eku = X509_get_ext_d2i(x, NID_ext_key_usage, NULL, NULL);
	assert_int_equal(sk_ASN1_OBJECT_num(eku), 1);
	assert_int_equal(OBJ_obj2nid(sk_ASN1_OBJECT_value(eku, 0)), NID_client_auth);
	sk_ASN1_OBJECT_pop_free(eku, ASN1_OBJECT_free);
	g = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	assert_int_equal(sk_GENERAL_NAME_num(g), 1);
	assert_string_equal((const char *)ASN1_STRING_get0_data(
				    sk_GENERAL_NAME_value(g, 0)->d.uniformResourceIdentifier),
			    uris[0]);
	GENERAL_NAMES_free(g);
	/* positive, >= 64 bits, and the text form the store uses */
	sn = X509_get0_serialNumber(x);
	assert_int_equal(ASN1_STRING_type(sn), V_ASN1_INTEGER);
	assert_true(ASN1_STRING_length(sn) >= 8);
	assert_int_equal(strlen(res.serial), 2 * (size_t)ASN1_STRING_length(sn));
	assert_int_equal(X509_check_ca(x), 0);
	assert_int_equal(X509_cmp_time(X509_get0_notBefore(x), NULL), -1);
	X509_free(x);
}

/*
 * The leaf as OpenSSL builds it from the same fields (what ca.c did before
 * leaf_der.c), signed with the CA key: its TBSCertificate must equal the
 * issued one byte for byte.
 */
static X509 *
reference_leaf(X509 *got, const char *cn, int64_t nb, int64_t na)
{
	X509 *ca_x = NULL, *x = X509_new();
	X509V3_CTX ctx;
	FILE *f = fopen(crt_path, "r");
	GENERAL_NAMES *san = X509_get_ext_d2i(got, NID_subject_alt_name, NULL, NULL);
	static const struct {
		int nid;
		const char *v;
	} ext[] = {{NID_basic_constraints, "critical,CA:FALSE"},
		   {NID_key_usage, "critical,digitalSignature"},
		   {NID_ext_key_usage, "clientAuth"},
		   {NID_subject_key_identifier, "hash"},
		   {NID_authority_key_identifier, "keyid,issuer"}};

	ca_x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	assert_non_null(ca_x);
	assert_non_null(san);
	X509_set_version(x, X509_VERSION_3);
	X509_set_serialNumber(x, (ASN1_INTEGER *)X509_get0_serialNumber(got)); /* copies */
	X509_set_issuer_name(x, X509_get_subject_name(ca_x));
	ASN1_TIME_set(X509_getm_notBefore(x), (time_t)nb);
	ASN1_TIME_set(X509_getm_notAfter(x), (time_t)na);
	if (cn[0])
		X509_NAME_add_entry_by_NID(X509_get_subject_name(x), NID_commonName, MBSTRING_UTF8,
					   (const unsigned char *)cn, -1, -1, 0);
	X509_set_pubkey(x, X509_get0_pubkey(got));
	X509V3_set_ctx(&ctx, ca_x, x, NULL, NULL, 0);
	for (size_t i = 0; i < sizeof(ext) / sizeof(ext[0]); i++) {
		X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &ctx, ext[i].nid, ext[i].v);

		assert_non_null(e);
		X509_add_ext(x, e, -1);
		X509_EXTENSION_free(e);
	}
	X509_add1_ext_i2d(x, NID_subject_alt_name, san, cn[0] ? 0 : 1, X509V3_ADD_DEFAULT);
	assert_true(X509_sign(x, ca_key, EVP_sha256()) > 0);
	GENERAL_NAMES_free(san);
	X509_free(ca_x);
	return x;
}

/* ca_issue's DER (leaf_der.c) against OpenSSL's parser, re-encoding and own construction. */
static void
test_leaf_der_like_openssl(void **state)
{
	static const struct {
		const char *cn;
		int64_t nb, na; /* 0: now - 60 and + 3600 */
	} cases[] = {
		{"dev1", 0, 0},
		{"", 0, 0}, /* empty subject: the SAN becomes critical */
		{"cse-0123456789-0123456789-0123456789-0123456789-0123456789-012", 0, 0},
		{"dev1", 2524607999, 2524608000}, /* 2049-12-31T23:59:59Z UTCTime, 2050 GeneralizedTime */
		{"dev1", 0, 4102444800},          /* 2100-01-01 */
		{"d\xc3\xa9vice-\xc3\xbc", 0, 0},   /* UTF-8 beyond ASCII */
	};
	const char *uris[] = {"//example.net/cse1/Cae1"};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const unsigned char *p;
		unsigned char *re = NULL, *tbs_got = NULL, *tbs_want = NULL;
		int n, n_got, n_want;
		X509 *x, *want;

		memset(&req, 0, sizeof(req));
		memset(&res, 0, sizeof(res));
		req.csr_len = make_csr("P-256", uris, 1, false, req.csr);
		snprintf(req.san, sizeof(req.san), "%s", uris[0]);
		snprintf(req.subject_cn, sizeof(req.subject_cn), "%s", cases[i].cn);
		req.not_before = cases[i].nb ? cases[i].nb : (int64_t)time(NULL) - 60;
		req.not_after = cases[i].na ? cases[i].na : req.not_before + 3600;
		if (i == 4) { /* the serverkeygen path: a key made by ca_keygen */
			struct mef_secret *k = NULL;

			assert_int_equal(ca_keygen(&k, req.spki, &req.spki_len), 0);
			secret_free(k);
		}
		assert_int_equal(ca_issue(ca, &req, &res), 0);
		p = res.cert;
		x = d2i_X509(NULL, &p, (long)res.cert_len);
		assert_non_null(x);
		assert_ptr_equal(p, res.cert + res.cert_len);
		/* DER: OpenSSL's re-encoding of what it parsed is the same bytes */
		n = i2d_X509(x, &re);
		assert_int_equal(n, (int)res.cert_len);
		assert_memory_equal(re, res.cert, res.cert_len);
		assert_int_equal(X509_verify(x, ca_key), 1);
		want = reference_leaf(x, cases[i].cn, req.not_before, req.not_after);
		n_got = i2d_re_X509_tbs(x, &tbs_got);
		n_want = i2d_re_X509_tbs(want, &tbs_want);
		assert_int_equal(n_got, n_want);
		assert_memory_equal(tbs_got, tbs_want, (size_t)n_want);
		/* the subject text is X509_NAME_oneline's */
		{
			char text[256];

			X509_NAME_oneline(X509_get_subject_name(x), text, sizeof(text));
			assert_string_equal(res.subject, text);
		}
		OPENSSL_free(re);
		OPENSSL_free(tbs_got);
		OPENSSL_free(tbs_want);
		X509_free(want);
		X509_free(x);
	}
	/* a CN that is not UTF-8 is refused, as OpenSSL's name functions refuse it */
	memset(&res, 0, sizeof(res));
	snprintf(req.subject_cn, sizeof(req.subject_cn), "bad\xff\xfe");
	req.spki_len = 0;
	assert_int_equal(ca_issue(ca, &req, &res), MEF_EINVAL);
	assert_string_equal(res.why, "subject CN is not UTF-8");
}

static void
test_refusals(void **state)
{
	const char *good[] = {"//example.net/cse1"};
	const char *two[] = {"//example.net/cse1", "//example.net/evil"};

	(void)state;
	assert_int_equal(issue("P-256", good, 1, true, good[0]), MEF_EAUTH);
	assert_int_equal(issue("P-384", good, 1, false, good[0]), MEF_EUNSUPP);
	assert_int_equal(issue(NULL, good, 1, false, good[0]), MEF_EUNSUPP);
	assert_int_equal(issue("P-256", good, 1, false, "//example.net/other"), MEF_EDENIED);
	assert_int_equal(issue("P-256", two, 2, false, good[0]), MEF_EDENIED);
	assert_int_equal(issue("P-256", good, 0, false, good[0]), MEF_EDENIED);
	assert_non_null(res.why);
	/* garbage and truncation */
	memset(&req, 0, sizeof(req));
	req.csr_len = make_csr("P-256", good, 1, false, req.csr) / 2;
	assert_int_equal(ca_csr_check(req.csr, req.csr_len, good[0], NULL, NULL, 0, &res.why),
			 MEF_EINVAL);
	assert_int_equal(ca_csr_check((const uint8_t *)"\x30\x03\x02\x01\x01", 5, good[0], NULL,
				      NULL, 0, &res.why),
			 MEF_EINVAL);
}

/*
 * ca.c reads PKCS#10 with its own template (no d2i_X509_REQ): what OpenSSL
 * signs with SHA-384 is read back; SHA-1, a point off the curve and a
 * version other than 1 are refused.
 */
static void
test_csr_reader(void **state)
{
	static const char spki_point[] = "\x2a\x86\x48\xce\x3d\x03\x01\x07\x03\x42\x00\x04";
	const char *good[] = {"//example.net/cse1"};
	uint8_t *pt;

	(void)state;
	csr_md = EVP_sha384;
	assert_int_equal(issue("P-256", good, 1, false, good[0]), 0);
	csr_md = EVP_sha1;
	assert_int_equal(issue("P-256", good, 1, false, good[0]), MEF_EUNSUPP);
	csr_md = EVP_sha256;
	memset(&req, 0, sizeof(req));
	req.csr_len = make_csr("P-256", good, 1, false, req.csr);
	/* the point follows the prime256v1 OID and the BIT STRING header */
	pt = memmem(req.csr, req.csr_len, spki_point, sizeof(spki_point) - 1);
	assert_non_null(pt);
	pt[12 + 31] ^= 0x01; /* the last byte of x: the point leaves the curve */
	assert_int_equal(ca_csr_check(req.csr, req.csr_len, good[0], NULL, NULL, 0, &res.why),
			 MEF_EUNSUPP);
	assert_string_equal(res.why, "unusable public key");
	pt[12 + 31] ^= 0x01;
	pt = memmem(req.csr, req.csr_len, "\x02\x01\x00\x30", 4); /* version 0, i.e. v1 */
	assert_non_null(pt);
	pt[2] = 0x01;
	assert_int_equal(ca_csr_check(req.csr, req.csr_len, good[0], NULL, NULL, 0, &res.why),
			 MEF_EINVAL);
	assert_string_equal(res.why, "not a version 1 request");
}

static void
test_crl(void **state)
{
	struct ca_revoked rv[2] = {{"5BF40BCBAA6249FE2B5BB8AD5782B378", 1000}, {"01", 2000}};
	const unsigned char *p;
	uint8_t *der = NULL;
	size_t len = 0;
	X509_CRL *crl;

	(void)state;
	assert_int_equal(ca_crl(ca, rv, 2, 3000, 4000, &der, &len), 0);
	p = der;
	crl = d2i_X509_CRL(NULL, &p, (long)len);
	assert_non_null(crl);
	assert_int_equal(X509_CRL_verify(crl, ca_key), 1);
	assert_int_equal(sk_X509_REVOKED_num(X509_CRL_get_REVOKED(crl)), 2);
	X509_CRL_free(crl);
	free(der);
}

static void
test_serial_canon(void **state)
{
	char out[CA_SERIAL_HEX];

	(void)state;
	assert_int_equal(ca_serial_canon("serial=00AB:cd", out), 0);
	assert_string_equal(out, "ABCD");
	assert_int_equal(ca_serial_canon("abc", out), 0);
	assert_string_equal(out, "0ABC");
	assert_int_equal(ca_serial_canon("xyz", out), MEF_EINVAL);
	assert_int_equal(ca_serial_canon("", out), MEF_EINVAL);
}

/* X.690 8.1.3 lengths at the form boundaries, as hand-written bytes. */
static void
test_der_hdr(void **state)
{
	static const struct {
		size_t n;
		uint8_t want[6];
		size_t len;
	} cases[] = {
		{0, {0x30, 0x00}, 2},
		{127, {0x30, 0x7f}, 2},
		{128, {0x30, 0x81, 0x80}, 3},
		{255, {0x30, 0x81, 0xff}, 3},
		{256, {0x30, 0x82, 0x01, 0x00}, 4},
		{65535, {0x30, 0x82, 0xff, 0xff}, 4},
		{65536, {0x30, 0x83, 0x01, 0x00, 0x00}, 5},
		{0x1000000, {0x30, 0x84, 0x01, 0x00, 0x00, 0x00}, 6},
	};
	uint8_t out[6];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(der_hdr_len(cases[i].n), cases[i].len);
		assert_int_equal(der_hdr(out, 0x30, cases[i].n), cases[i].len);
		assert_memory_equal(out, cases[i].want, cases[i].len);
	}
}

static void
test_wire(void **state)
{
	/* RFC 8949: [284, h'0102', 281, h'03'] = 84 19 011C 42 0102 19 0119 41 03 */
	static const uint8_t want[] = {0x84, 0x19, 0x01, 0x1c, 0x42, 0x01, 0x02,
				       0x19, 0x01, 0x19, 0x41, 0x03};
	char body[] = "\x01\x02\x03";
	struct mef_resp r = {.body = body, .body_len = 3, .ctype = CT_MULTIPART, .n_parts = 2};
	uint8_t *out, *der;
	size_t len;

	(void)state;
	r.parts[0] = (struct mef_part){CT_PKCS8, 0, 2};
	r.parts[1] = (struct mef_part){CT_PKCS7_CERTS, 2, 1};
	assert_int_equal(est_coap_multipart(&r, &out, &len), 0);
	assert_memory_equal(out, want, sizeof(want));
	assert_int_equal(len, sizeof(want));
	free(out);
	/* RFC 4648 §10 "foobar", with line breaks; and a refusal */
	assert_int_equal(est_http_decode((const uint8_t *)"Zm9v\r\nYmFy\n", 11, &der, &len), 0);
	assert_int_equal(len, 6);
	assert_memory_equal(der, "foobar", 6);
	free(der);
	assert_int_equal(est_http_decode((const uint8_t *)"Zm9", 3, &der, &len), MEF_EINVAL);
}

/* est_pkcs7_certs against `openssl crl2pkcs7 -nocrl` (an independent encoder), 1 and 2 certs. */
static void
test_pkcs7_certs_like_crl2pkcs7(void **state)
{
	uint8_t *ders[2], *p7 = NULL, want[8192];
	size_t lens[2], p7len = 0, wantlen;
	char both[160], cmd[512];
	FILE *f, *out;
	X509 *x;

	(void)state;
	f = fopen(crt_path, "r");
	x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	assert_non_null(x);
	ders[0] = ders[1] = NULL;
	lens[0] = (size_t)i2d_X509(x, &ders[0]);
	lens[1] = (size_t)i2d_X509(x, &ders[1]);
	X509_free(x);
	snprintf(both, sizeof(both), "%s/both.pem", dir);
	snprintf(cmd, sizeof(cmd), "cat %s %s > %s", crt_path, crt_path, both);
	assert_int_equal(system(cmd), 0);
	for (size_t n = 1; n <= 2; n++) {
		snprintf(cmd, sizeof(cmd), "openssl crl2pkcs7 -nocrl -certfile %s -outform DER",
			 n == 1 ? crt_path : both);
		out = popen(cmd, "r");
		assert_non_null(out);
		wantlen = fread(want, 1, sizeof(want), out);
		assert_int_equal(pclose(out), 0);
		assert_int_equal(est_pkcs7_certs((const uint8_t *const *)ders, lens, n, &p7, &p7len),
				 0);
		assert_int_equal(p7len, wantlen);
		assert_memory_equal(p7, want, wantlen);
		free(p7);
	}
	/* a blob that is not one DER SEQUENCE is refused */
	lens[1] = lens[0] - 1;
	assert_int_not_equal(est_pkcs7_certs((const uint8_t *const *)ders, lens, 2, &p7, &p7len), 0);
	OPENSSL_free(ders[0]);
	OPENSSL_free(ders[1]);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_issue_profile), cmocka_unit_test(test_leaf_der_like_openssl),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_csr_reader),
		cmocka_unit_test(test_crl),           cmocka_unit_test(test_serial_canon),
		cmocka_unit_test(test_der_hdr),       cmocka_unit_test(test_wire),          cmocka_unit_test(test_pkcs7_certs_like_crl2pkcs7),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
