/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The INI reader and the one table of keys behind struct mef_conf. A key row
 * names its section, type, field offset, default and bounds; a type row says
 * how to parse, check and print a value, so no keyword ladder exists. Every
 * problem is reported as file:line and reading goes on; a cross-key pass
 * follows (style.md rules 9-10). This module never logs.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mef/conf.h"
#include "mef/err.h"
#include "mef/secret.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define F(field) offsetof(struct mef_conf, field)
#define DAY 86400LL

enum conf_type {
	CT_STRING,
	CT_PATH,         /* any file; its directory must exist (the store) */
	CT_FILE,         /* must exist and be readable (certificates) */
	CT_PRIVATE_PATH, /* must exist, readable, no group/other access (keys) */
	CT_BOOL,
	CT_DURATION,
	CT_UINT,
	CT_ADDR,
	CT_ADDR_LIST,
	CT_LOG_LEVEL,
	CT_FQDN,
};

struct conf_key {
	const char *section;
	const char *key;
	enum conf_type type;
	size_t off;       /* the field in struct mef_conf */
	size_t aux;       /* CT_ADDR: its bool has_ flag; CT_ADDR_LIST: its size_t count */
	const char *def;  /* default, parsed like file text; NULL = unset */
	bool mandatory;
	int64_t min, max; /* CT_UINT and CT_DURATION bounds */
	const char *help;
};

