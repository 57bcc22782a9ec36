/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The MEF CA on OpenSSL 3 EVP (include/mef/ca.h): issuance of the TS-0003
 * 10.1.1 client profile (the request is read and checked by csr.c), CRLs,
 * server-side key generation and `mefctl ca init`. The key is used in
 * process for now (style rule 23, option A); every request is plain data so
 * a signer process can take over.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "csr_internal.h"
#include "leaf_internal.h"
#include "mef/ca.h"
#include "mef/err.h"
#include "mef/secret.h"

#define CA_SERIAL_BYTES 16 /* 127 random bits after the sign bit is cleared */

/* The leaf extensions that depend on the CA alone, as DER made once (leaf_der.c). */
enum { CA_EXT_BC, CA_EXT_KU, CA_EXT_EKU, CA_EXT_AKI, CA_EXT_N };

struct ca {
	X509 *cert;
	EVP_PKEY *key;
	uint8_t *der;
	size_t der_len;
	uint8_t *ext_der[CA_EXT_N];
	size_t ext_len[CA_EXT_N];
	uint8_t *issuer_der; /* the CA's subject Name: every leaf's issuer */
	size_t issuer_len;
	uint8_t sigalg[64]; /* the AlgorithmIdentifier of sign */
	size_t sigalg_len;
	EVP_MD_CTX *sign; /* ECDSA-SHA256 with key, initialised once; each certificate a copy */
	/* one issuance at a time per CA: its scratch, kept off the stack */
	uint8_t tbs[CA_CERT_MAX]; /* issue_der's TBSCertificate */
	struct ca_result out;     /* ca_issue's result until it is complete */
};

/* ---- loading ---- */

static EVP_PKEY *
ca_read_key(const char *path)
{
	struct mef_secret *raw = NULL;
	const char *why = NULL;
	EVP_PKEY *k = NULL;
	BIO *b;

	if (secret_read_file(path, 0, &raw, &why) != 0)
		return NULL;
	b = BIO_new_mem_buf(raw->p, (int)raw->len);
	if (b)
		k = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
	BIO_free(b);
	secret_free(raw);
	return k;
}

static X509 *
ca_read_cert(const char *path)
{
	FILE *f = fopen(path, "re");
	X509 *x;

	if (!f)
		return NULL;
	x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	return x;
}

/* TS-0003 10.1.1's leaf profile, the parts every certificate of this CA shares. */
static int
ca_leaf_ext_setup(struct ca *ca)
{
	static const struct {
		int nid;
		const char *value;
	} prof[CA_EXT_N] = {
		[CA_EXT_BC] = {NID_basic_constraints, "critical,CA:FALSE"},
		[CA_EXT_KU] = {NID_key_usage, "critical,digitalSignature"},
		[CA_EXT_EKU] = {NID_ext_key_usage, "clientAuth"},
		[CA_EXT_AKI] = {NID_authority_key_identifier, "keyid,issuer"},
	};
	X509V3_CTX ctx;

	X509V3_set_ctx(&ctx, ca->cert, NULL, NULL, NULL, 0);
	for (int i = 0; i < CA_EXT_N; i++) {
		X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &ctx, prof[i].nid, prof[i].value);
		unsigned char *p = NULL;
		int n = e ? i2d_X509_EXTENSION(e, &p) : 0;

		X509_EXTENSION_free(e);
		if (n <= 0)
			return MEF_ECRYPTO;
		ca->ext_der[i] = p;
		ca->ext_len[i] = (size_t)n;
	}
	return 0;
}

/* What every leaf repeats as it is: the issuer Name and the signature's AlgorithmIdentifier. */
static int
ca_leaf_fixed_setup(struct ca *ca)
{
	unsigned char *p = NULL;
	int n = i2d_X509_NAME(X509_get_subject_name(ca->cert), &p);
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_octet_string(OSSL_SIGNATURE_PARAM_ALGORITHM_ID, ca->sigalg,
						  sizeof(ca->sigalg)),
		OSSL_PARAM_construct_end(),
	};

	if (n <= 0)
		return MEF_ECRYPTO;
	ca->issuer_der = p;
	ca->issuer_len = (size_t)n;
	if (EVP_PKEY_CTX_get_params(EVP_MD_CTX_get_pkey_ctx(ca->sign), params) != 1 ||
	    !OSSL_PARAM_modified(&params[0]) || params[0].return_size == 0)
		return MEF_ECRYPTO;
	ca->sigalg_len = params[0].return_size;
	return 0;
}

