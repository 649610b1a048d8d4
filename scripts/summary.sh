#!/usr/bin/env bash
# Prints one closing line over every suite that `make test` ran.
set -uo pipefail
build=${BUILD:-build}
passed=0 failed=0 skipped=0
# the unit tests, plain and under ASan/UBSan (make unit, make asan), and the
# fuzz suite (its own build directory: clang)
for log in "$build/meson-logs/testlog.json" "${ASAN_BUILD:-build-asan}/meson-logs/testlog.json" \
	"${FUZZ_BUILD:-build-fuzz}/meson-logs/testlog.json"; do
	[ -f "$log" ] || continue
	passed=$((passed + $(grep -c '"result": "OK"' "$log" || true)))
	failed=$((failed + $(grep -c '"result": "FAIL"' "$log" || true)))
done
if [ -f "$build/bats-totals" ]; then
	while read -r _ p f s; do
		passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + s))
	done <"$build/bats-totals"
	rm -f "$build/bats-totals"
fi
echo "total: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
