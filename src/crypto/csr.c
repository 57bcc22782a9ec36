/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * PKCS#10 requests for the MEF CA (include/mef/ca.h): read without
 * d2i_X509_REQ, checked (version 1, a P-256 key with an uncompressed point
 * on the curve, an ECDSA-SHA-2 signature over the info as received, exactly
 * one SAN equal to the one wanted) and handed to ca.c through
 * csr_internal.h. ca_csr_check, the front end's early check, lives here.
 */
#include <openssl/asn1t.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "csr_internal.h"
#include "mef/ca.h"
#include "mef/err.h"

/* A SAN as text, the way tlsx_peer_sans renders it (URI/DNS verbatim, otherName OID:value). */
static int
san_text(const GENERAL_NAME *gn, char *out, size_t outlen)
{
	const ASN1_STRING *s;
	char oid[128] = "";
	int n;

	if (gn->type == GEN_URI) {
		s = gn->d.uniformResourceIdentifier;
	} else if (gn->type == GEN_DNS) {
		s = gn->d.dNSName;
	} else if (gn->type == GEN_OTHERNAME && gn->d.otherName->value->type == V_ASN1_UTF8STRING) {
		s = gn->d.otherName->value->value.utf8string;
		if (OBJ_obj2txt(oid, sizeof(oid) - 1, gn->d.otherName->type_id, 1) <= 0)
			return MEF_EINVAL;
		strncat(oid, ":", sizeof(oid) - strlen(oid) - 1);
	} else {
		return MEF_EUNSUPP;
	}
	if (ASN1_STRING_length(s) <= 0 ||
	    memchr(ASN1_STRING_get0_data(s), '\0', (size_t)ASN1_STRING_length(s)))
		return MEF_EINVAL;
	n = snprintf(out, outlen, "%s%.*s", oid, ASN1_STRING_length(s),
		     (const char *)ASN1_STRING_get0_data(s));
	return n < 0 || (size_t)n >= outlen ? MEF_ETOOBIG : 0;
}

/*
 * PKCS#10 (RFC 2986) read with our own template instead of d2i_X509_REQ:
 * OpenSSL 3.0 decodes an X509_REQ's subject key through
 * OSSL_DECODER_CTX_new_for_pkey, which collects every provider's decoders
 * on each call, about a third of an enrolment's CPU (perf,
 * docs/performance.md). Only P-256 keys are admitted, so the key is built
 * from its point; the info's DER is kept for the signature check.
 */
typedef struct {
	X509_ALGOR *algor;
	ASN1_BIT_STRING *bits;
} CA_CSR_SPKI;

typedef struct {
	ASN1_ENCODING enc;
	ASN1_INTEGER *version;
	X509_NAME *subject;
	CA_CSR_SPKI *spki;
	STACK_OF(X509_ATTRIBUTE) *attributes;
} CA_CSR_INFO;

struct ca_csr_st {
	CA_CSR_INFO *info;
	X509_ALGOR *sig_alg;
	ASN1_BIT_STRING *signature;
};

ASN1_SEQUENCE(CA_CSR_SPKI) = {
	ASN1_SIMPLE(CA_CSR_SPKI, algor, X509_ALGOR),
	ASN1_SIMPLE(CA_CSR_SPKI, bits, ASN1_BIT_STRING),
} static_ASN1_SEQUENCE_END(CA_CSR_SPKI)

ASN1_SEQUENCE_enc(CA_CSR_INFO, enc, NULL) = {
	ASN1_SIMPLE(CA_CSR_INFO, version, ASN1_INTEGER),
	ASN1_SIMPLE(CA_CSR_INFO, subject, X509_NAME),
	ASN1_SIMPLE(CA_CSR_INFO, spki, CA_CSR_SPKI),
	/* optional as in OpenSSL's own X509_REQ_INFO, for requests that omit the empty set */
	ASN1_IMP_SET_OF_OPT(CA_CSR_INFO, attributes, X509_ATTRIBUTE, 0),
} static_ASN1_SEQUENCE_END_ref(CA_CSR_INFO, CA_CSR_INFO)

ASN1_SEQUENCE(CA_CSR) = {
	ASN1_SIMPLE(CA_CSR, info, CA_CSR_INFO),
	ASN1_SIMPLE(CA_CSR, sig_alg, X509_ALGOR),
	ASN1_SIMPLE(CA_CSR, signature, ASN1_BIT_STRING),
} static_ASN1_SEQUENCE_END(CA_CSR)

void
csr_free(CA_CSR *csr)
{
	ASN1_item_free((ASN1_VALUE *)csr, ASN1_ITEM_rptr(CA_CSR));
}

