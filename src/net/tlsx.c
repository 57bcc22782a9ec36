/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * tlsx_*: the one TLS helper interface, dispatching on tls_ref.lib to the
 * OpenSSL body (libcoap sessions) or the GnuTLS body (libmicrohttpd
 * connections). Kept free of library headers so either body can change alone.
 */
#include <stddef.h>
#include <stdio.h>

#include "mef/err.h"
#include "mef/tlsx.h"
#include "tls_internal.h"

struct tlsx_ops {
	int (*export)(void *s, const char *label, uint8_t *out, size_t len);
	const char *(*version)(void *s);
	const char *(*cipher)(void *s);
	void (*sni)(void *s, char *out, size_t outlen);
	int (*peer_sans)(void *s, char sans[TLSX_MAX_SANS][256]);
	int (*peer_serial)(void *s, char *hex, size_t n);
};

static const struct tlsx_ops tlsx_openssl = {
	tls_openssl_export, tls_openssl_version, tls_openssl_cipher,
	tls_openssl_sni,    tls_openssl_peer_sans, tls_openssl_peer_serial,
};

static const struct tlsx_ops tlsx_gnutls = {
	tls_gnutls_export, tls_gnutls_version, tls_gnutls_cipher,
	tls_gnutls_sni,    tls_gnutls_peer_sans, tls_gnutls_peer_serial,
};

/* NULL for an unset or unknown ref: every caller then fails closed. */
static const struct tlsx_ops *
tlsx_ops_of(const struct tls_ref *t)
{
	if (!t || !t->session)
		return NULL;
	switch (t->lib) {
	case TLS_LIB_OPENSSL:
		return &tlsx_openssl;
	case TLS_LIB_GNUTLS:
		return &tlsx_gnutls;
	}
	return NULL;
}

int
tlsx_export(const struct tls_ref *t, const char *label, uint8_t *out, size_t len)
{
	const struct tlsx_ops *ops = tlsx_ops_of(t);

	return ops ? ops->export(t->session, label, out, len) : MEF_ECRYPTO;
}

const char *
tlsx_version(const struct tls_ref *t)
{
	const struct tlsx_ops *ops = tlsx_ops_of(t);

	return ops ? ops->version(t->session) : "none";
}

const char *
tlsx_cipher(const struct tls_ref *t)
{
	const struct tlsx_ops *ops = tlsx_ops_of(t);

	return ops ? ops->cipher(t->session) : "none";
}

void
tlsx_sni(const struct tls_ref *t, char *out, size_t outlen)
{
	const struct tlsx_ops *ops = tlsx_ops_of(t);

	if (outlen)
		out[0] = '\0';
	if (ops)
		ops->sni(t->session, out, outlen);
}

int
tlsx_peer_sans(const struct tls_ref *t, char sans[TLSX_MAX_SANS][256])
{
	const struct tlsx_ops *ops = tlsx_ops_of(t);

	return ops ? ops->peer_sans(t->session, sans) : MEF_EINVAL;
}

int
tlsx_peer_serial(const struct tls_ref *t, char *hex, size_t n)
{
	const struct tlsx_ops *ops = tlsx_ops_of(t);

	if (!ops)
		return MEF_EINVAL;
	if (!t->peer_serial_kept)
		return ops->peer_serial(t->session, hex, n);
	if (t->peer_serial_rc != 0)
		return t->peer_serial_rc;
	return snprintf(hex, n, "%s", t->peer_serial) < (int)n ? 0 : MEF_ETOOBIG;
}
