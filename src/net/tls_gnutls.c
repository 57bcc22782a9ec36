/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The GnuTLS body of the tlsx_* interface (include/mef/tlsx.h): the RFC 5705
 * exporter, version/cipher names, SNI and the peer certificate's
 * subjectAltName values, for sessions libmicrohttpd runs on GnuTLS.
 * Only src/net/tlsx.c calls these (through src/net/tls_internal.h).
 */
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <gnutls/x509-ext.h>
#include <stdio.h>
#include <string.h>

#include "mef/ca.h"
#include "mef/err.h"
#include "mef/log.h"
#include "tls_internal.h"

int
tls_gnutls_export(void *session, const char *label, uint8_t *out, size_t len)
{
	int rc;

	/* NULL context: "no context" (decisions §1.1), not an empty one */
	rc = gnutls_prf_rfc5705((gnutls_session_t)session, strlen(label), label, 0, NULL, len,
				(char *)out);
	if (rc < 0) {
		log_debug("gnutls_prf_rfc5705: %s", gnutls_strerror(rc));
		return MEF_ECRYPTO;
	}
	return 0;
}

/* Same spelling as OpenSSL's SSL_get_version(), so logs read alike on both stacks. */
static const struct {
	gnutls_protocol_t v;
	const char *name;
} tls_gnutls_versions[] = {
	{GNUTLS_TLS1_2, "TLSv1.2"},
	{GNUTLS_TLS1_3, "TLSv1.3"},
	{GNUTLS_DTLS1_2, "DTLSv1.2"},
	{GNUTLS_DTLS1_0, "DTLSv1"},
	{GNUTLS_TLS1_1, "TLSv1.1"},
	{GNUTLS_TLS1_0, "TLSv1"},
};

const char *
tls_gnutls_version(void *session)
{
	gnutls_protocol_t v = gnutls_protocol_get_version((gnutls_session_t)session);

	for (size_t i = 0; i < sizeof(tls_gnutls_versions) / sizeof(tls_gnutls_versions[0]); i++)
		if (tls_gnutls_versions[i].v == v)
			return tls_gnutls_versions[i].name;
	return "unknown";
}

/*
 * gnutls_ciphersuite_get() says NULL while the handshake runs (our hook sits
 * at its very end), so look the negotiated algorithms up in GnuTLS's suite
 * table; TLS 1.3 suites carry no key exchange there.
 */
const char *
tls_gnutls_cipher(void *session)
{
	gnutls_session_t s = (gnutls_session_t)session;
	gnutls_kx_algorithm_t kx, want_kx = gnutls_kx_get(s);
	gnutls_cipher_algorithm_t c;
	gnutls_mac_algorithm_t m;
	gnutls_protocol_t v;
	unsigned char id[2];
	const char *name = gnutls_ciphersuite_get(s);

	if (name != NULL)
		return name;
	if (gnutls_protocol_get_version(s) == GNUTLS_TLS1_3)
		want_kx = GNUTLS_KX_UNKNOWN;
	for (size_t i = 0; (name = gnutls_cipher_suite_info(i, id, &kx, &c, &m, &v)) != NULL; i++)
		if (kx == want_kx && c == gnutls_cipher_get(s) && m == gnutls_mac_get(s))
			return name;
	return "unknown";
}

void
tls_gnutls_sni(void *session, char *out, size_t outlen)
{
	char name[256];
	size_t len = sizeof(name);
	unsigned int type;

	if (outlen == 0)
		return;
	out[0] = '\0';
	if (gnutls_server_name_get((gnutls_session_t)session, name, &len, &type, 0) < 0 ||
	    type != GNUTLS_NAME_DNS)
		return;
	snprintf(out, outlen, "%s", name);
}

/*
 * An otherName value as GnuTLS returns it: the DER of the inner value. Only
 * the string types are text; anything else is skipped (MEF_EUNSUPP).
 * Definite short and long (up to 2 length bytes) forms are enough for 256.
 */
static int
tls_gnutls_der_string(const uint8_t *p, size_t n, char *out, size_t outlen)
{
	static const uint8_t string_tags[] = {0x0c, 0x13, 0x16, 0x1a}; /* UTF8, Printable, IA5, Visible */
	size_t hdr = 2, len;

	if (n < 2 || memchr(string_tags, p[0], sizeof(string_tags)) == NULL)
		return MEF_EUNSUPP;
	len = p[1];
	if (p[1] == 0x81 && n >= 3) {
		len = p[2];
		hdr = 3;
	} else if (p[1] == 0x82 && n >= 4) {
		len = ((size_t)p[2] << 8) | p[3];
		hdr = 4;
	} else if (p[1] & 0x80) {
		return MEF_EINVAL;
	}
	if (hdr + len != n || len >= outlen || memchr(p + hdr, 0, len) != NULL)
		return MEF_EINVAL;
	memcpy(out, p + hdr, len);
	out[len] = '\0';
	return 0;
}