/* A BIT STRING's octets, or NULL if it has unused bits (keys and signatures never do). */
static const unsigned char *
bits_octets(const ASN1_BIT_STRING *b, size_t *len)
{
	if ((b->flags & 7) != 0)
		return NULL;
	*len = (size_t)b->length;
	return b->data;
}

/*
 * A P-256 key with no point: each CSR key is a copy given its point, which
 * costs 4 us where building the group again (EVP_PKEY_fromdata) costs 18.
 * Immutable once set, as kdf.c's HMAC template; freed with OpenSSL at exit.
 */
static EVP_PKEY *ca_p256_template;
static pthread_once_t ca_p256_once = PTHREAD_ONCE_INIT;

static void
ca_p256_setup(void)
{
	OSSL_PARAM kp[] = {
		OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)"prime256v1", 0),
		OSSL_PARAM_construct_end(),
	};
	EVP_PKEY_CTX *kc = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);

	if (!kc || EVP_PKEY_fromdata_init(kc) != 1 ||
	    EVP_PKEY_fromdata(kc, &ca_p256_template, EVP_PKEY_KEY_PARAMETERS, kp) != 1)
		ca_p256_template = NULL;
	EVP_PKEY_CTX_free(kc);
}

/* TS-0003 10.1.1: id-ecPublicKey on secp256r1, uncompressed point; *ret is the key. */
static int
key_check(const CA_CSR_SPKI *spki, EVP_PKEY **ret, const char **why)
{
	const ASN1_OBJECT *alg = NULL;
	const void *param = NULL;
	const unsigned char *pt;
	size_t ptlen = 0;
	int ptype = 0;

	X509_ALGOR_get0(&alg, &ptype, &param, spki->algor);
	if (OBJ_obj2nid(alg) != NID_X9_62_id_ecPublicKey) {
		*why = "key is not an EC key";
		return MEF_EUNSUPP;
	}
	if (ptype != V_ASN1_OBJECT || OBJ_obj2nid(param) != NID_X9_62_prime256v1) {
		*why = "key is not on P-256";
		return MEF_EUNSUPP;
	}
	pt = bits_octets(spki->bits, &ptlen);
	if (!pt || ptlen != 65 || pt[0] != 0x04) {
		*why = "public key point is not uncompressed";
		return MEF_EUNSUPP;
	}
	pthread_once(&ca_p256_once, ca_p256_setup);
	*ret = ca_p256_template ? EVP_PKEY_dup(ca_p256_template) : NULL;
	/* EC_KEY_oct2key underneath refuses a point that is not on the curve */
	if (!*ret || EVP_PKEY_set_octet_string_param(*ret, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY,
						     pt, ptlen) != 1) {
		EVP_PKEY_free(*ret);
		*ret = NULL;
		*why = "unusable public key";
		return MEF_EUNSUPP;
	}
	return 0;
}

/* ECDSA with SHA-2 over the request info as it was received. */
static int
signature_check(const CA_CSR *csr, EVP_PKEY *pk, const char **why)
{
	const ASN1_OBJECT *alg = NULL;
	const unsigned char *sig;
	EVP_MD_CTX *mc;
	size_t siglen = 0;
	int ptype = 0, md = NID_undef, pkey = NID_undef, ok;

	X509_ALGOR_get0(&alg, &ptype, NULL, csr->sig_alg);
	if (!OBJ_find_sigid_algs(OBJ_obj2nid(alg), &md, &pkey) ||
	    pkey != NID_X9_62_id_ecPublicKey || ptype != V_ASN1_UNDEF ||
	    (md != NID_sha256 && md != NID_sha384 && md != NID_sha512)) {
		*why = "request signature is not ECDSA with SHA-2";
		return MEF_EUNSUPP;
	}
	if (!(sig = bits_octets(csr->signature, &siglen)) || !csr->info->enc.enc) {
		*why = "request signature does not verify";
		return MEF_EAUTH;
	}
	mc = EVP_MD_CTX_new();
	ok = mc && EVP_DigestVerifyInit_ex(mc, NULL, OBJ_nid2sn(md), NULL, NULL, pk, NULL) == 1 &&
	     EVP_DigestVerify(mc, sig, siglen, csr->info->enc.enc, csr->info->enc.len) == 1;
	EVP_MD_CTX_free(mc);
	if (!ok) {
		*why = "request signature does not verify";
		return MEF_EAUTH;
	}
	return 0;
}

