/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * mefd's one error space. Every internal function returns 0 on success or a
 * negative MEF_E* code; library conventions (OpenSSL 1/0, MHD_YES, SQLITE_OK,
 * jansson -1, libcoap 1/0) are folded into these at the single wrapper that
 * calls the library.
 */
#ifndef MEF_ERR_H
#define MEF_ERR_H

enum mef_err {
	MEF_OK = 0,
	MEF_ENOMEM = -1,      /* allocation failed */
	MEF_EINVAL = -2,      /* malformed input */
	MEF_ENOTFOUND = -3,   /* lookup found nothing */
	MEF_EEXIST = -4,      /* uniqueness would be violated */
	MEF_EIO = -5,         /* file or socket error (errno is meaningful) */
	MEF_ECRYPTO = -6,     /* libcrypto / GnuTLS failure */
	MEF_ESTORE = -7,      /* database failure */
	MEF_EAUTH = -8,       /* authentication or integrity check failed */
	MEF_EDENIED = -9,     /* authenticated but not authorised */
	MEF_ETOOBIG = -10,    /* a size limit was exceeded */
	MEF_EEXPIRED = -11,   /* credential or record past its expiry */
	MEF_ECONF = -12,      /* configuration error */
	MEF_EUNSUPP = -13,    /* not supported */
	MEF_EDISABLED = -14,  /* record exists but is disabled or revoked */
	MEF_EBUSY = -15,      /* temporarily unavailable (retry later) */
	MEF_EINTERNAL = -16,  /* broken internal invariant */
};

/* Returns a static, human-readable string for a MEF_E* code. */
const char *mef_strerror(int err);

#endif
