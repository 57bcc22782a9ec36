/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The OpenSSL body of the tlsx_* interface (session = SSL *, as libcoap
 * hands it out): RFC 5705 exporter with no context, protocol and suite
 * names, SNI, and the subjectAltName values of a verified peer certificate.
 */
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>

#include "mef/ca.h"
#include "mef/err.h"
#include "tls_internal.h"

int
tls_openssl_export(void *session, const char *label, uint8_t *out, size_t len)
{
	/* use_context = 0: decisions §1.1, "no context" differs from empty in TLS 1.2 */
	if (SSL_export_keying_material(session, out, len, label, strlen(label), NULL, 0, 0) != 1)
		return MEF_ECRYPTO;
	return 0;
}

const char *
tls_openssl_version(void *session)
{
	return SSL_get_version(session);
}

const char *
tls_openssl_cipher(void *session)
{
	const char *c = SSL_get_cipher_name((SSL *)session);

	return c ? c : "none";
}

void
tls_openssl_sni(void *session, char *out, size_t outlen)
{
	const char *sni = SSL_get_servername(session, TLSEXT_NAMETYPE_host_name);

	if (outlen)
		snprintf(out, outlen, "%s", sni ? sni : "");
}

/* Copies an ASN.1 string if it is text we can compare exactly: no NUL, fits. */
static int
san_copy(const ASN1_STRING *s, const char *prefix, char out[256])
{
	int len = ASN1_STRING_length(s);
	const unsigned char *p = ASN1_STRING_get0_data(s);
	int n;

	if (len <= 0 || memchr(p, '\0', (size_t)len))
		return MEF_EINVAL;
	n = snprintf(out, 256, "%s%.*s", prefix, len, (const char *)p);
	/* a truncated SAN could equal another registered one: drop it instead */
	return n < 0 || n >= 256 ? MEF_ETOOBIG : 0;
}

/* otherName as "OID:value" when its value is a string type (decisions §2). */
static int
san_other(const OTHERNAME *on, char out[256])
{
	char oid[128];
	char prefix[130];
	const ASN1_TYPE *v = on->value;

	if (OBJ_obj2txt(oid, sizeof(oid), on->type_id, 1) <= 0)
		return MEF_EINVAL;
	if (v->type != V_ASN1_UTF8STRING && v->type != V_ASN1_IA5STRING &&
	    v->type != V_ASN1_PRINTABLESTRING && v->type != V_ASN1_VISIBLESTRING)
		return MEF_EUNSUPP;
	snprintf(prefix, sizeof(prefix), "%s:", oid);
	return san_copy(v->value.asn1_string, prefix, out);
}

static int
san_one(const GENERAL_NAME *gn, char out[256])
{
	switch (gn->type) {
	case GEN_URI:
		return san_copy(gn->d.uniformResourceIdentifier, "", out);
	case GEN_DNS:
		return san_copy(gn->d.dNSName, "", out);
	case GEN_OTHERNAME:
		return san_other(gn->d.otherName, out);
	}
	return MEF_EUNSUPP;
}

int
tls_openssl_peer_sans(void *session, char sans[TLSX_MAX_SANS][256])
{
	X509 *cert = SSL_get0_peer_certificate(session);
	GENERAL_NAMES *gns;
	int n = 0;

	/* only a chain OpenSSL verified may name anyone */
	if (!cert || SSL_get_verify_result(session) != X509_V_OK)
		return MEF_EAUTH;
	gns = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
	if (!gns)
		return 0;
	for (int i = 0; i < sk_GENERAL_NAME_num(gns) && n < TLSX_MAX_SANS; i++)
		if (san_one(sk_GENERAL_NAME_value(gns, i), sans[n]) == 0)
			n++;
	GENERAL_NAMES_free(gns);
	return n;
}

int
tls_openssl_peer_serial(void *session, char *hex, size_t n)
{
	X509 *cert = SSL_get0_peer_certificate(session);
	BIGNUM *bn;
	char *h = NULL, canon[CA_SERIAL_HEX];
	int r = MEF_ECRYPTO;

	if (!cert)
		return MEF_ENOTFOUND;
	bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
	if (bn && (h = BN_bn2hex(bn)) && ca_serial_canon(h, canon) == 0)
		r = snprintf(hex, n, "%s", canon) < (int)n ? 0 : MEF_ETOOBIG;
	OPENSSL_free(h);
	BN_free(bn);
	return r;
}
