# mefd build. `make` builds mefd and mefctl; `make check` installs what is
# missing, builds and runs every test; `make run` starts a development mefd.
# BUILD selects the output folder so the sanitizer build never mixes objects.

BUILD   ?= build
PREFIX  ?= /usr/local
DESTDIR ?=
CC      ?= cc

PKGS := openssl libcoap-3-openssl libmicrohttpd gnutls jansson sqlite3 libcurl libsystemd libpq

PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lunistring

VERSION := $(shell git describe --always --dirty 2>/dev/null || echo 0.1)

HARDEN_CFLAGS  := -D_FORTIFY_SOURCE=2 -fstack-protector-strong -fPIE
HARDEN_LDFLAGS := -pie -Wl,-z,relro,-z,now
OPT            ?= -O2 -g

CFLAGS  ?=
CFLAGS  += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow -Wformat=2 \
           $(OPT) $(HARDEN_CFLAGS) -Iinclude $(PKG_CFLAGS) -DMEFD_VERSION='"$(VERSION)"' \
           -MMD -MP
LDFLAGS += $(HARDEN_LDFLAGS)
LDLIBS  += $(PKG_LIBS)

# Every module folder feeds a shared core; the two programs add their own.
CORE_SRC  := $(filter-out src/daemon/% src/ctl/%,$(wildcard src/*/*.c))
MEFD_SRC  := $(wildcard src/daemon/*.c)
CTL_SRC   := $(wildcard src/ctl/*.c)
UNIT_SRC  := $(wildcard test/unit/test_*.c)

CORE_OBJ  := $(CORE_SRC:%.c=$(BUILD)/%.o)
MEFD_OBJ  := $(MEFD_SRC:%.c=$(BUILD)/%.o)
CTL_OBJ   := $(CTL_SRC:%.c=$(BUILD)/%.o)
UNIT_BIN  := $(UNIT_SRC:test/unit/%.c=$(BUILD)/test/%)

.PHONY: all run check asan unit deps install clean format format-check bench fuzz man

all: $(BUILD)/mefd $(BUILD)/mefctl

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/libmefcore.a: $(CORE_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/mefd: $(MEFD_OBJ) $(BUILD)/libmefcore.a
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/mefctl: $(CTL_OBJ) $(BUILD)/libmefcore.a
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/test/%: test/unit/%.c $(BUILD)/libmefcore.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libmefcore.a $(LDLIBS) -lcmocka

unit: $(UNIT_BIN)

deps:
	@scripts/install-deps

run: deps
	@$(MAKE) --no-print-directory all
	@scripts/devsetup $(BUILD)

check: deps
	@$(MAKE) --no-print-directory all unit
	@$(MAKE) --no-print-directory fuzz-replay
	@scripts/run-tests $(BUILD)

# Same tests, AddressSanitizer + UBSan, in its own build folder.
asan: deps
	@$(MAKE) --no-print-directory BUILD=build-asan CC=clang \
	    OPT="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" \
	    HARDEN_CFLAGS="-fstack-protector-strong -fPIE" \
	    LDFLAGS="-fsanitize=address,undefined" all unit
	@ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	    scripts/run-tests build-asan

# Load generator and bare-library baselines into build-bench/, then ONE table
# (docs/performance.md). Bounded: under ~5 minutes; loopback only.
bench: all
	@$(MAKE) --no-print-directory -f bench/bench.mk
	@MEFD_BUILD=$(BUILD) /usr/bin/python3 bench/run.py

# Unit and snippets go where systemd looks for packaged ones; the unit's
# /usr/sbin paths are rewritten to $(PREFIX). SYSCONFDIR holds the example.
SYSCONFDIR ?= /etc
UNITDIR    ?= $(PREFIX)/lib/systemd/system
SYSUSERSDIR ?= $(PREFIX)/lib/sysusers.d
TMPFILESDIR ?= $(PREFIX)/lib/tmpfiles.d
MANDIR     ?= $(PREFIX)/share/man

install: all
	install -d $(DESTDIR)$(PREFIX)/sbin $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(SYSCONFDIR)/mefd \
	    $(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSUSERSDIR) $(DESTDIR)$(TMPFILESDIR) \
	    $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8
	install -m 0755 $(BUILD)/mefd $(DESTDIR)$(PREFIX)/sbin/mefd
	install -m 0755 $(BUILD)/mefctl $(DESTDIR)$(PREFIX)/bin/mefctl
	install -m 0644 conf/mefd.conf.example $(DESTDIR)$(SYSCONFDIR)/mefd/mefd.conf.example
	sed -e 's|/usr/sbin/mefd|$(PREFIX)/sbin/mefd|g' -e 's|/etc/mefd|$(SYSCONFDIR)/mefd|g' \
	    systemd/mefd.service > $(DESTDIR)$(UNITDIR)/mefd.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/mefd.service
	install -m 0644 systemd/mefd.sysusers $(DESTDIR)$(SYSUSERSDIR)/mefd.conf
	install -m 0644 systemd/mefd.tmpfiles $(DESTDIR)$(TMPFILESDIR)/mefd.conf
	install -m 0644 man/mefd.conf.5 $(DESTDIR)$(MANDIR)/man5/mefd.conf.5
	install -m 0644 man/mefd.8 man/mefctl.8 $(DESTDIR)$(MANDIR)/man8/

# mefd.conf(5) takes its key list from conf_doc(), the reader's own table.
man: $(BUILD)/man/conf_doc
	$(BUILD)/man/conf_doc | awk -f man/keys.awk > $(BUILD)/man/keys.roff
	sed -e '/@KEYS@/{r $(BUILD)/man/keys.roff' -e 'd}' man/mefd.conf.5.in > man/mefd.conf.5

$(BUILD)/man/conf_doc: man/conf_doc.c $(BUILD)/libmefcore.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libmefcore.a $(LDLIBS)

FORMAT_SRC ?= $(wildcard src/*/*.c src/*/*.h include/mef/*.h test/unit/*.c)

format:
	clang-format -i $(FORMAT_SRC)

# Informational: how far the tree is from .clang-format (lines clang-format would change).
# Never fails; one file: make format-check FORMAT_SRC=src/mef/session.c; the changes themselves:
# clang-format --style=file FILE | diff FILE -
format-check:
	@command -v clang-format >/dev/null || { echo "format-check: no clang-format"; exit 0; }; \
	n=0; f=0; for s in $(FORMAT_SRC); do \
		c=$$(clang-format --style=file "$$s" | diff "$$s" - | grep -c '^<'); \
		[ "$$c" -gt 0 ] && { f=$$((f + 1)); n=$$((n + c)); }; \
	done; \
	echo "format-check: $$n of $$(cat $(FORMAT_SRC) | wc -l) lines in $$f of" \
	     "$(words $(FORMAT_SRC)) files differ from .clang-format (informational)"

clean:
	rm -rf build build-asan build-fuzz build-bench

include test/fuzz/rules.mk

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
