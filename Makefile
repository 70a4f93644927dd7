# seslog - build, run, test, bench.
#   make          build/seslog
#   make run      install what is missing, build, run `seslog serve` with every default
#   make test     the whole suite (unit, end-to-end, browser, DynamoDB-compatible store)
#   make asan     the whole suite under AddressSanitizer + UndefinedBehaviorSanitizer
#   make bench    the benchmarks; prints their figures
#   make check    format check (clang-format)
#   make install  the binary, web files, schema docs, man page, systemd unit (PREFIX, DESTDIR)
#   make uninstall
#   V=1           show the commands

PKGS     := libuv libcurl libcjson sqlite3 openssl libcares libzstd zlib
CC       ?= cc
BUILD    ?= build
OPT      ?= -O2 -g
WARN     := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wno-unused-parameter -Wno-missing-field-initializers -Wno-format-truncation
ifneq ($(findstring clang,$(CC)),)
WARN     += -Wno-unknown-warning-option
endif
ifneq ($(CI),)
WARN     += -Werror
endif
ifneq ($(WERROR),)
WARN     += -Werror
endif
# Read when this Makefile is read. `run`, `test`, `asan` and `bench` first run `deps` and then
# build in a second make, which reads the flags again once the libraries are installed: a fresh
# machine works the first time. A build without them stops with one line saying what to do.
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
ifeq ($(strip $(PKG_LIBS)),)
PKG_MISSING := 1
endif
CFLAGS   += -std=c11 -D_GNU_SOURCE $(OPT) $(WARN) -Iinclude $(PKG_CFLAGS) $(SAN)
LDLIBS   += $(PKG_LIBS) -lhttp_parser -lpthread -lm
LDFLAGS  += $(SAN)

