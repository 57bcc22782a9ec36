/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Prometheus metrics: a table of counter definitions, a bounded set of label
 * series per counter, a store-latency histogram, the group commit's batch
 * sizes and latency (one histogram and its row count), and a plain-HTTP listener
 * (a third MHD daemon, epoll mode, on the daemon's loop like httpb) that
 * renders them in the text exposition format 0.0.4 at GET /metrics.
 */
#include <limits.h>
#include <microhttpd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>

#include "mef/err.h"
#include "mef/kebatch.h"
#include "mef/log.h"
#include "mef/loop.h"
#include "mef/mefd.h"
#include "mef/metrics.h"
#include "mef/net.h"

#define METRICS_MAX_SERIES 64   /* per counter; label values come from fixed sets */
#define METRICS_MAX_LABELS 3
#define METRICS_LABELS_LEN 256
#define STORE_MAX_OPS 16
#define N_BUCKETS 10

static const struct metric_def {
	const char *name;
	const char *help;
	int n_labels;
	const char *labels[METRICS_MAX_LABELS];
} metric_defs[METRIC__MAX] = {
	[METRIC_HANDSHAKES] = {"mefd_handshakes_total", "(D)TLS handshakes by outcome", 3,
			       {"transport", "outcome", "reason"}},
	[METRIC_KE_GENERATED] = {"mefd_enrolment_keys_generated_total",
				 "Enrolment Keys (Ke) generated and stored", 0, {NULL}},
	[METRIC_FETCH] = {"mefd_fetch_total", "fetchCredentials requests", 1, {"outcome"}},
	[METRIC_KEY_REG] = {"mefd_key_registrations_total", "key registration requests", 1,
			    {"outcome"}},
	[METRIC_KEY_RETRIEVE] = {"mefd_key_retrievals_total", "key retrieval requests", 1,
				 {"outcome"}},
	[METRIC_CERT_ISSUED] = {"mefd_certificates_issued_total", "certificates issued", 0, {NULL}},
	[METRIC_CERT_REVOKED] = {"mefd_certificates_revoked_total", "certificates revoked", 0,
				 {NULL}},
	[METRIC_RATE_LIMITED] = {"mefd_rate_limited_total", "handshakes and requests refused by a rate limit",
				 2, {"kind", "scope"}},
	[METRIC_REQUESTS] = {"mefd_requests_total", "requests dispatched", 1, {"transport"}},
};

/* Upper bounds in seconds; the last bucket is +Inf. */
static const double store_bounds[N_BUCKETS - 1] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025,
						   0.005, 0.01, 0.05, 0.25};

struct series {
	char labels[METRICS_LABELS_LEN]; /* rendered: transport="dtls",outcome="ok" */
	uint64_t value;
};

struct counter {
	size_t n;
	struct series s[METRICS_MAX_SERIES];
};

struct store_hist {
	const char *op; /* a string literal of the caller */
	uint64_t buckets[N_BUCKETS];
	uint64_t count;
	double sum;
};

struct metrics {
	struct mefd *d;
	struct counter c[METRIC__MAX];
	struct store_hist h[STORE_MAX_OPS];
	size_t n_hist;
	struct store_hist commit; /* group commits (kebatch) */
	uint64_t commit_rows;
	double commit_phase[KEBATCH_PHASES]; /* seconds */
	struct MHD_Daemon *mhd;
	int epoll_fd;
	bool hooks;
};

/* ---- recording ---- */

/* Appends v to out as a Prometheus label value (escapes \, " and newline). */
static size_t
label_escape(char *out, size_t o, size_t cap, const char *v)
{
	for (; v && *v && o + 3 < cap; v++) {
		if (*v == '\\' || *v == '"' || *v == '\n') {
			out[o++] = '\\';
			out[o++] = *v == '\n' ? 'n' : *v;
		} else {
			out[o++] = *v;
		}
	}
	out[o] = '\0';
	return o;
}

