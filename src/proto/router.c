/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The route table: path pattern, operation, procedure and who may call it.
 * Authorisation that does not depend on the resource is enforced here, once,
 * before any procedure runs: an established (authenticated) session, and
 * decisions §3's originator rule (X-M2M-Origin / oneM2M-FR, if present, must
 * equal the authenticated client's ID, else RSC 4106).
 */
#include <stdio.h>
#include <string.h>

#include "mef/err.h"
#include "mef/kebatch.h"

#include "mef/log.h"
#include "mef/mefd.h"
#include "mef/loop.h"
#include "mef/metrics.h"
#include "mef/mmef.h"
#include "mef/ratelimit.h"
#include "mef/proc.h"
#include "mef/req.h"
#include "mef/est.h"

#define PATH_MAX_SEGS 8
#define SEG_MAX 384

enum route_auth {
	AUTH_ANY = 0,        /* any established client */
	AUTH_PSK_ONLY = 1,   /* only PSK-authenticated sessions */
	AUTH_CERT_ONLY = 2,  /* only certificate-authenticated sessions */
};

struct route {
	const char *pattern; /* segments separated by '/', "*" matches one; NULL: [ca] crl_path */
	enum mef_op op;
	proc_fn fn;
	enum route_auth auth;
	bool body;           /* accepts a request body */
	/* error body of this resource; NULL: proc_error's {"m2m:dbg": ...} */
	void (*fail)(struct mef_resp *resp, int rsc, const char *text);
};

static const struct route routes[] = {
	{"/mef", MEF_OP_RETRIEVE, proc_mefbase_retrieve, AUTH_ANY, false, NULL},
	{"/fetchCredentials/*/*", MEF_OP_RETRIEVE, proc_fetch_credentials, AUTH_ANY, false,
	 proc_fetch_fail},
	/* EST (mef/est.h, decisions §5): RFC 7030 paths on HTTPS, RFC 9148 paths on CoAP */
	{"/.well-known/est/cacerts", MEF_OP_RETRIEVE, proc_est_cacerts, AUTH_ANY, false, NULL},
	{"/.well-known/est/csrattrs", MEF_OP_RETRIEVE, proc_est_csrattrs, AUTH_ANY, false, NULL},
	{"/.well-known/est/simpleenroll", MEF_OP_CREATE, proc_est_enroll, AUTH_ANY, true, NULL},
	{"/.well-known/est/simplereenroll", MEF_OP_CREATE, proc_est_reenroll, AUTH_CERT_ONLY, true, NULL},
	{"/.well-known/est/serverkeygen", MEF_OP_CREATE, proc_est_serverkeygen, AUTH_ANY, true, NULL},
	{"/est/crts", MEF_OP_RETRIEVE, proc_est_cacerts, AUTH_ANY, false, NULL},
	{"/est/att", MEF_OP_RETRIEVE, proc_est_csrattrs, AUTH_ANY, false, NULL},
	{"/est/sen", MEF_OP_CREATE, proc_est_enroll, AUTH_ANY, true, NULL},
	{"/est/sren", MEF_OP_CREATE, proc_est_reenroll, AUTH_CERT_ONLY, true, NULL},
	{"/est/skg", MEF_OP_CREATE, proc_est_serverkeygen, AUTH_ANY, true, NULL},
	{NULL /* [ca] crl_path */, MEF_OP_RETRIEVE, proc_est_crl, AUTH_ANY, false, NULL},
	/* Mmef (mef/mmef.h): the procedure checks ownership / target lists (decisions §3) */
	{"/mef", MEF_OP_CREATE, proc_mmef_create, AUTH_ANY, true, NULL},
	{"/mef/*", MEF_OP_RETRIEVE, proc_mmef_retrieve, AUTH_ANY, false, NULL},
	{"/mef/*", MEF_OP_UPDATE, proc_mmef_update, AUTH_ANY, true, NULL},
	{"/mef/*", MEF_OP_DELETE, proc_mmef_delete, AUTH_ANY, false, NULL},
	{"/mef/*/cmd", MEF_OP_RETRIEVE, proc_mmef_cmd_retrieve, AUTH_ANY, false, NULL},
	{"/mef/*/cmd", MEF_OP_UPDATE, proc_mmef_cmd_update, AUTH_ANY, true, NULL},
};

