/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Secret buffers: key material lives only in these, is wiped with
 * OPENSSL_cleanse on free, compared in constant time, and never formatted.
 */
#ifndef MEF_SECRET_H
#define MEF_SECRET_H

#include <stddef.h>
#include <stdint.h>

struct mef_secret {
	size_t len;
	uint8_t *p;
};

/* Allocates a zeroed secret of len bytes; NULL on OOM. Caller frees with secret_free. */
struct mef_secret *secret_new(size_t len);
/* Copies len bytes from p into a new secret; NULL on OOM. */
struct mef_secret *secret_dup(const void *p, size_t len);
/* Wipes and frees; accepts NULL; returns NULL so `s = secret_free(s)` is one line. */
struct mef_secret *secret_free(struct mef_secret *s);
/* Constant-time equality of two secrets (lengths must match). */
int secret_equal(const struct mef_secret *a, const struct mef_secret *b);
/* Wipes a plain buffer (stack copies of keys). */
void secret_wipe(void *p, size_t len);

/*
 * Reads a key file into a secret. The file must be a regular file not
 * readable or writable by group or others (MEF_EAUTH otherwise, with *ret_why
 * set to a static reason). Accepts raw bytes of exactly want_len, or hex text
 * (optionally followed by a newline) decoding to want_len bytes; want_len 0
 * means any length (raw). Returns 0 or a MEF_E* code.
 */
int secret_read_file(const char *path, size_t want_len, struct mef_secret **ret,
		     const char **ret_why);

/* Checks that path is not accessible by group/others; 0 if private, MEF_EAUTH if not, MEF_EIO if unreadable. */
int secret_file_is_private(const char *path);

#endif
