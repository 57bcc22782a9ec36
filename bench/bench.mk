# make bench builds the load generator, the two bare-library baselines and the
# store filler into build-bench/ (run through `make -f bench/bench.mk`).
BB      := build-bench
CC      ?= cc
BCFLAGS := -std=c11 -D_GNU_SOURCE -O2 -g -Wall -Wextra -Werror -Iinclude
BPKGS   := openssl libcoap-3-openssl libmicrohttpd gnutls

all: $(BB)/bench $(BB)/bare_coap $(BB)/bare_mhd $(BB)/pki_setup

$(BB)/bench: bench/bench.c
	@mkdir -p $(BB)
	$(CC) $(BCFLAGS) $(shell pkg-config --cflags openssl) -o $@ $< $(shell pkg-config --libs openssl)

$(BB)/bare_coap: bench/bare_coap.c bench/durable_ring.h
	@mkdir -p $(BB)
	$(CC) $(BCFLAGS) -pthread $(shell pkg-config --cflags libcoap-3-openssl) -o $@ $< $(shell pkg-config --libs libcoap-3-openssl openssl)

$(BB)/pki_setup: bench/pki_setup.c
	@mkdir -p $(BB)
	$(CC) $(BCFLAGS) $(shell pkg-config --cflags openssl) -o $@ $< $(shell pkg-config --libs openssl)

$(BB)/bare_mhd: bench/bare_mhd.c bench/durable_ring.h
	@mkdir -p $(BB)
	$(CC) $(BCFLAGS) -pthread $(shell pkg-config --cflags libmicrohttpd gnutls) -o $@ $< $(shell pkg-config --libs libmicrohttpd gnutls)

# the store filler links mefd's own core, so secrets are wrapped exactly as mefd does
BUILD   ?= build
CORELIBS := $(shell pkg-config --libs openssl libcoap-3-openssl libmicrohttpd gnutls jansson sqlite3 libcurl libsystemd 2>/dev/null) \
            $(shell pkg-config --libs libpq 2>/dev/null) -lunistring

all: $(BB)/populate $(BB)/ca_issue

$(BB)/populate: bench/populate.c $(BUILD)/libmefcore.a
	@mkdir -p $(BB)
	$(CC) $(BCFLAGS) -Isrc/store $(shell pkg-config --cflags openssl) -o $@ $< $(BUILD)/libmefcore.a $(CORELIBS)

$(BB)/ca_issue: bench/ca_issue.c $(BUILD)/libmefcore.a
	@mkdir -p $(BB)
	$(CC) $(BCFLAGS) $(shell pkg-config --cflags openssl) -o $@ $< $(BUILD)/libmefcore.a $(CORELIBS)
