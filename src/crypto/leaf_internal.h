/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The leaf certificate written as DER (leaf_der.c), for ca.c's ca_issue:
 * only the inputs that change per certificate are encoded per certificate,
 * the rest arrives as DER made once at ca_open. Internal to src/crypto.
 */
#ifndef MEF_CRYPTO_LEAF_INTERNAL_H
#define MEF_CRYPTO_LEAF_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A DER element made elsewhere, copied as it is. */
struct der_blob {
	const uint8_t *p;
	size_t len;
};

/*
 * What a TBSCertificate (RFC 5280 4.1) of the TS-0003 10.1.1 leaf profile
 * needs. ext_before_ski are the extensions written before the subject key
 * identifier, ext_after_ski after it, then the subjectAltName.
 */
struct leaf_tbs {
	const uint8_t *serial; /* serial_len bytes, big-endian, first byte 0x01-0x7f */
	size_t serial_len;
	struct der_blob sigalg;          /* AlgorithmIdentifier of the CA's signature */
	struct der_blob issuer;          /* the CA certificate's subject Name */
	int64_t not_before, not_after;   /* unix seconds */
	const char *subject_cn;          /* "" gives the empty subject */
	struct der_blob spki;            /* SubjectPublicKeyInfo */
	const uint8_t *key_bits;         /* the key's BIT STRING contents (for the SKI) */
	size_t key_bits_len;
	const struct der_blob *ext_before_ski;
	size_t n_before;
	const struct der_blob *ext_after_ski;
	size_t n_after;
	struct der_blob san;             /* GeneralNames */
};

/*
 * Writes the TBSCertificate into the end of buf[0, cap): on success it
 * starts at buf + cap - *ret_len. 0, or -1 when cap is too small or a time
 * cannot be written.
 */
int leaf_tbs_der(const struct leaf_tbs *t, uint8_t *buf, size_t cap, size_t *ret_len);

/*
 * The Certificate around it: SEQUENCE { tbs, sigalg, BIT STRING sig } into
 * out[0, cap). 0, or -1 when it does not fit.
 */
int leaf_cert_der(const uint8_t *tbs, size_t tbs_len, struct der_blob sigalg, const uint8_t *sig,
		  size_t sig_len, uint8_t *out, size_t cap, size_t *ret_len);

#endif
