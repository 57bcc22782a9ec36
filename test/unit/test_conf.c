/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Unit tests for src/conf: a full and a minimal config in a temp dir, every
 * error kind with its file:line, several errors in one run, key-file modes,
 * durations, addresses, the dump round trip and conf/mefd.conf.example.
 * Expected values are literals written by hand, not output of the module.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mef/conf.h"
#include "mef/err.h"

static char tmp[64]; /* "/tmp/test_conf.XXXXXX" */

/* The smallest valid file; its line numbers are used by the error tests. */
static const char base[] =
	"[mef]\n"                      /* 1 */
	"fqdn = mef.example.org\n"     /* 2 */
	"[store]\n"                    /* 3 */
	"path = db/mefd.db\n"          /* 4 */
	"kek_file = kek.key\n"         /* 5 */
	"[coap]\n"                     /* 6 */
	"listen = 127.0.0.1:5684\n"    /* 7 */
	"[tls]\n"                      /* 8 */
	"certificate = tls.crt\n"      /* 9 */
	"private_key = tls.key\n";     /* 10 */

static char *
tpath(const char *name)
{
	static char buf[4][PATH_MAX];
	static int i;

	i = (i + 1) % 4;
	snprintf(buf[i], sizeof(buf[i]), "%s/%s", tmp, name);
	return buf[i];
}

static void
put(const char *name, const char *text, mode_t mode)
{
	FILE *f = fopen(tpath(name), "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	assert_int_equal(chmod(tpath(name), mode), 0);
}

static int
setup(void **state)
{
	(void)state;
	snprintf(tmp, sizeof(tmp), "/tmp/test_conf.XXXXXX");
	assert_non_null(mkdtemp(tmp));
	assert_int_equal(mkdir(tpath("db"), 0700), 0);
	put("kek.key", "000102030405060708090a0b0c0d0e0f000102030405060708090a0b0c0d0e0f\n", 0600);
	put("tls.crt", "-----BEGIN CERTIFICATE-----\n", 0644);
	put("tls.key", "-----BEGIN PRIVATE KEY-----\n", 0600);
	put("client-ca.crt", "-----BEGIN CERTIFICATE-----\n", 0644);
	put("ca.crt", "-----BEGIN CERTIFICATE-----\n", 0644);
	put("ca.key", "-----BEGIN PRIVATE KEY-----\n", 0600);
	put("pgpass", "example\n", 0600);
	return 0;
}

static int
rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	return remove(p);
}