static void
render_labels(const struct metric_def *def, va_list ap, char *out, size_t cap)
{
	size_t o = 0;

	out[0] = '\0';
	for (int i = 0; i < def->n_labels && o + 8 < cap; i++) {
		int n = snprintf(out + o, cap - o, "%s%s=\"", i ? "," : "", def->labels[i]);

		if (n < 0 || (size_t)n >= cap - o)
			break;
		o = label_escape(out, o + (size_t)n, cap, va_arg(ap, const char *));
		if (o + 2 < cap) {
			out[o++] = '"';
			out[o] = '\0';
		}
	}
}

void
metrics_inc(struct mefd *d, enum metric m, ...)
{
	struct counter *c;
	char labels[METRICS_LABELS_LEN];
	va_list ap;

	if (!d || !d->metrics || (unsigned)m >= METRIC__MAX)
		return;
	c = &d->metrics->c[m];
	va_start(ap, m);
	render_labels(&metric_defs[m], ap, labels, sizeof(labels));
	va_end(ap);
	for (size_t i = 0; i < c->n; i++) {
		if (strcmp(c->s[i].labels, labels) == 0) {
			c->s[i].value++;
			return;
		}
	}
	if (c->n == METRICS_MAX_SERIES) {
		log_debug("%s: series limit reached, {%s} not counted", metric_defs[m].name, labels);
		return;
	}
	snprintf(c->s[c->n].labels, sizeof(c->s[c->n].labels), "%s", labels);
	c->s[c->n++].value = 1;
}

uint64_t
metrics_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static struct store_hist *
hist_for(struct metrics *m, const char *op)
{
	for (size_t i = 0; i < m->n_hist; i++)
		if (strcmp(m->h[i].op, op) == 0)
			return &m->h[i];
	if (m->n_hist == STORE_MAX_OPS)
		return NULL;
	m->h[m->n_hist].op = op;
	return &m->h[m->n_hist++];
}

static void
hist_observe(struct store_hist *h, double s)
{
	size_t b = 0;

	while (b < N_BUCKETS - 1 && s > store_bounds[b])
		b++;
	h->buckets[b]++;
	h->count++;
	h->sum += s;
}

void
metrics_store_time(struct mefd *d, const char *op, uint64_t t0_us)
{
	struct store_hist *h;

	if (!d || !d->metrics || !(h = hist_for(d->metrics, op)))
		return;
	hist_observe(h, (double)(metrics_now_us() - t0_us) / 1e6);
}

void
metrics_group_commit(struct mefd *d, const struct kebatch_timing *t)
{
	uint64_t usec = 0;

	if (!d || !d->metrics)
		return;
	for (int i = 0; i < KEBATCH_PHASES; i++) {
		usec += t->us[i];
		d->metrics->commit_phase[i] += (double)t->us[i] / 1e6;
	}
	hist_observe(&d->metrics->commit, (double)usec / 1e6);
	d->metrics->commit_rows += t->rows;
}

/* ---- rendering ---- */

static void
render_counters(const struct metrics *m, FILE *f)
{
	for (int i = 0; i < METRIC__MAX; i++) {
		const struct metric_def *def = &metric_defs[i];
		const struct counter *c = &m->c[i];

		fprintf(f, "# HELP %s %s\n# TYPE %s counter\n", def->name, def->help, def->name);
		if (def->n_labels == 0)
			fprintf(f, "%s %llu\n", def->name,
				(unsigned long long)(c->n ? c->s[0].value : 0));
		for (size_t j = 0; def->n_labels && j < c->n; j++)
			fprintf(f, "%s{%s} %llu\n", def->name, c->s[j].labels,
				(unsigned long long)c->s[j].value);
	}
}

/* One histogram's series; op NULL: the metric has no op label. */
static void
render_hist(FILE *f, const char *name, const char *op, const struct store_hist *h)
{
	char lab[96] = "", sep[2] = "";
	uint64_t cum = 0;

	if (op) {
		snprintf(lab, sizeof(lab), "op=\"%s\"", op);
		sep[0] = ',';
	}
	for (size_t b = 0; b < N_BUCKETS; b++) {
		cum += h->buckets[b];
		if (b < N_BUCKETS - 1)
			fprintf(f, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, lab, sep, store_bounds[b],
				(unsigned long long)cum);
		else
			fprintf(f, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, lab, sep,
				(unsigned long long)cum);
	}
	fprintf(f, op ? "%s_sum{%s} %.9f\n" : "%s_sum%s %.9f\n", name, lab, h->sum);
	fprintf(f, op ? "%s_count{%s} %llu\n" : "%s_count%s %llu\n", name, lab,
		(unsigned long long)h->count);
}

