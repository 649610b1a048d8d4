# Thin wrapper over meson/ninja. `make demo` and `make test` set up a fresh
# Debian 12 machine themselves (as root): missing packages, configure, build.
BUILD      ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
# Seconds per harness: `make fuzz` searches, `make test` replays the seeds
# and searches briefly (5 harnesses, two at a time on two cores: ~30 s).
FUZZ_SECONDS ?= 60
FUZZ_TEST_SECONDS ?= 10
MESON_OPTS ?= --werror
CEDANA     := $(CURDIR)/$(BUILD)/src/cedana
SOURCES     = $(shell find src tests bench -name '*.[ch]' 2>/dev/null)

.PHONY: all deps build test unit asan asan-build asan-e2e asan-engine fuzz fuzz-build fuzz-test \
	e2e engine-tests bench demo format check-format clang-tidy scan-build clean

all: build

# make test checks the packages once and tells the suites it calls so
# (DEPS_CHECKED=1): each check is a dpkg-query per package, seconds a time.
deps:
	@[ -n "$(DEPS_CHECKED)" ] || scripts/install-deps.sh

$(BUILD)/build.ninja:
	meson setup $(BUILD) $(MESON_OPTS)

build: deps $(BUILD)/build.ninja
	ninja -C $(BUILD)

$(ASAN_BUILD)/build.ninja:
	meson setup $(ASAN_BUILD) $(MESON_OPTS) -Db_sanitize=address,undefined -Db_lundef=false

unit: build
	meson test -C $(BUILD) --suite unit --print-errorlogs

asan-build: deps $(ASAN_BUILD)/build.ninja
	ninja -C $(ASAN_BUILD)

asan: asan-build
	UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 meson test -C $(ASAN_BUILD) --suite unit --print-errorlogs

# libFuzzer needs clang; the harnesses and every library they link are
# built with ASan and UBSan in a build directory of their own.
$(FUZZ_BUILD)/build.ninja:
	CC=clang meson setup $(FUZZ_BUILD) $(MESON_OPTS) -Dfuzz=true -Dtests=disabled \
		-Db_sanitize=address,undefined -Db_lundef=false

fuzz-build: deps $(FUZZ_BUILD)/build.ninja
	ninja -C $(FUZZ_BUILD)

fuzz: fuzz-build
	FUZZ_SECONDS=$(FUZZ_SECONDS) UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
		meson test -C $(FUZZ_BUILD) --suite fuzz --num-processes 1 --print-errorlogs

# make test's: the harnesses side by side, one a core (tests/fuzz/meson.build)
fuzz-test: fuzz-build
	@rm -f $(FUZZ_BUILD)/meson-logs/testlog.json
	FUZZ_SECONDS=$(FUZZ_TEST_SECONDS) UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
		meson test -C $(FUZZ_BUILD) --suite fuzz --num-processes $$(nproc) --print-errorlogs

e2e: build
	CEDANA=$(CEDANA) BUILD=$(BUILD) scripts/run-bats.sh tests/e2e

engine-tests: build
	CEDANA=$(CEDANA) BUILD_DIR=$(CURDIR)/$(BUILD) BUILD=$(BUILD) scripts/run-bats.sh tests/engine

# The e2e and engine suites again, against the ASan/UBSan build; the
# sanitizer options, and why, are in scripts/run-sanitized.sh. asan-e2e runs
# every e2e file: each drives daemon or CLI code that no other file does.
asan-e2e: asan-build
	CEDANA=$(CURDIR)/$(ASAN_BUILD)/src/cedana BUILD=$(BUILD) scripts/run-sanitized.sh tests/e2e

# workloads-selftest.bats runs the workloads alone, never our code: the
# plain pass covers it. bench.bats times the engine, which a sanitized build
# would only slow down; the plain pass runs it. programs.bats (redis,
# postgres, PyTorch, java …) runs unsanitized programs through the engine
# paths that the workloads (workloads.bats, run here) already cover under
# ASan, one kind of state each; under ASan it would add its minutes and no
# path of ours: the plain pass runs it. CEDANA_TEST_ASAN=1: workloads.bats
# runs each workload dumped and killed, and with --leave-running only where
# that reaches code of its own (the list and why: ASAN_LEAVE_RUNNING there).
asan-engine: asan-build
	CEDANA_TEST_ASAN=1 \
	CEDANA=$(CURDIR)/$(ASAN_BUILD)/src/cedana BUILD_DIR=$(CURDIR)/$(ASAN_BUILD) BUILD=$(BUILD) \
		BATS_SKIP_FILES="workloads-selftest.bats bench.bats programs.bats" \
		scripts/run-sanitized.sh tests/engine

# The dump/restore benchmark with this machine's ceilings (bench/README.md);
# BENCH_SIZES, BENCH_ROUNDS, BENCH_QUICK=1 … pass through. Not part of test.
bench: build
	BUILD_DIR=$(CURDIR)/$(BUILD) bench/run

check-format: deps
	@clang-format --dry-run --Werror $(SOURCES) && echo "check-format: ok"

# Static analysis, each a suite of the summary (scripts/static-analysis.sh;
# the checks chosen are in .clang-tidy and in the script).
clang-tidy: build
	BUILD=$(BUILD) scripts/static-analysis.sh clang-tidy

scan-build: deps
	BUILD=$(BUILD) scripts/static-analysis.sh scan-build

format:
	clang-format -i $(SOURCES)

# Every suite runs even when an earlier one fails; the summary totals them,
# prints each step's seconds (the builds of the ASan and fuzz trees are steps
# of their own, so their minutes are not counted in a suite's) and carries the
# verdict. Each of the three trees is built once; the suites after that find
# nothing to do in ninja. The CPU-bound builds and the static analyzer run in
# a background lane at the lowest priority beside the bats suites, which
# mostly wait (scripts/make-test.sh). docs/testing.md has the layout, the
# minutes and what each pass leaves to another.
test: deps
	@rm -f $(BUILD)/bats-totals $(BUILD)/suite-times $(BUILD)/suite-failed \
		$(BUILD)/meson-logs/testlog.json \
		$(ASAN_BUILD)/meson-logs/testlog.json $(FUZZ_BUILD)/meson-logs/testlog.json
	@MAKE="$(MAKE)" BUILD=$(BUILD) ASAN_BUILD=$(ASAN_BUILD) FUZZ_BUILD=$(FUZZ_BUILD) \
		scripts/make-test.sh

demo: build
	scripts/demo.sh $(CEDANA)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD) build-scan
