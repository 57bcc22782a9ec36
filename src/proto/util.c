/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Small helpers shared by the procedures: the SUID table (m2m:suid), error
 * bodies, oneM2M timestamps and base64.
 */
#include <jansson.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mef/err.h"
#include "mef/proc.h"

/* TS-0004 V3.32 6.3.4.2.39, and 31 which TS-0003 8.3.9.9 uses (digest Q-13). */
static const int suid_table[] = {10, 11, 12, 13, 14, 15, 21, 22, 23, 24, 25, 31,
				 32, 33, 34, 35, 40, 41, 42, 43, 44, 45};

bool
suid_known(int suid)
{
	for (size_t i = 0; i < sizeof(suid_table) / sizeof(suid_table[0]); i++)
		if (suid_table[i] == suid)
			return true;
	return false;
}

int
suid_parse(const char *s, int *ret)
{
	int v = 0;

	if (!s || !s[0] || strlen(s) > 3 || s[0] == '0')
		return MEF_EINVAL;
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '9')
			return MEF_EINVAL;
		v = v * 10 + (*p - '0');
	}
	if (!suid_known(v))
		return MEF_EINVAL;
	*ret = v;
	return 0;
}

void
proc_error(struct mef_resp *resp, int rsc, const char *text)
{
	json_t *o = json_pack("{s:s}", "m2m:dbg", text);

	mef_resp_json(resp, rsc, o ? json_dumps(o, JSON_COMPACT) : NULL);
	json_decref(o);
}

void
proc_timestamp(int64_t t, char out[16])
{
	time_t tt = (time_t)t;
	struct tm tm;

	gmtime_r(&tt, &tm);
	strftime(out, 16, "%Y%m%dT%H%M%S", &tm);
}

char *
proc_base64(const uint8_t *p, size_t n)
{
	char *out = malloc(4 * ((n + 2) / 3) + 1);

	if (out)
		EVP_EncodeBlock((unsigned char *)out, p, (int)n);
	return out;
}
