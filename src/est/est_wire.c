/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * EST wire formats: RFC 7030/8951 base64 and multipart/mixed bodies for the
 * HTTP binding, RFC 8710 multipart-core (CBOR) for the CoAP binding
 * (RFC 9148), the degenerate PKCS#7 certs-only container and the CSR
 * attributes DER. Procedures produce DER; only the bindings call the
 * encoders, so no procedure knows its transport.
 */
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mef/der.h"
#include "mef/err.h"
#include "mef/est.h"
#include "mef/secret.h"

#define EST_BOUNDARY "mefd-est-boundary"

static const struct {
	enum mef_ctype ct;
	const char *http;   /* media type of a part */
	unsigned cf;        /* RFC 9148 content format */
} est_types[] = {
	{CT_PKCS7_CERTS, "application/pkcs7-mime; smime-type=certs-only", 281},
	{CT_PKCS8, "application/pkcs8", 284},
	{CT_CSRATTRS, "application/csrattrs", 285},
	{CT_PKCS10, "application/pkcs10", 286},
	{CT_PKIX_CERT, "application/pkix-cert", 287},
};

static size_t
est_type(enum mef_ctype ct)
{
	for (size_t i = 0; i < sizeof(est_types) / sizeof(est_types[0]); i++)
		if (est_types[i].ct == ct)
			return i;
	return 0;
}

bool
est_http_transformed(enum mef_ctype ct)
{
	return ct == CT_PKCS7_CERTS || ct == CT_PKCS8 || ct == CT_CSRATTRS || ct == CT_PKIX_CERT ||
	       ct == CT_MULTIPART;
}

/* Base64 in 64-column lines (EVP_Encode*), appended at out; returns the length written. */
static size_t
b64_lines(const uint8_t *p, size_t n, char *out)
{
	EVP_ENCODE_CTX *c = EVP_ENCODE_CTX_new();
	int a = 0, b = 0;

	if (!c)
		return 0;
	EVP_EncodeInit(c);
	if (EVP_EncodeUpdate(c, (unsigned char *)out, &a, p, (int)n) != 1)
		a = 0;
	EVP_EncodeFinal(c, (unsigned char *)out + a, &b);
	EVP_ENCODE_CTX_free(c);
	return (size_t)a + (size_t)b;
}

static size_t
b64_room(size_t n)
{
	return 4 * ((n + 2) / 3) + n / 48 + 4;
}

int
est_http_encode(const struct mef_resp *resp, char **ret_body, size_t *ret_len, char *ret_ctype,
		size_t ctype_len)
{
	size_t room = b64_room(resp->body_len) + 256 * (resp->n_parts + 1), o = 0;
	char *out = malloc(room);

	if (!out)
		return MEF_ENOMEM;
	if (resp->ctype != CT_MULTIPART) {
		o = b64_lines((const uint8_t *)resp->body, resp->body_len, out);
		snprintf(ret_ctype, ctype_len, "%s", est_types[est_type(resp->ctype)].http);
	} else {
		/* RFC 7030 §4.4.2: each part base64 with its own Content-Transfer-Encoding */
		for (size_t i = 0; i < resp->n_parts; i++) {
			const struct mef_part *pt = &resp->parts[i];

			o += (size_t)snprintf(out + o, room - o,
					      "--" EST_BOUNDARY "\r\nContent-Type: %s\r\n"
					      "Content-Transfer-Encoding: base64\r\n\r\n",
					      est_types[est_type(pt->ctype)].http);
			o += b64_lines((const uint8_t *)resp->body + pt->off, pt->len, out + o);
		}
		o += (size_t)snprintf(out + o, room - o, "--" EST_BOUNDARY "--\r\n");
		snprintf(ret_ctype, ctype_len, "multipart/mixed; boundary=" EST_BOUNDARY);
	}
	*ret_body = out;
	*ret_len = o;
	return 0;
}

