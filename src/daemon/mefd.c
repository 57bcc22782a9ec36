/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The daemon's life cycle around struct mefd: build the context (KEK, store,
 * loop, bindings), signals (SIGTERM/SIGINT drain and stop, SIGHUP reload),
 * systemd notification and watchdog, and the housekeeping sweep.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <systemd/sd-daemon.h>
#include <time.h>

#include "daemon_internal.h"
#include "mef/audit.h"
#include "mef/err.h"
#include "mef/est.h"
#include "mef/kebatch.h"
#include "mef/log.h"
#include "mef/loop.h"
#include "mef/metrics.h"
#include "mef/mmef.h"
#include "mef/net.h"
#include "mef/ratelimit.h"
#include "mef/store.h"

#define DRAIN_POLL_MS 100
#define RATELIMIT_SLOTS 16384 /* buckets; fixed memory whatever peers do */

static void
notify(struct mefd *d, const char *state)
{
	if (d->notify)
		(void)sd_notify(0, state);
}

static void
housekeeping(struct loop *l, void *ctx)
{
	struct mefd *d = ctx;
	unsigned n = 0;
	int r;

	(void)l;
	r = store_ke_sweep(d->store, (int64_t)time(NULL), &n);
	if (r != 0)
		log_warn("expiry sweep failed: %s", mef_strerror(r));
	else if (n)
		log_info("expiry sweep deleted %u enrolment key(s)", n);
	mmef_sweep(d);
}

static void
watchdog_ping(struct loop *l, void *ctx)
{
	(void)l;
	notify(ctx, "WATCHDOG=1");
}

static unsigned
active_sessions(struct mefd *d)
{
	return (d->coap ? coapb_active(d->coap) : 0) + (d->https_psk ? httpb_active(d->https_psk) : 0) +
	       (d->https_cert ? httpb_active(d->https_cert) : 0);
}

static void
drain_check(struct loop *l, void *ctx)
{
	struct mefd *d = ctx;
	unsigned n = active_sessions(d);

	if (n == 0 || loop_now_ms() >= d->drain_deadline) {
		if (n)
			log_notice("shutdown grace over, closing %u session(s)", n);
		loop_stop(l);
	}
}

/* SIGTERM/SIGINT: stop accepting, let in-flight work finish within shutdown_grace. */
static void
begin_shutdown(struct mefd *d)
{
	if (d->stopping)
		return;
	d->stopping = true;
	notify(d, "STOPPING=1");
	log_notice("stopping: no new sessions, %u active", active_sessions(d));
	if (d->coap)
		coapb_stop_accepting(d->coap);
	if (d->https_psk)
		httpb_stop_accepting(d->https_psk);
	if (d->https_cert)
		httpb_stop_accepting(d->https_cert);
	d->drain_deadline = loop_now_ms() + d->conf->shutdown_grace * 1000ull;
	if (active_sessions(d) == 0 ||
	    loop_add_timer(d->loop, DRAIN_POLL_MS, DRAIN_POLL_MS, drain_check, d, NULL) != 0)
		loop_stop(d->loop);
}

static void
on_signal(struct loop *l, int signo, void *ctx)
{
	(void)l;
	if (signo == SIGHUP)
		mefd_reload(ctx);
	else
		begin_shutdown(ctx);
}

static int
setup_timers(struct mefd *d)
{
	uint64_t usec = 0;
	int r;

	r = loop_add_timer(d->loop, 1000, d->conf->housekeeping_interval * 1000ull, housekeeping, d,
			   &d->housekeeping_timer);
	if (r == 0 && d->notify && sd_watchdog_enabled(0, &usec) > 0 && usec > 0)
		r = loop_add_timer(d->loop, usec / 2000, usec / 2000, watchdog_ping, d, NULL);
	return r;
}

static int
open_bindings(struct mefd *d)
{
	int r = 0;

	if (d->conf->n_coap_listen)
		r = coapb_new(d, &d->coap);
	if (r == 0 && d->conf->has_https_psk)
		r = httpb_new(d, HTTPB_PSK, &d->https_psk);
	if (r == 0 && d->conf->has_https_cert)
		r = httpb_new(d, HTTPB_CERT, &d->https_cert);
	return r;
}

