/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Who is on a session, and the Enrolment Key it yields (TS-0003 8.3.2.1 step
 * 4, 8.3.2.2, 10.3.1). The bindings call mef_psk_lookup during a PSK
 * handshake and mef_session_established when any handshake completes; the
 * Ke is stored durably before the session can carry a request (decisions
 * §1.3: every completed handshake yields a new Ke, request or not).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "mef/audit.h"
#include "mef/clientcache.h"
#include "mef/err.h"
#include "mef/groupcache.h"
#include "mef/kdf.h"
#include "mef/kebatch.h"
#include "mef/log.h"
#include "mef/loop.h"
#include "mef/mefd.h"
#include "mef/metrics.h"
#include "mef/ratelimit.h"
#include "mef/store.h"
#include "mef/tlsx.h"

static bool
identity_is_sane(const char *s)
{
	size_t n = strnlen(s, MEF_ID_MAX);

	if (n == 0 || n >= MEF_ID_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return false;
	return true;
}

/* Expands a group's enrolee pattern: "{id}" = KpmID, "{local}" = part before '@'. */
static void
expand_enrolee_pattern(const char *pattern, const char *kpm_id, char *out, size_t outlen)
{
	static const struct {
		const char *token;
		bool local_only;
	} tokens[] = {{"{id}", false}, {"{local}", true}};
	size_t o = 0, local_len = strcspn(kpm_id, "@");

	if (!pattern[0]) {
		snprintf(out, outlen, "%s", kpm_id);
		return;
	}
	for (const char *p = pattern; *p && o + 1 < outlen;) {
		bool matched = false;

		for (size_t t = 0; t < sizeof(tokens) / sizeof(tokens[0]); t++) {
			size_t tl = strlen(tokens[t].token);
			size_t vl = tokens[t].local_only ? local_len : strlen(kpm_id);

			if (strncmp(p, tokens[t].token, tl) != 0)
				continue;
			if (vl > outlen - 1 - o)
				vl = outlen - 1 - o;
			memcpy(out + o, kpm_id, vl);
			o += vl;
			p += tl;
			matched = true;
			break;
		}
		if (!matched)
			out[o++] = *p++;
	}
	out[o] = '\0';
}

static void
client_from_group(const struct group_rec *g, const char *kpm_id, struct client_rec *c)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->id, sizeof(c->id), "%s", kpm_id);
	snprintf(c->admin_fqdn, sizeof(c->admin_fqdn), "%s", g->admin_fqdn);
	snprintf(c->psk_identity, sizeof(c->psk_identity), "%s", kpm_id);
	snprintf(c->group, sizeof(c->group), "%s", g->name);
	expand_enrolee_pattern(g->enrolee_pattern, kpm_id, c->enrolee_id, sizeof(c->enrolee_id));
	c->kind = CRED_GROUP;
	c->expiry = g->expiry;
	c->n_targets = g->n_targets;
	memcpy(c->targets, g->targets, sizeof(c->targets));
}

/*
 * The client a PSK callback resolved, kept for that handshake's completion
 * so mef_session_established does not run the same lookups again
 * (docs/performance.md). One entry serves one completion and lives at most
 * [limits] handshake_timeout; a miss simply resolves again. A client
 * disabled in between is refused at its next handshake, as it would be
 * right after this one.
 */
#define PSK_MEMO 32

struct psk_memo {
	char identity[MEF_ID_MAX];
	uint64_t at_ms;
	struct client_rec c;
};

/* What this file keeps between calls, in the daemon context (d->resolver). */
struct mef_resolver {
	struct groupcache *groups;
	struct clientcache *clients;
	struct psk_memo memo[PSK_MEMO];
	unsigned memo_next;
	/* the records being resolved: 5-6 KiB each, kept off the handshake stack */
	struct client_rec psk_client, session_client;
	struct ke_rec ke;
};

int
mef_resolver_new(unsigned client_cache, struct mef_resolver **ret)
{
	struct mef_resolver *res = calloc(1, sizeof(*res));

	if (!res || !(res->groups = groupcache_new()) ||
	    !(res->clients = clientcache_new(client_cache))) {
		if (res)
			groupcache_free(res->groups);
		free(res);
		return MEF_ENOMEM;
	}
	*ret = res;
	return 0;
}

struct mef_resolver *
mef_resolver_free(struct mef_resolver *res)
{
	if (res) {
		groupcache_free(res->groups);
		clientcache_free(res->clients);
		secret_wipe(res, sizeof(*res)); /* no key material, but client records */
		free(res);
	}
	return NULL;
}