/* The phase label of mefd_group_commit_phase_seconds_total, by enum kebatch_phase. */
static const char *const commit_phase_names[KEBATCH_PHASES] = {
	[KEBATCH_HANDOFF] = "handoff",
	[KEBATCH_WRITE] = "write",
	[KEBATCH_COMMIT] = "commit",
	[KEBATCH_NOTIFY] = "notify",
};

static void
render_store(const struct metrics *m, FILE *f)
{
	fputs("# HELP mefd_store_seconds latency of store calls made while serving\n"
	      "# TYPE mefd_store_seconds histogram\n", f);
	for (size_t i = 0; i < m->n_hist; i++)
		render_hist(f, "mefd_store_seconds", m->h[i].op, &m->h[i]);
	fputs("# HELP mefd_group_commit_seconds from a batch's hand-over to the writer thread until "
	      "it is on disk\n# TYPE mefd_group_commit_seconds histogram\n", f);
	render_hist(f, "mefd_group_commit_seconds", NULL, &m->commit);
	fprintf(f, "# HELP mefd_group_commit_rows_total rows (Ke, certificates, key registrations) "
		   "those batches wrote\n# TYPE mefd_group_commit_rows_total counter\n"
		   "mefd_group_commit_rows_total %llu\n", (unsigned long long)m->commit_rows);
	fputs("# HELP mefd_group_commit_phase_seconds_total where the group commits' time went\n"
	      "# TYPE mefd_group_commit_phase_seconds_total counter\n", f);
	for (int i = 0; i < KEBATCH_PHASES; i++)
		fprintf(f, "mefd_group_commit_phase_seconds_total{phase=\"%s\"} %.9f\n",
			commit_phase_names[i], m->commit_phase[i]);
}

/* Live values asked from the bindings at scrape time. */
static void
render_gauges(const struct mefd *d, FILE *f)
{
	fputs("# HELP mefd_sessions_active established or handshaking sessions per listener\n"
	      "# TYPE mefd_sessions_active gauge\n", f);
	if (d->coap)
		fprintf(f, "mefd_sessions_active{listener=\"coap\"} %u\n", coapb_active(d->coap));
	if (d->https_psk)
		fprintf(f, "mefd_sessions_active{listener=\"https-psk\"} %u\n",
			httpb_active(d->https_psk));
	if (d->https_cert)
		fprintf(f, "mefd_sessions_active{listener=\"https-cert\"} %u\n",
			httpb_active(d->https_cert));
	fputs("# HELP mefd_sessions_half_open (D)TLS handshakes not completed yet per listener\n"
	      "# TYPE mefd_sessions_half_open gauge\n", f);
	if (d->coap)
		fprintf(f, "mefd_sessions_half_open{listener=\"coap\"} %u\n", coapb_half_open(d->coap));
	if (d->https_psk)
		fprintf(f, "mefd_sessions_half_open{listener=\"https-psk\"} %u\n",
			httpb_half_open(d->https_psk));
	if (d->https_cert)
		fprintf(f, "mefd_sessions_half_open{listener=\"https-cert\"} %u\n",
			httpb_half_open(d->https_cert));
	fprintf(f, "# HELP mefd_build_info build of the running mefd\n# TYPE mefd_build_info gauge\n"
		   "mefd_build_info{version=\"%s\"} 1\n", MEFD_VERSION);
}

static char *
metrics_render(const struct metrics *m, size_t *ret_len)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (!f)
		return NULL;
	render_counters(m, f);
	render_store(m, f);
	render_gauges(m->d, f);
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	*ret_len = len;
	return buf;
}

/* ---- the listener ---- */

static enum MHD_Result
metrics_queue(struct MHD_Connection *conn, unsigned status, char *body, size_t len,
	      const char *ctype)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
	enum MHD_Result rc;

	if (!r) {
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
	rc = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return rc;
}