static int
teardown(void **state)
{
	(void)state;
	return nftw(tmp, rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

/* Writes text as mefd.conf and loads it; *errs gets everything printed (caller frees). */
static int
load(const char *text, struct mef_conf **ret, char **errs)
{
	size_t n;
	FILE *e = open_memstream(errs, &n);
	int r;

	put("mefd.conf", text, 0644);
	r = conf_load(tpath("mefd.conf"), ret, e);
	fclose(e);
	return r;
}

static unsigned
count_lines(const char *s)
{
	unsigned n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

/* Asserts that errs holds "<tmp>/mefd.conf:<rest>". */
static void
assert_err(const char *errs, const char *rest)
{
	char want[PATH_MAX + 256];

	snprintf(want, sizeof(want), "%s:%s", tpath("mefd.conf"), rest);
	if (!strstr(errs, want))
		fail_msg("expected \"%s\" in:\n%s", want, errs);
}

static void
test_full(void **state)
{
	struct mef_conf *c = NULL;
	char *errs = NULL, text[2048];
	struct in6_addr v6;

	(void)state;
	assert_int_equal(mkdir(tpath("my certs"), 0755), 0);
	put("my certs/tls.crt", "x", 0644);
	snprintf(text, sizeof(text),
		 "# full config\n; with both comment styles\n\n"
		 "[mef]\n  fqdn  =   MEF.Example.ORG.  \n enrolment_expiry = 12h\nrequire_sni = on\n"
		 "[store]\npath = db/mefd.db\nkek_file = kek.key\n"
		 "[coap]\nlisten = 127.0.0.1:5684 , [::1]:5684\n"
		 "[https]\npsk_listen = localhost:8443\ncert_listen = [2001:db8::1]:8444\n"
		 "[tls]\ncertificate = my certs/tls.crt\nprivate_key = tls.key\n"
		 "client_ca = %s\n"
		 "[ca]\ncertificate = ca.crt\nprivate_key = ca.key\nvalidity = 90d\n"
		 "[log]\nlevel = debug\n"
		 "[limits]\nmax_sessions = 10\nmax_handshakes = 11\nsession_timeout = 12\n"
		 "handshake_timeout = 13\nbody_max = 1400\nshutdown_grace = 0\n"
		 "housekeeping_interval = 16\n",
		 tpath("client-ca.crt"));
	assert_int_equal(load(text, &c, &errs), 0);
	assert_string_equal(errs, "");
	assert_string_equal(c->path, tpath("mefd.conf"));
	assert_string_equal(c->fqdn, "mef.example.org");
	assert_true(c->enrolment_expiry == 43200);
	assert_true(c->require_sni);
	assert_string_equal(c->store_path, tpath("db/mefd.db"));
	assert_string_equal(c->kek_file, tpath("kek.key"));
	assert_int_equal(c->n_coap_listen, 2);
	assert_string_equal(c->coap_listen[0].text, "127.0.0.1:5684");
	assert_int_equal(c->coap_listen[1].ss.ss_family, AF_INET6);
	assert_int_equal(c->coap_listen[1].port, 5684);
	assert_true(c->has_https_psk && c->has_https_cert);
	assert_int_equal(c->https_psk_listen.port, 8443);
	assert_int_equal(c->https_psk_listen.ss.ss_family, AF_INET);
	assert_int_equal(inet_pton(AF_INET6, "2001:db8::1", &v6), 1);
	assert_memory_equal(&((struct sockaddr_in6 *)&c->https_cert_listen.ss)->sin6_addr, &v6, 16);
	assert_string_equal(c->tls_certificate, tpath("my certs/tls.crt"));
	assert_string_equal(c->tls_private_key, tpath("tls.key"));
	assert_string_equal(c->tls_client_ca, tpath("client-ca.crt"));
	assert_string_equal(c->ca_certificate, tpath("ca.crt"));
	assert_string_equal(c->ca_private_key, tpath("ca.key"));
	assert_true(c->ca_validity == 90 * 86400);
	assert_int_equal(c->log_level, LOG_LVL_DEBUG);
	assert_int_equal(c->max_sessions, 10);
	assert_int_equal(c->max_handshakes, 11);
	assert_int_equal(c->session_timeout, 12);
	assert_int_equal(c->handshake_timeout, 13);
	assert_int_equal(c->body_max, 1400);
	assert_int_equal(c->shutdown_grace, 0);
	assert_int_equal(c->housekeeping_interval, 16);
	conf_free(c);
	free(errs);
}

static void
test_defaults(void **state)
{
	struct mef_conf *c = NULL;
	char *errs = NULL;

	(void)state;
	assert_int_equal(load(base, &c, &errs), 0);
	assert_true(c->enrolment_expiry == 2592000);
	assert_false(c->require_sni);
	assert_true(c->ca_validity == 31536000);
	assert_int_equal(c->log_level, LOG_LVL_INFO);
	assert_int_equal(c->max_sessions, 1024);
	assert_int_equal(c->max_handshakes, 128);
	assert_int_equal(c->session_timeout, 60);
	assert_int_equal(c->handshake_timeout, 10);
	assert_int_equal(c->body_max, 65536);
	assert_int_equal(c->shutdown_grace, 5);
	assert_int_equal(c->housekeeping_interval, 60);
	assert_false(c->has_https_psk || c->has_https_cert);
	assert_null(c->tls_client_ca);
	assert_null(c->ca_certificate);
	assert_null(c->ca_private_key);
	conf_free(c);
	free(errs);
}

/* One bad block appended to the valid base (so it starts on line 11). */
static const struct {
	const char *tail;
	const char *want;
} bad_tail[] = {
	{"[bogus]\nx = 1\n", "11: [bogus]: unknown section"},
	{"[limits]\nfoo = 1\n", "12: [limits] foo: unknown key"},
	{"[mef]\nfqdn = other.example\n", "12: [mef] fqdn: duplicate key (first set on line 2)"},
	{"[limits]\njust some words\n", "12: [limits]: syntax error"},
	{"[limits\n", "11: syntax error: malformed section header"},
	{"[mef]\nenrolment_expiry = 30x\n", "12: [mef] enrolment_expiry: bad duration"},
	{"[mef]\nenrolment_expiry = 0\n", "12: [mef] enrolment_expiry: duration out of range"},
	{"[mef]\nrequire_sni = maybe\n", "12: [mef] require_sni: bad boolean"},
	{"[limits]\nmax_sessions = 0\n", "12: [limits] max_sessions: out of range (1-1000000)"},
	{"[limits]\nmax_sessions = 1000001\n", "12: [limits] max_sessions: out of range"},
	{"[limits]\nbody_max = -5\n", "12: [limits] body_max: bad number"},
	{"[limits]\nbody_max =\n", "12: [limits] body_max: empty value"},
	{"[log]\nlevel = loud\n", "12: [log] level: bad level"},
	{"[https]\npsk_listen = 127.0.0.1:0\n", "12: [https] psk_listen: '127.0.0.1:0': bad port"},
	{"[https]\npsk_listen = 127.0.0.1:65536\n", "12: [https] psk_listen: '127.0.0.1:65536': bad port"},
	{"[https]\npsk_listen = 127.0.0.1:https\n", "12: [https] psk_listen: '127.0.0.1:https': bad port"},
	{"[https]\npsk_listen = 127.0.0.1\n", "12: [https] psk_listen: '127.0.0.1': expected HOST:PORT"},
	{"[https]\npsk_listen = 300.1.2.3:8443\n", "12: [https] psk_listen: '300.1.2.3:8443': host must be a numeric"},
	{"[https]\npsk_listen = mef.example.org:8443\n", "12: [https] psk_listen: 'mef.example.org:8443': host must be a numeric"},
	{"[https]\npsk_listen = ::1:8443\n", "12: [https] psk_listen: '::1:8443': an IPv6 address must be in brackets"},
	{"\n[https]\n\ncert_listen = 127.0.0.1:8444\n", "8: [tls] client_ca: missing (required by [https] cert_listen)"},
	{"[tls]\nclient_ca = nope.crt\n", "12: [tls] client_ca: "},
	{"[ca]\ncertificate = ca.crt\n", "11: [ca] private_key: missing (required by [ca] certificate)"},
	{"[ca]\nprivate_key = ca.key\n", "11: [ca] certificate: missing (required by [ca] private_key)"},
	{"[ca]\ncertificate = nope.crt\nprivate_key = ca.key\n", "12: [ca] certificate: "},
	{"[coap]\nlisten = 127.0.0.1:5684,,[::1]:5684\n", "12: [coap] listen: duplicate key"},
};

static void
test_each_error(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(bad_tail) / sizeof(bad_tail[0]); i++) {
		struct mef_conf *c = NULL;
		char *errs = NULL, text[1024];

		snprintf(text, sizeof(text), "%s%s", base, bad_tail[i].tail);
		assert_int_equal(load(text, &c, &errs), MEF_ECONF);
		assert_null(c);
		assert_err(errs, bad_tail[i].want);
		free(errs);
	}
}

/* Errors inside the base keys themselves: line, then the expected text. */
static void
test_base_errors(void **state)
{
	static const struct {
		const char *from, *to, *want;
	} edits[] = {
		{"fqdn = mef.example.org", "fqdn = -bad.example", "2: [mef] fqdn: not a DNS name"},
		{"fqdn = mef.example.org", "fqdn = a..b", "2: [mef] fqdn: not a DNS name"},
		{"fqdn = mef.example.org", "fqdn = under_score.org", "2: [mef] fqdn: not a DNS name"},
		{"path = db/mefd.db", "path = nodir/mefd.db", "4: [store] path: directory"},
		{"kek_file = kek.key", "kek_file = nokek.key", "5: [store] kek_file: "},
		{"listen = 127.0.0.1:5684", "listen = 127.0.0.1:5684,,[::1]:5684", "7: [coap] listen: '': expected"},
		{"listen = 127.0.0.1:5684", "listen = 1.1.1.1:1,1.1.1.1:2,1.1.1.1:3,1.1.1.1:4,"
		 "1.1.1.1:5,1.1.1.1:6,1.1.1.1:7,1.1.1.1:8,1.1.1.1:9", "7: [coap] listen: more than 8"},
		{"[mef]\n", "fqdn = x\n[mef]\n", "1: syntax error: key outside any [section]"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(edits) / sizeof(edits[0]); i++) {
		struct mef_conf *c = NULL;
		char *errs = NULL, text[1024];
		const char *at = strstr(base, edits[i].from);

		assert_non_null(at);
		snprintf(text, sizeof(text), "%.*s%s%s", (int)(at - base), base, edits[i].to,
			 at + strlen(edits[i].from));
		assert_int_equal(load(text, &c, &errs), MEF_ECONF);
		assert_err(errs, edits[i].want);
		free(errs);
	}
}

static void
test_missing_and_cross(void **state)
{
	struct mef_conf *c = NULL;
	char *errs = NULL;

	(void)state;
	/* No fqdn under a [mef] header (line 1), no [store] at all, no listener. */
	assert_int_equal(load("[mef]\nrequire_sni = no\n[log]\nlevel = info\n", &c, &errs), MEF_ECONF);
	assert_err(errs, "1: [mef] fqdn: missing\n");
	assert_err(errs, "0: [store] path: missing\n");
	assert_err(errs, "0: [store] kek_file: missing\n");
	assert_err(errs, "0: [coap] listen: no listener");
	assert_int_equal(count_lines(errs), 4);
	free(errs);

	/* HTTPS without a TLS certificate. */
	assert_int_equal(load("[mef]\nfqdn = m.example\n[store]\npath = db/x.db\nkek_file = kek.key\n"
			      "[https]\npsk_listen = 127.0.0.1:8443\n", &c, &errs), MEF_ECONF);
	assert_err(errs, "0: [tls] certificate: missing (required by [https] psk_listen)");
	assert_err(errs, "0: [tls] private_key: missing (required by [https] psk_listen)");
	assert_int_equal(count_lines(errs), 2);
	free(errs);
}

static void
test_many_errors_one_run(void **state)
{
	struct mef_conf *c = NULL;
	char *errs = NULL, text[1024];

	(void)state;
	snprintf(text, sizeof(text), "%s%s", base,
		 "[limits]\n"                 /* 11 */
		 "max_sessions = lots\n"      /* 12 */
		 "nosuchkey = 1\n"            /* 13 */
		 "body_max = 1\n"             /* 14 */
		 "[nowhere]\n"                /* 15 */
		 "ignored = 1\n"              /* 16: not reported again */
		 "[mef]\n"                    /* 17 */
		 "require_sni = perhaps\n"    /* 18 */
		 "enrolment_expiry = 1w\n"    /* 19 */
		 "no equals sign\n");         /* 20 */
	assert_int_equal(load(text, &c, &errs), MEF_ECONF);
	assert_err(errs, "12: [limits] max_sessions: bad number");
	assert_err(errs, "13: [limits] nosuchkey: unknown key");
	assert_err(errs, "14: [limits] body_max: out of range");
	assert_err(errs, "15: [nowhere]: unknown section");
	assert_err(errs, "18: [mef] require_sni: bad boolean");
	assert_err(errs, "19: [mef] enrolment_expiry: bad duration");
	assert_err(errs, "20: [mef]: syntax error");
	assert_int_equal(count_lines(errs), 7);
	free(errs);
}

static void
test_private_modes(void **state)
{
	static const char *const keys[] = {"tls.key", "kek.key", "ca.key"};
	static const char *const want[] = {"10: [tls] private_key: ", "5: [store] kek_file: ",
					   "13: [ca] private_key: "};
	char text[1024];

	(void)state;
	snprintf(text, sizeof(text), "%s[ca]\ncertificate = ca.crt\nprivate_key = ca.key\n", base);
	for (size_t i = 0; i < 3; i++) {
		struct mef_conf *c = NULL;
		char *errs = NULL, line[PATH_MAX + 100];

		assert_int_equal(chmod(tpath(keys[i]), 0644), 0);
		assert_int_equal(load(text, &c, &errs), MEF_ECONF);
		snprintf(line, sizeof(line), "%s%s is accessible by group or others", want[i],
			 tpath(keys[i]));
		assert_err(errs, line);
		assert_int_equal(count_lines(errs), 1);
		free(errs);
		assert_int_equal(chmod(tpath(keys[i]), 0640), 0);
		assert_int_equal(load(text, &c, &errs), MEF_ECONF);
		assert_err(errs, line);
		free(errs);
		assert_int_equal(chmod(tpath(keys[i]), 0600), 0);
		assert_int_equal(load(text, &c, &errs), 0);
		conf_free(c);
		free(errs);
	}
}

/* A relative config name is made absolute against the working directory, symlinks kept. */
static void
test_relative_name(void **state)
{
	struct mef_conf *c = NULL;
	char old[PATH_MAX], *errs = NULL;

	(void)state;
	assert_int_equal(load(base, &c, &errs), 0);
	conf_free(c);
	free(errs);
	assert_int_equal(mkdir(tpath("link"), 0755), 0);
	assert_int_equal(symlink("../mefd.conf", tpath("link/mefd.conf")), 0);
	assert_non_null(getcwd(old, sizeof(old)));
	assert_int_equal(chdir(tmp), 0);
	assert_int_equal(conf_load("mefd.conf", &c, stderr), 0);
	assert_string_equal(c->path, tpath("mefd.conf"));
	assert_string_equal(c->kek_file, tpath("kek.key"));
	c = conf_free(c);
	/* Through the link, "kek.key" means link/kek.key, which does not exist. */
	assert_int_equal(conf_load("link/mefd.conf", &c, NULL), MEF_ECONF);
	assert_int_equal(chdir(old), 0);
}

static void
test_unreadable_config(void **state)
{
	struct mef_conf *c = NULL;
	char *errs = NULL;
	size_t n;
	FILE *e = open_memstream(&errs, &n);

	(void)state;
	assert_int_equal(conf_load(tpath("absent.conf"), &c, e), MEF_ECONF);
	fclose(e);
	assert_null(c);
	assert_int_equal(count_lines(errs), 1);
	assert_non_null(strstr(errs, tpath("absent.conf")));
	free(errs);
	/* A NULL errs stream is allowed: only the code comes back. */
	assert_int_equal(conf_load(tmp, &c, NULL), MEF_ECONF);
}

static void
test_durations(void **state)
{
	static const struct {
		const char *in;
		int64_t want;
	} good[] = {
		{"0", 0}, {"1", 1}, {"3600", 3600}, {"90s", 90}, {"15m", 900}, {"12h", 43200},
		{"30d", 2592000}, {"365d", 31536000}, {"9223372036854775807", INT64_MAX},
	};
	static const char *const bad[] = {
		"", "d", "-1", "+5", "1.5h", "10 m", "5w", "1H", "12hh", "9223372036854775808",
		"106751991167301d", "1e3", " 5",
	};
	int64_t v;

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		v = -1;
		assert_int_equal(conf_parse_duration(good[i].in, &v), 0);
		assert_true(v == good[i].want);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		v = -7;
		if (conf_parse_duration(bad[i], &v) != MEF_EINVAL)
			fail_msg("accepted \"%s\"", bad[i]);
		assert_true(v == -7); /* untouched on failure */
	}
}

static void
test_addresses(void **state)
{
	static const char *const bad[] = {
		"", ":5684", "127.0.0.1:", "127.0.0.1:0", "127.0.0.1:65536", "127.0.0.1:99999999999",
		"127.0.0.1:-1", "127.0.0.1:x", "127.0.0.1", "::1:5684", "[::1]5684", "[::1]",
		"[127.0.0.1]:5684", "host.example:5684", "1.2.3:5684", "[::g]:5684",
		"localhost.:5684",
	};
	struct conf_addr a;
	struct sockaddr_in *v4 = (struct sockaddr_in *)&a.ss;
	struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&a.ss;
	const char *why;
	struct in_addr want4;

	(void)state;
	assert_int_equal(conf_parse_addr("192.0.2.7:5684", &a, &why), 0);
	assert_int_equal(a.ss.ss_family, AF_INET);
	assert_int_equal(ntohs(v4->sin_port), 5684);
	assert_int_equal(a.port, 5684);
	assert_int_equal(a.len, sizeof(struct sockaddr_in));
	assert_int_equal(inet_pton(AF_INET, "192.0.2.7", &want4), 1);
	assert_memory_equal(&v4->sin_addr, &want4, 4);
	assert_string_equal(a.text, "192.0.2.7:5684");

	assert_int_equal(conf_parse_addr("localhost:1", &a, &why), 0);
	assert_int_equal(a.ss.ss_family, AF_INET);
	assert_true(v4->sin_addr.s_addr == htonl(INADDR_LOOPBACK));
	assert_int_equal(a.port, 1);

	assert_int_equal(conf_parse_addr("[::1]:65535", &a, &why), 0);
	assert_int_equal(a.ss.ss_family, AF_INET6);
	assert_int_equal(a.len, sizeof(struct sockaddr_in6));
	assert_int_equal(ntohs(v6->sin6_port), 65535);
	assert_memory_equal(&v6->sin6_addr, &in6addr_loopback, 16);
	assert_string_equal(a.text, "[::1]:65535");

	assert_int_equal(conf_parse_addr("[::]:5684", &a, &why), 0);
	assert_memory_equal(&v6->sin6_addr, &in6addr_any, 16);

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why = NULL;
		if (conf_parse_addr(bad[i], &a, &why) != MEF_EINVAL)
			fail_msg("accepted \"%s\"", bad[i]);
		assert_non_null(why);
	}
}

/* Loads text, dumps it, loads the dump, dumps again: the two dumps must match. */
static void
test_dump_round_trip(void **state)
{
	struct mef_conf *c = NULL;
	char *errs = NULL, *d1 = NULL, *d2 = NULL, text[1024];
	size_t n;
	FILE *f;

	(void)state;
	snprintf(text, sizeof(text), "%s[https]\npsk_listen = [::1]:8443\n[mef]\n"
		 "enrolment_expiry = 90m\n[ca]\nvalidity = 3601\n", base);
	assert_int_equal(load(text, &c, &errs), 0);
	f = open_memstream(&d1, &n);
	conf_dump(c, f);
	fclose(f);
	conf_free(c);
	free(errs);
	assert_non_null(strstr(d1, "[mef]\nfqdn = mef.example.org\nenrolment_expiry = 90m\n"
				  "require_sni = no\n"));
	assert_non_null(strstr(d1, "validity = 3601s\n"));
	assert_non_null(strstr(d1, "# cert_listen =\n"));
	assert_non_null(strstr(d1, "psk_listen = [::1]:8443\n"));
	assert_non_null(strstr(d1, "level = info\n"));
	assert_non_null(strstr(d1, "housekeeping_interval = 60\n"));
	assert_int_equal(load(d1, &c, &errs), 0);
	f = open_memstream(&d2, &n);
	conf_dump(c, f);
	fclose(f);
	assert_string_equal(d1, d2);
	conf_free(c);
	free(errs);
	free(d1);
	free(d2);
}

/* Replaces every occurrence of from in *s by to (reallocates). */
static void
replace_all(char **s, const char *from, const char *to)
{
	char *out = NULL, *p = *s, *hit;
	size_t n;
	FILE *f = open_memstream(&out, &n);

	while ((hit = strstr(p, from))) {
		fwrite(p, 1, (size_t)(hit - p), f);
		fputs(to, f);
		p = hit + strlen(from);
	}
	fputs(p, f);
	fclose(f);
	free(*s);
	*s = out;
}

/* The shipped example, with /etc/mefd and /var/lib/mefd moved into the temp dir. */
static void
test_example(void **state)
{
	struct mef_conf *c = NULL;
	char *text = NULL, *errs = NULL, *dump = NULL, *line, *save;
	char dir[sizeof(tmp) + 8];
	size_t n = 0;
	FILE *f = fopen("conf/mefd.conf.example", "r");

	(void)state;
	if (!f)
		skip(); /* run from the repository root */
	assert_true(getdelim(&text, &n, '\0', f) > 0);
	fclose(f);
	snprintf(dir, sizeof(dir), "%s/", tmp);
	replace_all(&text, "/etc/mefd/", dir);
	snprintf(dir, sizeof(dir), "%s/db/", tmp);
	replace_all(&text, "/var/lib/mefd/", dir);
	if (load(text, &c, &errs) != 0)
		fail_msg("example rejected:\n%s", errs);
	f = open_memstream(&dump, &n);
	conf_dump(c, f);
	fclose(f);
	/*
	 * Every key must be documented in the example: set, or shown as a
	 * commented-out line when it is optional and off by default.
	 */
	for (line = strtok_r(dump, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char key[64];

		if (line[0] == '#')
			line += line[1] == ' ' ? 2 : 1;
		if (line[0] == '[' || sscanf(line, "%63s =", key) != 1)
			continue;
		strcat(key, " =");
		if (!strstr(text, key))
			fail_msg("example does not set %s", key);
	}
	conf_free(c);
	free(errs);
	free(text);
	free(dump);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_full, setup, teardown),
		cmocka_unit_test_setup_teardown(test_defaults, setup, teardown),
		cmocka_unit_test_setup_teardown(test_each_error, setup, teardown),
		cmocka_unit_test_setup_teardown(test_base_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_missing_and_cross, setup, teardown),
		cmocka_unit_test_setup_teardown(test_many_errors_one_run, setup, teardown),
		cmocka_unit_test_setup_teardown(test_private_modes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unreadable_config, setup, teardown),
		cmocka_unit_test_setup_teardown(test_relative_name, setup, teardown),
		cmocka_unit_test(test_durations),
		cmocka_unit_test(test_addresses),
		cmocka_unit_test_setup_teardown(test_dump_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_example, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