static const struct conf_key conf_keys[] = {
	{"mef", "fqdn", CT_FQDN, F(fqdn), 0, NULL, true, 0, 0,
	 "DNS name of this MEF (stored lower-case)"},
	{"mef", "enrolment_expiry", CT_DURATION, F(enrolment_expiry), 0, "30d", false, 1, 100 * 365 * DAY,
	 "default lifetime of an enrolment (Ke)"},
	{"mef", "require_sni", CT_BOOL, F(require_sni), 0, "no", false, 0, 0,
	 "TLS server name must equal fqdn"},
	{"mef", "command_retry", CT_STRING, F(command_retry), 0, "PT1H", false, 0, 0,
	 "retryDuration (ISO 8601) sent with NO_MORE_COMMANDS"},
	{"store", "path", CT_PATH, F(store_path), 0, NULL, false, 0, 0,
	 "SQLite database file; its directory must exist (mandatory with backend sqlite)"},
	{"store", "kek_file", CT_PRIVATE_PATH, F(kek_file), 0, NULL, true, 0, 0,
	 "32-byte key-encryption key (raw or hex), mode 0600"},
	{"store", "backend", CT_STRING, F(store_backend), 0, "sqlite", false, 0, 0,
	 "sqlite, or postgresql: several instances share one database (docs/scale-out.md)"},
	{"store", "url", CT_STRING, F(store_url), 0, NULL, false, 0, 0,
	 "backend postgresql: postgresql://USER@HOST:PORT/DB?... (no password here)"},
	{"store", "password_file", CT_PRIVATE_PATH, F(store_password_file), 0, NULL, false, 0, 0,
	 "backend postgresql: file holding the database password, mode 0600"},
	{"store", "client_cache", CT_UINT, F(client_cache), 0, "1024", false, 0, 1000000,
	 "individual PSK clients kept in memory, with their opened PSK; 0 = ask the store every time"},
	{"coap", "listen", CT_ADDR_LIST, F(coap_listen), F(n_coap_listen), NULL, false, 0, 0,
	 "HOST:PORT[, ...]: DTLS on UDP and TLS on TCP"},
	{"https", "psk_listen", CT_ADDR, F(https_psk_listen), F(has_https_psk), NULL, false, 0, 0,
	 "HOST:PORT for HTTPS with TLS-PSK"},
	{"https", "cert_listen", CT_ADDR, F(https_cert_listen), F(has_https_cert), NULL, false, 0, 0,
	 "HOST:PORT for HTTPS with client certificates"},
	{"tls", "certificate", CT_FILE, F(tls_certificate), 0, NULL, false, 0, 0,
	 "PEM certificate (chain) of the MEF"},
	{"tls", "private_key", CT_PRIVATE_PATH, F(tls_private_key), 0, NULL, false, 0, 0,
	 "PEM private key of the MEF, mode 0600"},
	{"tls", "client_ca", CT_FILE, F(tls_client_ca), 0, NULL, false, 0, 0,
	 "PEM CA bundle that verifies client certificates"},
	{"ca", "certificate", CT_FILE, F(ca_certificate), 0, NULL, false, 0, 0,
	 "PEM certificate of the issuing CA"},
	{"ca", "private_key", CT_PRIVATE_PATH, F(ca_private_key), 0, NULL, false, 0, 0,
	 "PEM private key of the issuing CA, mode 0600"},
	{"ca", "validity", CT_DURATION, F(ca_validity), 0, "365d", false, 1, 100 * 365 * DAY,
	 "lifetime of issued certificates"},
	{"ca", "name_constraints", CT_STRING, F(ca_name_constraints), 0, NULL, false, 0, 0,
	 "mefctl ca init: nameConstraints, e.g. permitted;URI:.example.net"},
	{"ca", "upstream", CT_STRING, F(ca_upstream), 0, NULL, false, 0, 0,
	 "RA mode: https://HOST:PORT/.well-known/est of the EST server that signs"},
	{"ca", "upstream_certificate", CT_FILE, F(ca_upstream_certificate), 0, NULL, false, 0, 0,
	 "RA mode: PEM client certificate presented upstream"},
	{"ca", "upstream_key", CT_PRIVATE_PATH, F(ca_upstream_key), 0, NULL, false, 0, 0,
	 "RA mode: its PEM private key, mode 0600"},
	{"ca", "upstream_ca", CT_FILE, F(ca_upstream_ca), 0, NULL, false, 0, 0,
	 "RA mode: PEM CA bundle that verifies the upstream server"},
	{"ca", "crl_path", CT_STRING, F(ca_crl_path), 0, "/crl.der", false, 0, 0,
	 "URL path at which the HTTPS listeners serve the CRL (DER)"},
	{"ca", "ra_clients", CT_STRING, F(ca_ra_clients), 0, NULL, false, 0, 0,
	 "client IDs (comma-separated) that may enrol any one SAN, as an RA"},
	{"log", "level", CT_LOG_LEVEL, F(log_level), 0, "info", false, 0, 0,
	 "error, warning, notice, info or debug"},
	{"limits", "max_sessions", CT_UINT, F(max_sessions), 0, "1024", false, 1, 1000000,
	 "sessions per listener"},
	{"limits", "max_handshakes", CT_UINT, F(max_handshakes), 0, "128", false, 1, 100000,
	 "half-open (D)TLS handshakes"},
	{"limits", "session_timeout", CT_UINT, F(session_timeout), 0, "60", false, 1, 86400,
	 "idle seconds before a session is dropped"},
	{"limits", "handshake_timeout", CT_UINT, F(handshake_timeout), 0, "10", false, 1, 3600,
	 "seconds allowed for a handshake"},
	{"limits", "body_max", CT_UINT, F(body_max), 0, "65536", false, 256, 16777216,
	 "largest request body in bytes"},
	{"limits", "shutdown_grace", CT_UINT, F(shutdown_grace), 0, "5", false, 0, 3600,
	 "seconds to finish in-flight work on SIGTERM"},
	{"limits", "housekeeping_interval", CT_UINT, F(housekeeping_interval), 0, "60", false, 1, 86400,
	 "seconds between expiry sweeps"},
	{"limits", "handshake_rate", CT_UINT, F(handshake_rate), 0, "120", false, 1, 6000000,
	 "handshakes per minute per identity (token bucket refill)"},
	{"limits", "handshake_burst", CT_UINT, F(handshake_burst), 0, "20", false, 1, 1000000,
	 "handshakes an identity may make at once"},
	{"limits", "request_rate", CT_UINT, F(request_rate), 0, "600", false, 1, 6000000,
	 "requests per minute per identity (token bucket refill)"},
	{"limits", "request_burst", CT_UINT, F(request_burst), 0, "60", false, 1, 1000000,
	 "requests an identity may make at once"},
	{"limits", "addr_factor", CT_UINT, F(addr_factor), 0, "10", false, 1, 10000,
	 "a source address gets this many times the per-identity rate and burst"},
	{"metrics", "listen", CT_ADDR, F(metrics_listen), F(has_metrics), NULL, false, 0, 0,
	 "HOST:PORT for Prometheus metrics over plain HTTP (keep it on loopback)"},
	{"audit", "path", CT_PATH, F(audit_path), 0, NULL, false, 0, 0,
	 "append-only audit trail, one hash-chained JSON line per security event"},
};

#define N_KEYS ARRAY_SIZE(conf_keys)

/* Cross-key rules: when `if` is present in the file, `need` must be too. */
static const struct conf_rule {
	const char *if_sec, *if_key, *need_sec, *need_key;
} conf_rules[] = {
	{"coap", "listen", "tls", "certificate"},
	{"coap", "listen", "tls", "private_key"},
	{"https", "psk_listen", "tls", "certificate"},
	{"https", "psk_listen", "tls", "private_key"},
	{"https", "cert_listen", "tls", "certificate"},
	{"https", "cert_listen", "tls", "private_key"},
	{"https", "cert_listen", "tls", "client_ca"},
	{"ca", "certificate", "ca", "private_key"},
	{"ca", "private_key", "ca", "certificate"},
	{"ca", "upstream", "ca", "upstream_certificate"},
	{"ca", "upstream", "ca", "upstream_key"},
	{"ca", "upstream", "ca", "upstream_ca"},
};

