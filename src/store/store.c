/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The public store_* API: checks arguments, seals secrets under the KEK with
 * aad naming the row ("client:<id>:psk", "group:<name>:secret", "ke:<keid>")
 * and opens them again on the way out, then dispatches to the backend's
 * struct store_ops. Backends never see a secret in clear.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mef/conf.h"
#include "mef/err.h"
#include "mef/store.h"
#include "mef/wrap.h"
#include "store_internal.h"

#define AAD_MAX (MEF_KEYID_MAX + MEF_ID_MAX + 32)

int
store_schema_version(void)
{
	return STORE_SCHEMA_VERSION;
}

/* A name we key rows by: non-empty and short enough for the fixed record fields. */
static bool
name_ok(const char *s, size_t max)
{
	return s && s[0] && strnlen(s, max) < max;
}

static bool
targets_ok(const struct mef_target *t, size_t n)
{
	if (n > MEF_MAX_TARGETS)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!name_ok(t[i].id, MEF_ID_MAX))
			return false;
	return true;
}

static int
seal(const struct store *s, const char *aad, const struct mef_secret *pt, struct store_blob *ret)
{
	if (!pt || !pt->p || pt->len == 0)
		return MEF_EINVAL;
	return wrap_seal(s->kek, aad, pt->p, pt->len, &ret->p, &ret->len);
}

/* Opens blob (and frees it in every case) into *ret. */
static int
unseal(const struct store *s, const char *aad, struct store_blob *blob, struct mef_secret **ret)
{
	int r = wrap_open(s->kek, aad, blob->p, blob->len, ret);

	free(blob->p);
	blob->p = NULL;
	return r;
}

/* Backends without these (PostgreSQL for now) say so: pg_dump, row-by-row add. */
int
store_tx_begin(struct store *s)
{
	return s->ops->tx_outer ? s->ops->tx_outer(s, 0) : MEF_EUNSUPP;
}

int
store_tx_end(struct store *s, bool ok)
{
	return s->ops->tx_outer ? s->ops->tx_outer(s, ok ? 1 : 2) : MEF_EUNSUPP;
}

int
store_backup(struct store *s, const char *path)
{
	if (!path || !path[0])
		return MEF_EINVAL;
	return s->ops->backup ? s->ops->backup(s, path) : MEF_EUNSUPP;
}

int
store_open(const char *path, const struct mef_secret *kek, bool readonly, struct store **ret)
{
	struct store *s;
	int r;

	if (!path || !path[0] || !kek || kek->len != WRAP_KEK_LEN)
		return MEF_EINVAL;
	r = store_sqlite_ops.open(path, readonly, &s);
	if (r < 0)
		return r;
	s->ops = &store_sqlite_ops;
	s->kek = kek;
	*ret = s;
	return 0;
}

static bool
is_pg_url(const char *url)
{
	return strncmp(url, "postgresql://", 13) == 0 || strncmp(url, "postgres://", 11) == 0;
}

int
store_open_url(const char *url, const char *password, const struct mef_secret *kek,
	       bool readonly, struct store **ret)
{
	struct store *s;
	int r;

	if (!url || !url[0] || !kek || kek->len != WRAP_KEK_LEN)
		return MEF_EINVAL;
	if (!is_pg_url(url))
		return store_open(strncmp(url, "sqlite:", 7) == 0 ? url + 7 : url, kek, readonly, ret);
	if ((r = store_pg_open(url, password, readonly, &s)) < 0)
		return r;
	s->ops = &store_pg_ops;
	s->kek = kek;
	*ret = s;
	return 0;
}

/* The database password: the first line of a private file, as a NUL-terminated secret. */
static int
password_read(const char *path, struct mef_secret **ret)
{
	struct mef_secret *pw = secret_new(1024);
	FILE *f;
	size_t n;

	if (!pw)
		return MEF_ENOMEM;
	if (secret_file_is_private(path) != 0 || !(f = fopen(path, "re"))) {
		secret_free(pw);
		return MEF_EIO;
	}
	n = fread(pw->p, 1, pw->len - 1, f);
	fclose(f);
	pw->p[n] = 0;
	pw->p[strcspn((char *)pw->p, "\r\n")] = 0;
	*ret = pw;
	return 0;
}

