#!/usr/bin/env bash
# Static analysis suites of `make test`, recorded for summary.sh like the bats
# suites: each checked unit is one test, passed when it has no finding.
#   static-analysis.sh clang-tidy: clang-tidy (checks in .clang-tidy) over every
#     source file in $BUILD/compile_commands.json, one test per file.
#   static-analysis.sh scan-build: the clang static analyzer over a fresh build
#     in $SCAN_BUILD, one test per source file compiled, failed when the
#     analyzer reports a bug in it that scripts/scan-build.baseline does not
#     list (or when the build fails).
set -uo pipefail
what=$1
build=${BUILD:-build}
jobs=$(nproc)
out=$(mktemp -d /tmp/cedana-analysis.XXXXXX)
trap 'rm -rf "$out"' EXIT
passed=0 failed=0
start=$(date +%s)

case $what in
clang-tidy)
	# clang-tidy runs in the build dir, where compile_commands.json's
	# relative paths start; a file's findings go to a log of its own.
	python3 -c 'import json, sys
for f in sorted({e["file"] for e in json.load(open(sys.argv[1]))}):
	print(f)' "$build/compile_commands.json" >"$out/files" || exit 1
	(cd "$build" && xargs -a "$out/files" -P "$jobs" -I{} sh -c \
		'log=$1/$(echo "$2" | tr / _).log; clang-tidy -p . --quiet "$2" >"$log" 2>&1 || echo "$2" >>"$1/failed"' \
		sh "$out" {})
	total=$(wc -l <"$out/files")
	failed=$(sort -u "$out/failed" 2>/dev/null | wc -l)
	passed=$((total - failed))
	for f in $(sort -u "$out/failed" 2>/dev/null); do
		echo "---- clang-tidy: $f"
		grep -v ' warnings\? generated\.$' "$out/$(echo "$f" | tr / _).log"
	done
	;;
scan-build)
	# A fresh configure each time: scan-build sees only what it compiles.
	# Left out: unix.Malloc, because clang 14's analyzer does not run
	# __attribute__((cleanup)) handlers, so every early return past a
	# _cleanup_free_ is reported as a leak (LeakSanitizer and ASan check
	# leaks and double frees in the asan suites instead); and
	# deadcode.DeadStores, which reports our `if ((r = f()) < 0) return r;`
	# idiom wherever r is not read again. Reviewed false positives are
	# listed in scripts/scan-build.baseline.
	scan=${SCAN_BUILD:-build-scan}
	opts=(-o "$out/reports" -disable-checker unix.Malloc -disable-checker deadcode.DeadStores)
	rm -rf "$scan"
	scan-build "${opts[@]}" meson setup "$scan" --werror -Dtests=enabled >"$out/setup.log" 2>&1 ||
		{ cat "$out/setup.log"; exit 1; }
	scan-build "${opts[@]}" ninja -C "$scan" -j "$jobs" >"$out/build.log" 2>&1
	rc=$?
	total=$(grep -c '^\[[0-9]*/[0-9]*\] Compiling C object' "$out/build.log")
	grep -v '^#' scripts/scan-build.baseline >"$out/baseline"
	grep -E '^[^ ]+:[0-9]+:[0-9]+: warning: .*\[[a-zA-Z.]+\]$' "$out/build.log" | sort -u |
		while IFS= read -r line; do
			key=$(echo "$line" | sed -E 's|^(\.\./)?([^:]+):[0-9]+:[0-9]+: warning: |\2: |')
			grep -qxF -- "$key" "$out/baseline" || echo "$line"
		done >"$out/new"
	cat "$out/new"
	failed=$(sed -E 's|^(\.\./)?([^:]+):.*|\2|' "$out/new" | sort -u | wc -l)
	if [ "$rc" -ne 0 ]; then
		tail -50 "$out/build.log"
		failed=$((failed + 1))
	fi
	passed=$((total - failed))
	[ "$passed" -ge 0 ] || passed=0
	rm -rf "$scan"
	;;
*)
	echo "usage: $0 clang-tidy|scan-build" >&2
	exit 2
	;;
esac

secs=$(($(date +%s) - start))
mkdir -p "$build"
echo "$what $passed $failed 0 $secs" >>"$build/bats-totals"
echo "$what: $passed passed, $failed failed in $secs s"
[ "$failed" -eq 0 ]