struct path_segs {
	size_t n;
	char seg[PATH_MAX_SEGS][SEG_MAX];
};

/* Splits "/a/b/c" into segments; empty segments (//, trailing /) are refused. */
static int
split_path(const char *path, struct path_segs *ret)
{
	const char *p = path;

	ret->n = 0;
	if (!p || *p != '/')
		return -1;
	while (*p == '/') {
		const char *start = ++p;
		size_t len;

		while (*p && *p != '/')
			p++;
		len = (size_t)(p - start);
		if (len == 0 || len >= SEG_MAX || ret->n >= PATH_MAX_SEGS)
			return -1;
		memcpy(ret->seg[ret->n], start, len);
		ret->seg[ret->n][len] = '\0';
		ret->n++;
	}
	return *p ? -1 : 0;
}

/* Matches segs against a pattern; fills params with the "*" segments. */
static bool
route_match(const char *pattern, const struct path_segs *segs, const char **params, size_t *n_params)
{
	struct path_segs pat;

	if (split_path(pattern, &pat) != 0 || pat.n != segs->n)
		return false;
	*n_params = 0;
	for (size_t i = 0; i < pat.n; i++) {
		if (strcmp(pat.seg[i], "*") == 0) {
			if (*n_params < ROUTE_MAX_PARAMS)
				params[(*n_params)++] = segs->seg[i];
		} else if (strcmp(pat.seg[i], segs->seg[i]) != 0) {
			return false;
		}
	}
	return true;
}

static bool
auth_allows(enum route_auth a, const struct mef_peer *peer)
{
	switch (a) {
	case AUTH_ANY:
		return true;
	case AUTH_PSK_ONLY:
		return peer->client.kind == CRED_PSK || peer->client.kind == CRED_GROUP;
	case AUTH_CERT_ONLY:
		return peer->client.kind == CRED_CERT;
	}
	return false;
}

static const struct route *
route_find(const struct mefd *d, const struct mef_req *req, const struct path_segs *segs,
	   const char **params, size_t *n_params, bool *ret_path_known)
{
	*ret_path_known = false;
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		const char *pattern = routes[i].pattern ? routes[i].pattern : d->conf->ca_crl_path;

		if (!pattern || !route_match(pattern, segs, params, n_params))
			continue;
		*ret_path_known = true;
		if (routes[i].op == req->op)
			return &routes[i];
	}
	return NULL;
}

/* [limits] request buckets: RSC 4290 with max_age = seconds until a token is back. */
static int
router_limit(struct mefd *d, const struct mef_peer *peer, struct mef_resp *resp)
{
	const char *scope = "";
	unsigned wait = 0;

	if (ratelimit_take(d->ratelimit, d->conf, RL_REQUEST, peer->addr, peer->client.id,
			   loop_now_ms(), &wait, &scope) == 0)
		return 0;
	metrics_inc(d, METRIC_RATE_LIMITED, "request", scope);
	log_notice("%s %s: %s rate limited (%s), retry in %us", transport_name(peer->transport),
		   peer->addr, peer->client.id, scope, wait);
	proc_error(resp, RSC_TOO_MANY_REQUESTS, "rate limit exceeded");
	resp->max_age = wait;
	return MEF_EBUSY;
}

static void
route_fail(const struct route *rt, struct mef_resp *resp, int rsc, const char *text)
{
	if (rt->fail)
		rt->fail(resp, rsc, text);
	else
		proc_error(resp, rsc, text);
}

