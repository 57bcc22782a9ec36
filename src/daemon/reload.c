/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * SIGHUP: build a complete new configuration off to the side; if it fails,
 * log every error and keep serving on the old one; if it parses, hand it to
 * the bindings (new TLS credentials, limits) and swap. Keys that cannot
 * change in a running process (store, KEK, listen addresses) keep their old
 * values with a warning. Retired configs are kept until exit because
 * sessions may still point into them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>

#include "daemon_internal.h"
#include "mef/err.h"
#include "mef/log.h"
#include "mef/net.h"

struct retired_conf {
	struct mef_conf *conf;
	struct retired_conf *next;
};

/* Logs each line of a buffer of config errors. */
static void
log_lines(char *buf)
{
	for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n"))
		log_err("reload refused: %s", line);
}

static bool
addr_equal(const struct conf_addr *a, const struct conf_addr *b)
{
	return strcmp(a->text, b->text) == 0;
}

/* [store] keys may be unset (path with postgresql, url with sqlite). */
static bool
str_changed(const char *a, const char *b)
{
	return (a == NULL) != (b == NULL) || (a && strcmp(a, b) != 0);
}

static bool
store_changed(const struct mef_conf *old, const struct mef_conf *nc)
{
	return str_changed(old->store_path, nc->store_path) ||
	       str_changed(old->kek_file, nc->kek_file) ||
	       str_changed(old->store_backend, nc->store_backend) ||
	       str_changed(old->store_url, nc->store_url) ||
	       str_changed(old->store_password_file, nc->store_password_file) ||
	       old->client_cache != nc->client_cache;
}

static void
keep_str(char **field, const char *old)
{
	free(*field);
	*field = old ? strdup(old) : NULL;
}

/* Restores keys that need a restart, warning once for each. */
static void
keep_restart_keys(const struct mef_conf *old, struct mef_conf *nc)
{
	bool listen_changed = old->n_coap_listen != nc->n_coap_listen ||
			      old->has_https_psk != nc->has_https_psk ||
			      old->has_https_cert != nc->has_https_cert ||
			      (old->has_https_psk && !addr_equal(&old->https_psk_listen, &nc->https_psk_listen)) ||
			      (old->has_https_cert && !addr_equal(&old->https_cert_listen, &nc->https_cert_listen));

	for (size_t i = 0; !listen_changed && i < old->n_coap_listen; i++)
		listen_changed = !addr_equal(&old->coap_listen[i], &nc->coap_listen[i]);
	if (listen_changed) {
		log_warn("reload: listen addresses changed; they take effect at the next restart");
		memcpy(nc->coap_listen, old->coap_listen, sizeof(nc->coap_listen));
		nc->n_coap_listen = old->n_coap_listen;
		nc->https_psk_listen = old->https_psk_listen;
		nc->has_https_psk = old->has_https_psk;
		nc->https_cert_listen = old->https_cert_listen;
		nc->has_https_cert = old->has_https_cert;
	}
	if (store_changed(old, nc)) {
		log_warn("reload: [store] changes take effect at the next restart");
		keep_str(&nc->store_path, old->store_path);
		keep_str(&nc->kek_file, old->kek_file);
		keep_str(&nc->store_backend, old->store_backend);
		keep_str(&nc->store_url, old->store_url);
		keep_str(&nc->store_password_file, old->store_password_file);
		nc->client_cache = old->client_cache;
	}
}

static int
apply_to_bindings(struct mefd *d, const struct mef_conf *nc)
{
	int r = 0;

	if (d->coap)
		r = coapb_reload(d->coap, nc);
	if (r == 0 && d->https_psk)
		r = httpb_reload(d->https_psk, nc);
	if (r == 0 && d->https_cert)
		r = httpb_reload(d->https_cert, nc);
	return r;
}

void
mefd_reload(struct mefd *d)
{
	struct mef_conf *nc = NULL;
	struct retired_conf *old;
	char *errs = NULL;
	size_t errs_len = 0;
	FILE *f = open_memstream(&errs, &errs_len);
	int r;

	if (d->notify)
		(void)sd_notify(0, "RELOADING=1");
	log_notice("reloading %s", d->conf->path);
	r = f ? conf_load(d->conf->path, &nc, f) : MEF_ENOMEM;
	if (f)
		fclose(f);
	if (r == 0 && !nc->store_path && !nc->store_url)
		r = MEF_ECONF;
	if (r == 0) {
		keep_restart_keys(d->conf, nc);
		r = apply_to_bindings(d, nc);
		if (r != 0)
			log_err("reload: new TLS credentials refused (%s); old ones stay", mef_strerror(r));
	} else if (errs) {
		log_lines(errs);
	}
	free(errs);
	old = r == 0 ? calloc(1, sizeof(*old)) : NULL;
	if (r == 0 && old) {
		old->conf = d->conf;
		old->next = d->retired;
		d->retired = old;
		d->conf = nc;
		log_set_level(nc->log_level);
		log_notice("reloaded %s", nc->path);
	} else {
		conf_free(nc);
		log_err("reload failed; still serving with the previous configuration");
	}
	if (d->notify)
		(void)sd_notify(0, "READY=1");
}

void
mefd_retired_free(struct mefd *d)
{
	while (d->retired) {
		struct retired_conf *r = d->retired;

		d->retired = r->next;
		conf_free(r->conf);
		free(r);
	}
}
