/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The transport bindings. coapb: libcoap (OpenSSL) with a UDP/DTLS and a
 * TCP/TLS endpoint per [coap] listen address. httpb: one libmicrohttpd
 * (GnuTLS) daemon per HTTPS listener, PSK or certificate. Both register their
 * fds with the daemon's loop, translate requests to struct mef_req and call
 * router_dispatch().
 */
#ifndef MEF_NET_H
#define MEF_NET_H

#include <stdbool.h>

struct mefd;
struct mef_conf;
struct coapb;
struct httpb;

/* Creates the CoAP context and endpoints from d->conf and registers with d->loop. */
int coapb_new(struct mefd *d, struct coapb **ret);
/* Applies a new config (TLS credentials, limits) without dropping sessions. */
int coapb_reload(struct coapb *c, const struct mef_conf *conf);
/* Stops taking new sessions (shutdown); existing ones finish. */
void coapb_stop_accepting(struct coapb *c);
/* Number of live sessions (for the shutdown drain). */
unsigned coapb_active(struct coapb *c);
/* Sessions whose (D)TLS handshake has not completed yet. */
unsigned coapb_half_open(struct coapb *c);
struct coapb *coapb_free(struct coapb *c);

enum httpb_kind { HTTPB_PSK = 1, HTTPB_CERT = 2 };

int httpb_new(struct mefd *d, enum httpb_kind kind, struct httpb **ret);
int httpb_reload(struct httpb *h, const struct mef_conf *conf);
void httpb_stop_accepting(struct httpb *h);
unsigned httpb_active(struct httpb *h);
unsigned httpb_half_open(struct httpb *h);
struct httpb *httpb_free(struct httpb *h);

#endif
