/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Load generator for make bench: C concurrent clients on one epoll loop, each
 * a non-blocking OpenSSL (D)TLS connection that does a full handshake, reads
 * the RFC 5705 exporter, sends one request (CoAP over DTLS, CoAP over TLS
 * with RFC 8323 framing and CSM, or HTTP/1.1) and waits for a 2.xx answer.
 * Prints one line: ok, fail, seconds, rate, p50 and p99 latency in ms.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/ssl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum proto { P_DTLS, P_COAPTCP, P_HTTPS };

struct opts {
	enum proto proto;
	int tls13;        /* TCP: 1 = TLS 1.3 only, 0 = TLS 1.2 only */
	const char *host;
	int port;
	int conc;
	long count;       /* stop after this many completions (0 = use seconds) */
	double seconds;
	const char *idfmt; /* PSK identity pattern with one %lu */
	long id_range;
	long id_base;
	uint8_t group_secret[64];
	size_t group_len; /* PSK = HMAC-SHA-256(group secret, identity) */
	uint8_t fixed_psk[64];
	size_t fixed_len; /* or this fixed PSK */
	const char *cert, *key, *ca;
	const char *method, *path, *body, *ctype;
	size_t body_len;  /* -d: strlen; -F: the file's size (binary: an EST CSR over CoAP) */
	const char *sni;
	const char *origin; /* X-M2M-Origin (default: the PSK identity) */
	int verbose;       /* -v: print the first answer to stderr */
	int hold;         /* >0: open this many sessions, keep them idle, print when done */
	FILE *keids;      /* -K FILE: KeID (from our exporter) of every answered session */
	FILE *bodies;     /* -B FILE: body of every answered HTTPS request, one line, CR/LF dropped */
};

enum state { S_FREE, S_HS, S_WRITE, S_READ, S_SHUT };

struct conn {
	int fd;
	SSL *ssl;
	enum state st;
	char identity[128];
	char keid[40];    /* hex(EKM[0..15]), the KeID's relative part (TS-0003 10.3.4) */
	uint64_t t0, last_tx;
	uint16_t mid;
	uint8_t tok[2];
	size_t rlen;
	char rbuf[16384];
	char req[8192];
	size_t reqlen;
};

static struct opts O = {.host = "127.0.0.1", .conc = 16, .seconds = 3, .idfmt = "b%lu@bench.example.com",
			.id_range = 1000, .method = "GET", .path = "/mef", .sni = "mef.example.com"};
static SSL_CTX *ctx;
static int ep;
static struct conn *conns;
static long started, done_ok, done_fail, next_id;
static uint64_t *lat;
static size_t nlat, caplat;
static unsigned long seq;

static uint64_t
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static size_t
hex2bin(const char *h, uint8_t *out, size_t max)
{
	size_t n = 0;

	while (h[0] && h[1] && n < max) {
		unsigned v;

		if (sscanf(h, "%2x", &v) != 1)
			break;
		out[n++] = (uint8_t)v;
		h += 2;
	}
	return n;
}

static unsigned
psk_cb(SSL *ssl, const char *hint, char *id, unsigned idmax, unsigned char *psk, unsigned pskmax)
{
	struct conn *c = SSL_get_app_data(ssl);
	unsigned len = 32;

	(void)hint;
	snprintf(id, idmax, "%s", c->identity);
	if (O.fixed_len) {
		len = (unsigned)O.fixed_len;
		memcpy(psk, O.fixed_psk, len < pskmax ? len : pskmax);
	} else {
		HMAC(EVP_sha256(), O.group_secret, (int)O.group_len, (const uint8_t *)c->identity,
		     strlen(c->identity), psk, &len);
	}
	return len;
}