static enum MHD_Result
metrics_handler(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
		const char *version, const char *upload, size_t *upload_len, void **req_cls)
{
	struct metrics *m = cls;
	char *body;
	size_t len = 0;

	(void)version;
	(void)upload;
	if (*req_cls == NULL) { /* first call: headers only */
		*req_cls = m;
		return MHD_YES;
	}
	if (*upload_len) /* no bodies here */
		return MHD_NO;
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
		return metrics_queue(conn, MHD_HTTP_METHOD_NOT_ALLOWED, strdup("GET only\n"), 9,
				     "text/plain");
	if (strcmp(url, "/metrics") != 0)
		return metrics_queue(conn, MHD_HTTP_NOT_FOUND, strdup("try /metrics\n"), 13,
				     "text/plain");
	if (!(body = metrics_render(m, &len)))
		return MHD_NO;
	return metrics_queue(conn, MHD_HTTP_OK, body, len, "text/plain; version=0.0.4; charset=utf-8");
}

static void
metrics_on_fd(struct loop *l, int fd, uint32_t events, void *ctx)
{
	struct metrics *m = ctx;

	(void)l;
	(void)fd;
	(void)events;
	MHD_run(m->mhd);
}

static int
metrics_prepare(struct loop *l, void *ctx)
{
	struct metrics *m = ctx;
	MHD_UNSIGNED_LONG_LONG t;

	(void)l;
	if (MHD_get_timeout(m->mhd, &t) != MHD_YES)
		return -1;
	return t == 0 ? 1 : t > INT_MAX ? INT_MAX : (int)t;
}

static void
metrics_after(struct loop *l, void *ctx)
{
	struct metrics *m = ctx;

	(void)l;
	MHD_run(m->mhd); /* timeouts of idle scrapers */
}

static int
metrics_listen(struct metrics *m)
{
	const struct conf_addr *a = &m->d->conf->metrics_listen;
	const union MHD_DaemonInfo *di;

	m->mhd = MHD_start_daemon(MHD_USE_EPOLL | MHD_USE_ERROR_LOG, a->port, NULL, NULL,
				  metrics_handler, m, MHD_OPTION_SOCK_ADDR, (const struct sockaddr *)&a->ss,
				  MHD_OPTION_CONNECTION_LIMIT, (unsigned)16,
				  MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10,
				  MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)16384,
				  MHD_OPTION_SIGPIPE_HANDLED_BY_APP, 1, MHD_OPTION_END);
	if (!m->mhd) {
		log_err("cannot listen for metrics on %s", a->text);
		return MEF_EIO;
	}
	di = MHD_get_daemon_info(m->mhd, MHD_DAEMON_INFO_EPOLL_FD);
	m->epoll_fd = di ? di->epoll_fd : -1;
	if (m->epoll_fd < 0 || loop_add_fd(m->d->loop, m->epoll_fd, EPOLLIN, metrics_on_fd, m) != 0)
		return MEF_EIO;
	if (loop_add_prepare(m->d->loop, metrics_prepare, m) != 0 ||
	    loop_add_after(m->d->loop, metrics_after, m) != 0)
		return MEF_ENOMEM;
	m->hooks = true;
	log_info("metrics listening on %s", a->text);
	return 0;
}

int
metrics_new(struct mefd *d, struct metrics **ret)
{
	struct metrics *m = calloc(1, sizeof(*m));
	int r = 0;

	if (!m)
		return MEF_ENOMEM;
	m->d = d;
	m->epoll_fd = -1;
	if (d->conf->has_metrics && d->loop)
		r = metrics_listen(m);
	if (r != 0) {
		metrics_free(m);
		return r;
	}
	*ret = m;
	return 0;
}

struct metrics *
metrics_free(struct metrics *m)
{
	if (!m)
		return NULL;
	if (m->hooks)
		loop_del_hooks(m->d->loop, m);
	if (m->epoll_fd >= 0 && m->d->loop)
		loop_del_fd(m->d->loop, m->epoll_fd);
	if (m->mhd)
		MHD_stop_daemon(m->mhd);
	free(m);
	return NULL;
}