int
est_http_decode(const uint8_t *body, size_t len, uint8_t **ret, size_t *ret_len)
{
	uint8_t *txt, *out;
	size_t n = 0, pad = 0;
	int got;

	if (len >= 2 && body[0] == 0x30 && (body[1] & 0x80)) { /* raw DER SEQUENCE */
		if (!(out = malloc(len)))
			return MEF_ENOMEM;
		memcpy(out, body, len);
		*ret = out;
		*ret_len = len;
		return 0;
	}
	if (!(txt = malloc(len + 1)))
		return MEF_ENOMEM;
	for (size_t i = 0; i < len; i++)
		if (body[i] != ' ' && body[i] != '\t' && body[i] != '\r' && body[i] != '\n')
			txt[n++] = body[i];
	if (n >= 1 && txt[n - 1] == '=')
		pad = n >= 2 && txt[n - 2] == '=' ? 2 : 1;
	out = n && n % 4 == 0 ? malloc(n / 4 * 3) : NULL;
	got = out ? EVP_DecodeBlock(out, txt, (int)n) : -1;
	free(txt);
	if (got < 0 || (size_t)got < pad + 1) {
		free(out);
		return out || !n || n % 4 ? MEF_EINVAL : MEF_ENOMEM;
	}
	*ret = out;
	*ret_len = (size_t)got - pad;
	return 0;
}

/* CBOR head (RFC 8949 §3): major type and argument. */
static size_t
cbor_head(uint8_t *p, unsigned major, size_t v)
{
	uint8_t m = (uint8_t)(major << 5);

	if (v < 24) {
		p[0] = m | (uint8_t)v;
		return 1;
	}
	if (v < 256) {
		p[0] = m | 24;
		p[1] = (uint8_t)v;
		return 2;
	}
	if (v < 65536) {
		p[0] = m | 25;
		p[1] = (uint8_t)(v >> 8);
		p[2] = (uint8_t)v;
		return 3;
	}
	p[0] = m | 26;
	for (int i = 0; i < 4; i++)
		p[1 + i] = (uint8_t)(v >> (24 - 8 * i));
	return 5;
}

int
est_coap_multipart(const struct mef_resp *resp, uint8_t **ret, size_t *ret_len)
{
	uint8_t *out = malloc(resp->body_len + 16 * (resp->n_parts + 1));
	size_t o;

	if (!out)
		return MEF_ENOMEM;
	o = cbor_head(out, 4, 2 * resp->n_parts);
	for (size_t i = 0; i < resp->n_parts; i++) {
		const struct mef_part *pt = &resp->parts[i];

		o += cbor_head(out + o, 0, est_types[est_type(pt->ctype)].cf);
		o += cbor_head(out + o, 2, pt->len);
		memcpy(out + o, resp->body + pt->off, pt->len);
		o += pt->len;
	}
	*ret = out;
	*ret_len = o;
	return 0;
}

/* ---- DER builders (headers: mef/der.h) ---- */

/* True when der is exactly one DER SEQUENCE of len bytes (a certificate's outer shape). */
static bool
der_is_sequence(const uint8_t *der, size_t len)
{
	size_t n = 0, h;

	if (len < 2 || der[0] != 0x30)
		return false;
	if (der[1] < 0x80) {
		n = der[1];
		h = 2;
	} else {
		h = 2 + (der[1] & 0x7f);
		if ((der[1] & 0x7f) == 0 || (der[1] & 0x7f) > 4 || h > len)
			return false;
		for (size_t i = 2; i < h; i++)
			n = n << 8 | der[i];
	}
	return h + n == len;
}

/*
 * The certs-only "degenerate" SignedData of RFC 7030 §4.1.3, byte for byte
 * what `openssl crl2pkcs7 -nocrl` writes (SignedData v1, no digest
 * algorithms, id-data without content, the certificates in the given order,
 * no signers). Built directly around the DER, because parsing each
 * certificate into OpenSSL objects only to encode it again cost ~13% of an
 * enrolment's CPU (perf, docs/performance.md). test_est_wire compares it
 * with crl2pkcs7's output.
 */
