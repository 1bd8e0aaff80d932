# mxguard - the two commands that matter: `make run` and `make test`.
# Everything builds with meson+ninja under build/ (and build-asan/, build-fuzz/).

PYTHON   ?= /usr/bin/python3
PREFIX   ?= /usr/local
MESON    ?= meson
BUILD    ?= build
ASAN     ?= build-asan
FUZZ     ?= build-fuzz
FUZZRUNS ?= 200000
UNITDIR  ?= /lib/systemd/system

.PHONY: all deps run test test-unit test-integration test-fuzz test-sanitize bench \
	install fuzz format clean

all: $(BUILD)/build.ninja
	ninja -C $(BUILD)

$(BUILD)/build.ninja:
	$(MESON) setup $(BUILD)

$(ASAN)/build.ninja:
	$(MESON) setup $(ASAN) -Db_sanitize=address,undefined -Db_lundef=false \
		-Dbuildtype=debug

$(FUZZ)/build.ninja:
	CC=clang $(MESON) setup $(FUZZ) -Dfuzz=true -Dbuildtype=debug -Dsystemd=disabled

deps:
	sh scripts/deps.sh

# Foreground, embedded defaults, state under ./var; starts a sink MTA when
# nothing listens on the backend address. ARGS go to mxguard.
run: deps all
	bash scripts/run.sh $(BUILD)/mxguard $(ARGS)

test: deps all test-unit test-fuzz test-integration

test-unit: all
	meson test -C $(BUILD) --print-errorlogs

test-integration: all
	MXGUARD_BIN=$(CURDIR)/$(BUILD)/mxguard $(PYTHON) -m pytest -q -p no:cacheprovider \
		tests/integration

# The same suite against an ASan+UBSan build.
test-sanitize: deps $(ASAN)/build.ninja
	ninja -C $(ASAN)
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		meson test -C $(ASAN) --print-errorlogs
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		MXGUARD_BIN=$(CURDIR)/$(ASAN)/mxguard $(PYTHON) -m pytest -q -p no:cacheprovider \
		tests/integration

fuzz: deps $(FUZZ)/build.ninja
	ninja -C $(FUZZ)

# Each fuzz target runs a bounded number of inputs from its seed corpus.
test-fuzz: fuzz
	sh tests/fuzz/run.sh $(FUZZ) $(FUZZRUNS)

bench: deps all
	MXGUARD_BIN=$(CURDIR)/$(BUILD)/mxguard bench/passthrough
	MXGUARD_BIN=$(CURDIR)/$(BUILD)/mxguard bench/hold
	MXGUARD_BIN=$(CURDIR)/$(BUILD)/mxguard bench/logstat
	MXGUARD_BIN=$(CURDIR)/$(BUILD)/mxguard bench/store
	MXGUARD_BIN=$(CURDIR)/$(BUILD)/mxguard bench/detect
	MXGUARD_BIN=$(CURDIR)/$(BUILD)/mxguard bench/drop

install: deps all
	meson install -C $(BUILD) --destdir "$(DESTDIR)"
	install -d -m 0755 $(DESTDIR)/etc/mxguard
	[ -e $(DESTDIR)/etc/mxguard/mxguard.conf ] || \
		install -m 0644 etc/mxguard.conf.example $(DESTDIR)/etc/mxguard/mxguard.conf
	install -m 0644 etc/whitelist_clients.regexp $(DESTDIR)/etc/mxguard/whitelist_clients.regexp
	[ -e $(DESTDIR)/etc/mxguard/local_clients.regexp ] || \
		printf '# Your own client_lists entries (Postfix regexp_table lines).\n' \
		> $(DESTDIR)/etc/mxguard/local_clients.regexp
	install -d -m 0750 $(DESTDIR)/var/lib/mxguard
	install -d -m 0755 $(DESTDIR)$(UNITDIR)
	bin=$$($(MESON) introspect $(BUILD) --installed | $(PYTHON) -c \
		'import json, sys; print([v for v in json.load(sys.stdin).values() if v.endswith("/mxguard")][0])') && \
		sed "s|^ExecStart=/usr/local/sbin/mxguard |ExecStart=$$bin |" etc/mxguard.service \
		> $(DESTDIR)$(UNITDIR)/mxguard.service.tmp && \
		chmod 0644 $(DESTDIR)$(UNITDIR)/mxguard.service.tmp && \
		mv $(DESTDIR)$(UNITDIR)/mxguard.service.tmp $(DESTDIR)$(UNITDIR)/mxguard.service

format:
	clang-format -i src/*.c src/*.h tests/unit/*.c tests/fuzz/*.c

clean:
	rm -rf $(BUILD) $(ASAN) $(FUZZ)
