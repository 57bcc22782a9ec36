/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The audit trail ([audit] path): an append-only file of JSON lines, one per
 * security event (bootstrap, refused handshake, key registered / retrieved /
 * refused, fetch, certificate issued / revoked, every change made with
 * mefctl). mefd and mefctl both append, with O_APPEND under flock(). Each
 * line is
 *   {"ts":"...","event":"...",<fields>,"prev":"<sha256 of the previous line>","hash":"<H>"}
 * where H is the SHA-256 of the line's text up to (not including) ',"hash"';
 * the first line's prev is 64 zeros. No secret is ever passed here.
 */
#ifndef MEF_AUDIT_H
#define MEF_AUDIT_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

struct mefd;
struct audit;

/* Opens (creating, mode 0600) path for appending. 0, MEF_ENOMEM or MEF_EIO. */
int audit_open(const char *path, struct audit **ret);
/* Closes; accepts NULL; returns NULL. */
struct audit *audit_close(struct audit *a);

/*
 * Each line is written at once, in order, and normally fdatasync'ed before
 * audit_append returns. With defer set, the sync is handed to defer(ctx,
 * fd) instead (mefd: the group commit, kebatch_sync_with_next), and done
 * here only if defer fails: a line is then on disk with the next commit,
 * before any answer held for the rows queued next to it (docs/operations.md).
 */
void audit_defer_sync(struct audit *a, int (*defer)(void *ctx, int fd), void *ctx);

/*
 * Appends one event with its fields given as NULL-terminated pairs of
 * strings: "key", "value", ..., NULL (a NULL value is left out). Values are
 * identifiers, addresses and reasons, never secrets. 0, MEF_ENOMEM or MEF_EIO.
 */
int audit_append(struct audit *a, const char *event, ...) __attribute__((sentinel));
/* The same from a va_list. */
int audit_vappend(struct audit *a, const char *event, va_list ap);
#define AUDIT_MAX_FIELDS 24
/* The same from an array: kv[0] key, kv[1] value (NULL: left out), ..., NULL key. */
int audit_append_kv(struct audit *a, const char *event, const char *const *kv);

/*
 * mefd's shorthand: appends to d->audit if the trail is configured, logs a
 * failure at warning (an event must not be lost silently) and never fails
 * the caller.
 */
void mef_audit(struct mefd *d, const char *event, ...) __attribute__((sentinel));

/*
 * Checks the chain of path. 0 with *ret_lines when every line is intact;
 * MEF_EAUTH with *ret_bad (1-based line number) and *ret_why naming the first
 * broken line; MEF_EIO if the file cannot be read.
 */
int audit_verify(const char *path, unsigned long *ret_lines, unsigned long *ret_bad,
		 const char **ret_why);

#endif