int
ca_open(const char *cert_path, const char *key_path, struct ca **ret)
{
	struct ca *ca = calloc(1, sizeof(*ca));
	unsigned char *p = NULL;
	int n, r = 0;

	if (!ca)
		return MEF_ENOMEM;
	if (!(ca->cert = ca_read_cert(cert_path)) || !(ca->key = ca_read_key(key_path)))
		r = MEF_EIO;
	else if (X509_check_private_key(ca->cert, ca->key) != 1)
		r = MEF_EAUTH;
	else if ((n = i2d_X509(ca->cert, &p)) <= 0 || ca_leaf_ext_setup(ca) != 0 ||
		 !(ca->sign = EVP_MD_CTX_new()) ||
		 EVP_DigestSignInit_ex(ca->sign, NULL, "SHA256", NULL, NULL, ca->key, NULL) != 1 ||
		 ca_leaf_fixed_setup(ca) != 0)
		r = MEF_ECRYPTO;
	if (r) {
		ERR_clear_error();
		ca_free(ca);
		return r;
	}
	ca->der = p;
	ca->der_len = (size_t)n;
	*ret = ca;
	return 0;
}

struct ca *
ca_free(struct ca *ca)
{
	if (!ca)
		return NULL;
	X509_free(ca->cert);
	EVP_PKEY_free(ca->key);
	OPENSSL_free(ca->der);
	OPENSSL_free(ca->issuer_der);
	for (int i = 0; i < CA_EXT_N; i++)
		OPENSSL_free(ca->ext_der[i]);
	EVP_MD_CTX_free(ca->sign);
	free(ca);
	return NULL;
}

void
ca_cert_der(const struct ca *ca, const uint8_t **ret, size_t *ret_len)
{
	*ret = ca->der;
	*ret_len = ca->der_len;
}

/* ---- issuance ---- */

static int
serial_hex(const uint8_t *b, size_t n, char out[CA_SERIAL_HEX])
{
	static const char hex[] = "0123456789ABCDEF";

	if (2 * n + 1 > CA_SERIAL_HEX)
		return MEF_EINVAL;
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hex[b[i] >> 4];
		out[2 * i + 1] = hex[b[i] & 15];
	}
	out[2 * n] = '\0';
	return 0;
}

/* RFC 5280 4.1.2.2: positive, at most 20 octets; 127 CSPRNG bits, no leading zero byte. */
static int
new_serial(uint8_t b[CA_SERIAL_BYTES], char out[CA_SERIAL_HEX])
{
	if (RAND_priv_bytes(b, CA_SERIAL_BYTES) != 1)
		return MEF_ECRYPTO;
	b[0] = (uint8_t)((b[0] & 0x7f) | 0x40);
	return serial_hex(b, CA_SERIAL_BYTES, out);
}

static int
set_serial(X509 *x, char out[CA_SERIAL_HEX])
{
	uint8_t b[CA_SERIAL_BYTES];
	ASN1_INTEGER *ai = NULL;
	BIGNUM *bn;
	int ok;

	if (new_serial(b, out) != 0)
		return MEF_ECRYPTO;
	bn = BN_bin2bn(b, sizeof(b), NULL);
	ok = bn && (ai = BN_to_ASN1_INTEGER(bn, NULL)) && X509_set_serialNumber(x, ai);
	BN_free(bn);
	ASN1_INTEGER_free(ai);
	return ok ? 0 : MEF_ECRYPTO;
}

static int
add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
	X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
	int ok = e && X509_add_ext(x, e, -1);

	X509_EXTENSION_free(e);
	return ok ? 0 : MEF_ECRYPTO;
}

/* CN=cn, or the empty subject; written in place (X509_set_subject_name would copy). */
static int
set_subject(X509 *x, const char *cn)
{
	if (cn[0] && !X509_NAME_add_entry_by_NID(X509_get_subject_name(x), NID_commonName,
						 MBSTRING_UTF8, (const unsigned char *)cn, -1, -1,
						 0))
		return MEF_EINVAL;
	return 0;
}

/* id-ecPublicKey on prime256v1, then the BIT STRING header of a 65-byte uncompressed point. */
static const uint8_t p256_spki_prefix[] = {
	0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01,
	0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
};
#define P256_POINT_LEN 65

