/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * router_dispatch on the request model: path splitting and route matching,
 * the originator rule, and the fetch path's KeID / SUID / ?kdf= parsing down
 * to store lookups and key derivation. Input: "PATH\nQUERY\nORIGIN\nOP".
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"

/* Next '\n'-terminated field of the input (the rest when no '\n' is left); NULL when empty. */
static char *
next_field(char **cur)
{
	char *f = *cur, *nl;

	if (!f)
		return NULL;
	nl = strchr(f, '\n');
	if (nl) {
		*nl = '\0';
		*cur = nl + 1;
	} else {
		*cur = NULL;
	}
	return f;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_env *e = fuzz_env();
	char *buf = fuzz_strndup(data, size), *cur = buf, *op;
	struct mef_req req;

	memset(&req, 0, sizeof(req));
	req.path = next_field(&cur);
	req.query = next_field(&cur);
	req.origin = next_field(&cur);
	op = next_field(&cur);
	req.op = op && op[0] ? (enum mef_op)((unsigned char)op[0] % 5) : MEF_OP_RETRIEVE;
	req.ty = -1;
	if (cur) {
		req.body = (const uint8_t *)cur;
		req.body_len = strlen(cur);
	}
	if (!req.path)
		req.path = "/";
	if (req.query && !req.query[0])
		req.query = NULL;
	fuzz_dispatch(e, &req);
	free(buf);
	return 0;
}