int
est_pkcs7_certs(const uint8_t *const *ders, const size_t *lens, size_t n, uint8_t **ret,
		size_t *ret_len)
{
	static const uint8_t oid_signed[] = {0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02};
	/* version 1, digestAlgorithms {}, contentInfo { id-data } */
	static const uint8_t sd_head[] = {0x02, 0x01, 0x01, 0x31, 0x00, 0x30, 0x0b, 0x06, 0x09, 0x2a,
					  0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01};
	static const uint8_t signer_infos[] = {0x31, 0x00};
	size_t certs = 0, sd, expl, total, o = 0;
	uint8_t *out;

	for (size_t i = 0; i < n; i++) {
		if (!ders[i] || lens[i] > 0xffffff || !der_is_sequence(ders[i], lens[i]))
			return MEF_ECRYPTO;
		certs += lens[i];
	}
	sd = sizeof(sd_head) + (n ? der_hdr_len(certs) + certs : 0) + sizeof(signer_infos);
	expl = der_hdr_len(sd) + sd;
	total = sizeof(oid_signed) + der_hdr_len(expl) + expl;
	if (!(out = malloc(der_hdr_len(total) + total)))
		return MEF_ENOMEM;
	o += der_hdr(out + o, 0x30, total);             /* ContentInfo */
	memcpy(out + o, oid_signed, sizeof(oid_signed));
	o += sizeof(oid_signed);
	o += der_hdr(out + o, 0xa0, expl);              /* [0] EXPLICIT */
	o += der_hdr(out + o, 0x30, sd);                /* SignedData */
	memcpy(out + o, sd_head, sizeof(sd_head));
	o += sizeof(sd_head);
	if (n) {
		o += der_hdr(out + o, 0xa0, certs);     /* certificates [0] IMPLICIT */
		for (size_t i = 0; i < n; i++) {
			memcpy(out + o, ders[i], lens[i]);
			o += lens[i];
		}
	}
	memcpy(out + o, signer_infos, sizeof(signer_infos));
	o += sizeof(signer_infos);
	*ret = out;
	*ret_len = o;
	return 0;
}

/* Appends a DER TLV (tag, length, content) at out; returns its size (content <= 65535). */
static size_t
der_tlv(uint8_t *out, uint8_t tag, const uint8_t *c, size_t n)
{
	size_t h = 2;

	out[0] = tag;
	if (n < 128) {
		out[1] = (uint8_t)n;
	} else if (n < 256) {
		out[1] = 0x81;
		out[2] = (uint8_t)n;
		h = 3;
	} else {
		out[1] = 0x82;
		out[2] = (uint8_t)(n >> 8);
		out[3] = (uint8_t)n;
		h = 4;
	}
	memmove(out + h, c, n);
	return h + n;
}

static const uint8_t oid_challenge[] = {0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x07};
static const uint8_t oid_ecdsa_sha256[] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02};
/* Attribute { id-ecPublicKey, SET { prime256v1 } } (RFC 7030 §4.5.2 example form) */
static const uint8_t attr_p256[] = {0x30, 0x15, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02,
				    0x01, 0x31, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d,
				    0x03, 0x01, 0x07};
static const uint8_t oid_ext_req[] = {0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x0e};
static const uint8_t oid_san[] = {0x06, 0x03, 0x55, 0x1d, 0x11};

/* Attribute { extensionRequest, SET { Extensions { Extension { SAN, OCTET STRING GeneralNames } } } } */
static size_t
attr_san(const char *identity, uint8_t *out)
{
	uint8_t a[1024], b[1024];
	size_t n = strlen(identity);
	/* a URI (AE-ID, "urn:...") or a DNS name (CSE public domain name), decisions §5 */
	uint8_t tag = strchr(identity, '/') || strchr(identity, ':') ? 0x86 : 0x82;

	n = der_tlv(a, tag, (const uint8_t *)identity, n);
	n = der_tlv(b, 0x30, a, n);               /* GeneralNames */
	n = der_tlv(a, 0x04, b, n);               /* extnValue */
	memcpy(b, oid_san, sizeof(oid_san));
	memcpy(b + sizeof(oid_san), a, n);
	n = der_tlv(a, 0x30, b, n + sizeof(oid_san)); /* Extension */
	n = der_tlv(b, 0x30, a, n);               /* Extensions */
	n = der_tlv(a, 0x31, b, n);               /* SET */
	memcpy(b, oid_ext_req, sizeof(oid_ext_req));
	memcpy(b + sizeof(oid_ext_req), a, n);
	return der_tlv(out, 0x30, b, n + sizeof(oid_ext_req));
}

int
est_csrattrs(const char *identity, uint8_t **ret, size_t *ret_len)
{
	uint8_t body[2048], *out;
	size_t o = 0;

	if (strlen(identity) > 512)
		return MEF_EINVAL;
	memcpy(body + o, oid_challenge, sizeof(oid_challenge));
	o += sizeof(oid_challenge);
	memcpy(body + o, attr_p256, sizeof(attr_p256));
	o += sizeof(attr_p256);
	o += attr_san(identity, body + o);
	memcpy(body + o, oid_ecdsa_sha256, sizeof(oid_ecdsa_sha256));
	o += sizeof(oid_ecdsa_sha256);
	if (!(out = malloc(o + 4)))
		return MEF_ENOMEM;
	*ret_len = der_tlv(out, 0x30, body, o);
	*ret = out;
	return 0;
}