/*
 * The subject key as a P-256 SubjectPublicKeyInfo and its point: the CSR's
 * (csr_load admitted only a named P-256 key with an uncompressed point), or
 * the one ca_keygen made for a serverkeygen request, which must be the same
 * shape and is parsed once to be sure it is a key.
 */
static int
subject_spki(const struct ca_request *req, const CA_CSR *csr, uint8_t spki[sizeof(p256_spki_prefix) + P256_POINT_LEN],
	     const char **why)
{
	const ASN1_BIT_STRING *b = csr_key_bits(csr);
	const unsigned char *p = req->spki;
	EVP_PKEY *pk;

	if (!req->spki_len) {
		if (b->length != P256_POINT_LEN)
			return MEF_EINVAL;
		memcpy(spki, p256_spki_prefix, sizeof(p256_spki_prefix));
		memcpy(spki + sizeof(p256_spki_prefix), b->data, P256_POINT_LEN);
		return 0;
	}
	pk = req->spki_len == sizeof(p256_spki_prefix) + P256_POINT_LEN &&
			     memcmp(req->spki, p256_spki_prefix, sizeof(p256_spki_prefix)) == 0
		     ? d2i_PUBKEY(NULL, &p, (long)req->spki_len)
		     : NULL;
	if (!pk || !EVP_PKEY_is_a(pk, "EC")) {
		*why = "server-generated key unusable";
		EVP_PKEY_free(pk);
		return MEF_EINVAL;
	}
	EVP_PKEY_free(pk);
	memcpy(spki, req->spki, req->spki_len);
	return 0;
}

/*
 * "/CN=..." as X509_NAME_oneline writes it (the text logged and stored with
 * the row). OpenSSL also checks here that cn is UTF-8 a CN may hold, which
 * leaf_der.c, writing the same UTF8String, relies on: MEF_EINVAL if not.
 */
static int
subject_text(const char *cn, char out[CA_NAME_MAX])
{
	X509_NAME *n = X509_NAME_new();
	int ok = n && (!cn[0] || X509_NAME_add_entry_by_NID(n, NID_commonName, MBSTRING_UTF8,
							      (const unsigned char *)cn, -1, -1, 0));

	out[0] = '\0';
	if (ok)
		X509_NAME_oneline(n, out, CA_NAME_MAX);
	X509_NAME_free(n);
	return ok ? 0 : n ? MEF_EINVAL : MEF_ENOMEM;
}

/*
 * The TS-0003 10.1.1 leaf (leaf_der.c) signed with a copy of the context
 * made at ca_open: X509_sign would fetch SHA-256 and set up ECDSA around
 * the key for every certificate.
 */
static int
issue_der(struct ca *ca, const struct ca_request *req, const CA_CSR *csr, GENERAL_NAMES *san,
	  struct ca_result *res)
{
	uint8_t *tbs = ca->tbs;
	uint8_t serial[CA_SERIAL_BYTES], spki[sizeof(p256_spki_prefix) + P256_POINT_LEN];
	uint8_t sig[EVP_MAX_MD_SIZE * 2 + 16];
	unsigned char *san_der = NULL;
	int san_len = i2d_GENERAL_NAMES(san, &san_der);
	const struct der_blob before[] = {
		{ca->ext_der[CA_EXT_BC], ca->ext_len[CA_EXT_BC]},
		{ca->ext_der[CA_EXT_KU], ca->ext_len[CA_EXT_KU]},
		{ca->ext_der[CA_EXT_EKU], ca->ext_len[CA_EXT_EKU]},
	};
	const struct der_blob after[] = {{ca->ext_der[CA_EXT_AKI], ca->ext_len[CA_EXT_AKI]}};
	struct leaf_tbs t = {
		.serial = serial,
		.serial_len = sizeof(serial),
		.sigalg = {ca->sigalg, ca->sigalg_len},
		.issuer = {ca->issuer_der, ca->issuer_len},
		.not_before = req->not_before,
		.not_after = req->not_after,
		.subject_cn = req->subject_cn,
		.spki = {spki, sizeof(spki)},
		.key_bits = spki + sizeof(p256_spki_prefix),
		.key_bits_len = P256_POINT_LEN,
		.ext_before_ski = before,
		.n_before = 3,
		.ext_after_ski = after,
		.n_after = 1,
		.san = {san_der, san_len > 0 ? (size_t)san_len : 0},
	};
	EVP_MD_CTX *c = NULL;
	size_t tbs_len = 0, sig_len = sizeof(sig);
	int r;

