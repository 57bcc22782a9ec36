/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The log sink: stderr, one line per event. Under journald (JOURNAL_STREAM
 * set) lines carry "<N>" priority prefixes instead of a timestamp. The level
 * and the journal flag are the one accepted piece of process-global state.
 */
#include <openssl/err.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "mef/err.h"
#include "mef/log.h"

static enum log_level log_level = LOG_LVL_INFO;
static int log_journal;

static const struct {
	const char *name;
	enum log_level lvl;
} log_names[] = {
	{"error", LOG_LVL_ERR},   {"warning", LOG_LVL_WARN}, {"notice", LOG_LVL_NOTICE},
	{"info", LOG_LVL_INFO},   {"debug", LOG_LVL_DEBUG},
};

void
log_set_level(enum log_level lvl)
{
	log_level = lvl;
}

enum log_level
log_get_level(void)
{
	return log_level;
}

void
log_set_journal(int on)
{
	log_journal = on;
}

int
log_level_parse(const char *s, enum log_level *ret_lvl)
{
	for (size_t i = 0; i < sizeof(log_names) / sizeof(log_names[0]); i++) {
		if (strcmp(s, log_names[i].name) == 0) {
			*ret_lvl = log_names[i].lvl;
			return 0;
		}
	}
	return MEF_EINVAL;
}

static const char *
level_tag(enum log_level lvl)
{
	for (size_t i = 0; i < sizeof(log_names) / sizeof(log_names[0]); i++)
		if (log_names[i].lvl == lvl)
			return log_names[i].name;
	return "?";
}

/* the attribute lets clang's -Wformat-nonliteral see fmt is checked at the callers */
void __attribute__((format(printf, 3, 0)))
log_vwrite(enum log_level lvl, const char *func, const char *fmt, va_list ap)
{
	char msg[2048];

	if (lvl > log_level)
		return;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	/* one write per line keeps lines whole when stderr is shared */
	if (log_journal) {
		fprintf(stderr, "<%d>%s: %s\n", (int)lvl, func, msg);
	} else {
		struct timespec ts;
		struct tm tm;
		char when[32];

		clock_gettime(CLOCK_REALTIME, &ts);
		gmtime_r(&ts.tv_sec, &tm);
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
		fprintf(stderr, "%s.%03ldZ %s %s: %s\n", when, ts.tv_nsec / 1000000,
			level_tag(lvl), func, msg);
	}
	fflush(stderr);
}

void
log_write(enum log_level lvl, const char *func, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vwrite(lvl, func, fmt, ap);
	va_end(ap);
}

void
log_openssl(enum log_level lvl, const char *func, const char *what)
{
	char buf[256] = "";
	unsigned long e;
	size_t used = 0;

	while ((e = ERR_get_error()) != 0) {
		char one[160];

		ERR_error_string_n(e, one, sizeof(one));
		if (used + strlen(one) + 3 < sizeof(buf)) {
			used += (size_t)snprintf(buf + used, sizeof(buf) - used, "%s%s",
						 used ? "; " : "", one);
		}
	}
	log_write(lvl, func, "%s%s%s", what, buf[0] ? ": " : "", buf);
}
