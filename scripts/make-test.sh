#!/usr/bin/env bash
# make test: every step runs even when an earlier one fails; the summary
# (scripts/summary.sh) totals the suites, prints each step's seconds and
# carries the verdict, and the exit status fails when any step failed.
#
# Two lanes (docs/testing.md has the figures): the bats suites mostly wait
# (daemons, dumps, restores, workloads that sleep by design) and leave about
# two thirds of two cores idle, so the CPU-bound steps that nothing in the
# foreground needs yet (the ASan and fuzz trees' builds, the static analyzer)
# run one after another in a background lane at the lowest CPU and I/O
# priority: they take only what the tests leave, and the tests' time bounds
# see the load they saw alone. The foreground waits for a tree's build
# before the first step that uses it. Each background step's output goes to
# a log of its own, printed when the foreground has waited for that step,
# between two foreground steps: neither interleaves with the other, and a
# run stopped half way has printed what the lane did so far.
set -uo pipefail
make=${MAKE:-make}
build=${BUILD:-build}
bg_steps=(asan-build fuzz-build scan-build)
times=$build/suite-times
fail=0
started=$(date +%s)

# failed NAME [WHY]: a step failed: said now, and named on the summary's
# last line (summary.sh reads $build/suite-failed).
failed() {
	echo "make test: $1 FAILED${2:+ $2}"
	echo "$1" >>"$build/suite-failed"
	fail=1
}

# step NAME: runs `make NAME`, records its wall seconds; a failure is
# reported and counted, and the next step runs anyway.
step() {
	local start
	start=$(date +%s)
	"$make" --no-print-directory DEPS_CHECKED=1 "$1" || failed "$1"
	echo "$1 $(($(date +%s) - start))" >>"$times"
}

"$make" --no-print-directory DEPS_CHECKED=1 build || exit 1
mkdir -p "$build"
echo "build $(($(date +%s) - started))" >>"$times"

# The background lane: each step leaves $lane/NAME.rc (its exit status)
# when it ends; its seconds are recorded as NAME[bg].
lane=$(mktemp -d /tmp/cedana-make-test.XXXXXX)
set -m # the lane in a process group of its own, ended with make test
(
	for t in "${bg_steps[@]}"; do
		start=$(date +%s)
		nice -n 19 ionice -c 2 -n 7 \
			"$make" --no-print-directory DEPS_CHECKED=1 "$t" </dev/null >"$lane/$t.log" 2>&1
		rc=$?
		echo "${t}[bg] $(($(date +%s) - start))" >>"$times"
		echo "$rc" >"$lane/$t.rc"
	done
) &
lane_pid=$!
set +m
trap 'kill -- -$lane_pid 2>/dev/null; rm -rf "$lane"' EXIT
trap 'exit 130' INT TERM HUP PIPE

# await NAME: waits for the background step NAME to end, prints its output,
# counts its failure. A lane that died before it (killed from outside)
# counts as its failure, never as a wait without end.
await() {
	local start rc
	start=$(date +%s)
	while [ ! -f "$lane/$1.rc" ] && kill -0 "$lane_pid" 2>/dev/null; do sleep 1; done
	rc=$(cat "$lane/$1.rc" 2>/dev/null || echo 1)
	echo "---- make test: $1, run in the background lane (nice 19)"
	cat "$lane/$1.log" 2>/dev/null
	[ "$rc" -eq 0 ] || failed "$1"
	echo "await-$1 $(($(date +%s) - start))" >>"$times"
}

for t in check-format clang-tidy unit e2e engine-tests; do step "$t"; done
await asan-build
for t in asan asan-e2e asan-engine; do step "$t"; done
await fuzz-build
step fuzz-test
await scan-build
wait "$lane_pid"
echo "wall $(($(date +%s) - started))" >>"$times"
BUILD=$build scripts/summary.sh || fail=1
exit "$fail"