/* CoAP GET/POST with Uri-Path options; UDP header or RFC 8323 TCP framing. */
static size_t
coap_build(struct conn *c, uint8_t *out, bool tcp)
{
	uint8_t opts[512], *o = opts;
	const char *p = O.path;
	unsigned last = 0;
	size_t blen = O.body_len, olen, n = 0;
	uint8_t code = strcmp(O.method, "POST") == 0 ? 0x02 : 0x01;

	while (*p) {
		const char *s = p + (*p == '/'), *e = strchr(s, '/');
		size_t sl = e ? (size_t)(e - s) : strlen(s);
		unsigned delta = 11 - last;

		*o++ = (uint8_t)(delta << 4 | (sl < 13 ? sl : 13));
		if (sl >= 13)
			*o++ = (uint8_t)(sl - 13);
		memcpy(o, s, sl);
		o += sl;
		last = 11;
		p = s + sl;
	}
	if (O.ctype && code == 0x02) { /* Content-Format 12, value given as a number */
		unsigned cf = (unsigned)atoi(O.ctype);
		*o++ = (uint8_t)((12 - last) << 4 | 2);
		*o++ = (uint8_t)(cf >> 8);
		*o++ = (uint8_t)cf;
	}
	olen = (size_t)(o - opts) + (blen ? 1 + blen : 0);
	if (!tcp) {
		out[n++] = 0x42;
		out[n++] = code;
		out[n++] = (uint8_t)(c->mid >> 8);
		out[n++] = (uint8_t)c->mid;
	} else {
		out[n++] = 0x00; /* CSM 7.01, no options */
		out[n++] = 0xe1;
		if (olen < 13) {
			out[n++] = (uint8_t)(olen << 4 | 2);
		} else if (olen < 269) {
			out[n++] = 0xd2;
			out[n++] = (uint8_t)(olen - 13);
		} else {
			out[n++] = 0xe2;
			out[n++] = (uint8_t)((olen - 269) >> 8);
			out[n++] = (uint8_t)(olen - 269);
		}
		out[n++] = code;
	}
	out[n++] = c->tok[0];
	out[n++] = c->tok[1];
	memcpy(out + n, opts, (size_t)(o - opts));
	n += (size_t)(o - opts);
	if (blen) {
		out[n++] = 0xff;
		memcpy(out + n, O.body, blen);
		n += blen;
	}
	return n;
}

static void
build_request(struct conn *c)
{
	c->mid = (uint16_t)++seq;
	c->tok[0] = (uint8_t)(seq >> 8);
	c->tok[1] = (uint8_t)seq;
	if (O.proto == P_HTTPS) {
		size_t blen = O.body_len;

		c->reqlen = (size_t)snprintf(c->req, sizeof(c->req),
			"%s %s HTTP/1.1\r\nHost: %s\r\nX-M2M-RI: rq-%lu\r\nX-M2M-Origin: %s\r\n"
			"Accept: application/json\r\nConnection: close\r\n%s%s%sContent-Length: %zu\r\n\r\n%.*s",
			O.method, O.path, O.sni, seq, O.origin ? O.origin : c->identity, O.ctype ? "Content-Type: " : "",
			O.ctype ? O.ctype : "", O.ctype ? "\r\n" : "", blen, (int)blen, O.body ? O.body : "");
	} else {
		c->reqlen = coap_build(c, (uint8_t *)c->req, O.proto == P_COAPTCP);
	}
}

/* 1 = complete success, -1 = complete failure, 0 = need more. */
static int
coap_udp_check(struct conn *c, const uint8_t *b, size_t n)
{
	if (n < 4 || (b[0] >> 6) != 1)
		return 0;
	if ((b[0] >> 4 & 3) == 0) { /* CON (separate response): acknowledge it */
		uint8_t ack[4] = {0x60, 0, b[2], b[3]};
		SSL_write(c->ssl, ack, 4);
	}
	if (b[1] == 0)
		return 0;
	if ((b[0] & 15) != 2 || n < 6 || b[4] != c->tok[0] || b[5] != c->tok[1])
		return 0;
	return (b[1] >> 5) == 2 ? 1 : -1;
}

