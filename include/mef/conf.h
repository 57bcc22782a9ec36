/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The configuration: an INI file (decisions.md §6) parsed once, from one
 * table of keys, into an immutable struct mef_conf. All errors of a file are
 * reported in one run, each naming file:line and the key. Relative paths in
 * the file are resolved against the directory of the config file.
 */
#ifndef MEF_CONF_H
#define MEF_CONF_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#include "mef/log.h"

#define CONF_MAX_LISTEN 8

struct conf_addr {
	char text[300];              /* as written, for logs: "127.0.0.1:5684" */
	struct sockaddr_storage ss;  /* resolved numeric address with port */
	socklen_t len;
	uint16_t port;
};

struct mef_conf {
	char *path;                  /* absolute path of the file read */

	/* [mef] */
	char *fqdn;                  /* MEF FQDN, lower-case, mandatory */
	int64_t enrolment_expiry;    /* seconds; default 30d */
	bool require_sni;            /* host_name must equal fqdn */

	/* [store] */
	char *store_path;            /* SQLite file, mandatory with backend sqlite */
	char *kek_file;              /* 32-byte KEK (raw or hex), mandatory, mode 0600 */
	char *store_backend;         /* "sqlite" (default) or "postgresql" (docs/scale-out.md) */
	char *store_url;             /* postgresql://... without a password */
	char *store_password_file;   /* database password, mode 0600 (or %d/ credential) */
	unsigned client_cache;       /* individual PSK clients kept in memory; 0 = none; default 1024 */

	/* [coap]: each address gets a UDP/DTLS and a TCP/TLS endpoint */
	struct conf_addr coap_listen[CONF_MAX_LISTEN];
	size_t n_coap_listen;

	/* [https] */
	struct conf_addr https_psk_listen;
	bool has_https_psk;
	struct conf_addr https_cert_listen;
	bool has_https_cert;

	/* [tls]: the MEF's FQDN certificate; client_ca verifies client certificates */
	char *tls_certificate;
	char *tls_private_key;       /* mode 0600 */
	char *tls_client_ca;

	/* [ca] */
	char *ca_certificate;
	char *ca_private_key;        /* mode 0600 */
	int64_t ca_validity;         /* seconds; default 365d */
	char *ca_name_constraints;   /* `mefctl ca init`: nameConstraints in OpenSSL syntax */
	char *ca_upstream;           /* RA mode: https://HOST:PORT/.well-known/est of the real CA */
	char *ca_upstream_certificate; /* RA mode: our client certificate towards upstream */
	char *ca_upstream_key;       /* its key, mode 0600 */
	char *ca_upstream_ca;        /* CA bundle that verifies the upstream server */
	char *ca_crl_path;           /* URL path of the CRL on the HTTPS listeners */
	char *ca_ra_clients;         /* client IDs acting as registration authorities (any one SAN) */

	/* [log] */
	enum log_level log_level;

	/* [limits]: everything a peer can make us allocate or hold */
	unsigned max_sessions;         /* per listener; default 1024 */
	unsigned max_handshakes;       /* half-open (D)TLS handshakes; default 128 */
	unsigned session_timeout;      /* idle seconds before a session is dropped; default 60 */
	unsigned handshake_timeout;    /* seconds; default 10 */
	unsigned body_max;             /* request body bytes; default 65536 */
	unsigned shutdown_grace;       /* seconds to finish in-flight work on SIGTERM; default 5 */
	unsigned housekeeping_interval;/* seconds between expiry sweeps; default 60 */

	/* [mef] command_retry: retryDuration of NO_MORE_COMMANDS (ISO 8601 duration; mmef_cmd.c) */
	char *command_retry;
	unsigned handshake_rate;       /* handshakes per minute per identity (token bucket) */
	unsigned handshake_burst;      /* bucket size for handshakes */
	unsigned request_rate;         /* requests per minute per identity */
	unsigned request_burst;        /* bucket size for requests */
	unsigned addr_factor;          /* a source address gets factor x the identity's rate and burst */

	/* [metrics]: Prometheus text on its own plain-HTTP listener; off when unset */
	struct conf_addr metrics_listen;
	bool has_metrics;

	/* [audit]: append-only, hash-chained JSON lines; off when unset */
	char *audit_path;
};

/*
 * Reads and validates path. On success *ret is a new config (free with
 * conf_free). On failure returns MEF_ECONF (or MEF_ENOMEM) after writing
 * every problem as "file:line: [section] key: message" lines to errs.
 */
int conf_load(const char *path, struct mef_conf **ret, FILE *errs);

/* Frees; accepts NULL; returns NULL. */
struct mef_conf *conf_free(struct mef_conf *c);

/* Parses "30d", "12h", "15m", "90s", "3600" (seconds) into seconds. 0 or MEF_EINVAL. */
int conf_parse_duration(const char *s, int64_t *ret_seconds);

/* Parses "HOST:PORT" / "[v6]:PORT" (numeric host or "localhost"). 0 or MEF_EINVAL with *ret_why. */
int conf_parse_addr(const char *s, struct conf_addr *ret, const char **ret_why);

/* Prints the effective configuration (every key, defaults included) in INI form. */
void conf_dump(const struct mef_conf *c, FILE *out);

/* Prints the key table (section, key, type, default, meaning) as a Markdown table, for docs/config.md. */
void conf_doc(FILE *out);

#endif
