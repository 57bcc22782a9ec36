/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Logging: one sink (stderr, with syslog-style "<N>" priority prefixes that
 * journald understands), one level set from [log] level. Every line carries
 * the function name. Never pass a secret to these macros: secrets live in
 * struct mef_secret, which no format directive prints.
 */
#ifndef MEF_LOG_H
#define MEF_LOG_H

#include <stdarg.h>

enum log_level {
	LOG_LVL_ERR = 3,
	LOG_LVL_WARN = 4,
	LOG_LVL_NOTICE = 5,
	LOG_LVL_INFO = 6,
	LOG_LVL_DEBUG = 7,
};

void log_set_level(enum log_level lvl);
enum log_level log_get_level(void);
/* Parses "error", "warning", "notice", "info", "debug"; returns 0 or MEF_EINVAL. */
int log_level_parse(const char *s, enum log_level *ret_lvl);
/* Prefix journald priorities ("<3>") instead of a timestamp when stderr is the journal. */
void log_set_journal(int on);

void log_write(enum log_level lvl, const char *func, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void log_vwrite(enum log_level lvl, const char *func, const char *fmt, va_list ap);

#define log_err(...) log_write(LOG_LVL_ERR, __func__, __VA_ARGS__)
#define log_warn(...) log_write(LOG_LVL_WARN, __func__, __VA_ARGS__)
#define log_notice(...) log_write(LOG_LVL_NOTICE, __func__, __VA_ARGS__)
#define log_info(...) log_write(LOG_LVL_INFO, __func__, __VA_ARGS__)
#define log_debug(...)                                                   \
	do {                                                             \
		if (log_get_level() >= LOG_LVL_DEBUG)                    \
			log_write(LOG_LVL_DEBUG, __func__, __VA_ARGS__); \
	} while (0)

/* Appends the pending OpenSSL error queue (and clears it) to one log line. */
void log_openssl(enum log_level lvl, const char *func, const char *what);

#endif
