/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * An HTTP request head into the request model and the router, through the
 * binding's own pieces (httpb.c compiled in whole for its static functions):
 * the URI callback that keeps the raw query, MHD's own path unescaping,
 * httpb_op, httpb_ctype_parse, the oneM2M headers, the EST body decoding
 * (httpb_est_body: base64 or DER for application/pkcs10), then router_dispatch.
 * Input: "METHOD TARGET\nName: value\n...\n\nBODY" (MHD's request-line
 * parser itself is MHD's business; this covers what we do with its output).
 */
#include "../../src/net/httpb.c"

#include "fuzz_common.h"

#define FUZZ_MAX_HDRS 16

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fuzz_http {
	char *method, *target, *body;
	char *name[FUZZ_MAX_HDRS], *value[FUZZ_MAX_HDRS];
	size_t n;
};

static const char *
fuzz_hdr(const struct fuzz_http *h, const char *name)
{
	for (size_t i = 0; i < h->n; i++)
		if (strcasecmp(h->name[i], name) == 0)
			return h->value[i];
	return NULL;
}

/* Splits the text form in place; 0 or -1 when there is no request line. */
static int
fuzz_http_split(char *s, struct fuzz_http *h)
{
	char *line, *save = NULL, *end = strstr(s, "\n\n");

	memset(h, 0, sizeof(*h));
	if (end) {
		*end = '\0';
		h->body = end + 2;
	}
	line = strtok_r(s, "\n", &save);
	if (!line || !(h->target = strchr(line, ' ')))
		return -1;
	*h->target++ = '\0';
	h->method = line;
	while ((line = strtok_r(NULL, "\n", &save)) && h->n < FUZZ_MAX_HDRS) {
		char *colon = strchr(line, ':');

		if (!colon)
			continue;
		*colon = '\0';
		h->name[h->n] = line;
		h->value[h->n++] = httpb_trim(colon + 1);
	}
	return 0;
}

static void
fuzz_http_once(struct fuzz_env *e, struct fuzz_http *h)
{
	struct httpb_req *r = httpb_on_uri(NULL, h->target, NULL);
	const char *cl = fuzz_hdr(h, MHD_HTTP_HEADER_CONTENT_LENGTH);
	char *q = strchr(h->target, '?');
	struct mef_req req;

	if (!r)
		return;
	if (q)
		*q = '\0';
	MHD_http_unescape(h->target); /* what MHD hands the access handler as url */
	memset(&req, 0, sizeof(req));
	req.op = httpb_op(h->method);
	req.path = h->target;
	req.query = r->query;
	req.origin = fuzz_hdr(h, "X-M2M-Origin");
	req.rqi = fuzz_hdr(h, "X-M2M-RI");
	req.rvi = fuzz_hdr(h, "X-M2M-RVI");
	if (h->body && h->body[0]) {
		/* the body as httpb_upload collects it: malloc()ed, owned by r */
		r->len = strlen(h->body);
		r->body = (uint8_t *)fuzz_strndup((const uint8_t *)h->body, r->len);
		req.body = r->body;
		req.body_len = r->len;
	}
	if (h->target[0] == '/' && !(cl && strtoull(cl, NULL, 10) > e->d.conf->body_max) &&
	    httpb_ctype_parse(fuzz_hdr(h, "Content-Type"), &req.ctype, &req.ty) == 0 &&
	    (req.ctype != CT_PKCS10 || httpb_est_body(r, &req) == 0))
		fuzz_dispatch(e, &req);
	httpb_on_completed(NULL, NULL, (void **)&r, MHD_REQUEST_TERMINATED_COMPLETED_OK);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_env *e = fuzz_env();
	char *s = fuzz_strndup(data, size);
	struct fuzz_http h;

	if (fuzz_http_split(s, &h) == 0)
		fuzz_http_once(e, &h);
	free(s);
	return 0;
}
