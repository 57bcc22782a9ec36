/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * TS-0003 10.3 key derivations and key identifiers as pure functions:
 * exporter split, KeID build/parse, Km, Kpsa, usage-constrained key, group
 * Kpm, and the NFKC normalisation identifiers go through before an HMAC.
 * No I/O, no clock, no logging; intermediate key bytes are wiped.
 */
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistr.h>
#include <uninorm.h>

#include "mef/err.h"
#include "mef/kdf.h"

#define FQDN_MAX 253
#define LABEL_MAX 63
#define SUID_MAX 999

/* Labels of TS-0003 10.3.2, 10.3.3 and 10.3.7, used without terminator or separator. */
static const char LABEL_KM[] = "oneM2M Enrolment Key to Master Credential derivation";
static const char LABEL_KPSA[] =
	"oneM2M Enrolment Key to Provisioned Secure Connection Key derivation";
static const char LABEL_UC[] =
	"oneM2M Enrolment Key to Usage-Constrained Symmetric Key derivation";

/* One piece of an HMAC message; derivations concatenate several. */
struct msg_part {
	const void *p;
	size_t len;
};

/*
 * HMAC-SHA-256 over the concatenation of parts. Fed piecewise so no
 * concatenated copy is made. 0 or MEF_ECRYPTO; out untouched on failure.
 */
/*
 * HMAC-SHA-256 set up once and copied per call: fetching "HMAC" and its
 * digest by name is a locked provider lookup each time in OpenSSL 3
 * (perf, docs/performance.md). Immutable once set; freed with OpenSSL.
 */
static EVP_MAC_CTX *kdf_hmac_template;
static pthread_once_t kdf_hmac_once = PTHREAD_ONCE_INIT;

static void
kdf_hmac_setup(void)
{
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
		OSSL_PARAM_construct_end(),
	};
	EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	EVP_MAC_CTX *ctx = mac ? EVP_MAC_CTX_new(mac) : NULL;

	EVP_MAC_free(mac); /* the context holds its own reference */
	if (ctx && !EVP_MAC_CTX_set_params(ctx, params)) {
		EVP_MAC_CTX_free(ctx);
		ctx = NULL;
	}
	kdf_hmac_template = ctx;
}

static int
hmac_sha256(const uint8_t *key, size_t keylen, const struct msg_part *parts, size_t nparts,
	    uint8_t out[MEF_KEY_LEN])
{
	uint8_t md[EVP_MAX_MD_SIZE];
	EVP_MAC_CTX *ctx;
	size_t mdlen = 0;
	int ok;

	pthread_once(&kdf_hmac_once, kdf_hmac_setup);
	ctx = kdf_hmac_template ? EVP_MAC_CTX_dup(kdf_hmac_template) : NULL;
	ok = ctx && EVP_MAC_init(ctx, key, keylen, NULL);
	for (size_t i = 0; ok && i < nparts; i++)
		ok = EVP_MAC_update(ctx, parts[i].p, parts[i].len);
	ok = ok && EVP_MAC_final(ctx, md, &mdlen, sizeof(md)) && mdlen == MEF_KEY_LEN;
	if (ok)
		memcpy(out, md, MEF_KEY_LEN);
	OPENSSL_cleanse(md, sizeof(md));
	EVP_MAC_CTX_free(ctx);
	return ok ? 0 : MEF_ECRYPTO;
}

void
kdf_split_ekm(const uint8_t ekm[MEF_EKM_LEN], uint8_t rel[MEF_RELID_LEN],
	      uint8_t key[MEF_KEY_LEN])
{
	/* decisions §1.1: "most significant" = first octets of the exporter output. */
	memcpy(rel, ekm, MEF_RELID_LEN);
	memcpy(key, ekm + MEF_RELID_LEN, MEF_KEY_LEN);
}

void
kdf_hex_upper(const uint8_t *p, size_t n, char *out)
{
	static const char digits[] = "0123456789ABCDEF";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 0x0f];
	}
	out[2 * n] = '\0';
}