static int
coap_tcp_check(struct conn *c)
{
	const uint8_t *b = (const uint8_t *)c->rbuf;
	size_t off = 0;

	while (off + 2 <= c->rlen) {
		unsigned ln = b[off] >> 4, tkl = b[off] & 15;
		size_t hl = 1, len = ln;

		if (ln == 13) {
			if (off + 2 > c->rlen)
				return 0;
			len = 13 + b[off + 1];
			hl = 2;
		} else if (ln == 14) {
			if (off + 3 > c->rlen)
				return 0;
			len = 269 + ((size_t)b[off + 1] << 8 | b[off + 2]);
			hl = 3;
		} else if (ln == 15) {
			return -1;
		}
		size_t total = hl + 1 + tkl + len;
		if (off + total > c->rlen)
			return 0;
		uint8_t code = b[off + hl];
		if (code >> 5 != 7 && tkl == 2 && b[off + hl + 1] == c->tok[0] &&
		    b[off + hl + 2] == c->tok[1])
			return (code >> 5) == 2 ? 1 : -1;
		off += total;
	}
	return 0;
}

static int
http_check(struct conn *c, bool eof)
{
	char *hend;
	int status;
	long clen = -1;

	c->rbuf[c->rlen < sizeof(c->rbuf) ? c->rlen : sizeof(c->rbuf) - 1] = '\0';
	hend = strstr(c->rbuf, "\r\n\r\n");
	if (!hend)
		return eof ? -1 : 0;
	if (sscanf(c->rbuf, "HTTP/1.%*d %d", &status) != 1)
		return -1;
	char *cl = strcasestr(c->rbuf, "\r\ncontent-length:");
	if (cl && cl < hend)
		clen = strtol(cl + 17, NULL, 10);
	if (!eof && (clen < 0 || (size_t)(hend + 4 - c->rbuf) + (size_t)clen > c->rlen))
		return 0;
	return status / 100 == 2 ? 1 : -1;
}

static void conn_start(struct conn *c);

/* -B: the answer's body (an EST certificate: base64 PKCS#7, wrapped) on one line. */
static void
write_body(const struct conn *c)
{
	const char *b = strstr(c->rbuf, "\r\n\r\n");

	for (b = b ? b + 4 : c->rbuf + c->rlen; b < c->rbuf + c->rlen; b++)
		if (*b != '\r' && *b != '\n')
			fputc(*b, O.bodies);
	fputc('\n', O.bodies); /* line-buffered: on disk before the next */
}

static void
conn_finish(struct conn *c, int ok)
{
	if (O.verbose && done_ok + done_fail == 0)
		fprintf(stderr, "%.*s\n", (int)c->rlen, c->rbuf);
	if (ok > 0 && O.keids)
		fprintf(O.keids, "%s@%s\n", c->keid, O.sni); /* line-buffered: on disk before the next */
	if (ok > 0 && O.bodies && O.proto == P_HTTPS)
		write_body(c);
	if (ok > 0) {
		done_ok++;
		if (nlat < caplat)
			lat[nlat++] = now_us() - c->t0;
	} else {
		done_fail++;
		if (getenv("BENCH_DEBUG"))
			fprintf(stderr, "fail %s st=%d: %.*s\n", c->identity, c->st, (int)c->rlen, c->rbuf);
	}
	if (c->ssl) {
		if (ok > 0 && O.hold == 0)
			SSL_shutdown(c->ssl); /* close_notify lets the server free the session now */
		SSL_free(c->ssl);
		c->ssl = NULL;
	}
	if (c->fd >= 0) {
		epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
		close(c->fd);
		c->fd = -1;
	}
	c->st = S_FREE;
}

static int
conn_socket(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)O.port)};
	int fd = socket(AF_INET, (O.proto == P_DTLS ? SOCK_DGRAM : SOCK_STREAM) | SOCK_NONBLOCK, 0);
	int one = 1;

	if (fd < 0)
		return -1;
	inet_pton(AF_INET, O.host, &a.sin_addr);
	if (O.proto != P_DTLS)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0 && errno != EINPROGRESS) {
		close(fd);
		return -1;
	}
	return fd;
}