struct conf_parser {
	const char *file;   /* as the caller named it, for messages */
	char *dir;          /* absolute directory of file, for relative paths */
	FILE *errs;
	struct mef_conf *c;
	unsigned nerr;
	bool oom;
	unsigned line;
	const char *section; /* current section (points into conf_keys); NULL if none */
	bool in_unknown;     /* inside an unknown section: already reported once */
	unsigned seen[N_KEYS];  /* line that set each key, 0 if absent */
	unsigned hdr[N_KEYS];   /* line of the first header of each key's section */
	bool reported[N_KEYS];  /* a "missing" error was already printed */
	char why[512];          /* reason filled in by a setter that fails */
};

struct conf_type_ops {
	const char *name;
	/* Parses v into the field; 0, MEF_EINVAL with p->why, or MEF_ENOMEM. */
	int (*set)(struct conf_parser *p, const struct conf_key *k, const char *v);
	/* Prints the "key = value" line, or "# key =" when unset. */
	void (*dump)(const struct conf_key *k, const struct mef_conf *c, FILE *out);
	bool is_string; /* the field is a malloc'ed char * */
};

static void *
field(const struct mef_conf *c, size_t off)
{
	return (char *)c + off;
}

static int
why(struct conf_parser *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int
why(struct conf_parser *p, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(p->why, sizeof(p->why), fmt, ap);
	va_end(ap);
	return MEF_EINVAL;
}

static void
conf_error(struct conf_parser *p, unsigned line, const char *sec, const char *key,
	   const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Prints "FILE:LINE: [section] key: message"; parts that are NULL are left out. */
static void
conf_error(struct conf_parser *p, unsigned line, const char *sec, const char *key,
	   const char *fmt, ...)
{
	va_list ap;

	p->nerr++;
	if (!p->errs)
		return;
	fprintf(p->errs, "%s:%u: ", p->file, line);
	if (sec)
		fprintf(p->errs, key ? "[%s] %s: " : "[%s]: ", sec, key);
	va_start(ap, fmt);
	vfprintf(p->errs, fmt, ap);
	va_end(ap);
	fputc('\n', p->errs);
}

static char *
trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' || e[-1] == '\n'))
		*--e = '\0';
	return s;
}

/* Parses 1-20 decimal digits (nothing else) into ret; 0 or MEF_EINVAL. */
static int
parse_digits(const char *s, uint64_t *ret)
{
	uint64_t v = 0;

	if (*s == '\0')
		return MEF_EINVAL;
	for (; *s; s++) {
		if (*s < '0' || *s > '9' || v > (UINT64_MAX - 9) / 10)
			return MEF_EINVAL;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	*ret = v;
	return 0;
}

int
conf_parse_duration(const char *s, int64_t *ret_seconds)
{
	static const struct {
		char suffix;
		int64_t mult;
	} units[] = {{'s', 1}, {'m', 60}, {'h', 3600}, {'d', DAY}};
	char num[24];
	size_t n = strlen(s);
	int64_t mult = 1;
	uint64_t v;

	if (n == 0 || n >= sizeof(num))
		return MEF_EINVAL;
	memcpy(num, s, n + 1);
	for (size_t i = 0; i < ARRAY_SIZE(units); i++) {
		if (num[n - 1] == units[i].suffix) {
			mult = units[i].mult;
			num[--n] = '\0';
			break;
		}
	}
	if (parse_digits(num, &v) != 0 || v > (uint64_t)(INT64_MAX / mult))
		return MEF_EINVAL;
	*ret_seconds = (int64_t)v * mult;
	return 0;
}

/* Splits "HOST:PORT" or "[HOST]:PORT" into host (copied) and port text. */
static int
split_addr(const char *s, char *host, size_t hostlen, const char **ret_port, const char **ret_why)
{
	const char *colon, *h = s, *he;

	if (s[0] == '[') {
		h = s + 1;
		he = strchr(h, ']');
		if (!he || he[1] != ':') {
			*ret_why = "expected [IPv6]:PORT";
			return MEF_EINVAL;
		}
		colon = he + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon) {
			*ret_why = "expected HOST:PORT";
			return MEF_EINVAL;
		}
		if (strchr(s, ':') != colon) {
			*ret_why = "an IPv6 address must be in brackets, e.g. [::1]:5684";
			return MEF_EINVAL;
		}
		he = colon;
	}
	if (he == h || (size_t)(he - h) >= hostlen) {
		*ret_why = he == h ? "missing host" : "host too long";
		return MEF_EINVAL;
	}
	memcpy(host, h, (size_t)(he - h));
	host[he - h] = '\0';
	*ret_port = colon + 1;
	return 0;
}

int
conf_parse_addr(const char *s, struct conf_addr *ret, const char **ret_why)
{
	int fam = s[0] == '[' ? AF_INET6 : AF_INET;
	struct addrinfo hints = {.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV,
				 .ai_family = fam, .ai_socktype = SOCK_DGRAM};
	struct addrinfo *ai;
	const char *port;
	char host[INET6_ADDRSTRLEN + 16];
	unsigned char bin[16];
	uint64_t pn;

	if (strlen(s) >= sizeof(ret->text)) {
		*ret_why = "address too long";
		return MEF_EINVAL;
	}
	if (split_addr(s, host, sizeof(host), &port, ret_why) != 0)
		return MEF_EINVAL;
	if (parse_digits(port, &pn) != 0 || pn < 1 || pn > 65535) {
		*ret_why = "bad port (want 1-65535)";
		return MEF_EINVAL;
	}
	/* Only "localhost" is a name: a bind address must not depend on DNS at startup. */
	if (fam == AF_INET && strcmp(host, "localhost") == 0)
		strcpy(host, "127.0.0.1");
	/* inet_pton first: getaddrinfo would also take shorthands such as "127.1". */
	if (inet_pton(fam, host, bin) != 1 || getaddrinfo(host, port, &hints, &ai) != 0) {
		*ret_why = fam == AF_INET6 ? "not a numeric IPv6 address"
					   : "host must be a numeric IPv4 address, [IPv6] or localhost";
		return MEF_EINVAL;
	}
	memset(ret, 0, sizeof(*ret));
	memcpy(&ret->ss, ai->ai_addr, ai->ai_addrlen);
	ret->len = ai->ai_addrlen;
	ret->port = (uint16_t)pn;
	snprintf(ret->text, sizeof(ret->text), "%s", s); /* length checked above */
	freeaddrinfo(ai);
	return 0;
}

/* ---- setters, one per type ---- */

static int
store_string(struct conf_parser *p, const struct conf_key *k, char *owned)
{
	char **f = field(p->c, k->off);

	if (!owned)
		return MEF_ENOMEM;
	free(*f);
	*f = owned;
	return 0;
}

static int
set_string(struct conf_parser *p, const struct conf_key *k, const char *v)
{
	return store_string(p, k, strdup(v));
}

/* DNS name: labels of 1-63 letters, digits and inner hyphens; 253 chars at most. */
static int
set_fqdn(struct conf_parser *p, const struct conf_key *k, const char *v)
{
	size_t n = strlen(v), label = 0;
	char *s;

	if (n > 0 && v[n - 1] == '.')
		n--; /* the root dot is implied */
	if (n == 0 || n > 253)
		return why(p, "not a DNS name (length)");
	for (size_t i = 0; i < n; i++) {
		char ch = v[i];
		bool end = i + 1 == n || v[i + 1] == '.';

		if (ch == '.') {
			if (label == 0 || i + 1 == n)
				return why(p, "not a DNS name (empty label)");
			label = 0;
			continue;
		}
		if (!(ch >= 'a' && ch <= 'z') && !(ch >= 'A' && ch <= 'Z') &&
		    !(ch >= '0' && ch <= '9') && ch != '-')
			return why(p, "not a DNS name (character '%c')", ch);
		if (ch == '-' && (label == 0 || end))
			return why(p, "not a DNS name (label starts or ends with '-')");
		if (++label > 63)
			return why(p, "not a DNS name (label longer than 63)");
	}
	if (!(s = strndup(v, n)))
		return MEF_ENOMEM;
	for (char *q = s; *q; q++)
		if (*q >= 'A' && *q <= 'Z')
			*q = (char)(*q - 'A' + 'a');
	return store_string(p, k, s);
}

/* Prefixes that name systemd's credentials folder (LoadCredential=, docs/operations.md). */
static const char *const cred_prefixes[] = {"%d/", "${CREDENTIALS_DIRECTORY}/"};

/*
 * Makes v absolute: "%d/NAME" and "${CREDENTIALS_DIRECTORY}/NAME" against
 * $CREDENTIALS_DIRECTORY, other relative paths against the config file's
 * directory. 0, MEF_ENOMEM, or MEF_EINVAL with p->why.
 */
static int
resolve_path(struct conf_parser *p, const char *v, char **ret)
{
	const char *base = p->dir, *cred;
	char *s;

	for (size_t i = 0; i < ARRAY_SIZE(cred_prefixes); i++) {
		if (strncmp(v, cred_prefixes[i], strlen(cred_prefixes[i])) != 0)
			continue;
		cred = getenv("CREDENTIALS_DIRECTORY");
		if (!cred || cred[0] != '/') {
			/* MEF_EINVAL spelled out: the analyzer does not follow why()'s varargs */
			why(p, "%s needs $CREDENTIALS_DIRECTORY (systemd LoadCredential=)", v);
			return MEF_EINVAL;
		}
		base = cred;
		v += strlen(cred_prefixes[i]);
		break;
	}
	if (v[0] == '/' || !base)
		s = strdup(v);
	else if (asprintf(&s, "%s/%s", base, v) < 0)
		s = NULL;
	if (!s)
		return MEF_ENOMEM;
	*ret = s;
	return 0;
}

static int
set_path(struct conf_parser *p, const struct conf_key *k, const char *v)
{
	char *abs, *slash;
	struct stat st;
	int r = resolve_path(p, v, &abs);

	if (r != 0)
		return r;
	slash = strrchr(abs, '/');
	*slash = '\0';
	if (stat(*abs ? abs : "/", &st) != 0 || !S_ISDIR(st.st_mode))
		r = why(p, "directory %s does not exist", *abs ? abs : "/");
	*slash = '/';
	if (r != 0 || slash[1] == '\0') {
		if (r == 0)
			r = why(p, "%s names a directory, not a file", abs);
		free(abs);
		return r;
	}
	return store_string(p, k, abs);
}

/* Opens abs for reading to prove it is a readable regular file. */
static int
check_readable(struct conf_parser *p, const char *abs)
{
	struct stat st;
	int fd = open(abs, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return why(p, "%s cannot be read: %s", abs, strerror(errno));
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return why(p, "%s is not a regular file", abs);
	}
	close(fd);
	return 0;
}

static int
set_file(struct conf_parser *p, const struct conf_key *k, const char *v)
{
	char *abs;
	int r = resolve_path(p, v, &abs);

	if (r != 0)
		return r;
	if ((r = check_readable(p, abs)) != 0) {
		free(abs);
		return r;
	}
	return store_string(p, k, abs);
}

static int
set_private(struct conf_parser *p, const struct conf_key *k, const char *v)
{
	char *abs;
	int r = resolve_path(p, v, &abs);

	if (r != 0)
		return r;
	r = check_readable(p, abs);
	if (r == 0 && secret_file_is_private(abs) != 0)
		r = why(p, "%s is accessible by group or others (chmod 600)", abs);
	if (r != 0) {
		free(abs);
		return r;
	}
	return store_string(p, k, abs);
}

static const struct {
	const char *text;
	bool val;
} bool_names[] = {
	{"yes", true}, {"true", true}, {"on", true}, {"no", false}, {"false", false}, {"off", false},
};

static int
set_bool(struct conf_parser *p, const struct conf_key *k, const char *v)
{
	for (size_t i = 0; i < ARRAY_SIZE(bool_names); i++) {
		if (strcasecmp(v, bool_names[i].text) == 0) {
			*(bool *)field(p->c, k->off) = bool_names[i].val;
			return 0;
		}
	}
	return why(p, "bad boolean '%s' (want yes/no, true/false, on/off)", v);
}

static int
set_duration(struct conf_parser *p, const struct conf_key *k, const char *v)
{
	int64_t s;

	if (conf_parse_duration(v, &s) != 0)
		return why(p, "bad duration '%s' (want e.g. 90s, 15m, 12h, 30d)", v);
	if (s < k->min || s > k->max)
		return why(p, "duration out of range (%lld-%lld seconds)", (long long)k->min,
			   (long long)k->max);
	*(int64_t *)field(p->c, k->off) = s;
	return 0;
}

static int
set_uint(struct conf_parser *p, const struct conf_key *k, const char *v)
{
	uint64_t n;

	if (parse_digits(v, &n) != 0)
		return why(p, "bad number '%s'", v);
	if (n < (uint64_t)k->min || n > (uint64_t)k->max)
		return why(p, "out of range (%lld-%lld)", (long long)k->min, (long long)k->max);
	*(unsigned *)field(p->c, k->off) = (unsigned)n;
	return 0;
}

static int
set_addr(struct conf_parser *p, const struct conf_key *k, const char *v)
{
	const char *w;

	if (conf_parse_addr(v, field(p->c, k->off), &w) != 0)
		return why(p, "'%s': %s", v, w);
	*(bool *)field(p->c, k->aux) = true;
	return 0;
}

static int
set_addr_list(struct conf_parser *p, const struct conf_key *k, const char *v)
{
	struct conf_addr tmp[CONF_MAX_LISTEN];
	char *copy = strdup(v), *save = NULL, *item;
	size_t n = 0;
	int r = 0;

	if (!copy)
		return MEF_ENOMEM;
	/* strtok_r would skip empty items; an empty item is a typo worth reporting. */
	for (item = copy; item && r == 0; item = save) {
		const char *w;

		save = strchr(item, ',');
		if (save)
			*save++ = '\0';
		item = trim(item);
		if (n == CONF_MAX_LISTEN)
			r = why(p, "more than %d addresses", CONF_MAX_LISTEN);
		else if (conf_parse_addr(item, &tmp[n++], &w) != 0)
			r = why(p, "'%s': %s", item, w);
	}
	free(copy);
	if (r != 0)
		return r;
	memcpy(field(p->c, k->off), tmp, n * sizeof(tmp[0]));
	*(size_t *)field(p->c, k->aux) = n;
	return 0;
}

static int
set_log_level(struct conf_parser *p, const struct conf_key *k, const char *v)
{
	enum log_level lvl;

	if (log_level_parse(v, &lvl) != 0)
		return why(p, "bad level '%s' (want error, warning, notice, info or debug)", v);
	*(enum log_level *)field(p->c, k->off) = lvl;
	return 0;
}

/* ---- printers, one per type ---- */

static void
dump_string(const struct conf_key *k, const struct mef_conf *c, FILE *out)
{
	const char *s = *(char **)field(c, k->off);

	if (s)
		fprintf(out, "%s = %s\n", k->key, s);
	else
		fprintf(out, "# %s =\n", k->key);
}

static void
dump_bool(const struct conf_key *k, const struct mef_conf *c, FILE *out)
{
	fprintf(out, "%s = %s\n", k->key, *(bool *)field(c, k->off) ? "yes" : "no");
}

static void
dump_duration(const struct conf_key *k, const struct mef_conf *c, FILE *out)
{
	static const struct {
		int64_t mult;
		char suffix;
	} units[] = {{DAY, 'd'}, {3600, 'h'}, {60, 'm'}, {1, 's'}};
	int64_t s = *(int64_t *)field(c, k->off);
	size_t i = 0;

	while (s != 0 && s % units[i].mult != 0)
		i++;
	fprintf(out, "%s = %lld%c\n", k->key, (long long)(s / units[i].mult), units[i].suffix);
}

static void
dump_uint(const struct conf_key *k, const struct mef_conf *c, FILE *out)
{
	fprintf(out, "%s = %u\n", k->key, *(unsigned *)field(c, k->off));
}

static void
dump_addr(const struct conf_key *k, const struct mef_conf *c, FILE *out)
{
	const struct conf_addr *a = field(c, k->off);

	if (*(bool *)field(c, k->aux))
		fprintf(out, "%s = %s\n", k->key, a->text);
	else
		fprintf(out, "# %s =\n", k->key);
}

static void
dump_addr_list(const struct conf_key *k, const struct mef_conf *c, FILE *out)
{
	const struct conf_addr *a = field(c, k->off);
	size_t n = *(size_t *)field(c, k->aux);

	if (n == 0) {
		fprintf(out, "# %s =\n", k->key);
		return;
	}
	fprintf(out, "%s = ", k->key);
	for (size_t i = 0; i < n; i++)
		fprintf(out, "%s%s", i ? ", " : "", a[i].text);
	fputc('\n', out);
}

static void
dump_log_level(const struct conf_key *k, const struct mef_conf *c, FILE *out)
{
	/* Indexed by enum log_level; the names are the ones log_level_parse accepts. */
	static const char *const names[] = {
		[LOG_LVL_ERR] = "error", [LOG_LVL_WARN] = "warning", [LOG_LVL_NOTICE] = "notice",
		[LOG_LVL_INFO] = "info", [LOG_LVL_DEBUG] = "debug",
	};
	unsigned lvl = *(enum log_level *)field(c, k->off);

	fprintf(out, "%s = %s\n", k->key,
		lvl < ARRAY_SIZE(names) && names[lvl] ? names[lvl] : "info");
}

static const struct conf_type_ops conf_types[] = {
	[CT_STRING] = {"string", set_string, dump_string, true},
	[CT_PATH] = {"path", set_path, dump_string, true},
	[CT_FILE] = {"readable file", set_file, dump_string, true},
	[CT_PRIVATE_PATH] = {"private file", set_private, dump_string, true},
	[CT_BOOL] = {"bool", set_bool, dump_bool, false},
	[CT_DURATION] = {"duration", set_duration, dump_duration, false},
	[CT_UINT] = {"uint", set_uint, dump_uint, false},
	[CT_ADDR] = {"HOST:PORT", set_addr, dump_addr, false},
	[CT_ADDR_LIST] = {"HOST:PORT list", set_addr_list, dump_addr_list, false},
	[CT_LOG_LEVEL] = {"log level", set_log_level, dump_log_level, false},
	[CT_FQDN] = {"DNS name", set_fqdn, dump_string, true},
};

/* ---- the reader ---- */

static int
key_index(const char *sec, const char *key)
{
	for (size_t i = 0; i < N_KEYS; i++)
		if (strcmp(conf_keys[i].section, sec) == 0 && strcmp(conf_keys[i].key, key) == 0)
			return (int)i;
	return -1;
}

static void
conf_header(struct conf_parser *p, char *s)
{
	size_t n = strlen(s);
	char *name;

	p->section = NULL;
	p->in_unknown = true; /* keys below a bad header are not reported one by one */
	if (n < 3 || s[n - 1] != ']') {
		conf_error(p, p->line, NULL, NULL, "syntax error: malformed section header");
		return;
	}
	s[n - 1] = '\0';
	name = trim(s + 1);
	for (size_t i = 0; i < N_KEYS; i++) {
		if (strcmp(conf_keys[i].section, name) != 0)
			continue;
		p->section = conf_keys[i].section;
		if (!p->hdr[i])
			p->hdr[i] = p->line;
	}
	if (p->section)
		p->in_unknown = false;
	else
		conf_error(p, p->line, name, NULL, "unknown section");
}

static void
conf_assign(struct conf_parser *p, char *s)
{
	char *eq = strchr(s, '='), *key, *val;
	const struct conf_key *k;
	int i, r;

	if (!eq) {
		conf_error(p, p->line, p->section, NULL, "syntax error: expected key = value");
		return;
	}
	*eq = '\0';
	key = trim(s);
	val = trim(eq + 1);
	if (p->in_unknown)
		return;
	if (!p->section || *key == '\0') {
		conf_error(p, p->line, p->section, NULL, "syntax error: %s",
			   p->section ? "missing key" : "key outside any [section]");
		return;
	}
	if ((i = key_index(p->section, key)) < 0) {
		conf_error(p, p->line, p->section, key, "unknown key");
		return;
	}
	k = &conf_keys[i];
	if (p->seen[i]) {
		conf_error(p, p->line, k->section, k->key, "duplicate key (first set on line %u)",
			   p->seen[i]);
		return;
	}
	p->seen[i] = p->line;
	if (*val == '\0')
		r = why(p, "empty value");
	else
		r = conf_types[k->type].set(p, k, val);
	if (r == MEF_ENOMEM)
		p->oom = true;
	else if (r != 0)
		conf_error(p, p->line, k->section, k->key, "%s", p->why);
}

static void
conf_line(struct conf_parser *p, char *s)
{
	s = trim(s);
	if (*s == '\0' || *s == '#' || *s == ';')
		return;
	if (*s == '[')
		conf_header(p, s);
	else
		conf_assign(p, s);
}

/* Parses every default through the same setters; a failure is a bug in the table. */
static int
conf_defaults(struct conf_parser *p)
{
	for (size_t i = 0; i < N_KEYS; i++) {
		int r;

		if (!conf_keys[i].def)
			continue;
		r = conf_types[conf_keys[i].type].set(p, &conf_keys[i], conf_keys[i].def);
		if (r != 0)
			return r == MEF_ENOMEM ? r : MEF_EINTERNAL;
	}
	return 0;
}

/*
 * Remembers the absolute file name and its directory, without resolving
 * symlinks: relative paths follow the name the operator gave. 0, MEF_ENOMEM,
 * or MEF_EIO when the working directory is gone.
 */
static int
conf_locate(struct conf_parser *p, const char *path)
{
	char *cwd, *slash;

	if (path[0] == '/') {
		p->c->path = strdup(path);
	} else {
		if (!(cwd = getcwd(NULL, 0)))
			return errno == ENOMEM ? MEF_ENOMEM : MEF_EIO;
		if (asprintf(&p->c->path, "%s/%s", cwd, path) < 0)
			p->c->path = NULL;
		free(cwd);
	}
	if (!p->c->path || !(p->dir = strdup(p->c->path)))
		return MEF_ENOMEM;
	slash = strrchr(p->dir, '/');
	slash[slash == p->dir ? 1 : 0] = '\0';
	return 0;
}

static int
conf_read(struct conf_parser *p, const char *path)
{
	FILE *f = fopen(path, "re");
	struct stat st;
	char *buf = NULL;
	size_t cap = 0;
	int r;

	if (!f || fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
		conf_error(p, 0, NULL, NULL, "cannot read config file: %s",
			   f ? "not a regular file" : strerror(errno));
		if (f)
			fclose(f);
		return MEF_ECONF;
	}
	if ((r = conf_locate(p, path)) != 0) {
		if (r != MEF_ENOMEM)
			conf_error(p, 0, NULL, NULL, "cannot resolve the current directory: %s",
				   strerror(errno));
		fclose(f);
		return r == MEF_ENOMEM ? r : MEF_ECONF;
	}
	while (getline(&buf, &cap, f) >= 0) {
		p->line++;
		conf_line(p, buf);
	}
	if (ferror(f))
		conf_error(p, p->line, NULL, NULL, "read error");
	free(buf);
	fclose(f);
	return 0;
}

static void
conf_require(struct conf_parser *p, int i, const char *because)
{
	const struct conf_key *k = &conf_keys[i];

	if (p->seen[i] || p->reported[i])
		return;
	p->reported[i] = true;
	conf_error(p, p->hdr[i], k->section, k->key, "missing%s%s", because ? " " : "",
		   because ? because : "");
}

/* "user:secret@" in the authority, or a password= parameter. */
static bool
url_has_password(const char *u)
{
	const char *auth = strstr(u, "://") + 3;
	size_t n = strcspn(auth, "/?");
	const char *at = memchr(auth, '@', n);

	return strcasestr(u, "password=") || (at && memchr(auth, ':', (size_t)(at - auth)));
}

/* [store]: the backend picks which of path / url is needed; a password never sits in the url. */
static void
conf_check_store(struct conf_parser *p)
{
	int be = key_index("store", "backend"), url = key_index("store", "url");
	const char *b = p->c->store_backend, *u = p->c->store_url;

	if (strcmp(b, "postgresql") == 0)
		conf_require(p, url, "(required by [store] backend = postgresql)");
	else if (strcmp(b, "sqlite") == 0)
		conf_require(p, key_index("store", "path"), NULL);
	else
		conf_error(p, p->seen[be], "store", "backend", "must be sqlite or postgresql");
	if (u && strncmp(u, "postgresql://", 13) != 0 && strncmp(u, "postgres://", 11) != 0)
		conf_error(p, p->seen[url], "store", "url", "must start with postgresql://");
	else if (u && url_has_password(u))
		conf_error(p, p->seen[url], "store", "url",
			   "holds a password: put it in [store] password_file");
}

/* The cross-key pass; it looks at what the file set, so a bad value is not also "missing". */
static void
conf_check(struct conf_parser *p)
{
	int coap = key_index("coap", "listen");
	char because[96];

	for (size_t i = 0; i < N_KEYS; i++)
		if (conf_keys[i].mandatory)
			conf_require(p, (int)i, NULL);
	conf_check_store(p);
	if (!p->seen[coap] && !p->seen[key_index("https", "psk_listen")] &&
	    !p->seen[key_index("https", "cert_listen")])
		conf_error(p, p->hdr[coap], "coap", "listen",
			   "no listener (set [coap] listen or [https] psk_listen / cert_listen)");
	for (size_t i = 0; i < ARRAY_SIZE(conf_rules); i++) {
		const struct conf_rule *r = &conf_rules[i];

		if (!p->seen[key_index(r->if_sec, r->if_key)])
			continue;
		snprintf(because, sizeof(because), "(required by [%s] %s)", r->if_sec, r->if_key);
		conf_require(p, key_index(r->need_sec, r->need_key), because);
	}
}

int
conf_load(const char *path, struct mef_conf **ret, FILE *errs)
{
	struct conf_parser p = {.file = path, .errs = errs};
	int r;

	if (!(p.c = calloc(1, sizeof(*p.c))))
		return MEF_ENOMEM;
	r = conf_defaults(&p);
	if (r == 0)
		r = conf_read(&p, path);
	if (r == 0 && !p.oom)
		conf_check(&p);
	free(p.dir);
	if (r == 0 && p.oom)
		r = MEF_ENOMEM;
	if (r == 0 && p.nerr)
		r = MEF_ECONF;
	if (r != 0) {
		conf_free(p.c);
		return r;
	}
	*ret = p.c;
	return 0;
}

struct mef_conf *
conf_free(struct mef_conf *c)
{
	if (!c)
		return NULL;
	for (size_t i = 0; i < N_KEYS; i++)
		if (conf_types[conf_keys[i].type].is_string)
			free(*(char **)field(c, conf_keys[i].off));
	free(c->path);
	free(c);
	return NULL;
}

void
conf_dump(const struct mef_conf *c, FILE *out)
{
	const char *sec = NULL;

	for (size_t i = 0; i < N_KEYS; i++) {
		const struct conf_key *k = &conf_keys[i];

		if (!sec || strcmp(sec, k->section) != 0)
			fprintf(out, "%s[%s]\n", sec ? "\n" : "", k->section);
		sec = k->section;
		conf_types[k->type].dump(k, c, out);
	}
}

void
conf_doc(FILE *out)
{
	fprintf(out, "| Section | Key | Type | Default | Meaning |\n|---|---|---|---|---|\n");
	for (size_t i = 0; i < N_KEYS; i++) {
		const struct conf_key *k = &conf_keys[i];
		char type[64];

		if (k->type == CT_UINT)
			snprintf(type, sizeof(type), "uint %lld-%lld", (long long)k->min,
				 (long long)k->max);
		else
			snprintf(type, sizeof(type), "%s", conf_types[k->type].name);
		fprintf(out, "| %s | %s | %s | %s | %s |\n", k->section, k->key, type,
			k->mandatory ? "**mandatory**" : k->def ? k->def : "unset", k->help);
	}
}
