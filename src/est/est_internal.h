/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Private to src/est/: the EST state behind struct mefd's est pointer, and
 * the registration-authority (RA mode) and CRL entry points shared by the
 * EST files.
 */
#ifndef MEF_EST_INTERNAL_H
#define MEF_EST_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "mef/ca.h"
#include "mef/est.h"
#include "mef/mefd.h"

struct est {
	const struct mef_conf *conf; /* the config the CA was loaded from (reload: reload) */
	struct ca *ca;               /* NULL without [ca] certificate/private_key */
	uint8_t *crl;                /* cached DER CRL */
	size_t crl_len;
	int64_t crl_count;           /* revoked count it was built from; -1 = none */
	int64_t crl_until;           /* rebuild before its nextUpdate */
};

/* The EST state for d's current config, (re)loading the CA. 0 or MEF_E*. */
int est_state(struct mefd *d, struct est **ret);

/* RA mode (est_ra.c): forward to [ca] upstream with libcurl, answer with its result. */
void est_ra_cacerts(struct mefd *d, const struct mef_req *req, struct mef_resp *resp);
void est_ra_enroll(struct mefd *d, const struct mef_req *req, bool reenroll, struct mef_resp *resp);

#endif
