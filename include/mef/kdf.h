/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Key export split and key derivations of TS-0003 10.3, as pure functions on
 * buffers: no I/O, no clock, no allocation visible to the caller except where
 * stated. Identifiers entering an HMAC are NFKC-normalised and UTF-8 encoded
 * (libunistring u8_normalize). Each function names the decision it follows.
 */
#ifndef MEF_KDF_H
#define MEF_KDF_H

#include <stddef.h>
#include <stdint.h>

#define MEF_EKM_LEN 48
#define MEF_KEY_LEN 32
#define MEF_RELID_LEN 16
#define MEF_KEYID_MAX 320 /* 32 hex + '@' + FQDN (<=255) + NUL, rounded */

#define MEF_EXPORTER_BOOTSTRAP "EXPORTER-oneM2M-Bootstrap"
#define MEF_EXPORTER_CONNECTION "EXPORTER-oneM2M-Connection"

/* decisions §1.1: rel = EKM[0..15], key = EKM[16..47]. */
void kdf_split_ekm(const uint8_t ekm[MEF_EKM_LEN], uint8_t rel[MEF_RELID_LEN],
		   uint8_t key[MEF_KEY_LEN]);

/*
 * decisions §1.2: KeID = UPPERCASE-hex(rel) "@" lowercase(fqdn).
 * Writes a NUL-terminated string into out (outlen >= MEF_KEYID_MAX is always enough).
 * Returns 0, MEF_EINVAL (bad fqdn) or MEF_ETOOBIG.
 */
int kdf_keid(const uint8_t rel[MEF_RELID_LEN], const char *fqdn, char *out, size_t outlen);

/*
 * Parses and canonicalises an incoming KeID (case-insensitive, decisions §1.2):
 * 32 hex digits, '@', a DNS name. Writes the canonical form (upper hex, lower
 * FQDN) to out and the 16 bytes to rel (rel may be NULL). 0 or MEF_EINVAL
 * (MEF_ETOOBIG if outlen is too small).
 */
int kdf_keid_canon(const char *keid, char *out, size_t outlen, uint8_t rel[MEF_RELID_LEN]);

/* 10.3.2: Km = HMAC-SHA-256(Ke, "oneM2M Enrolment Key to Master Credential derivation" || UTF8N(maf_id)). */
int kdf_km(const uint8_t ke[MEF_KEY_LEN], const char *maf_id, uint8_t out[MEF_KEY_LEN]);

/* 10.3.3: Kpsa = HMAC-SHA-256(Ke, "oneM2M Enrolment Key to Provisioned Secure Connection Key derivation" || UTF8N(enrolee_b_id)). */
int kdf_kpsa(const uint8_t ke[MEF_KEY_LEN], const char *enrolee_b_id, uint8_t out[MEF_KEY_LEN]);

/*
 * 10.3.7 with decisions §1.5: K = HMAC-SHA-256(Ke, "oneM2M Enrolment Key to
 * Usage-Constrained Symmetric Key derivation" || decimal-ASCII(suid) || UTF8N(target_id)).
 */
int kdf_usage_constrained(const uint8_t ke[MEF_KEY_LEN], int suid, const char *target_id,
			  uint8_t out[MEF_KEY_LEN]);

/* 10.3.5 with decisions §1.7: Key Identifier = rel_key_id "@" lowercase(mef_fqdn). 0, MEF_EINVAL or MEF_ETOOBIG. */
int kdf_key_identifier(const char *rel_key_id, const char *mef_fqdn, char *out, size_t outlen);

/* Enrolment groups: Kpm = HMAC-SHA-256(group_secret, kpm_id bytes as given). */
int kdf_group_kpm(const uint8_t *group_secret, size_t secret_len, const char *kpm_id,
		  uint8_t out[MEF_KEY_LEN]);

/*
 * NFKC-normalises a UTF-8 string. *ret is malloc()ed, caller frees.
 * 0, MEF_EINVAL (not valid UTF-8) or MEF_ENOMEM.
 */
int kdf_nfkc(const char *in, char **ret);

/* Upper-case hex of n bytes into out (2n+1 bytes). */
void kdf_hex_upper(const uint8_t *p, size_t n, char *out);

#endif
