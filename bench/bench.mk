# make bench builds the load generator, the two bare-library baselines and the
# store filler into build-bench/ (run through `make -f bench/bench.mk`).
BB      := build-bench
CC      ?= cc
BCFLAGS := -std=c11 -D_GNU_SOURCE -O2 -g -Wall -Wextra -Werror -Iinclude
BPKGS   := openssl libcoap-3-openssl libmicrohttpd gnutls

all: $(BB)/bench $(BB)/bare_coap $(BB)/bare_mhd

$(BB)/bench: bench/bench.c
	@mkdir -p $(BB)
	$(CC) $(BCFLAGS) $(shell pkg-config --cflags openssl) -o $@ $< $(shell pkg-config --libs openssl)

$(BB)/bare_coap: bench/bare_coap.c
	@mkdir -p $(BB)
	$(CC) $(BCFLAGS) $(shell pkg-config --cflags libcoap-3-openssl) -o $@ $< $(shell pkg-config --libs libcoap-3-openssl openssl)

$(BB)/bare_mhd: bench/bare_mhd.c
	@mkdir -p $(BB)
	$(CC) $(BCFLAGS) $(shell pkg-config --cflags libmicrohttpd gnutls) -o $@ $< $(shell pkg-config --libs libmicrohttpd gnutls)
