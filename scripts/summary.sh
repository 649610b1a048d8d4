#!/usr/bin/env bash
# Prints what `make test` ran: a line a suite with its counts and seconds,
# the wall seconds of each step (builds included), and one closing line over
# every suite that carries the verdict.
set -uo pipefail
build=${BUILD:-build}
passed=0 failed=0 skipped=0

# suite PASSED FAILED SKIPPED SECONDS LABEL: one line of the table, counted.
suite() {
	printf '  %-36s %6s passed %4s failed %4s skipped %6s s\n' "$5" "$1" "$2" "$3" "$4"
	passed=$((passed + $1)) failed=$((failed + $2)) skipped=$((skipped + $3))
}

echo "suites:"
# the unit tests, plain and under ASan/UBSan (make unit, make asan), and the
# fuzz suite (its own build directory: clang); meson's log gives each test's
# duration, summed here (the tests of a suite may run side by side)
for pair in "unit:$build" "asan:${ASAN_BUILD:-build-asan}" "fuzz:${FUZZ_BUILD:-build-fuzz}"; do
	log=${pair#*:}/meson-logs/testlog.json
	[ -f "$log" ] || continue
	p=$(grep -c '"result": "OK"' "$log" || true)
	f=$(grep -c '"result": "FAIL"' "$log" || true)
	secs=$(python3 -c 'import json, sys
print(round(sum(json.loads(l).get("duration", 0) for l in open(sys.argv[1]) if l.strip())))' "$log" 2>/dev/null || echo "?")
	suite "$p" "$f" 0 "$secs" "${pair%%:*} (meson, summed)"
done
# the bats and static analysis suites: "LABEL PASSED FAILED SKIPPED SECONDS"
if [ -f "$build/bats-totals" ]; then
	while read -r label p f s secs; do
		suite "$p" "$f" "$s" "${secs:-?}" "$label"
	done <"$build/bats-totals"
	rm -f "$build/bats-totals"
fi
# make test's steps, each timed from its start to its end, in the order they
# ended: NAME[bg] ran in the background lane beside the others,
# await-NAME is how long the foreground waited for it (scripts/make-test.sh);
# "wall" is make test's own wall time, which is what the steps add up to
# when there is no such line.
if [ -f "$build/suite-times" ]; then
	total=0 wall=
	echo "steps (wall seconds):"
	while read -r step secs; do
		[ "$step" = wall ] && { wall=$secs; continue; }
		printf '  %-36s %6s s\n' "$step" "$secs"
		total=$((total + secs))
	done <"$build/suite-times"
	if [ -n "$wall" ]; then
		printf '  %-36s %6s s\n' "all (wall)" "$wall"
	else
		printf '  %-36s %6s s\n' "all" "$total"
	fi
	rm -f "$build/suite-times"
fi
# the steps that failed (scripts/make-test.sh), a build among them: a
# build's failure has no suite line of its own
steps_failed=
if [ -f "$build/suite-failed" ]; then
	steps_failed=$(tr '\n' ' ' <"$build/suite-failed")
	rm -f "$build/suite-failed"
fi
echo "total: $passed passed, $failed failed, $skipped skipped${steps_failed:+; steps failed: ${steps_failed% }}"
[ "$failed" -eq 0 ] && [ -z "$steps_failed" ]
