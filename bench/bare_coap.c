/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The baseline for make bench: the smallest libcoap 4.3.1 (OpenSSL) server,
 * DTLS on UDP and TLS on TCP on one port, one fixed PSK (and with -C/-K/-A a
 * certificate), answering every GET or POST with 2.05 and no work. Same
 * libcoap limits as mefd's, so the ratio is mefd's own cost.
 * bare_coap PORT PSKHEX [CERT KEY CA]; BARE_MAX_SESSIONS overrides 1024.
 */
#include <coap3/coap.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static volatile sig_atomic_t quit;

static void
on_term(int s)
{
	(void)s;
	quit = 1;
}

static void
answer(coap_resource_t *r, coap_session_t *s, const coap_pdu_t *in, const coap_string_t *q,
       coap_pdu_t *out)
{
	static const uint8_t body[] = "{\"status\":true}";

	(void)r;
	(void)s;
	(void)in;
	(void)q;
	coap_pdu_set_code(out, COAP_RESPONSE_CODE_CONTENT);
	coap_add_data(out, sizeof(body) - 1, body);
}

/* mefd's coapb_tls_setup in effect: same floor, suites, no tickets, id context. */
static int
tls_setup(void *tls, coap_dtls_pki_t *setup)
{
	static const char ciphers[] =
		"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
		"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-AES128-GCM-SHA256:"
		"ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-CHACHA20-POLY1305:ECDHE-PSK-CHACHA20-POLY1305:"
		"ECDHE-ECDSA-AES128-CCM:PSK-AES128-GCM-SHA256:PSK-AES256-GCM-SHA384:"
		"PSK-CHACHA20-POLY1305:PSK-AES128-CCM:ECDHE-ECDSA-AES128-CCM8:PSK-AES128-CCM8:"
		"ECDHE-ECDSA-AES128-SHA256:PSK-AES128-CBC-SHA256";
	static const char suites13[] = "TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256:"
				       "TLS_AES_128_CCM_SHA256:TLS_AES_256_GCM_SHA384";
	SSL *ssl = tls;

	(void)setup;
	if (!ssl)
		return 1;
	int floor = SSL_is_dtls(ssl) ? DTLS1_2_VERSION : TLS1_2_VERSION;
	SSL_CTX *ctx = SSL_get_SSL_CTX(ssl);

	/* like mefd: the suites go on the context once, later sessions inherit them */
	if (SSL_get_min_proto_version(ssl) != floor ||
	    SSL_CTX_get_min_proto_version(ctx) != floor) {
		if (!SSL_set_min_proto_version(ssl, floor) || !SSL_set_cipher_list(ssl, ciphers) ||
		    !SSL_set_ciphersuites(ssl, suites13))
			return 0;
		if (!SSL_CTX_set_cipher_list(ctx, ciphers) || !SSL_CTX_set_ciphersuites(ctx, suites13) ||
		    !SSL_CTX_set_min_proto_version(ctx, floor))
			return 0;
	}
	SSL_set_options(ssl, SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_TICKET);
	SSL_set_num_tickets(ssl, 0);
	SSL_CTX_set_session_cache_mode(SSL_get_SSL_CTX(ssl), SSL_SESS_CACHE_OFF);
	return SSL_set_session_id_context(ssl, (const unsigned char *)"bare", 4);
}

/* PEM file -> DER (first certificate, or the private key), as mefd gives libcoap (coapb_der_*) */
static unsigned char *
der_of(const char *path, bool key, size_t *len)
{
	BIO *b = BIO_new_file(path, "r");
	unsigned char *p = NULL;
	int n = -1;

	if (b && key) {
		EVP_PKEY *k = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
		n = k ? i2d_PrivateKey(k, &p) : -1;
		EVP_PKEY_free(k);
	} else if (b) {
		X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);
		n = x ? i2d_X509(x, &p) : -1;
		X509_free(x);
	}
	BIO_free(b);
	*len = n > 0 ? (size_t)n : 0;
	return n > 0 ? p : NULL;
}

