#!/usr/bin/env bash
# Runs a bats suite against the ASan/UBSan build (make asan-e2e, asan-engine):
# CEDANA (and BUILD_DIR for tests/engine) point into build-asan. A sanitizer
# report fails the suite even when the test whose process made it passed.
set -uo pipefail
dir=$1
reports=$(mktemp -d /tmp/cedana-sanitizers.XXXXXX)

# halt_on_error=1: the first finding ends the process with a failure status;
#   ASan does so anyway, UBSan would otherwise report and go on.
# detect_leaks=1: LeakSanitizer runs at every normal exit (the CLI, the
#   engine driver, the daemon on SIGTERM). It uses ptrace, and works here:
#   the tasks the engine traces are either unsanitized (the test programs are
#   built without sanitizers, tests/workloads/meson.build) or clones of the
#   engine whose memory, sanitizer runtime included, is replaced by the
#   image's before they run again; none of them runs LeakSanitizer. Daemon
#   workers and clones that fail while being prepared leave by _exit, so
#   LeakSanitizer does not check them.
# log_path: every process writes its reports to a file of its own, so that
#   the findings of processes whose exit status no test looks at (the daemon
#   in the background, its workers, a job's supervisor) are seen too: any
#   report file fails the suite, below. ASan appends the pid to the name.
# Nothing else is needed: restored tasks take no options from their
# environment (their memory, environment included, is the image's).
export ASAN_OPTIONS="halt_on_error=1:detect_leaks=1:log_path=$reports/asan"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:log_path=$reports/ubsan"

SUITE_LABEL="asan:$dir" scripts/run-bats.sh "$dir"
rc=$?

shopt -s nullglob
found=("$reports"/*)
if [ ${#found[@]} -gt 0 ]; then
	for f in "${found[@]}"; do
		echo "---- sanitizer report $(basename "$f")"
		cat "$f"
	done
	echo "asan:$dir: ${#found[@]} sanitizer report(s): FAILED"
	echo "asan:$dir:sanitizer-reports 0 ${#found[@]} 0 0" >>"${BUILD:-build}/bats-totals"
	rc=1
fi
rm -rf "$reports"
exit "$rc"