/* The extensionRequest attribute (RFC 2985 5.4.2), as X509_REQ_get_extensions reads it. */
static STACK_OF(X509_EXTENSION) *
csr_extensions(const CA_CSR *csr)
{
	int i = X509at_get_attr_by_NID(csr->info->attributes, NID_ext_req, -1);
	X509_ATTRIBUTE *a = i >= 0 ? X509at_get_attr(csr->info->attributes, i) : NULL;
	ASN1_TYPE *t = a ? X509_ATTRIBUTE_get0_type(a, 0) : NULL;

	if (!t || t->type != V_ASN1_SEQUENCE)
		return NULL;
	return ASN1_item_unpack(t->value.sequence, ASN1_ITEM_rptr(X509_EXTENSIONS));
}

/* Exactly one subjectAltName extension with exactly one name, equal to want. */
static int
san_check(const CA_CSR *csr, const char *want, GENERAL_NAMES **ret, char *ret_text,
	  const char **why)
{
	STACK_OF(X509_EXTENSION) *exts = csr_extensions(csr);
	GENERAL_NAMES *g;
	char text[CA_NAME_MAX];
	int crit = -1;

	g = exts ? X509V3_get_d2i(exts, NID_subject_alt_name, &crit, NULL) : NULL;
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	if (!g) {
		*why = crit == -2 ? "more than one subjectAltName extension" : "no subjectAltName";
		return MEF_EDENIED;
	}
	if (sk_GENERAL_NAME_num(g) != 1) {
		*why = "extra subjectAltName entries";
		GENERAL_NAMES_free(g);
		return MEF_EDENIED;
	}
	if (san_text(sk_GENERAL_NAME_value(g, 0), text, sizeof(text)) != 0 ||
	    (want && strcmp(text, want) != 0)) {
		*why = "subjectAltName is not the authenticated identity";
		GENERAL_NAMES_free(g);
		return MEF_EDENIED;
	}
	if (ret_text)
		memcpy(ret_text, text, sizeof(text));
	if (ret)
		*ret = g;
	else
		GENERAL_NAMES_free(g);
	return 0;
}

void
csr_challenge(const CA_CSR *csr, char *out, size_t outlen)
{
	int i = X509at_get_attr_by_NID(csr->info->attributes, NID_pkcs9_challengePassword, -1);
	X509_ATTRIBUTE *a = i >= 0 ? X509at_get_attr(csr->info->attributes, i) : NULL;
	ASN1_TYPE *t = a ? X509_ATTRIBUTE_get0_type(a, 0) : NULL;

	out[0] = '\0';
	if (t && (t->type == V_ASN1_UTF8STRING || t->type == V_ASN1_PRINTABLESTRING ||
		  t->type == V_ASN1_IA5STRING))
		snprintf(out, outlen, "%.*s", ASN1_STRING_length(t->value.asn1_string),
			 (const char *)ASN1_STRING_get0_data(t->value.asn1_string));
}

const ASN1_BIT_STRING *
csr_key_bits(const CA_CSR *csr)
{
	return csr->info->spki->bits;
}

int
csr_load(const uint8_t *der, size_t len, const char *want, CA_CSR **ret_csr,
	 GENERAL_NAMES **ret_san, char *ret_text, const char **why)
{
	const unsigned char *p = der;
	EVP_PKEY *pk = NULL;
	CA_CSR *csr = NULL;
	int r;

	if (len == 0 || len > CA_CSR_MAX ||
	    !(csr = (CA_CSR *)ASN1_item_d2i(NULL, &p, (long)len, ASN1_ITEM_rptr(CA_CSR)))) {
		*why = "not a DER PKCS#10 request";
		ERR_clear_error();
		return MEF_EINVAL;
	}
	if (p != der + len) {
		*why = "trailing bytes after the request";
		r = MEF_EINVAL;
	} else if (ASN1_INTEGER_get(csr->info->version) != 0) {
		*why = "not a version 1 request";
		r = MEF_EINVAL;
	} else if ((r = key_check(csr->info->spki, &pk, why)) == 0 &&
		   (r = signature_check(csr, pk, why)) == 0) {
		r = san_check(csr, want, ret_san, ret_text, why);
	}
	EVP_PKEY_free(pk);
	ERR_clear_error();
	if (r || !ret_csr)
		csr_free(csr);
	else
		*ret_csr = csr;
	return r;
}

int
ca_csr_check(const uint8_t *der, size_t len, const char *want_san, char *ret_san,
	     char *ret_challenge, size_t challenge_len, const char **ret_why)
{
	CA_CSR *csr = NULL;
	int r = csr_load(der, len, want_san, &csr, NULL, ret_san, ret_why);

	if (r == 0 && ret_challenge)
		csr_challenge(csr, ret_challenge, challenge_len);
	csr_free(csr);
	return r;
}