static void
conn_start(struct conn *c)
{
	struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLET, .data.ptr = c};

	snprintf(c->identity, sizeof(c->identity), O.idfmt, O.id_base + next_id++ % O.id_range);
	c->rlen = 0;
	c->t0 = c->last_tx = now_us();
	c->fd = conn_socket();
	c->ssl = c->fd >= 0 ? SSL_new(ctx) : NULL;
	started++;
	if (!c->ssl) {
		conn_finish(c, -1);
		return;
	}
	SSL_set_app_data(c->ssl, c);
	if (O.sni)
		SSL_set_tlsext_host_name(c->ssl, O.sni);
	if (O.proto == P_DTLS) {
		BIO *b = BIO_new_dgram(c->fd, BIO_NOCLOSE);
		struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)O.port)};

		inet_pton(AF_INET, O.host, &a.sin_addr);
		BIO_ctrl(b, BIO_CTRL_DGRAM_SET_CONNECTED, 0, &a);
		SSL_set_bio(c->ssl, b, b);
	} else {
		SSL_set_fd(c->ssl, c->fd);
	}
	SSL_set_connect_state(c->ssl);
	c->st = S_HS;
	epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
}

static int
ssl_wants(struct conn *c, int r)
{
	int e = SSL_get_error(c->ssl, r);

	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
		return 0;
	return -1;
}

/* Drives one connection as far as it goes without blocking. */
static void
conn_step(struct conn *c)
{
	int one = 1;

	/* libcoap writes CSM and response apart without TCP_NODELAY: do not sit on delayed ACKs */
	if (O.proto != P_DTLS)
		setsockopt(c->fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof(one));
	for (;;) {
		int r;

		switch (c->st) {
		case S_HS: {
			uint8_t ekm[48];

			r = SSL_do_handshake(c->ssl);
			if (r != 1) {
				if (ssl_wants(c, r))
					conn_finish(c, -1);
				return;
			}
			SSL_export_keying_material(c->ssl, ekm, sizeof(ekm), "EXPORTER-oneM2M-Bootstrap",
						   25, NULL, 0, 0);
			for (int i = 0; i < 16; i++)
				snprintf(c->keid + 2 * i, 3, "%02X", ekm[i]);
			if (O.hold) {
				done_ok++;
				c->st = S_SHUT;
				return;
			}
			build_request(c);
			c->st = S_WRITE;
			break;
		}
		case S_WRITE:
			r = SSL_write(c->ssl, c->req, (int)c->reqlen);
			if (r <= 0) {
				if (ssl_wants(c, r))
					conn_finish(c, -1);
				return;
			}
			c->last_tx = now_us();
			c->st = S_READ;
			break;
		case S_READ: {
			int ok;

			r = SSL_read(c->ssl, c->rbuf + c->rlen, (int)(sizeof(c->rbuf) - 1 - c->rlen));
			if (r <= 0) {
				int e = SSL_get_error(c->ssl, r);

				if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
					return;
				ok = O.proto == P_HTTPS ? http_check(c, true) : -1;
				conn_finish(c, ok);
				return;
			}
			if (O.proto == P_DTLS) {
				ok = coap_udp_check(c, (uint8_t *)c->rbuf, (size_t)r);
			} else {
				c->rlen += (size_t)r;
				ok = O.proto == P_HTTPS ? http_check(c, false) : coap_tcp_check(c);
			}
			if (ok)
				conn_finish(c, ok);
			if (ok || c->rlen >= sizeof(c->rbuf) - 1) {
				if (!ok)
					conn_finish(c, -1);
				return;
			}
			break;
		}
		default:
			return;
		}
	}
}

