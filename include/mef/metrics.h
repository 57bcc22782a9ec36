/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Prometheus metrics: labelled counters any module bumps with metrics_inc(),
 * a store-latency histogram, and a plain-HTTP listener ([metrics] listen)
 * that renders them with the live gauges (sessions, build info) in the text
 * exposition format. All calls accept d->metrics == NULL (mefctl, tests,
 * metrics not configured) and then only keep nothing.
 */
#ifndef MEF_METRICS_H
#define MEF_METRICS_H

#include <stdint.h>

struct mefd;
struct metrics;

/*
 * The counters. Each takes exactly the label values listed, as const char *,
 * in this order. Label values must come from a small fixed set (reason texts
 * are string literals in the code), never from peer input.
 */
enum metric {
	METRIC_HANDSHAKES,     /* mefd_handshakes_total{transport,outcome,reason}; outcome ok|refused */
	METRIC_KE_GENERATED,   /* mefd_enrolment_keys_generated_total */
	METRIC_FETCH,          /* mefd_fetch_total{outcome}; ok|refused */
	METRIC_KEY_REG,        /* mefd_key_registrations_total{outcome}; ok|refused */
	METRIC_KEY_RETRIEVE,   /* mefd_key_retrievals_total{outcome}; ok|refused */
	METRIC_CERT_ISSUED,    /* mefd_certificates_issued_total */
	METRIC_CERT_REVOKED,   /* mefd_certificates_revoked_total */
	METRIC_RATE_LIMITED,   /* mefd_rate_limited_total{kind,scope}; handshake|request, identity|address */
	METRIC_REQUESTS,       /* mefd_requests_total{transport} */
	METRIC__MAX,
};

/* Adds 1 to counter m with its label values (see enum metric). */
void metrics_inc(struct mefd *d, enum metric m, ...);

/* Monotonic microseconds, for timing store calls. */
uint64_t metrics_now_us(void);
/* Records one store call of kind op ("client_find_psk", "ke_put", ...) that began at t0_us. */
void metrics_store_time(struct mefd *d, const char *op, uint64_t t0_us);
/* Records one group commit (mef/kebatch.h, kebatch_on_batch): its rows and its phases. */
struct kebatch_timing;
void metrics_group_commit(struct mefd *d, const struct kebatch_timing *t);

/*
 * Creates the registry and, when d->conf->has_metrics, the listener on
 * d->loop. 0, MEF_ENOMEM or MEF_EIO (cannot listen: logged).
 */
int metrics_new(struct mefd *d, struct metrics **ret);
/* Stops the listener and frees; accepts NULL; returns NULL. */
struct metrics *metrics_free(struct metrics *m);

#endif