/*
 * Resolves a PSK identity: an individual client wins over a group match
 * (issue 3); disabled clients, groups and group members are refused.
 * *ret_psk (may be NULL when only the client is wanted) is a new secret.
 */
static int
resolve_psk(struct mefd *d, const char *identity, struct client_rec *ret,
	    struct mef_secret **ret_psk, const char **why)
{
	struct mef_secret *kpm = NULL;
	struct group_hit hit;
	int64_t stamp = 0; /* set by store_cred_stamp on every path that reads it */
	uint64_t t0;
	int r;

	if (!identity_is_sane(identity)) {
		*why = "malformed PSK identity";
		return MEF_EINVAL;
	}
	t0 = metrics_now_us();
	/* one stamp, read first, for both caches */
	if ((r = store_cred_stamp(d->store, &stamp)) == 0)
		r = clientcache_find_psk(d->resolver->clients, d->store, stamp, identity, ret,
					 ret_psk ? &kpm : NULL);
	metrics_store_time(d, "client_find_psk", t0);
	if (r == 0) {
		if (ret->disabled) {
			*why = "client is disabled";
			kpm = secret_free(kpm);
			return MEF_EDISABLED;
		}
		if (ret_psk)
			*ret_psk = kpm;
		return 0;
	}
	if (r != MEF_ENOTFOUND) {
		*why = "store lookup failed";
		return r;
	}
	t0 = metrics_now_us();
	r = groupcache_match_at(d->resolver->groups, d->store, stamp, identity, &hit);
	metrics_store_time(d, "group_match", t0);
	if (r != 0) {
		*why = r == MEF_ENOTFOUND ? "unknown PSK identity" : "store lookup failed";
		return r;
	}
	if (hit.group->disabled || hit.member_disabled) {
		*why = hit.group->disabled ? "enrolment group is disabled" : "group member is disabled";
		return MEF_EDISABLED;
	}
	client_from_group(hit.group, identity, ret);
	if (ret_psk) {
		kpm = secret_new(MEF_KEY_LEN);
		r = kpm ? kdf_group_kpm(hit.secret->p, hit.secret->len, identity, kpm->p) : MEF_ENOMEM;
		if (r != 0) {
			*why = "group key derivation failed";
			secret_free(kpm);
			return r;
		}
		*ret_psk = kpm;
	}
	return 0;
}

static void
psk_memo_put(struct mef_resolver *res, const char *identity, const struct client_rec *c)
{
	struct psk_memo *m = &res->memo[res->memo_next++ % PSK_MEMO];

	snprintf(m->identity, sizeof(m->identity), "%s", identity);
	m->at_ms = loop_now_ms();
	m->c = *c;
}

static bool
psk_memo_take(struct mefd *d, const char *identity, struct client_rec *ret)
{
	uint64_t now = loop_now_ms();

	for (unsigned i = 0; i < PSK_MEMO; i++) {
		struct psk_memo *m = &d->resolver->memo[i];

		if (!m->identity[0] || strcmp(m->identity, identity) != 0)
			continue;
		m->identity[0] = '\0';
		if (now - m->at_ms > d->conf->handshake_timeout * 1000ull)
			continue;
		*ret = m->c;
		return true;
	}
	return false;
}

/* [limits] handshake buckets of the identity and the source address (before any store lookup). */
static int
limit_handshake(struct mefd *d, const char *addr, const char *identity, const char **why)
{
	const char *scope = "";
	unsigned wait = 0;

	if (ratelimit_take(d->ratelimit, d->conf, RL_HANDSHAKE, addr, identity, loop_now_ms(), &wait,
			   &scope) == 0)
		return 0;
	metrics_inc(d, METRIC_RATE_LIMITED, "handshake", scope);
	*why = strcmp(scope, "identity") == 0 ? "rate limited (identity)" : "rate limited (address)";
	return MEF_EBUSY;
}

int
mef_psk_lookup(struct mefd *d, enum mef_transport tr, const char *addr, const char *identity,
	       struct mef_secret **ret_psk)
{
	struct client_rec *c = &d->resolver->psk_client;
	const char *why = "";
	int r;