static int
hex_nibble(unsigned char c)
{
	static const char digits[] = "0123456789abcdef";
	const char *d;

	if (c == '\0')
		return -1;
	d = strchr(digits, c >= 'A' && c <= 'F' ? c - 'A' + 'a' : c);
	return d ? (int)(d - digits) : -1;
}

/*
 * Length of a valid DNS name of n bytes at s (letters, digits, '-', '.'; no
 * empty label, labels <= 63, total 1..253), or 0 if it is not one.
 */
static size_t
fqdn_check(const char *s, size_t n)
{
	size_t label = 0;

	if (n == 0 || n > FQDN_MAX)
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '.') {
			if (label == 0)
				return 0;
			label = 0;
			continue;
		}
		if (!(c < 0x80 && (c == '-' || (c >= '0' && c <= '9') ||
				   ((c | 0x20) >= 'a' && (c | 0x20) <= 'z'))))
			return 0;
		if (++label > LABEL_MAX)
			return 0;
	}
	return label ? n : 0;
}

/* Copies an already checked FQDN into dst, lower-cased (DNS names are case-insensitive). */
static void
fqdn_lower(char *dst, const char *src, size_t n)
{
	for (size_t i = 0; i < n; i++)
		dst[i] = (char)(src[i] >= 'A' && src[i] <= 'Z' ? src[i] | 0x20 : src[i]);
	dst[n] = '\0';
}

/* Writes prefix "@" lowercase(fqdn) into out. 0, MEF_EINVAL or MEF_ETOOBIG. */
static int
join_at_fqdn(const char *prefix, size_t plen, const char *fqdn, char *out, size_t outlen)
{
	size_t flen;

	if (!fqdn || !out)
		return MEF_EINVAL;
	flen = fqdn_check(fqdn, strlen(fqdn));
	if (!flen)
		return MEF_EINVAL;
	if (plen + 1 + flen + 1 > outlen)
		return MEF_ETOOBIG;
	memmove(out, prefix, plen);
	out[plen] = '@';
	fqdn_lower(out + plen + 1, fqdn, flen);
	return 0;
}

int
kdf_keid(const uint8_t rel[MEF_RELID_LEN], const char *fqdn, char *out, size_t outlen)
{
	char hex[2 * MEF_RELID_LEN + 1];

	if (!rel)
		return MEF_EINVAL;
	/* decisions §1.2: upper-case hex, the xs:hexBinary canonical form. */
	kdf_hex_upper(rel, MEF_RELID_LEN, hex);
	return join_at_fqdn(hex, 2 * MEF_RELID_LEN, fqdn, out, outlen);
}