SRCS     := $(wildcard src/*.c)
OBJS     := $(SRCS:src/%.c=$(BUILD)/obj/%.o) $(BUILD)/obj/schema_sql.o
LIBOBJS  := $(filter-out $(BUILD)/obj/main.o,$(OBJS))
TSRCS    := $(wildcard tests/unit/*.c)
TOBJS    := $(TSRCS:tests/unit/%.c=$(BUILD)/tobj/%.o)
BSRCS    := $(wildcard bench/*.c)

Q := @
ifeq ($(V),1)
Q :=
endif

.PHONY: all run test unit e2e asan bench check format clean deps pkgcheck install uninstall

all: $(BUILD)/seslog

# Idempotent and quiet when everything is there; also brings the test tools
# (chromium, npm packages) that pkg-config cannot see. DEPS_CMD lets the suite
# prove that a first `make run` works on a machine without the libraries.
DEPS_CMD ?= scripts/install-deps.sh
deps:
	$(Q)$(DEPS_CMD)

pkgcheck:
ifneq ($(PKG_MISSING),)
	@echo "seslog: pkg-config finds none of: $(PKGS); run 'make deps' (or scripts/install-deps.sh) first" >&2
	@exit 1
endif

$(OBJS) $(TOBJS) $(BSRCS:bench/%.c=$(BUILD)/bench/%): | pkgcheck

$(BUILD)/seslog: $(OBJS)
	@echo "  LD    $@"
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/unit-tests: $(LIBOBJS) $(TOBJS)
	@echo "  LD    $@"
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/obj/%.o: src/%.c
	@mkdir -p $(@D)
	@echo "  CC    $<"
	$(Q)$(CC) $(CFLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/gen/schema_sql.c: schema/seslog.sql scripts/embed.sh
	@mkdir -p $(@D)
	$(Q)scripts/embed.sh $< schema_sql > $@

$(BUILD)/obj/schema_sql.o: $(BUILD)/gen/schema_sql.c
	@mkdir -p $(@D)
	@echo "  CC    $<"
	$(Q)$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/tobj/%.o: tests/unit/%.c
	@mkdir -p $(@D)
	@echo "  CC    $<"
	$(Q)$(CC) $(CFLAGS) -Itests/unit -MMD -MP -c -o $@ $<

$(BUILD)/bench/%: bench/%.c $(LIBOBJS)
	@mkdir -p $(@D)
	@echo "  CC    $<"
	$(Q)$(CC) $(CFLAGS) -o $@ $^ $(LDFLAGS) $(LDLIBS)

# RUN_ARGS: extra arguments for `seslog serve` (or another command: RUN_CMD).
RUN_CMD  ?= serve
run: deps
	$(Q)$(MAKE) --no-print-directory $(BUILD)/seslog
	$(BUILD)/seslog $(RUN_CMD) $(RUN_ARGS)

unit: $(BUILD)/unit-tests
	$(BUILD)/unit-tests tests/fixtures

# Under CI (CI=true) the fuzz targets also run, 60 s each, before the suite
# so that the suite's "N passed, N failed" stays the last line.
test: deps
	$(Q)$(MAKE) --no-print-directory $(BUILD)/seslog $(BUILD)/unit-tests
	$(Q)if [ -n "$(CI)" ]; then $(MAKE) --no-print-directory fuzz-ci; fi
	$(Q)SESLOG_BIN=$(BUILD)/seslog SESLOG_UNIT=$(BUILD)/unit-tests tests/run-all.sh

asan: deps
	$(Q)$(MAKE) --no-print-directory BUILD=build/asan CC=clang OPT="-O1 -g -fno-omit-frame-pointer" \
	  SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined" build/asan/seslog build/asan/unit-tests
	$(Q)ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:detect_stack_use_after_return=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  SESLOG_BIN=build/asan/seslog SESLOG_UNIT=build/asan/unit-tests SESLOG_ASAN=1 tests/run-all.sh

bench: deps
	$(Q)$(MAKE) --no-print-directory $(BUILD)/seslog $(BSRCS:bench/%.c=$(BUILD)/bench/%)
	$(Q)SESLOG_BIN=$(BUILD)/seslog BENCH_DIR=$(BUILD)/bench bench/all.sh

check:
	$(Q)clang-format --dry-run -Werror src/*.c include/*.h tests/unit/*.c bench/*.c

format:
	$(Q)clang-format -i src/*.c include/*.h tests/unit/*.c bench/*.c

clean:
	rm -rf build

# make install [PREFIX=/usr/local] [DESTDIR=]: the binary finds its web files
# in $(PREFIX)/share/seslog/web; the unit's ExecStart names $(PREFIX)/bin.
PREFIX   ?= /usr/local
BINDIR   := $(PREFIX)/bin
WEBDIR   := $(PREFIX)/share/seslog/web
DOCDIR   := $(PREFIX)/share/doc/seslog
MAN1DIR  := $(PREFIX)/share/man/man1
UNITDIR  := $(PREFIX)/lib/systemd/system

$(BUILD)/seslog.1: $(BUILD)/seslog scripts/manpage.sh
	$(Q)scripts/manpage.sh $(BUILD)/seslog > $@.tmp && mv $@.tmp $@

install: $(BUILD)/seslog $(BUILD)/seslog.1
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(WEBDIR) $(DESTDIR)$(DOCDIR)/schema $(DESTDIR)$(MAN1DIR) \
	  $(DESTDIR)$(UNITDIR)
	install -m 755 $(BUILD)/seslog $(DESTDIR)$(BINDIR)/seslog
	cd web && find . -type d -exec install -d $(abspath $(DESTDIR)$(WEBDIR))/{} \; && \
	  find . -type f -exec install -m 644 {} $(abspath $(DESTDIR)$(WEBDIR))/{} \;
	install -m 644 schema/* $(DESTDIR)$(DOCDIR)/schema/
	install -m 644 README.md scripts/seslog.env.example $(DESTDIR)$(DOCDIR)/
	install -m 644 $(BUILD)/seslog.1 $(DESTDIR)$(MAN1DIR)/seslog.1
	sed 's|/usr/local/bin/seslog|$(BINDIR)/seslog|' scripts/seslog.service > $(DESTDIR)$(UNITDIR)/seslog.service
	chmod 644 $(DESTDIR)$(UNITDIR)/seslog.service

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/seslog $(DESTDIR)$(MAN1DIR)/seslog.1 $(DESTDIR)$(UNITDIR)/seslog.service
	rm -rf $(DESTDIR)$(PREFIX)/share/seslog $(DESTDIR)$(DOCDIR)

-include $(OBJS:.o=.d) $(TOBJS:.o=.d)

# Fuzzing (tests/fuzz/README.md): libFuzzer targets built with clang against src/ (all but
# main.c) under ASan + UBSan. `make fuzz` replays tests/fuzz/regressions, then runs each target
# FUZZ_SECONDS on a copy of its seed corpus in $(BUILD)/fuzz/corpus; it fails when one crashes.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= http sns ses import text rawz
FUZZ_CC      ?= clang
FUZZ_CFLAGS  := -std=c11 -D_GNU_SOURCE -O1 -g -fno-omit-frame-pointer $(WARN) -Wno-unknown-warning-option \
                -Iinclude $(PKG_CFLAGS) -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_OBJS    := $(patsubst src/%.c,$(BUILD)/fuzz/obj/%.o,$(filter-out src/main.c,$(SRCS))) \
                $(BUILD)/fuzz/obj/schema_sql.o

.PHONY: fuzz fuzz-ci fuzz-build
.SECONDARY: $(FUZZ_OBJS)

fuzz-build: $(FUZZ_TARGETS:%=$(BUILD)/fuzz/fuzz_%)

fuzz: deps
	$(Q)$(MAKE) --no-print-directory fuzz-build
	$(Q)FUZZ_BIN=$(BUILD)/fuzz FUZZ_SECONDS=$(FUZZ_SECONDS) FUZZ_FRESH=$(FUZZ_FRESH) tests/fuzz/run.sh $(FUZZ_TARGETS)

fuzz-ci:
	$(Q)$(MAKE) --no-print-directory fuzz WERROR=1 FUZZ_SECONDS=60 FUZZ_FRESH=1

$(BUILD)/fuzz/obj/%.o: src/%.c
	@mkdir -p $(@D)
	@echo "  CC    $< (fuzz)"
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c -o $@ $<

$(BUILD)/fuzz/obj/schema_sql.o: $(BUILD)/gen/schema_sql.c
	@mkdir -p $(@D)
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

$(BUILD)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_OBJS)
	@echo "  LD    $@"
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -DFUZZ_FIXTURES='"$(CURDIR)/tests/fixtures"' -MMD -MP \
	  -fsanitize=fuzzer -o $@ $< $(FUZZ_OBJS) $(LDLIBS)

-include $(FUZZ_OBJS:.o=.d) $(FUZZ_TARGETS:%=$(BUILD)/fuzz/fuzz_%.d)

# Soak (bench/soak.sh; not part of `make test`): SOAK_SECONDS [600] at SOAK_RATE [5000] events/s with
# Slack and DynamoDB stubs; prints RSS, descriptors, WAL and outbox curves and PASS/FAIL; exit 1 on FAIL.
.PHONY: soak
soak: deps
	$(Q)$(MAKE) --no-print-directory $(BUILD)/seslog
	$(Q)SESLOG_BIN=$(BUILD)/seslog bench/soak.sh
