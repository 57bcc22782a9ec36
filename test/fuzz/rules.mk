# SPDX-License-Identifier: BSD-2-Clause
# Robustness targets, included by the top Makefile:
#   make fuzz        libFuzzer (clang, ASan+UBSan) in build-fuzz/, each target FUZZ_SECONDS
#   make fuzz-replay replays test/fuzz/corpus/* through every target with the normal build
#   make lint        cppcheck + clang-tidy (.clang-tidy) on src/
#   make valgrind    the integration tests with mefd under valgrind memcheck

FUZZ_SECONDS ?= 60
FUZZ_TARGETS := $(filter-out fuzz_common,$(patsubst test/fuzz/%.c,%,$(wildcard test/fuzz/fuzz_*.c)))
FUZZ_OPT     := -O1 -g -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer \
                -fno-sanitize-recover=all
FUZZ_CFLAGS   = $(filter-out -MMD -MP,$(CFLAGS)) -Itest/fuzz

# Fuzz binaries: <BUILD>/fuzz/<target>, linked with libFuzzer in build-fuzz,
# with the replay driver (test/fuzz/replay.c) in every other build.
$(BUILD)/fuzz/%: test/fuzz/%.c test/fuzz/fuzz_common.c test/fuzz/fuzz_common.h $(BUILD)/libmefcore.a
	@mkdir -p $(dir $@)
	$(CC) $(FUZZ_CFLAGS) $(FUZZ_LINK) $(LDFLAGS) -o $@ $< test/fuzz/fuzz_common.c \
	    $(if $(FUZZ_LINK),,test/fuzz/replay.c) $(BUILD)/libmefcore.a $(LDLIBS)

.PHONY: fuzz fuzz-build fuzz-replay lint valgrind

fuzz-build:
	@$(MAKE) --no-print-directory BUILD=build-fuzz CC=clang OPT="$(FUZZ_OPT)" \
	    HARDEN_CFLAGS="-fPIE" LDFLAGS="-fsanitize=address,undefined" FUZZ_LINK="-fsanitize=fuzzer" \
	    $(FUZZ_TARGETS:%=build-fuzz/fuzz/%)

# New inputs go to build-fuzz/corpus/<t>; crashes to build-fuzz/artifacts/. Copy
# a crash into test/fuzz/corpus/<t>/ once fixed: fuzz-replay keeps it fixed.
fuzz: fuzz-build
	@mkdir -p build-fuzz/artifacts
	@set -e; for t in $(FUZZ_TARGETS); do \
	    mkdir -p build-fuzz/corpus/$$t test/fuzz/corpus/$$t; \
	    echo "== $$t ($(FUZZ_SECONDS) s)"; \
	    build-fuzz/fuzz/$$t -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	        -artifact_prefix=build-fuzz/artifacts/$$t- \
	        build-fuzz/corpus/$$t test/fuzz/corpus/$$t; \
	done

fuzz-replay: $(FUZZ_TARGETS:%=$(BUILD)/fuzz/%)
	@set -e; for t in $(FUZZ_TARGETS); do \
	    [ -d test/fuzz/corpus/$$t ] || continue; \
	    $(BUILD)/fuzz/$$t test/fuzz/corpus/$$t; \
	done

# varFuncNullUB: mef_audit's NULL sentinel; NULL is ((void *)0) on glibc with gcc
# and clang, the only platforms we build on (execl(3) has the same idiom).
CPPCHECK_FLAGS := --enable=warning,performance,portability --error-exitcode=1 --inline-suppr \
                  --quiet -D__GNUC__ --suppress=varFuncNullUB -I include \
                  --library=test/lint/openssl-asn1.cfg
lint:
	cppcheck $(CPPCHECK_FLAGS) src
	clang-tidy --quiet $(wildcard src/*/*.c) -- -std=c11 -D_GNU_SOURCE -DMEFD_VERSION='"lint"' \
	    -Iinclude -Isrc $(PKG_CFLAGS)

# mefd under memcheck through the harness's MEFD_WRAPPER; a definite leak or
# any memory error makes mefd exit 99, which the harness reports as a failure.
VALGRIND := valgrind --quiet --leak-check=full --errors-for-leak-kinds=definite --error-exitcode=99 \
            --track-fds=no --num-callers=30
valgrind: all
	MEFD_WRAPPER="$(VALGRIND)" MEFD_SLOWDOWN=8 MEFD_BUILD=$(BUILD) \
	    /usr/bin/python3 -m pytest -q -p no:cacheprovider $(VALGRIND_TESTS)
VALGRIND_TESTS ?= test/integration