int
store_open_conf(const struct mef_conf *conf, const struct mef_secret *kek, bool readonly,
		struct store **ret)
{
	struct mef_secret *pw = NULL;
	int r;

	if (!conf->store_backend || strcmp(conf->store_backend, "postgresql") != 0)
		return store_open(conf->store_path, kek, readonly, ret);
	if (!conf->store_url || !is_pg_url(conf->store_url))
		return MEF_EINVAL;
	if (conf->store_password_file && (r = password_read(conf->store_password_file, &pw)) < 0)
		return r;
	r = store_open_url(conf->store_url, pw ? (const char *)pw->p : NULL, kek, readonly, ret);
	secret_free(pw);
	return r;
}

const char *
store_backend(const struct store *s)
{
	return s->ops->name;
}

struct store *
store_close(struct store *s)
{
	if (s)
		s->ops->close(s);
	return NULL;
}

/* --- clients --- */

static bool
client_ok(const struct client_rec *c)
{
	return name_ok(c->id, MEF_ID_MAX) && targets_ok(c->targets, c->n_targets);
}

int
store_client_add(struct store *s, const struct client_rec *c, const struct mef_secret *psk)
{
	struct client_rec row = *c;
	struct store_blob blob = { 0 };
	char aad[AAD_MAX];
	int r;

	if (!client_ok(c))
		return MEF_EINVAL;
	if (c->kind == CRED_PSK) {
		if (!name_ok(c->psk_identity, MEF_ID_MAX) || !psk)
			return MEF_EINVAL;
		snprintf(aad, sizeof(aad), "client:%s:psk", c->id);
		if ((r = seal(s, aad, psk, &blob)) < 0)
			return r;
	} else if (c->kind != CRED_CERT || !name_ok(c->cert_san, MEF_ID_MAX) || psk) {
		return MEF_EINVAL;
	}
	if (row.created == 0)
		row.created = time(NULL);
	r = s->ops->client_add(s, &row, blob.p ? &blob : NULL);
	free(blob.p);
	return r;
}

int
store_client_update(struct store *s, const struct client_rec *c)
{
	if (!client_ok(c))
		return MEF_EINVAL;
	return s->ops->client_update(s, c);
}

int
store_client_get(struct store *s, const char *id, struct client_rec *ret)
{
	if (!name_ok(id, MEF_ID_MAX))
		return MEF_ENOTFOUND;
	return s->ops->client_get(s, id, ret);
}

int
store_client_find_psk(struct store *s, const char *identity, struct client_rec *ret,
		      struct mef_secret **ret_psk)
{
	struct client_rec row;
	struct store_blob blob = { 0 };
	char aad[AAD_MAX];
	int r;

	if (!name_ok(identity, MEF_ID_MAX))
		return MEF_ENOTFOUND;
	if ((r = s->ops->client_find_psk(s, identity, &row, ret_psk ? &blob : NULL)) < 0)
		return r;
	snprintf(aad, sizeof(aad), "client:%s:psk", row.id);
	if (ret_psk && (r = unseal(s, aad, &blob, ret_psk)) < 0)
		return r;
	*ret = row;
	return 0;
}

int
store_client_find_cert(struct store *s, const char *san, struct client_rec *ret)
{
	if (!name_ok(san, MEF_ID_MAX))
		return MEF_ENOTFOUND;
	return s->ops->client_find_cert(s, san, ret);
}

int
store_client_remove(struct store *s, const char *id)
{
	if (!name_ok(id, MEF_ID_MAX))
		return MEF_ENOTFOUND;
	return s->ops->client_remove(s, id);
}

int
store_client_list(struct store *s, store_client_cb cb, void *ctx)
{
	return s->ops->client_list(s, cb, ctx);
}

int
store_member_set_disabled(struct store *s, const char *id, bool disabled)
{
	if (!name_ok(id, MEF_ID_MAX))
		return MEF_EINVAL;
	return s->ops->member_set_disabled(s, id, disabled);
}

