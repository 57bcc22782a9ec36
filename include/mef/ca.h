/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The MEF CA (decisions §5, style rule 23): the CA private key lives behind
 * ca_issue() and ca_crl(), whose requests are plain data (no pointers), so the
 * body can move into a separate signer process without touching callers. The
 * CA re-parses and re-checks every CSR itself (signature, P-256 key, exactly
 * the one SAN it was told) and issues only the TS-0003 10.1.1 client profile.
 * Pure of files after ca_open: no logging above debug, no store, no clock
 * except the times given in the request.
 */
#ifndef MEF_CA_H
#define MEF_CA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mef/secret.h"

struct ca;

#define CA_CSR_MAX 8192        /* largest CSR DER accepted */
#define CA_CERT_MAX 4096       /* largest certificate DER produced */
#define CA_SPKI_MAX 256        /* SubjectPublicKeyInfo DER of a P-256 key (91 bytes) */
#define CA_SERIAL_HEX 41       /* uppercase hex of a serial, NUL included */
#define CA_NAME_MAX 256

/* An issuance request: everything the signer needs, by value. */
struct ca_request {
	uint8_t csr[CA_CSR_MAX];   /* PKCS#10 DER */
	size_t csr_len;
	char san[CA_NAME_MAX];     /* the one SAN the CSR must carry (text as tlsx_peer_sans renders it) */
	char subject_cn[64];       /* CN of the subject; "" gives an empty subject */
	char challenge[384];       /* a challengePassword in the CSR must equal it (any case); "" = any */
	uint8_t spki[CA_SPKI_MAX]; /* serverkeygen: certify this P-256 key (as ca_keygen writes it), not the CSR's */
	size_t spki_len;           /* 0: the CSR's own key */
	int64_t not_before;        /* unix seconds */
	int64_t not_after;
};

struct ca_result {
	uint8_t cert[CA_CERT_MAX]; /* DER */
	size_t cert_len;
	char serial[CA_SERIAL_HEX];
	char subject[CA_NAME_MAX]; /* RFC 2253 text */
	const char *why;           /* on MEF_EINVAL/MEF_EAUTH/MEF_EUNSUPP: static reason */
};

/* One revoked certificate for a CRL. */
struct ca_revoked {
	char serial[CA_SERIAL_HEX];
	int64_t when;
};

/*
 * Loads the CA certificate (PEM) and key (PEM, a private file read through
 * a wiped secret buffer). The key must match the certificate. 0, MEF_EIO,
 * MEF_EAUTH (key file not private, or key/certificate mismatch), MEF_ECRYPTO.
 */
int ca_open(const char *cert_path, const char *key_path, struct ca **ret);
/* Frees (the key is wiped by OpenSSL); accepts NULL; returns NULL. */
struct ca *ca_free(struct ca *ca);

/* The CA certificate as DER, borrowed, valid while ca lives. */
void ca_cert_der(const struct ca *ca, const uint8_t **ret, size_t *ret_len);

/*
 * Checks req (decisions §5, TS-0003 10.1.4) and issues a certificate of the
 * TS-0003 10.1.1 profile: P-256 key, ECDSA-SHA256, keyUsage
 * digitalSignature, EKU clientAuth, the SAN copied from the CSR after it
 * matched req->san exactly, a 127-bit CSPRNG serial. res is written on
 * success; on refusal only res->why. 0, MEF_EINVAL (unparsable CSR),
 * MEF_EAUTH (bad CSR signature), MEF_EUNSUPP (key not P-256),
 * MEF_EDENIED (SAN missing, different or extra), MEF_ETOOBIG, MEF_ECRYPTO.
 * One call at a time per ca (its scratch buffers live in it).
 */
int ca_issue(struct ca *ca, const struct ca_request *req, struct ca_result *res);

/*
 * A DER CRL (v2, ECDSA-SHA256) listing revoked, valid from now to next.
 * *ret_der is malloc()ed (caller frees). 0, MEF_EINVAL, MEF_ECRYPTO, MEF_ENOMEM.
 */
int ca_crl(struct ca *ca, const struct ca_revoked *revoked, size_t n, int64_t now, int64_t next,
	   uint8_t **ret_der, size_t *ret_len);

/*
 * Checks a CSR without issuing (the front end's early, precise refusal; the
 * signer repeats it). want_san NULL accepts any one SAN (an upstream CA
 * serving a registration authority). ret_san (CA_NAME_MAX, may be NULL)
 * receives the SAN text; *ret_challenge (may be NULL) the challengePassword,
 * "" if absent. 0 or the ca_issue codes with *ret_why.
 */
int ca_csr_check(const uint8_t *der, size_t len, const char *want_san, char *ret_san,
		 char *ret_challenge, size_t challenge_len, const char **ret_why);

/* Serial, subject and validity of a DER certificate (RA mode records upstream answers). */
int ca_cert_info(const uint8_t *der, size_t len, char serial[CA_SERIAL_HEX],
		 char subject[CA_NAME_MAX], int64_t *ret_not_before, int64_t *ret_not_after);

/*
 * A fresh P-256 key for serverkeygen: PKCS#8 DER of the private key into a
 * new secret, SubjectPublicKeyInfo DER into spki. 0, MEF_ECRYPTO, MEF_ENOMEM.
 */
int ca_keygen(struct mef_secret **ret_pkcs8, uint8_t spki[CA_SPKI_MAX], size_t *ret_spki_len);

/*
 * Generates a self-signed P-256 CA (mefctl ca init): basicConstraints
 * CA:TRUE critical, keyUsage keyCertSign+cRLSign, and when
 * name_constraints is non-empty a critical nameConstraints extension in
 * OpenSSL syntax ("permitted;URI:.example.net,permitted;DNS:example.net").
 * Writes PEM files (key mode 0600, refusing to overwrite). 0, MEF_EEXIST,
 * MEF_EIO, MEF_EINVAL (bad constraints), MEF_ECRYPTO.
 */
int ca_generate(const char *cert_path, const char *key_path, const char *cn,
		const char *name_constraints, int64_t validity_seconds);

/* Canonical serial text: uppercase hex, leading zero bytes dropped. 0 or MEF_EINVAL. */
int ca_serial_canon(const char *in, char out[CA_SERIAL_HEX]);

#endif