	r = limit_handshake(d, addr, identity, &why);
	if (r == 0)
		r = resolve_psk(d, identity ? identity : "", c, ret_psk, &why);
	if (r == 0)
		psk_memo_put(d->resolver, identity, c);
	if (r != 0) {
		log_notice("%s %s: handshake refused: %s (identity \"%.128s\")", transport_name(tr),
			   addr, why, identity ? identity : "");
		d->counters.handshakes_refused[tr]++;
		metrics_inc(d, METRIC_HANDSHAKES, transport_name(tr), "refused", why);
		/* a flood must not become one synced audit line per attempt: counted only */
		if (r != MEF_EBUSY)
			mef_audit(d, "handshake_refused", "transport", transport_name(tr), "addr", addr,
				  "identity", identity ? identity : "", "reason", why, NULL);
	}
	return r;
}

void
mef_handshake_refused(struct mefd *d, enum mef_transport tr, const char *addr, const char *why)
{
	log_notice("%s %s: handshake refused: %s", transport_name(tr), addr, why);
	d->counters.handshakes_refused[tr]++;
	metrics_inc(d, METRIC_HANDSHAKES, transport_name(tr), "refused", why);
	if (strncmp(why, "rate limited", 12) != 0) /* as in mef_psk_lookup */
		mef_audit(d, "handshake_refused", "transport", transport_name(tr), "addr", addr,
			  "reason", why, NULL);
}

/*
 * The certificate's entry among those the MEF CA issued (EST, docs/est.md),
 * matched by serial and SAN: 0 (issued here, still valid), MEF_ENOTFOUND
 * (not ours), MEF_EDISABLED (revoked: refused at every handshake).
 */
static int
issued_cert(struct mefd *d, const struct mef_peer *peer, struct cert_rec *ret, const char **why)
{
	char serial[STORE_SERIAL_MAX];
	int r;

	if (tlsx_peer_serial(&peer->tls, serial, sizeof(serial)) != 0)
		return MEF_ENOTFOUND;
	r = store_cert_get(d->store, serial, ret, NULL, NULL);
	for (int i = 0; r == 0 && i < peer->n_sans; i++) {
		if (strcmp(peer->sans[i], ret->san) != 0)
			continue;
		if (!ret->revoked)
			return 0;
		*why = "certificate revoked";
		return MEF_EDISABLED;
	}
	if (r != 0 && r != MEF_ENOTFOUND) {
		*why = "store lookup failed";
		return r;
	}
	return MEF_ENOTFOUND;
}

/* A certificate the MEF CA issued to a client registered some other way (e.g. PSK): that client. */
static int
resolve_issued(struct mefd *d, const struct cert_rec *ic, struct client_rec *ret, const char **why)
{
	int r = mef_client_resolve(d, ic->client_id, ret);

	if (r != 0) {
		*why = r == MEF_ENOTFOUND ? "certificate holder no longer registered" : "store lookup failed";
		return r;
	}
	if (ret->disabled) {
		*why = "client is disabled";
		return MEF_EDISABLED;
	}
	/* this session authenticated with a certificate (router AUTH_CERT_ONLY, EST identity) */
	ret->kind = CRED_CERT;
	snprintf(ret->cert_san, sizeof(ret->cert_san), "%s", ic->san);
	return 0;
}

/* The client behind a verified certificate: the first SAN registered with --cert-san. */
static int
resolve_cert(struct mefd *d, const struct mef_peer *peer, struct client_rec *ret, const char **why)
{
	struct cert_rec ic;
	int issued = issued_cert(d, peer, &ic, why);

	if (issued != 0 && issued != MEF_ENOTFOUND)
		return issued;
	for (int i = 0; i < peer->n_sans; i++) {
		int r = store_client_find_cert(d->store, peer->sans[i], ret);

		if (r == MEF_ENOTFOUND)
			continue;
		if (r != 0) {
			*why = "store lookup failed";
			return r;
		}
		if (ret->disabled) {
			*why = "client is disabled";
			return MEF_EDISABLED;
		}
		return 0;
	}
	if (issued == 0)
		return resolve_issued(d, &ic, ret, why);
	*why = peer->n_sans ? "no subjectAltName of the certificate is registered"
			    : "certificate has no subjectAltName";
	return MEF_ENOTFOUND;
}

/* decisions §2: with require_sni, host_name must equal the MEF FQDN. */
static int
check_sni(struct mefd *d, struct mef_peer *peer, const char **why)
{
	tlsx_sni(&peer->tls, peer->sni, sizeof(peer->sni));
	if (!d->conf->require_sni || strcasecmp(peer->sni, d->conf->fqdn) == 0)
		return 0;
	*why = peer->sni[0] ? "SNI host_name is not the MEF FQDN" : "SNI required but absent";
	return MEF_EDENIED;
}

