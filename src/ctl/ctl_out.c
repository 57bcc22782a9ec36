/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * mefctl output helpers shared by the verbs: oneM2M timestamps, JSON printing
 * (jansson) and hex for the one place a secret may be shown (ke list
 * --show-secrets).
 */
#include <stdio.h>
#include <time.h>

#include "ctl.h"
#include "mef/err.h"

void
ctl_time(int64_t t, char out[16])
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (!gmtime_r(&tt, &tm) || strftime(out, 16, "%Y%m%dT%H%M%S", &tm) == 0)
		snprintf(out, 16, "-");
}

int
ctl_json_print(json_t *root)
{
	int r;

	if (!root)
		return ctl_fail(MEF_ENOMEM, "json");
	r = json_dumpf(root, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(root);
	if (r < 0 || fputc('\n', stdout) == EOF || fflush(stdout) != 0)
		return ctl_fail(MEF_EIO, "stdout");
	return CTL_EXIT_OK;
}

json_t *
ctl_json_targets(const struct mef_target *t, size_t n)
{
	json_t *arr = json_array();

	for (size_t i = 0; arr && i < n; i++)
		json_array_append_new(arr, json_pack("{s:s, s:i}", "targetID", t[i].id, "SUID",
						     t[i].suid));
	return arr;
}

void
ctl_hex_lower(const uint8_t *p, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < len; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 0xf];
	}
	out[2 * len] = '\0';
}
