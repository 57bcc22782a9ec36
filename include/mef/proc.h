/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The MEF procedures, one file each under src/mef/, all with one signature so
 * that the route table (src/proto/router.c) can call them. They see only the
 * request model: never a transport. Path parameters come percent-decoded.
 */
#ifndef MEF_PROC_H
#define MEF_PROC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mef/req.h"

struct mefd;

#define ROUTE_MAX_PARAMS 4

typedef void (*proc_fn)(struct mefd *d, const struct mef_req *req, const char *const *params,
			size_t n_params, struct mef_resp *resp);

/* GET /mef: retrieve <MEFBase> (mef/mefbase.c). */
void proc_mefbase_retrieve(struct mefd *d, const struct mef_req *req, const char *const *params,
			   size_t n_params, struct mef_resp *resp);

/* GET /fetchCredentials/<KeID>/<SUID>[?kdf=uc|km|kpsa] (mef/fetch.c, TS-0003 8.3.2.1). */
void proc_fetch_credentials(struct mefd *d, const struct mef_req *req, const char *const *params,
			    size_t n_params, struct mef_resp *resp);

/* The fetch path's own failure body (decisions §4): {"status":false,"errorString":text}. */
void proc_fetch_fail(struct mef_resp *resp, int rsc, const char *text);

/* Sets a oneM2M error response {"m2m:dbg": text} with rsc. */
void proc_error(struct mef_resp *resp, int rsc, const char *text);

/* m2m:suid values (TS-0004 6.3.4.2.39, plus 31 used by TS-0003 8.3.9.9). */
bool suid_known(int suid);
/* Parses a decimal SUID of a path segment or option; 0 or MEF_EINVAL (syntax or unknown value). */
int suid_parse(const char *s, int *ret);

/* Base64 (RFC 4648 §4) of n bytes into a new string (caller wipes and frees); NULL on OOM. */
char *proc_base64(const uint8_t *p, size_t n);

/* "YYYYMMDDThhmmss" (UTC) of a unix time into out (16 bytes). */
void proc_timestamp(int64_t t, char out[16]);

#endif
