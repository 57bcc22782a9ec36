/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The leaf certificate of ca_issue written as DER (leaf_internal.h).
 * Building an X509 object, filling it field by field and letting OpenSSL
 * encode it twice (once to sign, once to hand out) cost 25-30 us of each
 * issuance, against 20 for the ECDSA signature itself (bench/ca_issue.c,
 * docs/performance.md section 8). The profile is fixed, so only the serial,
 * the validity, the subject, the key, its identifier and the SAN are
 * encoded here; everything else is DER that ca_open made once.
 *
 * The TBSCertificate is written back to front, as mbed TLS's x509write
 * does: an element's contents first, then its header, so every length is
 * known when it is written. Tests check the result against OpenSSL's own
 * parser and re-encoding (test_ca: test_leaf_der_like_openssl).
 */
#include <openssl/evp.h>
#include <string.h>
#include <time.h>

#include "leaf_internal.h"
#include "mef/der.h"

/* Writes backwards: the contents so far are buf[pos, end). */
struct der_w {
	uint8_t *buf;
	size_t pos;
	bool bad;
};

static size_t
put(struct der_w *w, const void *p, size_t n)
{
	if (w->bad || n > w->pos) {
		w->bad = true;
		return 0;
	}
	w->pos -= n;
	memcpy(w->buf + w->pos, p, n);
	return n;
}

/* The tag and length of an element whose len bytes of contents were just written. */
static size_t
put_hdr(struct der_w *w, uint8_t tag, size_t len)
{
	uint8_t h[6];

	return put(w, h, der_hdr(h, tag, len));
}

/* RFC 5280 4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050, both in UTC with seconds. */
static size_t
put_time(struct der_w *w, int64_t t)
{
	time_t tt = (time_t)t;
	struct tm tm;
	char s[20];
	int year, n;

	if (!gmtime_r(&tt, &tm)) {
		w->bad = true;
		return 0;
	}
	year = tm.tm_year + 1900;
	if (year >= 1950 && year < 2050)
		n = snprintf(s, sizeof(s), "%02d%02d%02d%02d%02d%02dZ", year % 100, tm.tm_mon + 1,
			     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
	else if (year >= 0 && year <= 9999)
		n = snprintf(s, sizeof(s), "%04d%02d%02d%02d%02d%02dZ", year, tm.tm_mon + 1,
			     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
	else
		n = -1;
	if (n != 13 && n != 15) {
		w->bad = true;
		return 0;
	}
	return put(w, s, (size_t)n) + put_hdr(w, n == 13 ? 0x17 : 0x18, (size_t)n);
}

/* An Extension with an OCTET STRING value of value_len bytes already written before it. */
static size_t
put_ext_head(struct der_w *w, const uint8_t *oid, size_t oid_len, bool critical, size_t value_len)
{
	size_t n = value_len + put_hdr(w, 0x04, value_len);

	if (critical)
		n += put(w, "\x01\x01\xff", 3);
	n += put(w, oid, oid_len);
	return n + put_hdr(w, 0x30, n);
}

int
leaf_tbs_der(const struct leaf_tbs *t, uint8_t *buf, size_t cap, size_t *ret_len)
{
	static const uint8_t oid_san[] = {0x06, 0x03, 0x55, 0x1d, 0x11};
	static const uint8_t oid_ski[] = {0x06, 0x03, 0x55, 0x1d, 0x0e};
	static const uint8_t oid_cn[] = {0x06, 0x03, 0x55, 0x04, 0x03};
	static const uint8_t v3[] = {0xa0, 0x03, 0x02, 0x01, 0x02};
	struct der_w w = {buf, cap, false};
	uint8_t ski[EVP_MAX_MD_SIZE];
	unsigned int ski_len = 0;
	size_t ext = 0, tbs, sub = 0, val, n, cn_len = strlen(t->subject_cn);

	/* extensions, the last first; the SAN is critical when the subject is empty (RFC 5280 4.2.1.6) */
	n = put(&w, t->san.p, t->san.len);
	ext += put_ext_head(&w, oid_san, sizeof(oid_san), cn_len == 0, n);
	for (size_t i = t->n_after; i-- > 0;)
		ext += put(&w, t->ext_after_ski[i].p, t->ext_after_ski[i].len);
	/* RFC 5280 4.2.1.2 method 1: SHA-1 of the subjectPublicKey BIT STRING's bits */
	if (EVP_Digest(t->key_bits, t->key_bits_len, ski, &ski_len, EVP_sha1(), NULL) != 1)
		return -1;
	n = put(&w, ski, ski_len);
	n += put_hdr(&w, 0x04, n);
	ext += put_ext_head(&w, oid_ski, sizeof(oid_ski), false, n);
	for (size_t i = t->n_before; i-- > 0;)
		ext += put(&w, t->ext_before_ski[i].p, t->ext_before_ski[i].len);
	ext += put_hdr(&w, 0x30, ext);
	tbs = ext + put_hdr(&w, 0xa3, ext);

	tbs += put(&w, t->spki.p, t->spki.len);
	if (cn_len) { /* RDNSequence { SET { AttributeTypeAndValue { CN, UTF8String } } } */
		sub = put(&w, t->subject_cn, cn_len);
		sub += put_hdr(&w, 0x0c, cn_len);
		sub += put(&w, oid_cn, sizeof(oid_cn));
		sub += put_hdr(&w, 0x30, sub);
		sub += put_hdr(&w, 0x31, sub);
	}
	tbs += sub + put_hdr(&w, 0x30, sub);
	val = put_time(&w, t->not_after);
	val += put_time(&w, t->not_before);
	tbs += val + put_hdr(&w, 0x30, val);
	tbs += put(&w, t->issuer.p, t->issuer.len);
	tbs += put(&w, t->sigalg.p, t->sigalg.len);
	n = put(&w, t->serial, t->serial_len);
	tbs += n + put_hdr(&w, 0x02, n);
	tbs += put(&w, v3, sizeof(v3));
	tbs += put_hdr(&w, 0x30, tbs);
	if (w.bad)
		return -1;
	*ret_len = tbs;
	return 0;
}

int
leaf_cert_der(const uint8_t *tbs, size_t tbs_len, struct der_blob sigalg, const uint8_t *sig,
	      size_t sig_len, uint8_t *out, size_t cap, size_t *ret_len)
{
	size_t bits = 1 + sig_len; /* no unused bits, then the signature */
	size_t content = tbs_len + sigalg.len + der_hdr_len(bits) + bits, o;

	if (der_hdr_len(content) + content > cap)
		return -1;
	o = der_hdr(out, 0x30, content);
	memcpy(out + o, tbs, tbs_len);
	o += tbs_len;
	memcpy(out + o, sigalg.p, sigalg.len);
	o += sigalg.len;
	o += der_hdr(out + o, 0x03, bits);
	out[o++] = 0x00;
	memcpy(out + o, sig, sig_len);
	*ret_len = o + sig_len;
	return 0;
}
