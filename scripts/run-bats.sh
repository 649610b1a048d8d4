#!/usr/bin/env bash
# Runs every .bats file in a directory and records the totals for summary.sh
# (a line "LABEL PASSED FAILED SKIPPED SECONDS" in $BUILD/bats-totals).
# --timing: each test's line in the log ends with its duration ("in 812ms"),
# so a CI log shows where a suite's minutes go.
# BATS_SKIP_FILES: file names (space-separated) of the directory not to run.
set -uo pipefail
dir=$1
label=${SUITE_LABEL:-$dir} # one word: summary.sh reads it so
shopt -s nullglob
files=()
for f in "$dir"/*.bats; do
	case " ${BATS_SKIP_FILES:-} " in
	*" $(basename "$f") "*) continue ;;
	esac
	files+=("$f")
done
if [ ${#files[@]} -eq 0 ]; then
	echo "run-bats: no tests in $dir"
	exit 0
fi
out=$(mktemp)
start=$(date +%s)
bats --tap --timing "${files[@]}" | tee "$out"
rc=${PIPESTATUS[0]}
secs=$(($(date +%s) - start))
passed=$(grep -c '^ok ' "$out" || true)
skipped=$(grep -c '^ok .* # skip' "$out" || true)
failed=$(grep -c '^not ok ' "$out" || true)
build=${BUILD:-build}
mkdir -p "$build"
echo "$label $((passed - skipped)) $failed $skipped $secs" >>"$build/bats-totals"
echo "$label: $((passed - skipped)) passed, $failed failed, $skipped skipped in $secs s"
rm -f "$out"
exit "$rc"
