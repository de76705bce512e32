# The two commands of the README: `make run` and `make check`.
BUILD ?= build
MESON_OPTS ?=
PYTHON ?= /usr/bin/python3
HOST ?= 127.0.0.1
PORT ?= 8080

.PHONY: all bootstrap build install run check unit e2e asan tsan coverage clean format format-check lint

all: build

bootstrap:
	@./scripts/bootstrap

# Every build directory the Makefile configures is a test build: fault points compiled in
# (-Dfault_points=true; meson's default is off). They stay inert unless a test names one in
# FDT_FAULT_FILE, so `make run` serves from the same directory (docs/install.md).
FAULT_OPTS = -Dfault_points=true

$(BUILD)/build.ninja:
	meson setup $(BUILD) $(FAULT_OPTS) $(MESON_OPTS)

build: bootstrap $(BUILD)/build.ninja
	@grep -q 'FDT_FAULT_POINTS 1' $(BUILD)/fdt_config.h || meson configure $(BUILD) $(FAULT_OPTS)
	ninja -C $(BUILD)

# Install into PREFIX (default /usr/local; DESTDIR=DIR stages it) from a build directory of
# its own, without fault points: docs/install.md.
PREFIX ?= /usr/local
INSTALL_BUILD ?= build-install
install: bootstrap
	test -f $(INSTALL_BUILD)/build.ninja || meson setup $(INSTALL_BUILD) --prefix $(PREFIX)
	meson configure $(INSTALL_BUILD) --prefix $(PREFIX) -Dfault_points=false
	ninja -C $(INSTALL_BUILD)
	meson install -C $(INSTALL_BUILD)

run: build
	./scripts/run $(BUILD) $(HOST) $(PORT)

check: build
	BUILD=$(BUILD) PYTHON=$(PYTHON) ./scripts/check

unit: build
	meson test -C $(BUILD) --suite unit --suite fuzz --print-errorlogs

e2e: build
	FDT_BUILD=$(BUILD) $(PYTHON) -m pytest -q tests/e2e

# The same tests under AddressSanitizer and UndefinedBehaviorSanitizer.
asan:
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ASAN_OPTIONS=detect_leaks=1 \
	$(MAKE) check BUILD=build-asan MESON_OPTS="-Db_sanitize=address,undefined -Db_lundef=false"

# Thread code under ThreadSanitizer (unit tests and the end-to-end suite).
tsan:
	TSAN_OPTIONS=halt_on_error=1 \
	$(MAKE) check BUILD=build-tsan MESON_OPTS="-Db_sanitize=thread -Db_lundef=false"

# The whole `make check` in a gcov build (build-coverage; workers write their counters on
# every graceful exit, see fdt__exit), then line and branch coverage of src/ and apps/ per file
# (gcovr), per module and in total (scripts/coverage-floor, which fails below .coverage-floor).
# The summary is build-coverage/coverage.json. Exits non-zero if a test or the floor failed.
COV_BUILD = build-coverage
# Atomic counter updates: the workers' threads run the same lines at once, and the default
# (plain increments) loses updates, which gcov can then print as a negative branch count.
# A .gcda file left half-written by a process killed while writing it (the SIGKILL tests)
# can still give gcov a line gcovr cannot parse: gcovr skips such lines and says so on
# stderr (--gcov-ignore-parse-errors) rather than failing the whole report.
# Unoptimised (buildtype debug): at -O2 inlined and merged code charges its counts to the
# wrong lines, so lines that run show as never run and the per-line answer is not exact.
COV_OPTS = -Db_coverage=true -Dc_args=-fprofile-update=atomic -Dbuildtype=debug $(FAULT_OPTS)
GCOVR_FILTERS = --root . --filter 'src/' --filter 'apps/' \
	--exclude 'tests/' --exclude 'fuzz/' --exclude 'bench/' --exclude '.*llhttp.*'
coverage: bootstrap
	@if [ -f $(COV_BUILD)/build.ninja ]; then meson configure $(COV_BUILD) $(COV_OPTS); \
	else meson setup $(COV_BUILD) $(COV_OPTS) $(MESON_OPTS); fi
	ninja -C $(COV_BUILD)
	@# Old counters go; so do the notes (.gcno) of objects no longer built, which gcovr would
	@# try to merge with the current ones of the same source.
	ninja -C $(COV_BUILD) -t cleandead >/dev/null
	find $(COV_BUILD) \( -name '*.gcda' -o -name '*.gcov' \) -delete
	for f in $$(find $(COV_BUILD) -name '*.gcno'); do [ -f "$${f%.gcno}.o" ] || rm -f "$$f"; done
	@rc=0; BUILD=$(COV_BUILD) PYTHON=$(PYTHON) ./scripts/check || rc=$$?; \
	gcovr $(GCOVR_FILTERS) --gcov-ignore-parse-errors --json $(COV_BUILD)/coverage-data.json \
		$(COV_BUILD) || exit 1; \
	gcovr $(GCOVR_FILTERS) -a $(COV_BUILD)/coverage-data.json --txt; \
	gcovr $(GCOVR_FILTERS) -a $(COV_BUILD)/coverage-data.json --txt --branches; \
	gcovr $(GCOVR_FILTERS) -a $(COV_BUILD)/coverage-data.json \
		--json-summary-pretty --json-summary $(COV_BUILD)/coverage.json; \
	$(PYTHON) scripts/coverage-floor $(COV_BUILD)/coverage.json || rc=1; \
	exit $$rc

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

format-check:
	clang-format --dry-run --Werror $$(git ls-files '*.c' '*.h')

# Source checks: formatting, the module layering of includes (scripts/check-includes) and
# banned functions (scripts/check-banned). `make check` runs the last two as well.
lint: format-check
	$(PYTHON) scripts/check-includes
	$(PYTHON) scripts/check-banned

clean:
	rm -rf build build-asan build-tsan build-coverage build-install