int
store_member_is_disabled(struct store *s, const char *id, bool *ret)
{
	if (!name_ok(id, MEF_ID_MAX)) {
		*ret = false;
		return 0;
	}
	return s->ops->member_is_disabled(s, id, ret);
}

int
store_member_disabled_list(struct store *s, store_id_cb cb, void *ctx)
{
	return s->ops->member_disabled_list(s, cb, ctx);
}

int
store_cred_stamp(struct store *s, int64_t *ret)
{
	return s->ops->cred_stamp(s, ret);
}

/* --- enrolment groups --- */

int
store_group_add(struct store *s, const struct group_rec *g, const struct mef_secret *secret)
{
	struct group_rec row = *g;
	struct store_blob blob = { 0 };
	char aad[AAD_MAX];
	int r;

	if (!name_ok(g->name, MEF_ID_MAX) || !name_ok(g->pattern, MEF_ID_MAX) ||
	    !targets_ok(g->targets, g->n_targets) || !secret)
		return MEF_EINVAL;
	snprintf(aad, sizeof(aad), "group:%s:secret", g->name);
	if ((r = seal(s, aad, secret, &blob)) < 0)
		return r;
	if (row.created == 0)
		row.created = time(NULL);
	r = s->ops->group_add(s, &row, &blob);
	free(blob.p);
	return r;
}

int
store_group_get(struct store *s, const char *name, struct group_rec *ret)
{
	if (!name_ok(name, MEF_ID_MAX))
		return MEF_ENOTFOUND;
	return s->ops->group_get(s, name, ret);
}

int
store_group_match(struct store *s, const char *kpm_id, struct group_rec *ret,
		  struct mef_secret **ret_secret)
{
	struct group_rec row;
	struct store_blob blob = { 0 };
	char aad[AAD_MAX];
	int r;

	if (!name_ok(kpm_id, MEF_ID_MAX))
		return MEF_ENOTFOUND;
	if ((r = s->ops->group_match(s, kpm_id, &row, ret_secret ? &blob : NULL)) < 0)
		return r;
	snprintf(aad, sizeof(aad), "group:%s:secret", row.name);
	if (ret_secret && (r = unseal(s, aad, &blob, ret_secret)) < 0)
		return r;
	*ret = row;
	return 0;
}

struct group_scan_ctx {
	const struct store *s;
	store_group_secret_cb cb;
	void *ctx;
};

static int
group_scan_open(void *arg, const struct group_rec *g, const struct store_blob *blob)
{
	struct group_scan_ctx *sc = arg;
	struct mef_secret *secret = NULL;
	char aad[AAD_MAX];

	snprintf(aad, sizeof(aad), "group:%s:secret", g->name);
	if (wrap_open(sc->s->kek, aad, blob->p, blob->len, &secret) < 0)
		secret = NULL;
	return sc->cb(sc->ctx, g, secret);
}

int
store_group_scan(struct store *s, store_group_secret_cb cb, void *ctx)
{
	struct group_scan_ctx sc = { .s = s, .cb = cb, .ctx = ctx };

	return s->ops->group_scan(s, group_scan_open, &sc);
}

bool
store_group_glob(const struct store *s, const char *pattern, const char *kpm_id)
{
	return s->ops->glob(pattern, kpm_id);
}

int
store_group_remove(struct store *s, const char *name)
{
	if (!name_ok(name, MEF_ID_MAX))
		return MEF_ENOTFOUND;
	return s->ops->group_remove(s, name);
}

int
store_group_list(struct store *s, store_group_cb cb, void *ctx)
{
	return s->ops->group_list(s, cb, ctx);
}

/* --- enrolment keys --- */

int
store_ke_put(struct store *s, const struct ke_rec *k, const struct mef_secret *ke)
{
	struct store_blob blob = { 0 };
	char aad[AAD_MAX];
	int r;

	if (!name_ok(k->keid, MEF_KEYID_MAX) || !name_ok(k->client_id, MEF_ID_MAX))
		return MEF_EINVAL;
	snprintf(aad, sizeof(aad), "ke:%s", k->keid);
	if ((r = seal(s, aad, ke, &blob)) < 0)
		return r;
	r = s->ops->ke_put(s, k, &blob);
	free(blob.p);
	return r;
}