	if (san_len <= 0)
		r = MEF_ECRYPTO;
	else if ((r = subject_text(req->subject_cn, res->subject)) != 0) {
		if (r == MEF_EINVAL)
			res->why = "subject CN is not UTF-8";
	} else if ((r = subject_spki(req, csr, spki, &res->why)) == 0 &&
		 (r = new_serial(serial, res->serial)) == 0) {
		c = EVP_MD_CTX_new();
		if (leaf_tbs_der(&t, tbs, sizeof(ca->tbs), &tbs_len) != 0) {
			res->why = "certificate would be too large";
			r = MEF_ETOOBIG;
		} else if (!c || EVP_MD_CTX_copy_ex(c, ca->sign) != 1 ||
			   EVP_DigestSign(c, sig, &sig_len, tbs + sizeof(ca->tbs) - tbs_len, tbs_len) != 1) {
			r = MEF_ECRYPTO;
		}
	}
	if (r == 0 && leaf_cert_der(tbs + sizeof(ca->tbs) - tbs_len, tbs_len, t.sigalg, sig, sig_len,
				    res->cert, sizeof(res->cert), &res->cert_len) != 0) {
		res->why = "certificate would be too large";
		r = MEF_ETOOBIG;
	}
	EVP_MD_CTX_free(c);
	OPENSSL_free(san_der);
	return r;
}

int
ca_issue(struct ca *ca, const struct ca_request *req, struct ca_result *res)
{
	struct ca_result *out = &ca->out;
	GENERAL_NAMES *san = NULL;
	CA_CSR *csr = NULL;
	int r;

	memset(out, 0, sizeof(*out));
	if (req->not_after <= req->not_before || strnlen(req->subject_cn, 64) >= 64) {
		res->why = "bad validity or subject";
		return MEF_EINVAL;
	}
	r = csr_load(req->csr, req->csr_len, req->san, &csr, &san, NULL, &res->why);
	if (r == 0 && req->challenge[0]) {
		char got[sizeof(req->challenge)];

		csr_challenge(csr, got, sizeof(got));
		if (got[0] && strcasecmp(got, req->challenge) != 0) {
			res->why = "challengePassword is not the expected value";
			r = MEF_EDENIED;
		}
	}
	if (r == 0)
		r = issue_der(ca, req, csr, san, out);
	if (r == 0)
		*res = *out;
	else if (out->why)
		res->why = out->why;
	ERR_clear_error();
	csr_free(csr);
	GENERAL_NAMES_free(san);
	return r;
}

/* ---- CRL ---- */

static ASN1_INTEGER *
serial_int(const char *hex)
{
	BIGNUM *bn = NULL;
	ASN1_INTEGER *ai = NULL;

	if (BN_hex2bn(&bn, hex) > 0)
		ai = BN_to_ASN1_INTEGER(bn, NULL);
	BN_free(bn);
	return ai;
}

static int
crl_add(X509_CRL *crl, const struct ca_revoked *rv)
{
	X509_REVOKED *e = X509_REVOKED_new();
	ASN1_INTEGER *ai = serial_int(rv->serial);
	ASN1_TIME *t = ASN1_TIME_set(NULL, (time_t)rv->when);
	int ok = e && ai && t && X509_REVOKED_set_serialNumber(e, ai) &&
		 X509_REVOKED_set_revocationDate(e, t) && X509_CRL_add0_revoked(crl, e);

	ASN1_INTEGER_free(ai);
	ASN1_TIME_free(t);
	if (!ok)
		X509_REVOKED_free(e);
	return ok ? 0 : MEF_ECRYPTO;
}