int
mefd_open_store(struct mefd *d, bool readonly)
{
	const char *why = "";
	int r;

	r = secret_read_file(d->conf->kek_file, 32, &d->kek, &why);
	if (r != 0) {
		log_err("%s: [store] kek_file %s: %s", d->conf->path, d->conf->kek_file, why);
		return r;
	}
	r = store_open_conf(d->conf, d->kek, readonly, &d->store);
	if (r != 0)
		log_err("cannot open store %s: %s",
			d->conf->store_path ? d->conf->store_path : d->conf->store_url, mef_strerror(r));
	return r;
}

/*
 * Group commit (docs/performance.md): the Ke rows queued during one loop
 * turn go to the writer thread before the loop sleeps; what queues while it
 * writes goes next, so batches grow with the disk's latency. A request on a
 * session with a queued Ke waits for it (router_dispatch); HTTPS answers
 * are held instead (kebatch_defer) and released when their batch is done.
 */
static int
kebatch_prepare(struct loop *l, void *ctx)
{
	struct mefd *d = ctx;

	(void)l;
	kebatch_kick(d->kebatch);
	/* released answers are sent by the after hooks (MHD_run): do not sleep first */
	return kebatch_take_released(d->kebatch) ? 0 : -1;
}

static void
kebatch_io(struct loop *l, int fd, uint32_t events, void *ctx)
{
	struct mefd *d = ctx;

	(void)l;
	(void)fd;
	(void)events;
	kebatch_on_fd(d->kebatch);
}

static void
group_commit_done(void *ctx, const struct kebatch_timing *t)
{
	metrics_group_commit(ctx, t);
}

int
mefd_start(struct mefd *d)
{
	static const int sigs[] = {SIGTERM, SIGINT, SIGHUP};
	int r;

	d->notify = getenv("NOTIFY_SOCKET") != NULL;
	d->loop = loop_new();
	if (!d->loop)
		return MEF_ENOMEM;
	r = loop_add_signals(d->loop, sigs, 3, on_signal, d);
	if (r == 0)
		r = metrics_new(d, &d->metrics);
	if (r == 0 && !(d->ratelimit = ratelimit_new(RATELIMIT_SLOTS)))
		r = MEF_ENOMEM;
	if (r == 0)
		r = mef_resolver_new(d->conf->client_cache, &d->resolver);
	if (r == 0 && d->conf->audit_path && (r = audit_open(d->conf->audit_path, &d->audit)) != 0)
		log_err("cannot open the audit trail %s", d->conf->audit_path);
	if (r == 0 && d->conf->store_path &&
	    (d->kebatch = kebatch_new(d->store, d->conf->store_path, d->kek)) &&
	    (r = loop_add_fd(d->loop, kebatch_fd(d->kebatch), EPOLLIN, kebatch_io, d)) == 0)
		r = loop_add_prepare(d->loop, kebatch_prepare, d);
	/* audit lines become durable with the group commit, not one fdatasync each */
	if (r == 0 && d->kebatch) {
		audit_defer_sync(d->audit, kebatch_sync_with_next, d->kebatch);
		kebatch_on_batch(d->kebatch, group_commit_done, d);
	}
	if (r == 0)
		r = open_bindings(d);
	if (r == 0)
		r = setup_timers(d);
	if (r != 0)
		log_err("startup failed: %s", mef_strerror(r));
	return r;
}

int
mefd_run(struct mefd *d)
{
	int r;

	notify(d, "READY=1");
	log_notice("mefd %s serving %s", MEFD_VERSION, d->conf->fqdn);
	r = loop_run(d->loop);
	log_notice("mefd stopped");
	return r;
}

void
mefd_teardown(struct mefd *d)
{
	d->coap = coapb_free(d->coap);
	d->https_psk = httpb_free(d->https_psk);
	d->https_cert = httpb_free(d->https_cert);
	d->metrics = metrics_free(d->metrics);
	d->audit = audit_close(d->audit);
	d->ratelimit = ratelimit_free(d->ratelimit);
	d->loop = loop_free(d->loop);
	d->est = est_free(d->est);
	d->resolver = mef_resolver_free(d->resolver);
	if (kebatch_sync(d->kebatch) != 0)
		log_err("some enrolment keys could not be stored at exit");
	d->kebatch = kebatch_free(d->kebatch);
	d->store = store_close(d->store);
	d->kek = secret_free(d->kek);
	d->conf = conf_free(d->conf);
	mefd_retired_free(d);
}
