/* SPDX-License-Identifier: BSD-2-Clause */
/* Secret buffers that wipe themselves, and private key-file reading. */
#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mef/err.h"
#include "mef/secret.h"

struct mef_secret *
secret_new(size_t len)
{
	struct mef_secret *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->p = calloc(1, len ? len : 1);
	if (!s->p) {
		free(s);
		return NULL;
	}
	s->len = len;
	return s;
}

struct mef_secret *
secret_dup(const void *p, size_t len)
{
	struct mef_secret *s = secret_new(len);

	if (s && len)
		memcpy(s->p, p, len);
	return s;
}

struct mef_secret *
secret_free(struct mef_secret *s)
{
	if (!s)
		return NULL;
	if (s->p) {
		OPENSSL_cleanse(s->p, s->len);
		free(s->p);
	}
	OPENSSL_cleanse(s, sizeof(*s));
	free(s);
	return NULL;
}

int
secret_equal(const struct mef_secret *a, const struct mef_secret *b)
{
	if (!a || !b || a->len != b->len)
		return 0;
	return CRYPTO_memcmp(a->p, b->p, a->len) == 0;
}

void
secret_wipe(void *p, size_t len)
{
	if (p && len)
		OPENSSL_cleanse(p, len);
}

int
secret_file_is_private(const char *path)
{
	struct stat st;

	if (stat(path, &st) != 0)
		return MEF_EIO;
	if (st.st_mode & (S_IRWXG | S_IRWXO))
		return MEF_EAUTH;
	return 0;
}

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decodes hex text (trailing whitespace allowed) into out; returns bytes or -1. */
static ssize_t
decode_hex_text(const uint8_t *in, size_t n, uint8_t *out, size_t outmax)
{
	size_t o = 0;

	while (n > 0 && (in[n - 1] == '\n' || in[n - 1] == '\r' || in[n - 1] == ' '))
		n--;
	if (n == 0 || n % 2)
		return -1;
	for (size_t i = 0; i < n; i += 2) {
		int hi = hexval(in[i]), lo = hexval(in[i + 1]);

		if (hi < 0 || lo < 0 || o >= outmax)
			return -1;
		out[o++] = (uint8_t)(hi << 4 | lo);
	}
	return (ssize_t)o;
}

int
secret_read_file(const char *path, size_t want_len, struct mef_secret **ret, const char **ret_why)
{
	uint8_t buf[4096];
	struct stat st;
	ssize_t n;
	int fd, r = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		*ret_why = "cannot be opened";
		return MEF_EIO;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		*ret_why = "is not a regular file";
		close(fd);
		return MEF_EIO;
	}
	if (st.st_mode & (S_IRWXG | S_IRWXO)) {
		*ret_why = "is accessible by group or others (chmod 600)";
		close(fd);
		return MEF_EAUTH;
	}
	n = read(fd, buf, sizeof(buf));
	close(fd);
	if (n < 0 || n == (ssize_t)sizeof(buf)) {
		*ret_why = n < 0 ? "cannot be read" : "is too large";
		secret_wipe(buf, sizeof(buf));
		return MEF_EIO;
	}
	if (want_len == 0 || (size_t)n == want_len) {
		*ret = secret_dup(buf, (size_t)n);
	} else {
		uint8_t dec[2048];
		ssize_t d = decode_hex_text(buf, (size_t)n, dec, sizeof(dec));

		if (d != (ssize_t)want_len) {
			*ret_why = "has the wrong length (want raw bytes or hex)";
			r = MEF_EINVAL;
		} else {
			*ret = secret_dup(dec, (size_t)d);
		}
		secret_wipe(dec, sizeof(dec));
	}
	secret_wipe(buf, sizeof(buf));
	if (r == 0 && !*ret)
		r = MEF_ENOMEM;
	return r;
}
