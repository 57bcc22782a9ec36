/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The two TLS stacks behind one interface: libcoap runs on OpenSSL,
 * libmicrohttpd on GnuTLS. The RFC 5705 exporter is one function with two
 * bodies (src/net/tls_openssl.c, src/net/tls_gnutls.c), always called with NO
 * context (decisions §1.1; "no context" and "empty context" differ in TLS 1.2).
 */
#ifndef MEF_TLSX_H
#define MEF_TLSX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum tls_lib {
	TLS_LIB_OPENSSL = 1, /* session is an SSL * */
	TLS_LIB_GNUTLS = 2,  /* session is a gnutls_session_t */
};

#define TLSX_MAX_SANS 8
#define TLSX_SERIAL_MAX 41 /* a serial in ca_serial_canon form, NUL included */

struct tls_ref {
	enum tls_lib lib;
	void *session;
	/*
	 * The peer certificate's serial, kept by a binding that read it with the
	 * SANs of the verified chain (httpb): tlsx_peer_serial() then answers
	 * peer_serial / peer_serial_rc without parsing the certificate again.
	 */
	bool peer_serial_kept;
	int peer_serial_rc; /* what tlsx_peer_serial() returns: 0 or MEF_E* */
	char peer_serial[TLSX_SERIAL_MAX];
};

/* Exports len bytes with label and no context. 0 or MEF_ECRYPTO. */
int tlsx_export(const struct tls_ref *t, const char *label, uint8_t *out, size_t len);

/* Negotiated protocol name ("DTLSv1.2", "TLSv1.3") and cipher suite name, for logs. */
const char *tlsx_version(const struct tls_ref *t);
const char *tlsx_cipher(const struct tls_ref *t);

/* SNI host_name sent by the client into out ("" if none). */
void tlsx_sni(const struct tls_ref *t, char *out, size_t outlen);

/*
 * subjectAltName values of the verified peer certificate, as text: URI and
 * DNS names verbatim, otherName as "OID:value" when its value is a string.
 * Writes up to TLSX_MAX_SANS NUL-terminated strings of at most 256 bytes.
 * Returns the count (>= 0) or a MEF_E* code.
 */
int tlsx_peer_sans(const struct tls_ref *t, char sans[TLSX_MAX_SANS][256]);

/*
 * Serial number of the peer certificate as uppercase hex, leading zero bytes
 * dropped (ca_serial_canon form), into hex (n bytes). The revocation check of
 * mef_session_established. 0, MEF_ENOTFOUND (no certificate), MEF_E*.
 * With t->peer_serial_kept, the kept serial and result, without a new parse.
 */
int tlsx_peer_serial(const struct tls_ref *t, char *hex, size_t n);

#endif
