/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Between src/crypto/csr.c (PKCS#10 reading and checks) and ca.c (issuance);
 * nothing outside src/crypto includes it.
 */
#ifndef MEF_CSR_INTERNAL_H
#define MEF_CSR_INTERNAL_H

#include <openssl/x509v3.h>
#include <stddef.h>
#include <stdint.h>

typedef struct ca_csr_st CA_CSR;

/*
 * Parses and checks der against want (NULL: any one SAN). 0 with *ret_csr
 * (may be NULL) and *ret_san (may be NULL), the caller's to free, and the
 * SAN's text in ret_text (CA_NAME_MAX, may be NULL); else MEF_EINVAL,
 * MEF_EUNSUPP, MEF_EAUTH or MEF_EDENIED with a static reason in *why.
 */
int csr_load(const uint8_t *der, size_t len, const char *want, CA_CSR **ret_csr,
	     GENERAL_NAMES **ret_san, char *ret_text, const char **why);
void csr_free(CA_CSR *csr);
/* The challengePassword attribute as text, "" if absent. */
void csr_challenge(const CA_CSR *csr, char *out, size_t outlen);
/* The subject key's BIT STRING: an uncompressed P-256 point, checked by csr_load. */
const ASN1_BIT_STRING *csr_key_bits(const CA_CSR *csr);

#endif
