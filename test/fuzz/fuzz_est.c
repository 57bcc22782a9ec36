/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * EST input: the CSR check (ca_csr_check on DER), the HTTP body decoder
 * (est_http_decode: base64 with whitespace, or raw DER), and the EST routes
 * through router_dispatch (simpleenroll and serverkeygen on the fixture's CA,
 * RFC 7030 and RFC 9148 paths) with the response encoders the bindings use,
 * and an upstream CA's answer in RA mode (est_ra.c compiled in for its
 * static ra_answer / ra_record: base64 PKCS#7 to DER, first certificate
 * recorded). Input: 1 selector byte + the body.
 */
#include "../../src/est/est_ra.c"

#include "fuzz_common.h"
#include "mef/ca.h"
#include "mef/est.h"

#define FUZZ_EST_SAN "urn:x-onem2m-mef:client:" FUZZ_TARGET

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct {
	const char *path;
	enum mef_transport tr;
} est_routes[] = {
	{"/.well-known/est/simpleenroll", TR_HTTPS_PSK},
	{"/est/sen", TR_DTLS},
	{"/.well-known/est/serverkeygen", TR_HTTPS_PSK},
	{"/est/skg", TR_COAP_TLS},
};

/* An upstream EST server's answer body, as RA mode handles it. */
static void
fuzz_ra_answer(struct fuzz_env *e, const uint8_t *data, size_t size)
{
	struct ra_buf b = {(uint8_t *)data, size, false};
	struct mef_req req;
	struct mef_resp resp;

	memset(&req, 0, sizeof(req));
	req.peer = &e->peer;
	mef_resp_init(&resp);
	if (ra_answer(&b, &resp) == 0)
		ra_record(&e->d, &req, &resp);
	mef_resp_done(&resp);
}

static void
fuzz_csr(const uint8_t *der, size_t len, const char *want)
{
	char san[CA_NAME_MAX], challenge[128];
	const char *why = NULL;

	(void)ca_csr_check(der, len, want, san, challenge, sizeof(challenge), &why);
}

/* Encodes a success the way each binding would, then frees it. */
static void
fuzz_encode(const struct mef_resp *resp, enum mef_transport tr)
{
	char *body = NULL, ctype[128];
	uint8_t *cbor = NULL;
	size_t len = 0;

	if (resp->rsc != RSC_OK || !resp->body)
		return;
	if (tr == TR_HTTPS_PSK && est_http_encode(resp, &body, &len, ctype, sizeof(ctype)) == 0)
		free(body);
	if (tr != TR_HTTPS_PSK && resp->ctype == CT_MULTIPART &&
	    est_coap_multipart(resp, &cbor, &len) == 0)
		free(cbor);
}

static void
fuzz_route(struct fuzz_env *e, unsigned sel, const uint8_t *body, size_t len)
{
	struct mef_req req;
	struct mef_resp resp;
	size_t i = sel % (sizeof(est_routes) / sizeof(est_routes[0]));

	memset(&req, 0, sizeof(req));
	req.op = MEF_OP_CREATE;
	req.path = est_routes[i].path;
	req.ctype = CT_PKCS10;
	req.ty = -1;
	req.body = body;
	req.body_len = len;
	req.peer = &e->peer;
	e->peer.transport = est_routes[i].tr;
	router_dispatch(&e->d, &req, &resp);
	fuzz_encode(&resp, est_routes[i].tr);
	mef_resp_done(&resp);
	e->peer.transport = TR_DTLS;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_env *e = fuzz_env();
	uint8_t *der = NULL;
	size_t len = 0;

	if (size < 1)
		return 0;
	switch (data[0] & 3) {
	case 0:
		fuzz_csr(data + 1, size - 1, (data[0] & 4) ? NULL : FUZZ_EST_SAN);
		break;
	case 1:
		if (est_http_decode(data + 1, size - 1, &der, &len) == 0) {
			fuzz_csr(der, len, FUZZ_EST_SAN);
			free(der);
		}
		break;
	case 3:
		if (data[0] & 4) {
			fuzz_ra_answer(e, data + 1, size - 1);
			break;
		}
		/* fall through */
	default:
		/* what httpb hands the router after decoding, or CoAP's raw DER */
		if ((data[0] & 4) && est_http_decode(data + 1, size - 1, &der, &len) == 0) {
			fuzz_route(e, data[0] >> 3, der, len);
			free(der);
		} else {
			fuzz_route(e, data[0] >> 3, data + 1, size - 1);
		}
		break;
	}
	return 0;
}
