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
TMPFILESDIR ?= /usr/lib/tmpfiles.d
DIST     ?= dist
DEBBUILD ?= build-deb

.PHONY: all deps deps-install run test test-unit test-integration test-fuzz test-sanitize bench bench-scale \
	install uninstall deb fuzz format clean

all: $(BUILD)/build.ninja
	ninja -C $(BUILD)

$(BUILD)/build.ninja:
	$(MESON) setup $(BUILD)

$(ASAN)/build.ninja:
	$(MESON) setup $(ASAN) -Db_sanitize=address,undefined -Db_lundef=false \
		-Dbuildtype=debug

$(FUZZ)/build.ninja:
	CC=clang $(MESON) setup $(FUZZ) -Dfuzz=true -Dbuildtype=debug -Dsystemd=disabled

# Everything: run-time, build and test packages (scripts/deps.sh run build test).
deps:
	sh scripts/deps.sh

# What `make install` may install: the run-time set (and the mxguard user),
# plus the build set only when there is no build yet. Never an MTA, a Redis
# server or a test tool.
deps-install:
	sh scripts/deps.sh run
	[ -f $(BUILD)/build.ninja ] || sh scripts/deps.sh build

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

# The scale run (100,000 held clients) changes host sysctls while it runs
# (restored at the end) and needs root: not part of `make bench`.
bench-scale: deps all
	MXGUARD_BIN=$(CURDIR)/$(BUILD)/mxguard bench/scale

# Files only, under DESTDIR when given: nothing is enabled or started.
install: deps-install all
	meson install -C $(BUILD) --destdir "$(DESTDIR)"
	install -d -m 0755 $(DESTDIR)/etc/mxguard
	[ -e $(DESTDIR)/etc/mxguard/mxguard.conf ] || \
		install -m 0644 etc/mxguard.conf.example $(DESTDIR)/etc/mxguard/mxguard.conf
	install -m 0644 etc/whitelist_clients.regexp $(DESTDIR)/etc/mxguard/whitelist_clients.regexp
	[ -e $(DESTDIR)/etc/mxguard/local_clients.regexp ] || \
		install -m 0644 etc/local_clients.regexp $(DESTDIR)/etc/mxguard/local_clients.regexp
	# Owned by run_as from the start: mxguard does not chown what it did not create.
	install -d -m 0750 $(DESTDIR)/var/lib/mxguard
	if [ "$$(id -u)" = 0 ] && getent passwd mxguard >/dev/null; then \
		chown mxguard:"$$(id -g mxguard)" $(DESTDIR)/var/lib/mxguard; fi
	install -d -m 0755 $(DESTDIR)$(TMPFILESDIR)
	install -m 0644 etc/mxguard.tmpfiles $(DESTDIR)$(TMPFILESDIR)/mxguard.conf
	if [ -z "$(DESTDIR)" ] && command -v systemd-tmpfiles >/dev/null && \
		getent passwd mxguard >/dev/null; then \
		systemd-tmpfiles --create $(TMPFILESDIR)/mxguard.conf; fi
	install -d -m 0755 $(DESTDIR)$(UNITDIR)
	bin=$$($(MESON) introspect $(BUILD) --installed | $(PYTHON) -c \
		'import json, sys; print([v for v in json.load(sys.stdin).values() if v.endswith("/mxguard")][0])') && \
		sed "s|^ExecStart=/usr/local/sbin/mxguard |ExecStart=$$bin |" etc/mxguard.service \
		> $(DESTDIR)$(UNITDIR)/mxguard.service.tmp && \
		chmod 0644 $(DESTDIR)$(UNITDIR)/mxguard.service.tmp && \
		mv $(DESTDIR)$(UNITDIR)/mxguard.service.tmp $(DESTDIR)$(UNITDIR)/mxguard.service

# Removes what `make install` put, except a changed mxguard.conf or
# local_clients.regexp, the state in /var/lib/mxguard and the mxguard user
# (it says which). Needs the same build/ (its list of installed files).
uninstall:
	@[ -f $(BUILD)/build.ninja ] || { echo "uninstall: no $(BUILD)/ to list the installed files"; exit 1; }
	@$(MESON) introspect $(BUILD) --installed | $(PYTHON) -c \
		'import json, sys; print("\n".join(json.load(sys.stdin).values()))' | \
		while read -r f; do \
			[ -e "$(DESTDIR)$$f" ] && echo "rm $(DESTDIR)$$f" && rm -f "$(DESTDIR)$$f"; \
		done; true
	rm -f $(DESTDIR)$(UNITDIR)/mxguard.service $(DESTDIR)$(TMPFILESDIR)/mxguard.conf \
		$(DESTDIR)/etc/mxguard/whitelist_clients.regexp
	@for f in mxguard.conf:mxguard.conf.example local_clients.regexp:local_clients.regexp; do \
		inst=$(DESTDIR)/etc/mxguard/$${f%%:*}; src=etc/$${f#*:}; \
		if [ ! -e "$$inst" ]; then :; \
		elif cmp -s "$$inst" "$$src"; then echo "rm $$inst"; rm -f "$$inst"; \
		else echo "uninstall: kept $$inst (changed since install)"; fi; \
	done
	@rmdir $(DESTDIR)/etc/mxguard 2>/dev/null || true
	@[ ! -d $(DESTDIR)/var/lib/mxguard ] || \
		echo "uninstall: kept $(DESTDIR)/var/lib/mxguard (mxguard's state: remove it by hand)"
	@! getent passwd mxguard >/dev/null || \
		echo "uninstall: kept the system user mxguard (userdel mxguard to remove it)"

# The Debian package, built from a copy of the tree under $(DEBBUILD)/
# (dpkg-buildpackage writes its results into the parent directory), copied
# into $(DIST)/.
deb:
	sh scripts/deps.sh build
	rm -rf $(DEBBUILD) && mkdir -p $(DEBBUILD)/src $(DIST)
	tar --exclude=./.git --exclude=./build --exclude='./build-*' --exclude=./$(DIST) \
		--exclude=./var -cf - . | tar -C $(DEBBUILD)/src -xf -
	cd $(DEBBUILD)/src && dpkg-buildpackage -us -uc -b
	cd $(DEBBUILD) && lintian --fail-on error,warning *.changes
	cp $(DEBBUILD)/*.deb $(DIST)/
	@ls -l $(DIST)/*.deb

format:
	clang-format -i src/*.c src/*.h tests/unit/*.c tests/fuzz/*.c

clean:
	rm -rf $(BUILD) $(ASAN) $(FUZZ) $(DEBBUILD) $(DIST)
