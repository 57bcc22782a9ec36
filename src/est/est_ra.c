/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * RA mode (TS-0003 8.3.6: the MEF acts as RA towards the MEF CA): with
 * [ca] upstream set, mefd validates each EST request as usual and forwards
 * the CSR to the upstream EST server over HTTPS with its own client
 * certificate, then answers with the upstream result. libcurl is blocking:
 * one call with a short timeout on the loop thread (docs/est.md says so);
 * curl multi on the loop is the next step.
 */
#include <curl/curl.h>
#include <openssl/pkcs7.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "est_internal.h"
#include "mef/err.h"
#include "mef/log.h"
#include "mef/proc.h"
#include "mef/store.h"

#define RA_TIMEOUT_S 5L
#define RA_BODY_MAX (256 * 1024)

struct ra_buf {
	uint8_t *p;
	size_t len;
	bool too_big;
};

static size_t
ra_write(char *data, size_t size, size_t n, void *ctx)
{
	struct ra_buf *b = ctx;
	size_t add = size * n;
	uint8_t *p;

	if (b->len + add > RA_BODY_MAX) {
		b->too_big = true;
		return 0;
	}
	if (!(p = realloc(b->p, b->len + add + 1)))
		return 0;
	memcpy(p + b->len, data, add);
	b->p = p;
	b->len += add;
	return add;
}

static void
ra_setup(CURL *c, const struct mef_conf *conf, const char *url, struct ra_buf *out)
{
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_SSLCERT, conf->ca_upstream_certificate);
	curl_easy_setopt(c, CURLOPT_SSLKEY, conf->ca_upstream_key);
	curl_easy_setopt(c, CURLOPT_CAINFO, conf->ca_upstream_ca);
	curl_easy_setopt(c, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, RA_TIMEOUT_S);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 2L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, ra_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
}

/*
 * One upstream exchange: GET (body NULL) or POST of a base64 body. Returns
 * 0 with the HTTP status, or MEF_EIO with *why when nothing usable came back.
 */
static int
ra_call(struct mefd *d, const char *op, const char *b64, size_t b64_len, struct ra_buf *out,
	long *ret_status, const char **why)
{
	struct curl_slist *h = NULL;
	char url[1024];
	CURLcode rc;
	CURL *c;

	snprintf(url, sizeof(url), "%s/%s", d->conf->ca_upstream, op);
	if (!(c = curl_easy_init())) {
		*why = "libcurl unavailable";
		return MEF_EIO;
	}
	ra_setup(c, d->conf, url, out);
	if (b64) {
		h = curl_slist_append(h, "Content-Type: application/pkcs10");
		h = curl_slist_append(h, "Content-Transfer-Encoding: base64");
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, b64);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)b64_len);
	}
	rc = curl_easy_perform(c);
	if (rc == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, ret_status);
	else
		log_warn("RA: upstream %s: %s", url, curl_easy_strerror(rc));
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	if (rc != CURLE_OK) {
		*why = out->too_big ? "upstream answer too large" : "upstream EST server unreachable";
		return MEF_EIO;
	}
	return 0;
}

static int
ra_status_rsc(long status)
{
	if (status == 400)
		return RSC_BAD_REQUEST;
	if (status == 403 || status == 401)
		return RSC_ORIGINATOR_HAS_NO_PRIVILEGE;
	return RSC_INTERNAL_SERVER_ERROR;
}

/* Upstream base64 PKCS#7 → DER answer. */
static int
ra_answer(const struct ra_buf *b, struct mef_resp *resp)
{
	uint8_t *der;
	size_t len;

	if (est_http_decode(b->p, b->len, &der, &len) != 0)
		return MEF_EINVAL;
	resp->rsc = RSC_OK;
	resp->ctype = CT_PKCS7_CERTS;
	resp->body = (char *)der;
	resp->body_len = len;
	return 0;
}

static void
ra_fail(const struct mef_req *req, struct mef_resp *resp, const char *op, int rsc, const char *why)
{
	log_notice("%s %s: EST %s by %s via RA refused: %s", transport_name(req->peer->transport),
		   req->peer->addr, op, req->peer->client.id, why);
	proc_error(resp, rsc, why);
}

void
est_ra_cacerts(struct mefd *d, const struct mef_req *req, struct mef_resp *resp)
{
	struct ra_buf b = {0};
	const char *why = "upstream refused";
	long status = 0;

	if (ra_call(d, "cacerts", NULL, 0, &b, &status, &why) != 0 || status != 200 ||
	    ra_answer(&b, resp) != 0)
		ra_fail(req, resp, "cacerts", status ? ra_status_rsc(status) : RSC_INTERNAL_SERVER_ERROR,
			status && status != 200 ? "upstream refused" : why);
	free(b.p);
}

/* The first certificate of a PKCS#7 answer, recorded like a local issuance. */
static void
ra_record(struct mefd *d, const struct mef_req *req, const struct mef_resp *resp)
{
	const unsigned char *p = (const unsigned char *)resp->body;
	struct cert_rec c;
	PKCS7 *p7 = d2i_PKCS7(NULL, &p, (long)resp->body_len);
	X509 *x = p7 && PKCS7_type_is_signed(p7) ? sk_X509_value(p7->d.sign->cert, 0) : NULL;
	unsigned char *der = NULL;
	int len = x ? i2d_X509(x, &der) : 0;

	memset(&c, 0, sizeof(c));
	if (len > 0 && ca_cert_info(der, (size_t)len, c.serial, c.subject, &c.not_before,
				    &c.not_after) == 0) {
		snprintf(c.client_id, sizeof(c.client_id), "%s", req->peer->client.id);
		if (est_identity(req->peer, c.san, sizeof(c.san)) == 0) {
			c.issued = (int64_t)time(NULL);
			if (store_cert_put(d->store, &c, der, (size_t)len) != 0)
				log_warn("RA: certificate %s not recorded", c.serial);
			else
				log_info("%s %s: EST via RA: certificate %s issued upstream to %s",
					 transport_name(req->peer->transport), req->peer->addr,
					 c.serial, c.client_id);
		}
	}
	OPENSSL_free(der);
	PKCS7_free(p7);
}

void
est_ra_enroll(struct mefd *d, const struct mef_req *req, bool reenroll, struct mef_resp *resp)
{
	struct ra_buf b = {0};
	const char *why = "upstream refused";
	long status = 0;
	char *b64 = proc_base64(req->body, req->body_len);
	const char *op = reenroll ? "simplereenroll" : "simpleenroll";

	/*
	 * The upstream sees the RA's certificate, not the client's: the RA
	 * checked re-enrolment itself, so both kinds go up as simpleenroll.
	 */
	if (!b64) {
		proc_error(resp, RSC_INTERNAL_SERVER_ERROR, "out of memory");
		return;
	}
	if (ra_call(d, "simpleenroll", b64, strlen(b64), &b, &status, &why) != 0 || status != 200 ||
	    ra_answer(&b, resp) != 0) {
		ra_fail(req, resp, op, status ? ra_status_rsc(status) : RSC_INTERNAL_SERVER_ERROR,
			status && status != 200 ? "upstream refused" : why);
	} else {
		ra_record(d, req, resp);
	}
	free(b64);
	free(b.p);
}
