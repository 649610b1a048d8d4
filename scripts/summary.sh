#!/usr/bin/env bash
# Prints one closing line over every suite that `make test` ran.
set -uo pipefail
build=${BUILD:-build}
passed=0 failed=0 skipped=0
if [ -f "$build/meson-logs/testlog.json" ]; then
	passed=$((passed + $(grep -c '"result": "OK"' "$build/meson-logs/testlog.json" || true)))
	failed=$((failed + $(grep -c '"result": "FAIL"' "$build/meson-logs/testlog.json" || true)))
fi
if [ -f "$build/bats-totals" ]; then
	while read -r _ p f s; do
		passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + s))
	done <"$build/bats-totals"
	rm -f "$build/bats-totals"
fi
echo "total: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