static int
crl_fill(struct ca *ca, X509_CRL *crl, const struct ca_revoked *rv, size_t n, int64_t now,
	 int64_t next)
{
	ASN1_TIME *t0 = ASN1_TIME_set(NULL, (time_t)now), *t1 = ASN1_TIME_set(NULL, (time_t)next);
	ASN1_INTEGER *num = ASN1_INTEGER_new();
	X509V3_CTX ctx;
	X509_EXTENSION *aki;
	int ok;

	ok = t0 && t1 && num && X509_CRL_set_version(crl, X509_CRL_VERSION_2) &&
	     X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca->cert)) &&
	     X509_CRL_set1_lastUpdate(crl, t0) && X509_CRL_set1_nextUpdate(crl, t1) &&
	     ASN1_INTEGER_set_int64(num, now) &&
	     X509_CRL_add1_ext_i2d(crl, NID_crl_number, num, 0, 0) == 1;
	ASN1_TIME_free(t0);
	ASN1_TIME_free(t1);
	ASN1_INTEGER_free(num);
	for (size_t i = 0; ok && i < n; i++)
		ok = crl_add(crl, &rv[i]) == 0;
	if (!ok)
		return MEF_ECRYPTO;
	X509V3_set_ctx(&ctx, ca->cert, NULL, NULL, crl, 0);
	aki = X509V3_EXT_conf_nid(NULL, &ctx, NID_authority_key_identifier, "keyid,issuer");
	ok = aki && X509_CRL_add_ext(crl, aki, -1) && X509_CRL_sort(crl) &&
	     X509_CRL_sign(crl, ca->key, EVP_sha256()) > 0;
	X509_EXTENSION_free(aki);
	return ok ? 0 : MEF_ECRYPTO;
}

int
ca_crl(struct ca *ca, const struct ca_revoked *revoked, size_t n, int64_t now, int64_t next,
       uint8_t **ret_der, size_t *ret_len)
{
	X509_CRL *crl = X509_CRL_new();
	unsigned char *der = NULL;
	int len = 0, r;

	if (!crl)
		return MEF_ENOMEM;
	r = next > now ? crl_fill(ca, crl, revoked, n, now, next) : MEF_EINVAL;
	if (r == 0 && (len = i2d_X509_CRL(crl, &der)) <= 0)
		r = MEF_ECRYPTO;
	X509_CRL_free(crl);
	ERR_clear_error();
	if (r)
		return r;
	*ret_der = malloc((size_t)len);
	if (!*ret_der) {
		OPENSSL_free(der);
		return MEF_ENOMEM;
	}
	memcpy(*ret_der, der, (size_t)len);
	OPENSSL_free(der);
	*ret_len = (size_t)len;
	return 0;
}

/* ---- server-side key generation ---- */

static int
pkcs8_of(EVP_PKEY *k, struct mef_secret **ret)
{
	PKCS8_PRIV_KEY_INFO *p8 = EVP_PKEY2PKCS8(k);
	struct mef_secret *s = NULL;
	unsigned char *p;
	int n = p8 ? i2d_PKCS8_PRIV_KEY_INFO(p8, NULL) : 0;

	if (n > 0 && (s = secret_new((size_t)n)) != NULL) {
		p = s->p;
		i2d_PKCS8_PRIV_KEY_INFO(p8, &p);
	}
	PKCS8_PRIV_KEY_INFO_free(p8);
	if (!s)
		return n > 0 ? MEF_ENOMEM : MEF_ECRYPTO;
	*ret = s;
	return 0;
}

int
ca_keygen(struct mef_secret **ret_pkcs8, uint8_t spki[CA_SPKI_MAX], size_t *ret_spki_len)
{
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	unsigned char *p = spki;
	int n, r;

	if (!k)
		return MEF_ECRYPTO;
	n = i2d_PUBKEY(k, NULL);
	if (n <= 0 || n > CA_SPKI_MAX) {
		EVP_PKEY_free(k);
		return MEF_ECRYPTO;
	}
	i2d_PUBKEY(k, &p);
	r = pkcs8_of(k, ret_pkcs8);
	EVP_PKEY_free(k);
	if (r == 0)
		*ret_spki_len = (size_t)n;
	return r;
}

/* ---- mefctl ca init ---- */

static int
ca_self_sign(X509 *x, EVP_PKEY *k, const char *cn, const char *nc, int64_t validity)
{
	char serial[CA_SERIAL_HEX];
	X509V3_CTX ctx;
	char ncv[1024];

	if (set_serial(x, serial) || set_subject(x, cn) || !X509_set_version(x, X509_VERSION_3) ||
	    !X509_set_issuer_name(x, X509_get_subject_name(x)) || !X509_set_pubkey(x, k) ||
	    !X509_gmtime_adj(X509_getm_notBefore(x), -60) ||
	    !X509_gmtime_adj(X509_getm_notAfter(x), (long)validity))
		return MEF_ECRYPTO;
	X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
	if (add_ext(x, &ctx, NID_basic_constraints, "critical,CA:TRUE,pathlen:0") ||
	    add_ext(x, &ctx, NID_key_usage, "critical,keyCertSign,cRLSign") ||
	    add_ext(x, &ctx, NID_subject_key_identifier, "hash"))
		return MEF_ECRYPTO;
	if (nc && nc[0]) {
		/* TS-0003 8.1.2.2: CA certificates carry name constraints */
		if (snprintf(ncv, sizeof(ncv), "critical,%s", nc) >= (int)sizeof(ncv) ||
		    add_ext(x, &ctx, NID_name_constraints, ncv))
			return MEF_EINVAL;
	}
	return X509_sign(x, k, EVP_sha256()) > 0 ? 0 : MEF_ECRYPTO;
}

