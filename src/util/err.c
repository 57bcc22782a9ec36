/* SPDX-License-Identifier: BSD-2-Clause */
/* mef_strerror: text for the MEF_E* error space. */
#include "mef/err.h"

static const char *const err_text[] = {
	[0] = "success",
	[1] = "out of memory",
	[2] = "invalid input",
	[3] = "not found",
	[4] = "already exists",
	[5] = "I/O error",
	[6] = "cryptographic failure",
	[7] = "store failure",
	[8] = "authentication failed",
	[9] = "not authorised",
	[10] = "too big",
	[11] = "expired",
	[12] = "configuration error",
	[13] = "not supported",
	[14] = "disabled or revoked",
	[15] = "busy",
	[16] = "internal error",
};

const char *
mef_strerror(int err)
{
	unsigned i = (unsigned)(err < 0 ? -err : err);

	if (i >= sizeof(err_text) / sizeof(err_text[0]) || !err_text[i])
		return "unknown error";
	return err_text[i];
}
