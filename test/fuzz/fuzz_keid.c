/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Key identifiers from the wire: kdf_keid_canon (KeID in a fetch path),
 * kdf_nfkc (identifiers entering an HMAC), kdf_key_identifier and
 * suid_parse. Checks the canonical form is a fixed point and round-trips.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "mef/err.h"
#include "mef/kdf.h"
#include "mef/proc.h"

static void
check_canon(const char *s)
{
	char out[MEF_KEYID_MAX], again[MEF_KEYID_MAX], built[MEF_KEYID_MAX];
	uint8_t rel[MEF_RELID_LEN], rel2[MEF_RELID_LEN];
	const char *at;

	if (kdf_keid_canon(s, out, sizeof(out), rel) != 0)
		return;
	/* canonical is a fixed point, and it is what kdf_keid builds from its parts */
	if (kdf_keid_canon(out, again, sizeof(again), rel2) != 0 || strcmp(out, again) != 0 ||
	    memcmp(rel, rel2, sizeof(rel)) != 0)
		abort();
	at = strchr(out, '@');
	if (!at || kdf_keid(rel, at + 1, built, sizeof(built)) != 0 || strcmp(built, out) != 0)
		abort();
	/* a too-small buffer is refused, never overrun */
	if (kdf_keid_canon(s, out, strlen(out), NULL) != MEF_ETOOBIG)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fuzz_strndup(data, size), *n = NULL, *n2 = NULL, kid[MEF_KEYID_MAX];
	int suid;

	check_canon(s);
	if (kdf_nfkc(s, &n) == 0) {
		/* NFKC is idempotent */
		if (kdf_nfkc(n, &n2) != 0 || strcmp(n, n2) != 0)
			abort();
	}
	free(n);
	free(n2);
	(void)kdf_key_identifier(s, FUZZ_FQDN, kid, sizeof(kid));
	(void)kdf_key_identifier("rel", s, kid, sizeof(kid));
	if (suid_parse(s, &suid) == 0 && !suid_known(suid))
		abort();
	free(s);
	return 0;
}
