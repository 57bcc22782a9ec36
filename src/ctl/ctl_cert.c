/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * mefctl cert and ca verbs: list and show the certificates the MEF CA
 * issued, revoke one (mefd serves the new CRL at once: it rebuilds when the
 * revoked count changes), print the CRL, and `ca init` to make a CA key and
 * certificate carrying [ca] name_constraints (docs/est.md).
 */
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "ctl.h"
#include "mef/ca.h"
#include "mef/err.h"
#include "mef/est.h"

#define CA_INIT_VALIDITY (10LL * 365 * 86400)

static const char *
cert_state(const struct cert_rec *c, time_t now)
{
	return c->revoked ? "revoked" : c->not_after <= now ? "expired" : "valid";
}

static json_t *
cert_json(const struct cert_rec *c, time_t now)
{
	char nb[16], na[16], rv[16];

	ctl_time(c->not_before, nb);
	ctl_time(c->not_after, na);
	ctl_time(c->revoked_at, rv);
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s?}", "serial", c->serial,
			 "clientID", c->client_id, "subject", c->subject, "san", c->san,
			 "notBefore", nb, "notAfter", na, "status", cert_state(c, now),
			 "revocationTime", c->revoked ? rv : NULL);
}

struct cert_out {
	json_t *arr;
	time_t now;
};

static int
cert_one(void *ctx, const struct cert_rec *c)
{
	struct cert_out *o = ctx;
	char na[16];

	if (o->arr)
		return json_array_append_new(o->arr, cert_json(c, o->now)) == 0 ? 0 : MEF_ENOMEM;
	ctl_time(c->not_after, na);
	printf("%-40s %-24s %-8s %s %s\n", c->serial, c->client_id, cert_state(c, o->now), na,
	       c->san);
	return 0;
}

int
ctl_cert_list(struct ctl *c, const struct ctl_args *a)
{
	struct cert_out o = {.now = time(NULL)};
	int r;

	if ((r = ctl_open(c)) != 0)
		return r;
	if (a->opt[OPT_JSON] && !(o.arr = json_array()))
		return ctl_fail(MEF_ENOMEM, "cert list");
	if (!o.arr)
		printf("%-40s %-24s %-8s %-15s %s\n", "SERIAL", "CLIENT", "STATE", "NOT-AFTER", "SAN");
	if ((r = store_cert_list(c->store, false, cert_one, &o)) < 0) {
		json_decref(o.arr);
		return ctl_fail(r, "cert list");
	}
	return o.arr ? ctl_json_print(o.arr) : CTL_EXIT_OK;
}

static int
cert_load(struct ctl *c, const char *arg, struct cert_rec *rec, uint8_t **der, size_t *len)
{
	char serial[CA_SERIAL_HEX];
	int r;

	if (ca_serial_canon(arg, serial) != 0)
		return ctl_usage("SERIAL '%s': want hexadecimal digits", arg);
	if ((r = ctl_open(c)) != 0)
		return r;
	if ((r = store_cert_get(c->store, serial, rec, der, len)) < 0)
		return ctl_fail(r, "cert %s", serial);
	return 0;
}

int
ctl_cert_show(struct ctl *c, const struct ctl_args *a)
{
	const unsigned char *p;
	struct cert_rec rec = {0};
	uint8_t *der = NULL;
	size_t len = 0;
	X509 *x;
	int r;

	if ((r = cert_load(c, a->arg, &rec, &der, &len)) != 0)
		return r;
	if (a->opt[OPT_JSON]) {
		free(der);
		return ctl_json_print(cert_json(&rec, time(NULL)));
	}
	cert_one(&(struct cert_out){.now = time(NULL)}, &rec);
	p = der;
	if ((x = d2i_X509(NULL, &p, (long)len)) != NULL)
		PEM_write_X509(stdout, x);
	X509_free(x);
	free(der);
	return CTL_EXIT_OK;
}

int
ctl_cert_revoke(struct ctl *c, const struct ctl_args *a)
{
	struct cert_rec rec = {0};
	int r;

	if ((r = cert_load(c, a->arg, &rec, NULL, NULL)) != 0)
		return r;
	if ((r = store_cert_revoke(c->store, rec.serial, (int64_t)time(NULL))) < 0)
		return ctl_fail(r, "cert %s", rec.serial);
	printf("revoked %s (%s); the CRL changes with it\n", rec.serial, rec.client_id);
	return CTL_EXIT_OK;
}

/* The current CRL in PEM on stdout (for publication elsewhere). */
int
ctl_cert_crl(struct ctl *c, const struct ctl_args *a)
{
	const unsigned char *p;
	struct ca *ca = NULL;
	uint8_t *der = NULL;
	size_t len = 0;
	X509_CRL *crl;
	int r;

	(void)a;
	if ((r = ctl_open(c)) != 0)
		return r;
	if (!c->conf->ca_certificate || !c->conf->ca_private_key)
		return ctl_fail(MEF_ECONF, "[ca] certificate and private_key");
	if ((r = ca_open(c->conf->ca_certificate, c->conf->ca_private_key, &ca)) < 0)
		return ctl_fail(r, "[ca] certificate and private_key");
	r = est_crl_build(ca, c->store, (int64_t)time(NULL), &der, &len);
	ca_free(ca);
	if (r < 0)
		return ctl_fail(r, "crl");
	p = der;
	if ((crl = d2i_X509_CRL(NULL, &p, (long)len)) != NULL)
		PEM_write_X509_CRL(stdout, crl);
	X509_CRL_free(crl);
	free(der);
	return CTL_EXIT_OK;
}

/* `ca init PREFIX`: PREFIX.key (0600) and PREFIX.crt, never overwriting. */
int
ctl_ca_init(struct ctl *c, const struct ctl_args *a)
{
	char crt[1024], key[1024], cn[64];
	int r;

	if (snprintf(crt, sizeof(crt), "%s.crt", a->arg) >= (int)sizeof(crt) ||
	    snprintf(key, sizeof(key), "%s.key", a->arg) >= (int)sizeof(key))
		return ctl_usage("PREFIX too long");
	if ((r = ctl_open(c)) != 0)
		return r;
	snprintf(cn, sizeof(cn), "MEF CA %.48s", c->conf->fqdn);
	r = ca_generate(crt, key, cn, c->conf->ca_name_constraints, CA_INIT_VALIDITY);
	if (r < 0)
		return ctl_fail(r, "ca init %s", a->arg);
	printf("wrote %s and %s%s%s\n", crt, key, c->conf->ca_name_constraints ? "; name constraints: " : "",
	       c->conf->ca_name_constraints ? c->conf->ca_name_constraints : "");
	return CTL_EXIT_OK;
}
