# The two commands of the README: `make run` and `make check`.
BUILD ?= build
MESON_OPTS ?=
PYTHON ?= /usr/bin/python3
HOST ?= 127.0.0.1
PORT ?= 8080

.PHONY: all bootstrap build run check unit e2e asan clean format format-check

all: build

bootstrap:
	@./scripts/bootstrap

$(BUILD)/build.ninja:
	meson setup $(BUILD) $(MESON_OPTS)

build: bootstrap $(BUILD)/build.ninja
	ninja -C $(BUILD)

run: build
	./scripts/run $(BUILD) $(HOST) $(PORT)

check: build
	BUILD=$(BUILD) PYTHON=$(PYTHON) ./scripts/check

unit: build
	meson test -C $(BUILD) --suite unit --print-errorlogs

e2e: build
	FDT_BUILD=$(BUILD) $(PYTHON) -m pytest -q tests/e2e

# The same tests under AddressSanitizer and UndefinedBehaviorSanitizer.
asan:
	$(MAKE) check BUILD=build-asan MESON_OPTS="-Db_sanitize=address,undefined -Db_lundef=false"

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

format-check:
	clang-format --dry-run --Werror $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build build-asan
