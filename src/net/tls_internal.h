/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The two bodies behind include/mef/tlsx.h: tls_openssl_* (src/net/tls_openssl.c,
 * session is an SSL *) and tls_gnutls_* (src/net/tls_gnutls.c, session is a
 * gnutls_session_t). src/net/tlsx.c dispatches on tls_ref.lib; nothing else
 * calls these. Semantics and return values are exactly those of the tlsx_*
 * function of the same suffix.
 */
#ifndef MEF_TLS_INTERNAL_H
#define MEF_TLS_INTERNAL_H

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <stddef.h>
#include <stdint.h>

#include "mef/tlsx.h"

int tls_openssl_export(void *session, const char *label, uint8_t *out, size_t len);
const char *tls_openssl_version(void *session);
const char *tls_openssl_cipher(void *session);
void tls_openssl_sni(void *session, char *out, size_t outlen);
int tls_openssl_peer_sans(void *session, char sans[TLSX_MAX_SANS][256]);
int tls_openssl_peer_serial(void *session, char *hex, size_t n);

int tls_gnutls_export(void *session, const char *label, uint8_t *out, size_t len);
const char *tls_gnutls_version(void *session);
const char *tls_gnutls_cipher(void *session);
void tls_gnutls_sni(void *session, char *out, size_t outlen);
int tls_gnutls_peer_sans(void *session, char sans[TLSX_MAX_SANS][256]);
/*
 * After the chain was verified (tls_gnutls_peer_sans): the SANs, and the
 * serial with the result tls_gnutls_peer_serial would give (*serial_rc),
 * from one parse of the certificate.
 */
int tls_gnutls_verified_peer_id(void *session, char sans[TLSX_MAX_SANS][256],
				char serial[TLSX_SERIAL_MAX], int *serial_rc);
int tls_gnutls_peer_serial(void *session, char *hex, size_t n);
/*
 * httpb's client-certificate check: the peer's chain verified against tlist
 * for purpose_oid, each certificate parsed once. 0 with *status (0 =
 * trusted; gnutls_certificate_verification_status_print explains the rest)
 * and *ret_leaf, the parsed leaf, the caller's to gnutls_x509_crt_deinit;
 * MEF_ENOTFOUND (no certificate), MEF_EUNSUPP (not X.509), MEF_ETOOBIG (a
 * chain longer than 16), MEF_ECRYPTO, MEF_ENOMEM.
 */
int tls_gnutls_verify_chain(void *session, gnutls_x509_trust_list_t tlist, const char *purpose_oid,
			    unsigned int *status, gnutls_x509_crt_t *ret_leaf);
/* The SANs and the serial of crt, as tls_gnutls_verified_peer_id gives them. */
int tls_gnutls_crt_id(gnutls_x509_crt_t crt, char sans[TLSX_MAX_SANS][256],
		      char serial[TLSX_SERIAL_MAX], int *serial_rc);

#endif
