/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * mefctl argument validators: identifiers, hex secrets (PSKs and group
 * secrets, wiped from argv once decoded), TARGETID:SUID pairs and expiries.
 * Each prints why it refused and returns CTL_EXIT_USAGE.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "ctl.h"
#include "mef/err.h"
#include "mef/secret.h"

#define SECRET_HEX_MAX (2 * 64 + 2)

int
ctl_check_name(const char *what, const char *s)
{
	if (!s || !s[0])
		return ctl_usage("%s must not be empty", what);
	if (strlen(s) >= MEF_ID_MAX)
		return ctl_usage("%s is longer than %d bytes", what, MEF_ID_MAX - 1);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p <= ' ' || *p == 0x7f)
			return ctl_usage("%s must not contain spaces or control characters", what);
	return 0;
}

static int
hex_val(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	ch = (char)tolower((unsigned char)ch);
	return ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
}

/* Decodes even-length hex of min..max bytes into a new secret. */
static int
hex_decode(const char *what, const char *hex, size_t min, size_t max, struct mef_secret **ret)
{
	size_t n = strlen(hex);
	struct mef_secret *s;

	if (n % 2)
		return ctl_usage("%s: odd number of hex digits", what);
	if (n / 2 < min || n / 2 > max)
		return ctl_usage("%s: %zu bytes, want %zu..%zu", what, n / 2, min, max);
	for (size_t i = 0; i < n; i++)
		if (hex_val(hex[i]) < 0)
			return ctl_usage("%s: not hex", what);
	if (!(s = secret_new(n / 2)))
		return ctl_fail(MEF_ENOMEM, "%s", what);
	for (size_t i = 0; i < n / 2; i++)
		s->p[i] = (uint8_t)((unsigned)hex_val(hex[2 * i]) << 4 | (unsigned)hex_val(hex[2 * i + 1]));
	*ret = s;
	return 0;
}

/* "-" reads the hex from stdin so that it need not appear in the process list. */
int
ctl_parse_secret(const char *what, char *hex, size_t min, size_t max, struct mef_secret **ret)
{
	char line[SECRET_HEX_MAX + 2];
	int r;

	if (strcmp(hex, "-") != 0) {
		r = hex_decode(what, hex, min, max, ret);
		secret_wipe(hex, strlen(hex));
		return r;
	}
	if (!fgets(line, sizeof(line), stdin))
		return ctl_usage("%s: nothing on standard input", what);
	line[strcspn(line, "\r\n")] = '\0';
	r = hex_decode(what, line, min, max, ret);
	secret_wipe(line, sizeof(line));
	return r;
}

/* SUID: a decimal integer 10..99 (TS-0003 Table 8.2.1-1 values are two digits). */
static int
parse_suid(const char *s, int *ret)
{
	int v = 0;

	if (!s[0] || strlen(s) > 2)
		return MEF_EINVAL;
	for (; *s; s++) {
		if (!isdigit((unsigned char)*s))
			return MEF_EINVAL;
		v = v * 10 + (*s - '0');
	}
	if (v < 10 || v > 99)
		return MEF_EINVAL;
	*ret = v;
	return 0;
}

int
ctl_parse_targets(const struct ctl_args *a, struct mef_target *t, size_t *ret_n)
{
	for (size_t i = 0; i < a->n_targets; i++) {
		const char *arg = a->targets[i], *colon = strrchr(arg, ':');
		size_t idlen = colon ? (size_t)(colon - arg) : 0;

		if (!colon || idlen == 0)
			return ctl_usage("--target '%s': want TARGETID:SUID", arg);
		if (idlen >= MEF_ID_MAX)
			return ctl_usage("--target '%s': target id too long", arg);
		if (parse_suid(colon + 1, &t[i].suid) < 0)
			return ctl_usage("--target '%s': SUID must be an integer 10..99", arg);
		memcpy(t[i].id, arg, idlen);
		t[i].id[idlen] = '\0';
		if (ctl_check_name("target id", t[i].id) != 0)
			return CTL_EXIT_USAGE;
	}
	*ret_n = a->n_targets;
	return 0;
}

int
ctl_parse_expiry(const char *s, int64_t *ret)
{
	int64_t v;

	if (conf_parse_duration(s, &v) < 0 || v <= 0)
		return ctl_usage("--expiry '%s': want a positive duration such as 90s, 15m, 12h, 30d",
				 s);
	*ret = v;
	return 0;
}