/* One SAN as text into out; MEF_EUNSUPP for types we do not report (IP, DN...). */
static int
tls_gnutls_one_san(unsigned type, const gnutls_datum_t *v, const gnutls_datum_t *oid, char *out,
		   size_t outlen)
{
	char val[256];
	int rc;

	if (type == GNUTLS_SAN_URI || type == GNUTLS_SAN_DNSNAME) {
		if (v->size >= outlen || memchr(v->data, 0, v->size) != NULL)
			return MEF_EINVAL;
		memcpy(out, v->data, v->size);
		out[v->size] = '\0';
		return 0;
	}
	if (type != GNUTLS_SAN_OTHERNAME || oid->data == NULL)
		return MEF_EUNSUPP;
	rc = tls_gnutls_der_string(v->data, v->size, val, sizeof(val));
	if (rc == 0 && (size_t)snprintf(out, outlen, "%.*s:%s", (int)oid->size, (char *)oid->data,
					val) >= outlen)
		rc = MEF_EINVAL;
	return rc;
}

/* Walks the subjectAltName extension of crt; a certificate without one has no SANs. */
static int
tls_gnutls_crt_sans(gnutls_x509_crt_t crt, char sans[TLSX_MAX_SANS][256])
{
	gnutls_subject_alt_names_t all;
	gnutls_datum_t der = {NULL, 0};
	int rc, n = 0;

	rc = gnutls_x509_crt_get_extension_by_oid2(crt, "2.5.29.17", 0, &der, NULL);
	if (rc == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
		return 0;
	if (rc < 0)
		return MEF_ECRYPTO;
	if (gnutls_subject_alt_names_init(&all) < 0) {
		gnutls_free(der.data);
		return MEF_ENOMEM;
	}
	rc = gnutls_x509_ext_import_subject_alt_names(&der, all, 0);
	for (unsigned i = 0; rc >= 0 && n < TLSX_MAX_SANS; i++) {
		gnutls_datum_t v, oid = {NULL, 0};
		unsigned type;

		if (gnutls_subject_alt_names_get(all, i, &type, &v, &oid) < 0)
			break;
		if (tls_gnutls_one_san(type, &v, &oid, sans[n], sizeof(sans[n])) == 0)
			n++;
	}
	gnutls_subject_alt_names_deinit(all);
	gnutls_free(der.data);
	return rc < 0 ? MEF_ECRYPTO : n;
}

/*
 * The peer's own certificate (the first of the chain it sent) into *crt:
 * 0, MEF_ENOTFOUND (no certificate), MEF_ENOMEM or MEF_ECRYPTO.
 */
static int
tls_gnutls_peer_crt(gnutls_session_t s, gnutls_x509_crt_t *crt)
{
	const gnutls_datum_t *chain;
	unsigned int n_chain = 0;

	chain = gnutls_certificate_get_peers(s, &n_chain);
	if (chain == NULL || n_chain == 0)
		return MEF_ENOTFOUND;
	if (gnutls_x509_crt_init(crt) < 0)
		return MEF_ENOMEM;
	if (gnutls_x509_crt_import(*crt, &chain[0], GNUTLS_X509_FMT_DER) < 0) {
		gnutls_x509_crt_deinit(*crt);
		return MEF_ECRYPTO;
	}
	return 0;
}

/* The serial of crt in ca_serial_canon form: 0 or MEF_ECRYPTO. */
static int
tls_gnutls_crt_serial(gnutls_x509_crt_t crt, char canon[CA_SERIAL_HEX])
{
	unsigned char raw[64];
	size_t len = sizeof(raw);
	char text[2 * sizeof(raw) + 1];

	if (gnutls_x509_crt_get_serial(crt, raw, &len) < 0 || len == 0)
		return MEF_ECRYPTO;
	for (size_t i = 0; i < len; i++)
		snprintf(text + 2 * i, 3, "%02X", raw[i]);
	return ca_serial_canon(text, canon) == 0 ? 0 : MEF_ECRYPTO;
}

_Static_assert(TLSX_SERIAL_MAX == CA_SERIAL_HEX, "tls_ref.peer_serial holds a canonical serial");

/*
 * What gnutls_certificate_verify_peers does for a client chain, with each
 * certificate imported once (the leaf is kept for tls_gnutls_crt_id):
 * the same depth limit, the credentials' default flags (none: SHA-1 and
 * weak keys refused, times checked) and the key purpose.
 */
#define TLS_GNUTLS_VERIFY_DEPTH 16 /* gnutls' DEFAULT_MAX_VERIFY_DEPTH */

int
tls_gnutls_verify_chain(void *session, gnutls_x509_trust_list_t tlist, const char *purpose_oid,
			unsigned int *status, gnutls_x509_crt_t *ret_leaf)
{
	gnutls_typed_vdata_st purpose = {GNUTLS_DT_KEY_PURPOSE_OID, (unsigned char *)purpose_oid,
					 0};
	gnutls_x509_crt_t crts[TLS_GNUTLS_VERIFY_DEPTH];
	const gnutls_datum_t *chain;
	unsigned int n = 0, i;
	int r = 0;

	*ret_leaf = NULL;
	chain = gnutls_certificate_get_peers((gnutls_session_t)session, &n);
	if (chain == NULL || n == 0)
		return MEF_ENOTFOUND;
	if (gnutls_certificate_type_get((gnutls_session_t)session) != GNUTLS_CRT_X509)
		return MEF_EUNSUPP;
	if (n > TLS_GNUTLS_VERIFY_DEPTH)
		return MEF_ETOOBIG;
	for (i = 0; i < n; i++) { /* on failure, crts[0..i) are the ones to free */
		if (gnutls_x509_crt_init(&crts[i]) < 0) {
			r = MEF_ENOMEM;
			break;
		}
		if (gnutls_x509_crt_import(crts[i], &chain[i], GNUTLS_X509_FMT_DER) < 0) {
			r = MEF_ECRYPTO;
			i++;
			break;
		}
	}
	if (r == 0 && gnutls_x509_trust_list_verify_crt2(tlist, crts, n, &purpose, 1, 0, status,
							 NULL) < 0)
		r = MEF_ECRYPTO;
	for (unsigned int k = r == 0 ? 1 : 0; k < i; k++)
		gnutls_x509_crt_deinit(crts[k]);
	if (r == 0)
		*ret_leaf = crts[0];
	return r;
}

int
tls_gnutls_crt_id(gnutls_x509_crt_t crt, char sans[TLSX_MAX_SANS][256],
		  char serial[TLSX_SERIAL_MAX], int *serial_rc)
{
	int n = tls_gnutls_crt_sans(crt, sans);

	*serial_rc = tls_gnutls_crt_serial(crt, serial);
	return n;
}

int
tls_gnutls_verified_peer_id(void *session, char sans[TLSX_MAX_SANS][256],
			    char serial[TLSX_SERIAL_MAX], int *serial_rc)
{
	gnutls_x509_crt_t crt;
	int n;

	*serial_rc = MEF_ENOTFOUND;
	if (gnutls_certificate_get_peers((gnutls_session_t)session, &(unsigned int){0}) == NULL)
		return 0;
	if (gnutls_certificate_type_get((gnutls_session_t)session) != GNUTLS_CRT_X509) {
		*serial_rc = MEF_ECRYPTO;
		return MEF_EUNSUPP;
	}
	n = tls_gnutls_peer_crt((gnutls_session_t)session, &crt);
	if (n == MEF_ENOTFOUND)
		return 0;
	*serial_rc = n;
	if (n != 0)
		return n;
	/* one parse of the certificate for both: the SANs name the client, the serial is looked up */
	n = tls_gnutls_crt_id(crt, sans, serial, serial_rc);
	gnutls_x509_crt_deinit(crt);
	return n;
}

int
tls_gnutls_peer_sans(void *session, char sans[TLSX_MAX_SANS][256])
{
	unsigned int status = 0;
	char serial[TLSX_SERIAL_MAX];
	int serial_rc;

	/* only a chain that verifies may name anyone (as tls_openssl_peer_sans) */
	if (gnutls_certificate_get_peers((gnutls_session_t)session, &(unsigned int){0}) != NULL &&
	    (gnutls_certificate_verify_peers3((gnutls_session_t)session, NULL, &status) < 0 ||
	     status != 0))
		return MEF_EAUTH;
	return tls_gnutls_verified_peer_id(session, sans, serial, &serial_rc);
}

int
tls_gnutls_peer_serial(void *session, char *hex, size_t n)
{
	gnutls_x509_crt_t crt;
	char canon[CA_SERIAL_HEX];
	int r = tls_gnutls_peer_crt((gnutls_session_t)session, &crt);

	if (r != 0)
		return r;
	r = tls_gnutls_crt_serial(crt, canon);
	gnutls_x509_crt_deinit(crt);
	if (r == 0 && snprintf(hex, n, "%s", canon) >= (int)n)
		r = MEF_ETOOBIG;
	return r;
}