int
kdf_keid_canon(const char *keid, char *out, size_t outlen, uint8_t rel[MEF_RELID_LEN])
{
	uint8_t bytes[MEF_RELID_LEN];
	char hex[2 * MEF_RELID_LEN + 1];
	int r;

	if (!keid || strnlen(keid, 2 * MEF_RELID_LEN + 1) < 2 * MEF_RELID_LEN + 1 ||
	    keid[2 * MEF_RELID_LEN] != '@')
		return MEF_EINVAL;
	for (size_t i = 0; i < MEF_RELID_LEN; i++) {
		int hi = hex_nibble((unsigned char)keid[2 * i]);
		int lo = hex_nibble((unsigned char)keid[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return MEF_EINVAL;
		bytes[i] = (uint8_t)(hi << 4 | lo);
	}
	/* Rebuilding from the bytes gives upper-case hex whatever case came in. */
	kdf_hex_upper(bytes, MEF_RELID_LEN, hex);
	r = join_at_fqdn(hex, 2 * MEF_RELID_LEN, keid + 2 * MEF_RELID_LEN + 1, out, outlen);
	if (r == 0 && rel)
		memcpy(rel, bytes, MEF_RELID_LEN);
	return r;
}

/* sec:relKeyID (TS-0003 12.2): A-Z a-z 0-9 . _ - */
static int
relkeyid_valid(const char *s)
{
	static const char extra[] = "._-";

	if (!*s)
		return 0;
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (!(c < 0x80 && (((c | 0x20) >= 'a' && (c | 0x20) <= 'z') ||
				   (c >= '0' && c <= '9') || strchr(extra, c))))
			return 0;
	}
	return 1;
}

int
kdf_key_identifier(const char *rel_key_id, const char *mef_fqdn, char *out, size_t outlen)
{
	if (!rel_key_id || !relkeyid_valid(rel_key_id))
		return MEF_EINVAL;
	/* decisions §1.7: always the MEF FQDN; the relative part keeps its case. */
	return join_at_fqdn(rel_key_id, strlen(rel_key_id), mef_fqdn, out, outlen);
}

int
kdf_nfkc(const char *in, char **ret)
{
	size_t inlen, outlen = 0;
	uint8_t *norm;
	char *s;

	if (!in || !ret)
		return MEF_EINVAL;
	inlen = strlen(in);
	if (u8_check((const uint8_t *)in, inlen) != NULL)
		return MEF_EINVAL;
	norm = u8_normalize(UNINORM_NFKC, (const uint8_t *)in, inlen, NULL, &outlen);
	if (!norm)
		return MEF_ENOMEM;
	/* u8_normalize does not NUL-terminate its result. */
	s = malloc(outlen + 1);
	if (s) {
		memcpy(s, norm, outlen);
		s[outlen] = '\0';
	}
	free(norm);
	if (!s)
		return MEF_ENOMEM;
	*ret = s;
	return 0;
}

/*
 * HMAC-SHA-256(ke, label || prefix || UTF8N(id)): the shape shared by 10.3.2,
 * 10.3.3 and 10.3.7. prefix may be empty. Empty identifiers are refused.
 */
static int
derive_from_ke(const uint8_t ke[MEF_KEY_LEN], const char *label, size_t label_len,
	       const char *prefix, const char *id, uint8_t out[MEF_KEY_LEN])
{
	char *norm = NULL;
	int r;

	if (!ke || !id || !*id || !out)
		return MEF_EINVAL;
	r = kdf_nfkc(id, &norm);
	if (r)
		return r;
	if (!*norm) {
		free(norm);
		return MEF_EINVAL;
	}
	{
		struct msg_part parts[] = {
			{ label, label_len },
			{ prefix, strlen(prefix) },
			{ norm, strlen(norm) },
		};

		r = hmac_sha256(ke, MEF_KEY_LEN, parts, sizeof(parts) / sizeof(parts[0]), out);
	}
	free(norm);
	return r;
}

int
kdf_km(const uint8_t ke[MEF_KEY_LEN], const char *maf_id, uint8_t out[MEF_KEY_LEN])
{
	return derive_from_ke(ke, LABEL_KM, sizeof(LABEL_KM) - 1, "", maf_id, out);
}

int
kdf_kpsa(const uint8_t ke[MEF_KEY_LEN], const char *enrolee_b_id, uint8_t out[MEF_KEY_LEN])
{
	return derive_from_ke(ke, LABEL_KPSA, sizeof(LABEL_KPSA) - 1, "", enrolee_b_id, out);
}

int
kdf_usage_constrained(const uint8_t ke[MEF_KEY_LEN], int suid, const char *target_id,
		      uint8_t out[MEF_KEY_LEN])
{
	char digits[8];

	if (suid < 0 || suid > SUID_MAX)
		return MEF_EINVAL;
	/* decisions §1.5: SUID as decimal ASCII without leading zeros (21 -> "21"). */
	snprintf(digits, sizeof(digits), "%d", suid);
	return derive_from_ke(ke, LABEL_UC, sizeof(LABEL_UC) - 1, digits, target_id, out);
}

int
kdf_group_kpm(const uint8_t *group_secret, size_t secret_len, const char *kpm_id,
	      uint8_t out[MEF_KEY_LEN])
{
	/* The KpmID is a TLS psk_identity: its bytes are used as they arrive, not normalised. */
	if (!group_secret || secret_len == 0 || !kpm_id || !*kpm_id || !out)
		return MEF_EINVAL;
	{
		struct msg_part part = { kpm_id, strlen(kpm_id) };

		return hmac_sha256(group_secret, secret_len, &part, 1, out);
	}
}