/* DTLS retransmission, CoAP CON retransmission, and a 10 s give-up. */
static void
tick(uint64_t now)
{
	for (int i = 0; i < O.conc; i++) {
		struct conn *c = &conns[i];

		if (c->st == S_FREE || c->st == S_SHUT)
			continue;
		if (now - c->t0 > 10000000u) {
			conn_finish(c, -1);
			continue;
		}
		if (O.proto == P_DTLS && c->st == S_HS && DTLSv1_handle_timeout(c->ssl) > 0)
			conn_step(c);
		else if (O.proto == P_DTLS && c->st == S_READ && now - c->last_tx > 2000000u) {
			c->st = S_WRITE;
			conn_step(c);
		}
	}
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static int
setup_ctx(void)
{
	const SSL_METHOD *m = O.proto == P_DTLS ? DTLS_client_method() : TLS_client_method();

	ctx = SSL_CTX_new(m);
	if (!ctx)
		return -1;
	if (O.proto == P_DTLS) {
		SSL_CTX_set_min_proto_version(ctx, DTLS1_2_VERSION);
	} else {
		int v = O.tls13 ? TLS1_3_VERSION : TLS1_2_VERSION;

		SSL_CTX_set_min_proto_version(ctx, v);
		SSL_CTX_set_max_proto_version(ctx, v);
	}
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
	if (O.cert) {
		if (SSL_CTX_use_certificate_chain_file(ctx, O.cert) != 1 ||
		    SSL_CTX_use_PrivateKey_file(ctx, O.key, SSL_FILETYPE_PEM) != 1)
			return -1;
		if (O.ca) {
			SSL_CTX_load_verify_locations(ctx, O.ca, NULL);
			SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
		}
		SSL_CTX_set_cipher_list(ctx, "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES128-CCM8:"
					     "ECDHE-ECDSA-AES128-SHA256");
	} else {
		SSL_CTX_set_psk_client_callback(ctx, psk_cb);
		SSL_CTX_set_cipher_list(ctx, O.proto == P_DTLS ? "PSK-AES128-CCM8" : "PSK-AES128-GCM-SHA256");
		SSL_CTX_set_ciphersuites(ctx, "TLS_AES_128_GCM_SHA256");
	}
	return 0;
}

static void usage(void);

/* -F: a binary body (2 KiB at most: one CoAP message, no Block1). */
static void
read_body(const char *path)
{
	static char buf[2048];
	FILE *f = fopen(path, "rb");
	size_t n = f ? fread(buf, 1, sizeof(buf), f) : 0;

	if (!f || ferror(f) || !feof(f) || n == 0)
		usage();
	fclose(f);
	O.body = buf;
	O.body_len = n;
}

static void
usage(void)
{
	fprintf(stderr,
		"bench -P dtls|coap-tcp|https -p PORT [-3] [-c CONC] [-n COUNT] [-t SECONDS]\n"
		"      [-g GROUPSECRETHEX | -k PSKHEX] [-i IDFMT] [-r IDRANGE] [-b IDBASE]\n"
		"      [-C CERT -K KEY [-A CA]] [-m METHOD] [-u PATH] [-d BODY | -F BODYFILE] [-T CTYPE]\n      [-H HOLD]\n      [-o ORIGIN] [-v] [-h HOST] [-E KEIDFILE] [-B BODYFILE]\n");
	exit(2);
}

static void
parse(int argc, char **argv)
{
	int ch;

	while ((ch = getopt(argc, argv, "P:p:3c:n:t:g:k:i:r:b:C:K:A:m:u:d:F:T:H:h:o:vE:B:")) != -1) {
		switch (ch) {
		case 'P':
			O.proto = !strcmp(optarg, "dtls") ? P_DTLS : !strcmp(optarg, "coap-tcp") ? P_COAPTCP : P_HTTPS;
			break;
		case 'p': O.port = atoi(optarg); break;
		case '3': O.tls13 = 1; break;
		case 'c': O.conc = atoi(optarg); break;
		case 'n': O.count = atol(optarg); break;
		case 't': O.seconds = atof(optarg); break;
		case 'g': O.group_len = hex2bin(optarg, O.group_secret, sizeof(O.group_secret)); break;
		case 'k': O.fixed_len = hex2bin(optarg, O.fixed_psk, sizeof(O.fixed_psk)); break;
		case 'i': O.idfmt = optarg; break;
		case 'r': O.id_range = atol(optarg); break;
		case 'b': O.id_base = atol(optarg); break;
		case 'C': O.cert = optarg; break;
		case 'K': O.key = optarg; break;
		case 'A': O.ca = optarg; break;
		case 'm': O.method = optarg; break;
		case 'u': O.path = optarg; break;
		case 'd': O.body = optarg; O.body_len = strlen(optarg); break;
		case 'F': read_body(optarg); break;
		case 'T': O.ctype = optarg; break;
		case 'H': O.hold = atoi(optarg); break;
		case 'h': O.host = optarg; break;
		case 'o': O.origin = optarg; break;
		case 'v': O.verbose = 1; break;
		case 'E':
			if (!(O.keids = fopen(optarg, "a")))
				usage();
			setvbuf(O.keids, NULL, _IOLBF, 0);
			break;
		case 'B':
			if (!(O.bodies = fopen(optarg, "a")))
				usage();
			setvbuf(O.bodies, NULL, _IOLBF, 0);
			break;
		default: usage();
		}
	}
	if (!O.port || O.conc < 1 || O.id_range < 1)
		usage();
	if (O.hold)
		O.conc = O.hold;
}

int
main(int argc, char **argv)
{
	struct epoll_event evs[256];
	uint64_t t_start, t_end, last_tick, t_stop = 0;
	long ok_at_stop = 0;
	double secs;

	signal(SIGPIPE, SIG_IGN); /* a server that hangs up is a failed run, not a dead client */
	parse(argc, argv);
	if (setup_ctx() != 0) {
		ERR_print_errors_fp(stderr);
		return 1;
	}
	ep = epoll_create1(0);
	conns = calloc((size_t)O.conc, sizeof(*conns));
	caplat = 4000000;
	lat = malloc(caplat * sizeof(*lat));
	if (!conns || !lat)
		return 1;
	t_start = last_tick = now_us();
	t_end = t_start + (uint64_t)(O.seconds * 1e6);
	for (int i = 0; i < O.conc; i++)
		conns[i].fd = -1;
	if (O.hold)
		t_end = t_start + 600000000u;
	for (int hold_next = 0;;) {
		uint64_t now = now_us();
		bool stop = O.hold ? done_ok + done_fail >= O.hold || now > t_end
				   : O.count ? started >= O.count : now >= t_end;
		int active = 0;

		for (int i = 0; i < O.conc; i++) {
			if (conns[i].st == S_FREE && !stop && !O.hold)
				conn_start(&conns[i]);
			active += conns[i].st != S_FREE && conns[i].st != S_SHUT;
		}
		/* idle sessions: at most 32 handshakes in flight (the server's half-open limit) */
		for (; O.hold && hold_next < O.hold && active < 32; active++)
			conn_start(&conns[hold_next++]);
		if (stop && !t_stop) { /* the rate counts the window only, not the drain */
			t_stop = now;
			ok_at_stop = done_ok;
		}
		if (stop && active == 0)
			break;
		int n = epoll_wait(ep, evs, 256, 20);
		for (int i = 0; i < n; i++)
			conn_step(evs[i].data.ptr);
		now = now_us();
		if (now - last_tick > 50000) {
			tick(now);
			last_tick = now;
		}
	}
	secs = (double)((O.count ? now_us() : t_stop) - t_start) / 1e6;
	if (O.hold) {
		printf("held=%ld fail=%ld\n", done_ok, done_fail);
		fflush(stdout);
		pause(); /* the runner measures RSS, then kills us */
		return 0;
	}
	qsort(lat, nlat, sizeof(*lat), cmp_u64);
	printf("ok=%ld fail=%ld secs=%.3f rate=%.1f p50_ms=%.2f p99_ms=%.2f\n", done_ok, done_fail, secs,
	       (double)(O.count ? done_ok : ok_at_stop) / secs, nlat ? (double)lat[nlat / 2] / 1000 : 0,
	       nlat ? (double)lat[nlat * 99 / 100] / 1000 : 0);
	return done_ok > 0 ? 0 : 1;
}
