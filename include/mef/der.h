/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * DER element headers (X.690 8.1.2-8.1.3: one tag byte, definite length),
 * for the code that writes DER around bytes it already has: the CA's leaf
 * certificate (src/crypto/leaf_der.c) and EST's PKCS#7 (src/est/est_wire.c).
 */
#ifndef MEF_DER_H
#define MEF_DER_H

#include <stddef.h>
#include <stdint.h>

/* The header size for n content bytes: 2 below 128, up to 6 (n < 2^32). */
size_t der_hdr_len(size_t n);
/* Writes tag and the length of n content bytes at out (der_hdr_len(n) bytes); returns that size. */
size_t der_hdr(uint8_t *out, uint8_t tag, size_t n);

#endif