int
store_ke_get(struct store *s, const char *keid, struct ke_rec *ret, struct mef_secret **ret_ke)
{
	struct ke_rec row;
	struct store_blob blob = { 0 };
	char aad[AAD_MAX];
	int r;

	if (!name_ok(keid, MEF_KEYID_MAX))
		return MEF_ENOTFOUND;
	if ((r = s->ops->ke_get(s, keid, &row, ret_ke ? &blob : NULL)) < 0)
		return r;
	if (ret_ke) {
		snprintf(aad, sizeof(aad), "ke:%s", row.keid);
		if ((r = unseal(s, aad, &blob, ret_ke)) < 0)
			return r;
	}
	*ret = row;
	return 0;
}

struct ke_list_ctx {
	const struct store *s;
	store_ke_cb cb;
	void *ctx;
};

static int
ke_list_open(void *arg, const struct ke_rec *k, const struct store_blob *blob)
{
	struct ke_list_ctx *lc = arg;
	struct mef_secret *ke = NULL;
	char aad[AAD_MAX];
	int r;

	if (blob) {
		snprintf(aad, sizeof(aad), "ke:%s", k->keid);
		r = wrap_open(lc->s->kek, aad, blob->p, blob->len, &ke);
		if (r < 0)
			return r;
	}
	r = lc->cb(lc->ctx, k, ke);
	secret_free(ke);
	return r;
}

int
store_ke_list(struct store *s, const char *client_id, bool with_secrets, store_ke_cb cb, void *ctx)
{
	struct ke_list_ctx lc = { .s = s, .cb = cb, .ctx = ctx };

	if (client_id && !name_ok(client_id, MEF_ID_MAX))
		return 0;
	return s->ops->ke_list(s, client_id, with_secrets, ke_list_open, &lc);
}

int
store_ke_revoke(struct store *s, const char *keid)
{
	if (!name_ok(keid, MEF_KEYID_MAX))
		return MEF_ENOTFOUND;
	return s->ops->ke_revoke(s, keid);
}

int
store_ke_sweep(struct store *s, int64_t now, unsigned *ret_n)
{
	return s->ops->ke_sweep(s, now, ret_n);
}

/* --- issued certificates (no secrets: plain rows) --- */

int
store_cert_put(struct store *s, const struct cert_rec *c, const uint8_t *der, size_t der_len)
{
	if (!name_ok(c->serial, STORE_SERIAL_MAX) || !name_ok(c->client_id, MEF_ID_MAX) ||
	    !der || der_len == 0)
		return MEF_EINVAL;
	return s->ops->cert_put(s, c, der, der_len);
}

int
store_cert_get(struct store *s, const char *serial, struct cert_rec *ret, uint8_t **ret_der,
	       size_t *ret_der_len)
{
	struct store_blob der = { 0 };
	struct cert_rec row;
	int r;

	if (!name_ok(serial, STORE_SERIAL_MAX))
		return MEF_ENOTFOUND;
	if ((r = s->ops->cert_get(s, serial, &row, ret_der ? &der : NULL)) < 0)
		return r;
	if (ret_der) {
		*ret_der = der.p;
		*ret_der_len = der.len;
	}
	*ret = row;
	return 0;
}

int
store_cert_revoke(struct store *s, const char *serial, int64_t when)
{
	if (!name_ok(serial, STORE_SERIAL_MAX))
		return MEF_ENOTFOUND;
	return s->ops->cert_revoke(s, serial, when);
}

int
store_cert_list(struct store *s, bool revoked_only, store_cert_cb cb, void *ctx)
{
	return s->ops->cert_list(s, revoked_only, cb, ctx);
}

int
store_cert_revoked_count(struct store *s, int64_t *ret)
{
	return s->ops->cert_revoked_count(s, ret);
}