static void
route(struct mefd *d, struct mef_req *req, struct mef_resp *resp)
{
	static struct path_segs segs; /* single-threaded loop; keeps 3 KiB off the stack */
	const char *params[ROUTE_MAX_PARAMS] = {0};
	const struct route *rt;
	struct mef_peer *peer = req->peer;
	size_t n_params = 0;
	bool known;

	mef_resp_init(resp);
	d->counters.requests++;
	if (peer)
		metrics_inc(d, METRIC_REQUESTS, transport_name(peer->transport));
	if (!peer || !peer->established) {
		proc_error(resp, RSC_SECURITY_ASSOCIATION_REQUIRED, "no authenticated session");
		return;
	}
	/*
	 * Group commit (docs/performance.md): no answer before this session's
	 * Ke is on disk. A Ke that is still queued does not stop the procedure
	 * (router_hold_for_ke holds its answer instead); one that failed does.
	 */
	if (d->kebatch && !kebatch_queued(d->kebatch, peer->keid) &&
	    kebatch_require(d->kebatch, peer->keid) != 0) {
		proc_error(resp, RSC_INTERNAL_SERVER_ERROR, "enrolment key not stored");
		return;
	}
	if (router_limit(d, peer, resp) != 0)
		return;
	if (split_path(req->path, &segs) != 0) {
		proc_error(resp, RSC_NOT_FOUND, "malformed path");
		return;
	}
	rt = route_find(d, req, &segs, params, &n_params, &known);
	if (!rt) {
		proc_error(resp, known ? RSC_OPERATION_NOT_ALLOWED : RSC_NOT_FOUND,
			   known ? "operation not allowed on this resource" : "no such resource");
		return;
	}
	/* decisions §3: the authenticated identity decides who the requester is */
	if (req->origin && req->origin[0] && strcmp(req->origin, peer->client.id) != 0) {
		log_notice("%s %s: originator \"%.64s\" is not the authenticated client \"%s\"",
			   transport_name(peer->transport), peer->addr, req->origin, peer->client.id);
		route_fail(rt, resp, RSC_ORIGINATOR_NOT_AUTHENTICATED,
			   "originator does not match the authenticated identity");
		return;
	}
	if (!auth_allows(rt->auth, peer)) {
		route_fail(rt, resp, RSC_ORIGINATOR_HAS_NO_PRIVILEGE, "credential kind not allowed here");
		return;
	}
	if (!rt->body && req->body_len > 0) {
		route_fail(rt, resp, RSC_BAD_REQUEST, "this request takes no content");
		return;
	}
	rt->fn(d, req, params, n_params, resp);
}

/*
 * Group commit (docs/performance.md): a client never gets an answer whose
 * row (an issued certificate, a key registration) or whose session's Ke is
 * not on disk; 5000, the EST error, when it could not be stored. The
 * certificate was signed but nobody received it.
 */
void
router_settle(struct mefd *d, struct mef_resp *resp)
{
	const char *bad = NULL;

	if (!resp->pending[0])
		return;
	if (kebatch_require(d->kebatch, resp->pending) != 0)
		bad = resp->pending;
	else if (resp->pending_ke[0] && kebatch_require(d->kebatch, resp->pending_ke) != 0)
		bad = resp->pending_ke;
	if (bad) {
		log_err("row %s could not be stored: answering 5000", bad);
		mef_resp_done(resp); /* wipes a serverkeygen private key */
		mef_resp_init(resp);
		proc_error(resp, RSC_INTERNAL_SERVER_ERROR, "the result could not be stored");
	}
	resp->pending[0] = '\0';
	resp->pending_ke[0] = '\0';
}

/*
 * The answer of a session whose Ke is still queued waits for it: on the Ke
 * itself, or, when the procedure queued a row of its own, on that row,
 * which was queued after the Ke and so is committed with it or later
 * (router_settle then checks the Ke too). An enrolment thus waits for one
 * commit, not two.
 */
static void
router_hold_for_ke(struct mefd *d, const struct mef_req *req, struct mef_resp *resp)
{
	const struct mef_peer *peer = req->peer;

	if (!d->kebatch || !peer || !peer->established || !kebatch_queued(d->kebatch, peer->keid))
		return;
	if (!resp->pending[0])
		snprintf(resp->pending, sizeof(resp->pending), "%s", peer->keid);
	else
		snprintf(resp->pending_ke, sizeof(resp->pending_ke), "%s", peer->keid);
}

void
router_dispatch_nowait(struct mefd *d, struct mef_req *req, struct mef_resp *resp)
{
	route(d, req, resp);
	router_hold_for_ke(d, req, resp);
}

void
router_dispatch(struct mefd *d, struct mef_req *req, struct mef_resp *resp)
{
	router_dispatch_nowait(d, req, resp);
	router_settle(d, resp);
}