int
main(int argc, char **argv)
{
	static uint8_t psk[64];
	coap_context_t *ctx;
	coap_address_t a;
	coap_dtls_spsk_t sp;
	coap_dtls_pki_t pk;
	coap_resource_t *r;
	size_t n = 0;

	if (argc < 3) {
		fprintf(stderr, "usage: bare_coap PORT PSKHEX [CERT KEY CA]\n");
		return 2;
	}
	for (const char *h = argv[2]; h[0] && h[1] && n < sizeof(psk); h += 2) {
		unsigned v;
		sscanf(h, "%2x", &v);
		psk[n++] = (uint8_t)v;
	}
	signal(SIGTERM, on_term);
	signal(SIGINT, on_term);
	coap_startup();
	coap_set_log_level(LOG_ERR);
	coap_dtls_set_log_level(LOG_ERR);
	ctx = coap_new_context(NULL);
	coap_context_set_max_handshake_sessions(ctx, 128);
	coap_context_set_max_idle_sessions(ctx, getenv("BARE_MAX_SESSIONS") ? (unsigned)atoi(getenv("BARE_MAX_SESSIONS")) : 1024);
	coap_context_set_session_timeout(ctx, 600);
	memset(&sp, 0, sizeof(sp));
	sp.version = COAP_DTLS_SPSK_SETUP_VERSION;
	sp.psk_info.key.s = psk;
	sp.psk_info.key.length = n;
	if (!coap_context_set_psk2(ctx, &sp))
		return 1;
	if (argc >= 6) {
		memset(&pk, 0, sizeof(pk));
		pk.version = COAP_DTLS_PKI_SETUP_VERSION;
		pk.verify_peer_cert = 1;
		pk.check_common_ca = 1;
		pk.cert_chain_validation = 1;
		pk.cert_chain_verify_depth = 3;
		pk.additional_tls_setup_call_back = tls_setup;
		/* DER buffers: libcoap 4.3.1 re-reads them at every certificate or TLS 1.3 handshake */
		pk.pki_key.key_type = COAP_PKI_KEY_ASN1;
		pk.pki_key.key.asn1.public_cert = der_of(argv[3], false, &pk.pki_key.key.asn1.public_cert_len);
		pk.pki_key.key.asn1.private_key = der_of(argv[4], true, &pk.pki_key.key.asn1.private_key_len);
		pk.pki_key.key.asn1.private_key_type = COAP_ASN1_PKEY_EC;
		pk.pki_key.key.asn1.ca_cert = der_of(argv[5], false, &pk.pki_key.key.asn1.ca_cert_len);
		if (!pk.pki_key.key.asn1.public_cert || !pk.pki_key.key.asn1.private_key ||
		    !pk.pki_key.key.asn1.ca_cert)
			return 1;
		if (!coap_context_set_pki(ctx, &pk))
			return 1;
	}
	coap_address_init(&a);
	a.addr.sin.sin_family = AF_INET;
	a.addr.sin.sin_port = htons((uint16_t)atoi(argv[1]));
	a.addr.sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a.size = sizeof(a.addr.sin);
	if (!coap_new_endpoint(ctx, &a, COAP_PROTO_DTLS) || !coap_new_endpoint(ctx, &a, COAP_PROTO_TLS))
		return 1;
	/* the same listen backlog as mefd (coapb_raise_backlog): libcoap's 5 drops SYNs under load */
	for (int fd = 3; fd < 256; fd++) {
		int on = 0;
		socklen_t ol = sizeof(on);

		if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &on, &ol) == 0 && on)
			listen(fd, SOMAXCONN);
	}
	r = coap_resource_unknown_init2(answer, 0);
	coap_register_request_handler(r, COAP_REQUEST_GET, answer);
	coap_register_request_handler(r, COAP_REQUEST_POST, answer);
	coap_add_resource(ctx, r);
	while (!quit)
		coap_io_process(ctx, 500);
	coap_free_context(ctx);
	coap_cleanup();
	return 0;
}