/* TS-0003 10.3.1 / 10.3.4, decisions §1.1-§1.2: export, split, name and store Ke. */
static int
generate_ke(struct mefd *d, struct mef_peer *peer, const struct client_rec *c, struct ke_rec *k)
{
	uint8_t ekm[MEF_EKM_LEN], rel[MEF_RELID_LEN];
	struct mef_secret *ke = secret_new(MEF_KEY_LEN);
	int64_t now = (int64_t)time(NULL);
	int r;

	if (!ke)
		return MEF_ENOMEM;
	r = tlsx_export(&peer->tls, MEF_EXPORTER_BOOTSTRAP, ekm, sizeof(ekm));
	if (r == 0) {
		kdf_split_ekm(ekm, rel, ke->p);
		r = kdf_keid(rel, d->conf->fqdn, k->keid, sizeof(k->keid));
	}
	secret_wipe(ekm, sizeof(ekm));
	if (r == 0) {
		snprintf(k->client_id, sizeof(k->client_id), "%s", c->id);
		snprintf(k->enrolee_id, sizeof(k->enrolee_id), "%s", c->enrolee_id[0] ? c->enrolee_id : c->id);
		snprintf(k->transport, sizeof(k->transport), "%s", transport_name(peer->transport));
		k->created = now;
		k->expires = now + (c->expiry > 0 ? c->expiry : d->conf->enrolment_expiry);
		k->revoked = false;
		uint64_t t0 = metrics_now_us();

		/* group commit: router_dispatch answers nothing on this session before it is durable */
		r = d->kebatch ? kebatch_put(d->kebatch, k, ke) : store_ke_put(d->store, k, ke);
		metrics_store_time(d, "ke_put", t0);
	}
	secret_free(ke);
	return r;
}

int
mef_session_established(struct mefd *d, struct mef_peer *peer)
{
	struct client_rec *c = &d->resolver->session_client;
	struct ke_rec *k = &d->resolver->ke;
	const char *why = "";
	int r;

	peer->established = false;
	if (peer->psk_identity[0])
		r = psk_memo_take(d, peer->psk_identity, c) ? 0
							  : resolve_psk(d, peer->psk_identity, c, NULL, &why);
	else
		r = resolve_cert(d, peer, c, &why);
	/* PSK handshakes were counted in mef_psk_lookup; certificates are known only now */
	if (r == 0 && !peer->psk_identity[0])
		r = limit_handshake(d, peer->addr, c->id, &why);
	if (r == 0)
		r = check_sni(d, peer, &why);
	if (r == 0) {
		r = generate_ke(d, peer, c, k);
		if (r != 0)
			why = r == MEF_ECRYPTO ? "key export failed" : "storing the enrolment key failed";
	}
	if (r != 0) {
		mef_handshake_refused(d, peer->transport, peer->addr, why);
		return r;
	}
	peer->client = *c;
	snprintf(peer->keid, sizeof(peer->keid), "%s", k->keid);
	peer->established = true;
	d->counters.handshakes_ok[peer->transport]++;
	d->counters.ke_generated++;
	metrics_inc(d, METRIC_HANDSHAKES, transport_name(peer->transport), "ok", "none");
	metrics_inc(d, METRIC_KE_GENERATED);
	mef_audit(d, "bootstrap", "transport", transport_name(peer->transport), "addr", peer->addr,
		  "client", c->id, "credential", c->kind == CRED_CERT ? "certificate" : "psk", "keid",
		  k->keid, NULL);
	log_info("%s %s: %s %s bootstrapped (%s, %s): KeID %s stored", transport_name(peer->transport),
		 peer->addr, c->kind == CRED_CERT ? "certificate client" : "PSK client", c->id,
		 tlsx_version(&peer->tls), tlsx_cipher(&peer->tls), k->keid);
	return 0;
}

int
mef_client_resolve(struct mefd *d, const char *id, struct client_rec *ret)
{
	struct group_hit hit;
	int r;

	r = store_client_get(d->store, id, ret);
	if (r != MEF_ENOTFOUND)
		return r;
	r = groupcache_match(d->resolver->groups, d->store, id, &hit);
	if (r != 0)
		return r;
	client_from_group(hit.group, id, ret);
	return 0;
}
