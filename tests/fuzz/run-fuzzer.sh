#!/usr/bin/env bash
# Runs one libFuzzer harness for FUZZ_SECONDS (default 10) over its checked-in
# seed corpus. New inputs go to a work directory in the build tree, never
# into the checked-in corpus; a crash is written there too (crash-*) and
# fails the test. Usage: run-fuzzer.sh HARNESS SEED_DIR WORK_DIR
set -euo pipefail
harness=$1 seeds=$2 work=$3
seconds=${FUZZ_SECONDS:-10}
mkdir -p "$work/corpus"
exec "$harness" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
	-print_final_stats=1 -artifact_prefix="$work/" "$work/corpus" "$seeds"
