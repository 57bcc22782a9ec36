/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Secrets at rest: AES-256-GCM under the KEK. A wrapped blob is
 * version(1) || nonce(12) || ciphertext || tag(16). The associated data names
 * the row the secret belongs to ("client:<id>:psk", "ke:<KeID>"), so a blob
 * copied into another row fails to unwrap. Pure: no I/O.
 */
#ifndef MEF_WRAP_H
#define MEF_WRAP_H

#include <stddef.h>
#include <stdint.h>

#include "mef/secret.h"

#define WRAP_KEK_LEN 32
#define WRAP_OVERHEAD (1 + 12 + 16)

/*
 * Seals pt under kek with aad. *ret_blob is malloc()ed (caller frees),
 * *ret_len = pt_len + WRAP_OVERHEAD. 0, MEF_EINVAL, MEF_ENOMEM or MEF_ECRYPTO.
 */
int wrap_seal(const struct mef_secret *kek, const char *aad, const uint8_t *pt, size_t pt_len,
	      uint8_t **ret_blob, size_t *ret_len);

/*
 * Opens a blob; *ret is a new secret. MEF_EAUTH if the tag, KEK or aad do not
 * match; MEF_EINVAL for a blob shorter than WRAP_OVERHEAD, an unknown version
 * byte, a KEK that is not 32 bytes, or a NULL/empty aad.
 */
int wrap_open(const struct mef_secret *kek, const char *aad, const uint8_t *blob, size_t blob_len,
	      struct mef_secret **ret);

/*
 * For tests (known-answer checks): wrap_seal with a caller-chosen 12-byte
 * nonce. Production code must use wrap_seal; a repeated nonce breaks GCM.
 */
int wrap_seal_with_nonce(const struct mef_secret *kek, const char *aad, const uint8_t nonce[12],
			 const uint8_t *pt, size_t pt_len, uint8_t **ret_blob, size_t *ret_len);

#endif
