/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The fuzz fixture (fuzz_common.h): a temp store seeded through the public
 * store API, the way mefctl and a bootstrap would seed it, so the fetch path
 * reaches key derivation for well-formed inputs. Logs only errors.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fuzz_common.h"
#include "mef/ca.h"
#include "mef/kdf.h"
#include "mef/log.h"
#include "mef/store.h"
#include "mef/wrap.h"

static struct fuzz_env env;
static struct mef_conf conf;
static char ca_crt[96], ca_key[96];

static void
fuzz_die(const char *what)
{
	fprintf(stderr, "fuzz fixture: %s\n", what);
	abort();
}

static void
fuzz_seed_clients(struct store *s)
{
	struct client_rec c;
	struct mef_secret *psk = secret_dup("0123456789abcdef0123456789abcdef", 32);

	memset(&c, 0, sizeof(c));
	snprintf(c.id, sizeof(c.id), "%s", FUZZ_ENROLEE);
	c.kind = CRED_PSK;
	snprintf(c.psk_identity, sizeof(c.psk_identity), "enrolee@" FUZZ_FQDN);
	c.n_targets = 2;
	snprintf(c.targets[0].id, sizeof(c.targets[0].id), "%s", FUZZ_TARGET);
	c.targets[0].suid = 21;
	snprintf(c.targets[1].id, sizeof(c.targets[1].id), "%s", FUZZ_TARGET);
	c.targets[1].suid = 31;
	if (!psk || store_client_add(s, &c, psk) != 0)
		fuzz_die("client add");
	memset(&c, 0, sizeof(c));
	snprintf(c.id, sizeof(c.id), "%s", FUZZ_TARGET);
	c.kind = CRED_PSK;
	snprintf(c.psk_identity, sizeof(c.psk_identity), "target@" FUZZ_FQDN);
	if (store_client_add(s, &c, psk) != 0)
		fuzz_die("target add");
	secret_free(psk);
}

static void
fuzz_seed_ke(struct fuzz_env *e)
{
	static const uint8_t rel[MEF_RELID_LEN] = {0xA0, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07,
						   0x08, 0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x0E, 0x0F};
	struct mef_secret *ke = secret_new(MEF_KEY_LEN);
	struct ke_rec k;

	memset(&k, 0, sizeof(k));
	if (!ke || kdf_keid(rel, FUZZ_FQDN, k.keid, sizeof(k.keid)) != 0)
		fuzz_die("keid");
	memset(ke->p, 0x5a, ke->len);
	snprintf(k.client_id, sizeof(k.client_id), "%s", FUZZ_ENROLEE);
	snprintf(k.enrolee_id, sizeof(k.enrolee_id), "%s", FUZZ_ENROLEE);
	snprintf(k.transport, sizeof(k.transport), "dtls");
	k.created = (int64_t)time(NULL);
	k.expires = k.created + 86400 * 365;
	if (store_ke_put(e->d.store, &k, ke) != 0)
		fuzz_die("ke put");
	snprintf(e->keid, sizeof(e->keid), "%s", k.keid);
	secret_free(ke);
}

static void
fuzz_env_init(struct fuzz_env *e)
{
	char path[128];

	/*
	 * MEFD_FUZZ_LOG=1 shows what the procedures decided, to debug a seed;
	 * otherwise one level below error: silent (the fixture has no TLS session,
	 * so exporter-based procedures fail at error level on every input).
	 */
	log_set_level(getenv("MEFD_FUZZ_LOG") ? LOG_LVL_DEBUG : (enum log_level)(LOG_LVL_ERR - 1));
	snprintf(e->dir, sizeof(e->dir), "/tmp/mefd-fuzz-XXXXXX");
	if (!mkdtemp(e->dir))
		fuzz_die("mkdtemp");
	snprintf(path, sizeof(path), "%s/mef.db", e->dir);
	conf.fqdn = FUZZ_FQDN;
	conf.enrolment_expiry = 30 * 86400;
	conf.body_max = 65536;
	/* no rate limit: every fuzz input is the same identity */
	conf.handshake_rate = conf.request_rate = 6000000;
	conf.handshake_burst = conf.request_burst = 1000000;
	conf.addr_factor = 1;
	e->d.conf = &conf;
	/* a CA of its own, so the EST routes get as far as the CSR checks */
	snprintf(ca_crt, sizeof(ca_crt), "%s/ca.crt", e->dir);
	snprintf(ca_key, sizeof(ca_key), "%s/ca.key", e->dir);
	if (ca_generate(ca_crt, ca_key, "mefd fuzz CA", "", 86400) != 0)
		fuzz_die("ca_generate");
	conf.ca_certificate = ca_crt;
	conf.ca_private_key = ca_key;
	conf.ca_validity = 3600;
	e->d.kek = secret_new(WRAP_KEK_LEN);
	if (!e->d.kek || store_open(path, e->d.kek, false, &e->d.store) != 0)
		fuzz_die("store_open");
	if (mef_resolver_new(64, &e->d.resolver) != 0)
		fuzz_die("mef_resolver_new");
	fuzz_seed_clients(e->d.store);
	fuzz_seed_ke(e);
	e->peer.transport = TR_DTLS;
	snprintf(e->peer.addr, sizeof(e->peer.addr), "127.0.0.1:40000");
	snprintf(e->peer.psk_identity, sizeof(e->peer.psk_identity), "target@" FUZZ_FQDN);
	if (store_client_get(e->d.store, FUZZ_TARGET, &e->peer.client) != 0)
		fuzz_die("target get");
	e->peer.established = true;
}

/* The temp folder goes when the fuzzer exits (libFuzzer calls exit()). */
static void
fuzz_env_cleanup(void)
{
	char path[160];

	env.d.store = store_close(env.d.store);
	env.d.kek = secret_free(env.d.kek);
	for (const char *const *f = (const char *const[]){"mef.db", "mef.db-wal", "mef.db-shm",
							  "ca.crt", "ca.key", NULL}; *f; f++) {
		snprintf(path, sizeof(path), "%s/%s", env.dir, *f);
		unlink(path);
	}
	rmdir(env.dir);
}

struct fuzz_env *
fuzz_env(void)
{
	static int ready;

	if (!ready) {
		fuzz_env_init(&env);
		atexit(fuzz_env_cleanup);
		ready = 1;
	}
	return &env;
}

void
fuzz_dispatch(struct fuzz_env *e, struct mef_req *req)
{
	struct mef_resp resp;

	req->peer = &e->peer;
	router_dispatch(&e->d, req, &resp);
	if (resp.rsc < 2000 || resp.rsc > 6999)
		fuzz_die("response without a valid RSC");
	mef_resp_done(&resp);
}

char *
fuzz_strndup(const uint8_t *data, size_t len)
{
	char *s = malloc(len + 1);

	if (!s)
		fuzz_die("oom");
	memcpy(s, data, len);
	s[len] = '\0';
	return s;
}