static int
write_new(const char *path, mode_t mode, int (*fn)(BIO *b, void *obj), void *obj)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	FILE *f;
	BIO *b;
	int ok;

	if (fd < 0)
		return errno == EEXIST ? MEF_EEXIST : MEF_EIO;
	f = fdopen(fd, "w");
	b = f ? BIO_new_fp(f, BIO_NOCLOSE) : NULL;
	ok = b && fn(b, obj);
	BIO_free(b);
	if (f)
		ok = fclose(f) == 0 && ok;
	else
		close(fd);
	return ok ? 0 : MEF_EIO;
}

static int
pem_key(BIO *b, void *k)
{
	return PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL);
}

static int
pem_cert(BIO *b, void *x)
{
	return PEM_write_bio_X509(b, x);
}

int
ca_generate(const char *cert_path, const char *key_path, const char *cn,
	    const char *name_constraints, int64_t validity_seconds)
{
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	X509 *x = X509_new();
	int r = k && x ? 0 : MEF_ECRYPTO;

	if (r == 0 && strlen(cn) >= 64)
		r = MEF_EINVAL;
	if (r == 0)
		r = ca_self_sign(x, k, cn, name_constraints, validity_seconds);
	if (r == 0)
		r = write_new(key_path, 0600, pem_key, k);
	if (r == 0 && (r = write_new(cert_path, 0644, pem_cert, x)) != 0)
		unlink(key_path);
	ERR_clear_error();
	X509_free(x);
	EVP_PKEY_free(k);
	return r;
}

int
ca_serial_canon(const char *in, char out[CA_SERIAL_HEX])
{
	char buf[2 * CA_SERIAL_HEX];
	size_t n = 0, skip = 0;

	if (strncasecmp(in, "serial=", 7) == 0)
		in += 7;
	for (const char *p = in; *p; p++) {
		if (*p == ':')
			continue;
		if (!isxdigit((unsigned char)*p) || n + 1 >= sizeof(buf))
			return MEF_EINVAL;
		buf[n++] = (char)toupper((unsigned char)*p);
	}
	if (n == 0)
		return MEF_EINVAL;
	if (n % 2) { /* "ABC" means 0x0ABC */
		memmove(buf + 1, buf, n++);
		buf[0] = '0';
	}
	while (skip + 2 < n && buf[skip] == '0' && buf[skip + 1] == '0')
		skip += 2;
	if (n - skip >= CA_SERIAL_HEX)
		return MEF_EINVAL;
	memcpy(out, buf + skip, n - skip);
	out[n - skip] = '\0';
	return 0;
}

static int64_t
asn1_unix(const ASN1_TIME *t)
{
	struct tm tm;

	if (!t || ASN1_TIME_to_tm(t, &tm) != 1)
		return 0;
	return (int64_t)timegm(&tm);
}

int
ca_cert_info(const uint8_t *der, size_t len, char serial[CA_SERIAL_HEX], char subject[CA_NAME_MAX],
	     int64_t *ret_not_before, int64_t *ret_not_after)
{
	const unsigned char *p = der;
	X509 *x = d2i_X509(NULL, &p, (long)len);
	BIGNUM *bn = NULL;
	char *hex = NULL;
	int r = MEF_EINVAL;

	if (x && (bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL)) &&
	    (hex = BN_bn2hex(bn)) && ca_serial_canon(hex, serial) == 0) {
		X509_NAME_oneline(X509_get_subject_name(x), subject, CA_NAME_MAX);
		*ret_not_before = asn1_unix(X509_get0_notBefore(x));
		*ret_not_after = asn1_unix(X509_get0_notAfter(x));
		r = 0;
	}
	OPENSSL_free(hex);
	BN_free(bn);
	X509_free(x);
	ERR_clear_error();
	return r;
}
