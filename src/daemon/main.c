/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * mefd's entry point: parse the command line, load the config, and run the
 * life-cycle steps of mefd.c in order. --check-config runs the same startup
 * path up to binding sockets (config, key files, PEM files, store).
 */
#include <getopt.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "daemon_internal.h"
#include "mef/err.h"
#include "mef/log.h"

struct args {
	const char *config;
	bool foreground;
	bool check;
	bool version;
};

static void
usage(FILE *f)
{
	fprintf(f, "usage: mefd -c FILE [--foreground]\n"
		   "       mefd -c FILE --check-config\n"
		   "       mefd --version\n");
}

static int
parse_args(int argc, char **argv, struct args *a)
{
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'},
		{"foreground", no_argument, NULL, 'f'},
		{"check-config", no_argument, NULL, 't'},
		{"version", no_argument, NULL, 'V'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int c;

	while ((c = getopt_long(argc, argv, "c:ftVh", opts, NULL)) != -1) {
		switch (c) {
		case 'c': a->config = optarg; break;
		case 'f': a->foreground = true; break;
		case 't': a->check = true; break;
		case 'V': a->version = true; break;
		case 'h': usage(stdout); exit(0);
		default: return -1;
		}
	}
	if (optind != argc || (!a->version && !a->config))
		return -1;
	return 0;
}

/* Loads one PEM file the way the listeners will; names the file and key on failure. */
static int
check_pem(const struct mef_conf *c, const char *key, const char *path, bool private_key)
{
	FILE *f;
	void *obj;

	if (!path)
		return 0;
	f = fopen(path, "r");
	if (!f) {
		fprintf(stderr, "%s: %s %s: cannot be opened\n", c->path, key, path);
		return MEF_ECONF;
	}
	obj = private_key ? (void *)PEM_read_PrivateKey(f, NULL, NULL, NULL)
			  : (void *)PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	if (!obj) {
		fprintf(stderr, "%s: %s %s: not a PEM %s\n", c->path, key, path,
			private_key ? "private key" : "certificate");
		return MEF_ECONF;
	}
	if (private_key)
		EVP_PKEY_free(obj);
	else
		X509_free(obj);
	return 0;
}

/* A certificate and its private key must belong together, as the listeners and the CA will require. */
static int
check_pair(const struct mef_conf *c, const char *section, const char *cert_path, const char *key_path)
{
	FILE *cf, *kf;
	X509 *x = NULL;
	EVP_PKEY *k = NULL;
	int r = 0;

	if (!cert_path || !key_path)
		return 0;
	cf = fopen(cert_path, "r");
	kf = fopen(key_path, "r");
	if (cf)
		x = PEM_read_X509(cf, NULL, NULL, NULL);
	if (kf)
		k = PEM_read_PrivateKey(kf, NULL, NULL, NULL);
	if (x && k && X509_check_private_key(x, k) != 1) {
		fprintf(stderr, "%s: %s certificate %s and private_key %s do not match\n", c->path,
			section, cert_path, key_path);
		r = MEF_ECONF;
	}
	if (cf)
		fclose(cf);
	if (kf)
		fclose(kf);
	X509_free(x);
	EVP_PKEY_free(k);
	return r;
}

int
mefd_check_pki(const struct mef_conf *c)
{
	int r = 0;

	r |= check_pem(c, "[tls] certificate", c->tls_certificate, false);
	r |= check_pem(c, "[tls] private_key", c->tls_private_key, true);
	r |= check_pem(c, "[tls] client_ca", c->tls_client_ca, false);
	r |= check_pem(c, "[ca] certificate", c->ca_certificate, false);
	r |= check_pem(c, "[ca] private_key", c->ca_private_key, true);
	if (r == 0) {
		r |= check_pair(c, "[tls]", c->tls_certificate, c->tls_private_key);
		r |= check_pair(c, "[ca]", c->ca_certificate, c->ca_private_key);
	}
	return r ? MEF_ECONF : 0;
}

/* Detaches from the terminal after the listeners are bound (no --foreground, no systemd). */
static int
daemonize(void)
{
	pid_t pid = fork();

	if (pid < 0)
		return MEF_EIO;
	if (pid > 0)
		_exit(0);
	if (setsid() < 0)
		return MEF_EIO;
	return chdir("/") == 0 ? 0 : MEF_EIO;
}

static int
run(const struct args *a, struct mefd *d)
{
	int r;

	if (a->check) {
		r = mefd_check_pki(d->conf);
		/*
		 * a SQLite file that does not exist yet is created at the first start;
		 * a PostgreSQL store (no path) is always checked (UBSan: access(NULL))
		 */
		if (r == 0 && (!d->conf->store_path || access(d->conf->store_path, F_OK) == 0))
			r = mefd_open_store(d, true);
		if (r == 0)
			printf("%s: configuration OK\n", d->conf->path);
		return r;
	}
	r = mefd_open_store(d, false);
	if (r == 0)
		r = mefd_start(d);
	if (r == 0 && !a->foreground && !getenv("NOTIFY_SOCKET"))
		r = daemonize();
	if (r == 0)
		r = mefd_run(d);
	return r;
}

int
main(int argc, char **argv)
{
	static struct mefd d;
	struct args a = {0};
	int r;

	if (parse_args(argc, argv, &a) != 0) {
		usage(stderr);
		return 2;
	}
	if (a.version) {
		printf("mefd %s\n", MEFD_VERSION);
		return 0;
	}
	if (getenv("JOURNAL_STREAM"))
		log_set_journal(1);
	/* keys live in this process: no core dumps, no ptrace by others */
	(void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	signal(SIGPIPE, SIG_IGN);
	if (conf_load(a.config, &d.conf, stderr) != 0)
		return 1;
	log_set_level(d.conf->log_level);
	r = run(&a, &d);
	mefd_teardown(&d);
	return r == 0 ? 0 : 1;
}
