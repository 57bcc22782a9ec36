/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The hash-chained audit trail (format in mef/audit.h). Appending takes an
 * exclusive flock, reads the last line back to chain on it (mefctl and mefd
 * both write, so no in-memory "last hash" can be trusted), writes the new line
 * with one write() on an O_APPEND descriptor and syncs it. Verification
 * recomputes every line's own hash and every prev link.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "mef/audit.h"
#include "mef/err.h"
#include "mef/log.h"
#include "mef/mefd.h"

#define HEX_LEN (2 * SHA256_DIGEST_LENGTH)
#define TAIL_MAX 65536     /* a line is far shorter; more means the file is not ours */
#define VALUE_MAX 512      /* longer values are cut: a line stays small */
#define HASH_KEY ",\"hash\":\""

struct audit {
	char *path;
	int fd;
	ino_t ino;
	int (*defer_sync)(void *ctx, int fd); /* audit_defer_sync, or NULL: fdatasync per line */
	void *defer_ctx;
};

static void
sha256_hex(const void *p, size_t len, char out[HEX_LEN + 1])
{
	unsigned char md[SHA256_DIGEST_LENGTH];

	SHA256(p, len, md);
	for (size_t i = 0; i < sizeof(md); i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static int
audit_reopen(struct audit *a)
{
	struct stat st;
	int fd = open(a->path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);

	if (fd < 0 || fstat(fd, &st) != 0) {
		if (fd >= 0)
			close(fd);
		return MEF_EIO;
	}
	if (a->fd >= 0)
		close(a->fd);
	a->fd = fd;
	a->ino = st.st_ino;
	return 0;
}

int
audit_open(const char *path, struct audit **ret)
{
	struct audit *a = calloc(1, sizeof(*a));

	if (!a || !(a->path = strdup(path))) {
		free(a);
		return MEF_ENOMEM;
	}
	a->fd = -1;
	if (audit_reopen(a) != 0) {
		audit_close(a);
		return MEF_EIO;
	}
	*ret = a;
	return 0;
}

struct audit *
audit_close(struct audit *a)
{
	if (!a)
		return NULL;
	if (a->fd >= 0)
		close(a->fd);
	free(a->path);
	free(a);
	return NULL;
}

/* The file was rotated or removed under us: write to the file now at path. */
static int
audit_follow(struct audit *a)
{
	struct stat st;

	if (stat(a->path, &st) == 0 && st.st_ino == a->ino)
		return 0;
	return audit_reopen(a);
}

/* SHA-256 (hex) of the last line of the file, or 64 zeros when it is empty. */
static int
last_line_hash(int fd, char out[HEX_LEN + 1])
{
	static char buf[TAIL_MAX];
	struct stat st;
	off_t start;
	ssize_t n;
	char *end, *line;

	if (fstat(fd, &st) != 0)
		return MEF_EIO;
	if (st.st_size == 0) {
		memset(out, '0', HEX_LEN);
		out[HEX_LEN] = '\0';
		return 0;
	}
	start = st.st_size > TAIL_MAX ? st.st_size - TAIL_MAX : 0;
	n = pread(fd, buf, (size_t)(st.st_size - start), start);
	if (n <= 0 || buf[n - 1] != '\n')
		return MEF_EIO; /* a torn last line: refuse to chain on it */
	end = buf + n - 1;
	*end = '\0';
	line = strrchr(buf, '\n');
	line = line ? line + 1 : buf;
	if (line == buf && start > 0)
		return MEF_EIO;
	sha256_hex(line, (size_t)(end - line), out);
	return 0;
}

/* A JSON string of v cut to VALUE_MAX, bytes outside printable ASCII as '?' (peer text). */
static json_t *
printable(const char *v)
{
	char buf[VALUE_MAX + 1];
	size_t n = 0;

	for (; n < VALUE_MAX && v[n]; n++)
		buf[n] = (unsigned char)v[n] < 0x20 || (unsigned char)v[n] > 0x7e ? '?' : v[n];
	buf[n] = '\0';
	return json_string(buf);
}

/* Builds {"ts":..,"event":..,fields..} (compact, in order) without its closing brace. */
static char *
event_head(const char *event, const char *const *kv)
{
	json_t *o = json_object();
	char ts[32], *s = NULL;
	time_t now = time(NULL);
	struct tm tm;
	if (!o)
		return NULL;
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&now, &tm));
	json_object_set_new(o, "ts", json_string(ts));
	json_object_set_new(o, "event", json_string(event));
	for (; kv[0]; kv += 2)
		if (kv[1])
			json_object_set_new(o, kv[0], printable(kv[1]));
	s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
	json_decref(o);
	if (s)
		s[strlen(s) - 1] = '\0'; /* drop "}" */
	return s;
}

static int
write_all(const struct audit *a, const char *p, size_t len)
{
	int fd = a->fd;

	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return MEF_EIO;
		p += n;
		len -= (size_t)n;
	}
	if (a->defer_sync && a->defer_sync(a->defer_ctx, fd) == 0)
		return 0;
	return fdatasync(fd) == 0 ? 0 : MEF_EIO;
}

