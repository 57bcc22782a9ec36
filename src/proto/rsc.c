/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Response status codes to transport codes: one table for HTTP (TS-0009
 * Table 6.3.2-1) and CoAP (TS-0008 Table 6.2.4-1), plus the response helpers
 * of the request model. Success codes on CoAP depend on the operation.
 */
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

#include "mef/req.h"

static const struct {
	int rsc;
	int http;
	int coap; /* class*100 + detail */
} rsc_map[] = {
	{RSC_OK, 200, 205},
	{RSC_CREATED, 201, 201},
	{RSC_DELETED, 200, 202},
	{RSC_UPDATED, 200, 204},
	{RSC_BAD_REQUEST, 400, 400},
	{RSC_RELEASE_VERSION_NOT_SUPPORTED, 501, 501},
	{RSC_NOT_FOUND, 404, 404},
	{RSC_OPERATION_NOT_ALLOWED, 405, 405},
	{RSC_UNSUPPORTED_MEDIA_TYPE, 415, 415},
	{RSC_CONTENTS_UNACCEPTABLE, 400, 400},
	{RSC_ORIGINATOR_HAS_NO_PRIVILEGE, 403, 403},
	{RSC_CONFLICT, 409, 403},
	{RSC_ORIGINATOR_NOT_AUTHENTICATED, 403, 403},
	{RSC_SECURITY_ASSOCIATION_REQUIRED, 403, 403},
	{RSC_TOO_MANY_REQUESTS, 429, 429},
	{RSC_INTERNAL_SERVER_ERROR, 500, 500},
	{RSC_NOT_IMPLEMENTED, 501, 501},
	{RSC_ALREADY_EXISTS, 409, 400},
};

static int
rsc_index(int rsc)
{
	for (size_t i = 0; i < sizeof(rsc_map) / sizeof(rsc_map[0]); i++)
		if (rsc_map[i].rsc == rsc)
			return (int)i;
	return -1;
}

int
rsc_to_http(int rsc)
{
	int i = rsc_index(rsc);

	return i < 0 ? 500 : rsc_map[i].http;
}

int
rsc_to_coap(int rsc, enum mef_op op)
{
	int i = rsc_index(rsc);

	if (i < 0)
		return 500;
	/* TS-0008: a 2000 answer to an update or delete keeps the operation's code */
	if (rsc == RSC_OK && op == MEF_OP_UPDATE)
		return 204;
	if (rsc == RSC_OK && op == MEF_OP_DELETE)
		return 202;
	return rsc_map[i].coap;
}

void
mef_resp_init(struct mef_resp *r)
{
	memset(r, 0, sizeof(*r));
	r->rsc = RSC_INTERNAL_SERVER_ERROR;
	r->ty = -1;
}

void
mef_resp_done(struct mef_resp *r)
{
	/* bodies may carry key material (fetch, key retrieval): wipe them all */
	if (r->body)
		OPENSSL_cleanse(r->body, r->body_len);
	free(r->body);
	r->body = NULL;
	r->body_len = 0;
}

void
mef_resp_json(struct mef_resp *r, int rsc, char *json)
{
	free(r->body);
	r->rsc = rsc;
	r->body = json;
	r->body_len = json ? strlen(json) : 0;
	r->ctype = json ? CT_JSON : CT_NONE;
}

const char *
transport_name(enum mef_transport t)
{
	static const char *const names[TR__MAX] = {
		[TR_DTLS] = "dtls",
		[TR_COAP_TLS] = "coap+tls",
		[TR_HTTPS_PSK] = "https-psk",
		[TR_HTTPS_CERT] = "https-cert",
	};

	return (unsigned)t < TR__MAX ? names[t] : "?";
}
