/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Shared fixture of the libFuzzer targets: one in-process struct mefd with a
 * real SQLite store in a private temp folder (a KEK, two PSK clients, one Ke),
 * and an established peer to put requests on. Built once per fuzzer process.
 */
#ifndef FUZZ_COMMON_H
#define FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include "mef/mefd.h"
#include "mef/req.h"

#define FUZZ_FQDN "mef.example.com"
#define FUZZ_ENROLEE "C-enrolee"
#define FUZZ_TARGET "C-target"

struct fuzz_env {
	struct mefd d;
	struct mef_peer peer;   /* established, authenticated as FUZZ_TARGET */
	char dir[64];           /* the temp folder */
	char keid[MEF_KEYID_MAX];
};

/* The process-wide fixture, created on first call; aborts if it cannot be built. */
struct fuzz_env *fuzz_env(void);

/* Runs req through router_dispatch on the fixture's peer and frees the answer. */
void fuzz_dispatch(struct fuzz_env *e, struct mef_req *req);

/* Copies data into a new NUL-terminated string (input may hold NULs). Aborts on OOM. */
char *fuzz_strndup(const uint8_t *data, size_t len);

#endif