/* Under the lock: chain on the last line and append one line in a single write. */
static int
append_locked(struct audit *a, const char *head)
{
	char prev[HEX_LEN + 1], hash[HEX_LEN + 1], *body = NULL, *line = NULL;
	int r = last_line_hash(a->fd, prev);

	if (r == 0 && asprintf(&body, "%s,\"prev\":\"%s\"", head, prev) < 0)
		body = NULL, r = MEF_ENOMEM;
	if (r == 0) {
		sha256_hex(body, strlen(body), hash);
		if (asprintf(&line, "%s" HASH_KEY "%s\"}\n", body, hash) < 0)
			line = NULL, r = MEF_ENOMEM;
	}
	if (r == 0)
		r = write_all(a, line, strlen(line));
	free(body);
	free(line);
	return r;
}

void
audit_defer_sync(struct audit *a, int (*defer)(void *ctx, int fd), void *ctx)
{
	if (a) {
		a->defer_sync = defer;
		a->defer_ctx = ctx;
	}
}

int
audit_append_kv(struct audit *a, const char *event, const char *const *kv)
{
	char *head;
	int r;

	if (!a)
		return 0;
	if ((r = audit_follow(a)) != 0)
		return r;
	if (!(head = event_head(event, kv)))
		return MEF_ENOMEM;
	if (flock(a->fd, LOCK_EX) != 0) {
		free(head);
		return MEF_EIO;
	}
	r = append_locked(a, head);
	(void)flock(a->fd, LOCK_UN);
	free(head);
	return r;
}

int
audit_vappend(struct audit *a, const char *event, va_list ap)
{
	const char *kv[2 * AUDIT_MAX_FIELDS + 1];
	size_t n = 0;

	while (n < 2 * AUDIT_MAX_FIELDS && (kv[n] = va_arg(ap, const char *)) != NULL) {
		kv[n + 1] = va_arg(ap, const char *);
		n += 2;
	}
	kv[n] = NULL;
	return audit_append_kv(a, event, kv);
}

int
audit_append(struct audit *a, const char *event, ...)
{
	va_list ap;
	int r;

	va_start(ap, event);
	r = audit_vappend(a, event, ap);
	va_end(ap);
	return r;
}

void
mef_audit(struct mefd *d, const char *event, ...)
{
	va_list ap;
	int r;

	if (!d || !d->audit)
		return;
	va_start(ap, event);
	r = audit_vappend(d->audit, event, ap);
	va_end(ap);
	if (r != 0)
		log_warn("audit trail %s: cannot append \"%s\": %s", d->conf->audit_path, event,
			 mef_strerror(r));
}

/* ---- verification ---- */

/* One line (no newline): its own hash, JSON well-formedness and the prev link. */
static const char *
verify_line(const char *line, size_t len, const char *want_prev)
{
	static const char prev_key[] = ",\"prev\":\"";
	size_t kl = strlen(HASH_KEY), pl = strlen(prev_key);
	char hash[HEX_LEN + 1];
	json_t *o;
	bool json_ok;

	if (len < kl + HEX_LEN + 2 || strcmp(line + len - 2, "\"}") != 0 ||
	    strncmp(line + len - 2 - HEX_LEN - kl, HASH_KEY, kl) != 0)
		return "no hash at the end of the line";
	sha256_hex(line, len - 2 - HEX_LEN - kl, hash);
	if (strncmp(hash, line + len - 2 - HEX_LEN, HEX_LEN) != 0)
		return "line content does not match its hash (edited)";
	o = json_loadb(line, len, 0, NULL);
	json_ok = o && json_is_object(o);
	json_decref(o);
	if (!json_ok)
		return "not a JSON object";
	if (len < kl + HEX_LEN + 2 + pl + HEX_LEN + 1 ||
	    strncmp(line + len - 2 - HEX_LEN - kl - 1 - HEX_LEN - pl, prev_key, pl) != 0)
		return "no prev field before the hash";
	if (strncmp(line + len - 2 - HEX_LEN - kl - 1 - HEX_LEN, want_prev, HEX_LEN) != 0)
		return "prev does not match the line before (a line was removed, inserted or replaced)";
	return NULL;
}

int
audit_verify(const char *path, unsigned long *ret_lines, unsigned long *ret_bad,
	     const char **ret_why)
{
	FILE *f = fopen(path, "re");
	char prev[HEX_LEN + 1], *buf = NULL;
	size_t cap = 0;
	ssize_t n;
	unsigned long no = 0;
	const char *why = NULL;

	if (!f)
		return MEF_EIO;
	memset(prev, '0', HEX_LEN);
	prev[HEX_LEN] = '\0';
	while (!why && (n = getline(&buf, &cap, f)) >= 0) {
		no++;
		if (n == 0 || buf[n - 1] != '\n') {
			why = "torn last line (no newline)";
			break;
		}
		buf[--n] = '\0';
		if ((why = verify_line(buf, (size_t)n, prev)) == NULL)
			sha256_hex(buf, (size_t)n, prev);
	}
	free(buf);
	fclose(f);
	if (why) {
		*ret_bad = no;
		*ret_why = why;
		return MEF_EAUTH;
	}
	*ret_lines = no;
	return 0;
}
