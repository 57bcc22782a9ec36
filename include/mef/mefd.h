/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The one daemon context, and the core entry points the transport bindings
 * call: PSK lookup during a handshake, and "session established" when a
 * handshake completes (identity resolved, Ke exported and stored). Everything
 * the daemon owns hangs off struct mefd; there is no other mutable global.
 */
#ifndef MEF_MEFD_H
#define MEF_MEFD_H

#include <stdbool.h>
#include <stdint.h>

#include "mef/conf.h"
#include "mef/req.h"
#include "mef/secret.h"
#include "mef/store.h"

struct loop;
struct coapb;
struct httpb;
struct retired_conf;
struct metrics;
struct audit;
struct ratelimit;
struct est;
struct mef_resolver;

struct mef_counters {
	uint64_t handshakes_ok[TR__MAX];
	uint64_t handshakes_refused[TR__MAX];
	uint64_t ke_generated;
	uint64_t requests;
	uint64_t fetch_ok;
	uint64_t fetch_refused;
};

struct mefd {
	struct mef_conf *conf;        /* current config; replaced whole on reload */
	struct mef_secret *kek;       /* key-encryption key for the store */
	struct store *store;
	struct loop *loop;
	struct coapb *coap;
	struct httpb *https_psk;
	struct httpb *https_cert;
	bool stopping;
	uint64_t drain_deadline;      /* once stopping: loop_now_ms() at which open sessions are closed */
	bool notify;                  /* NOTIFY_SOCKET is set */
	int housekeeping_timer;
	struct retired_conf *retired; /* configs replaced by reloads; freed at exit */
	struct mef_counters counters;
	struct metrics *metrics;      /* src/ops/metrics.c; NULL when not created */
	struct audit *audit;          /* src/ops/audit.c; NULL when [audit] path is unset */
	struct ratelimit *ratelimit;  /* src/ops/ratelimit.c; NULL = no limits */
	struct est *est;              /* src/est/: CA handle, CRL cache; built on first use */
	struct kebatch *kebatch;      /* group commit of Ke (src/store/sqlite_kebatch.c); NULL = one by one */
	struct mef_resolver *resolver; /* src/mef/session.c: group and client caches, PSK memo; mef_resolver_new */
};

/*
 * What mef_psk_lookup, mef_session_established and mef_client_resolve keep
 * between calls: the in-memory enrolment groups (mef/groupcache.h), up to
 * client_cache individual PSK clients (mef/clientcache.h, [store]
 * client_cache) and the PSK memo. Required before any of them is called.
 * Free wipes it.
 */
int mef_resolver_new(unsigned client_cache, struct mef_resolver **ret);
struct mef_resolver *mef_resolver_free(struct mef_resolver *res);

/*
 * During a PSK handshake: resolves identity (individual client first, then
 * an enrolment group), refuses unknown, disabled or expired identities with
 * one log line naming the reason. On success *ret_psk is a new secret.
 * 0, MEF_ENOTFOUND, MEF_EDISABLED, MEF_ESTORE.
 */
int mef_psk_lookup(struct mefd *d, enum mef_transport tr, const char *addr, const char *identity,
		   struct mef_secret **ret_psk);

/*
 * When a (D)TLS handshake has completed: peer->transport, addr, tls and
 * psk_identity (PSK) or sans (certificate, chain already verified) are set by
 * the binding. Resolves the client, enforces require_sni, exports
 * EXPORTER-oneM2M-Bootstrap, derives Ke/KeID and stores them durably, then
 * marks the peer established. On failure the binding must close the session
 * and serve nothing on it. Logs once (success at info, refusal at notice).
 */
int mef_session_established(struct mefd *d, struct mef_peer *peer);

/*
 * The client record of id: an individual client, or a group member
 * synthesised from its enrolment group. 0, MEF_ENOTFOUND or MEF_ESTORE.
 */
int mef_client_resolve(struct mefd *d, const char *id, struct client_rec *ret);

/* Counts a handshake refused by the TLS layer itself (bad key, bad certificate). */
void mef_handshake_refused(struct mefd *d, enum mef_transport tr, const char *addr, const char *why);

#endif
