#!/usr/bin/env bash
# The incremental case of the benchmark (bench/README.md): bench/incremental.sh [MiB ...]
#
# For each size (arguments, else BENCH_INCR_SIZES, default 1024): wl-incr MiB
# of random pages is dumped with --leave-running (its writes tracked from then
# on), rewrites 5% of its pages (one generation), and is dumped again with the
# first image as parent (the engine driver's --then). BENCH_ROUNDS rounds
# (default 3), medians. Each figure is printed next to the first dump of the
# same round, which bounds it: the target is a second dump at most 0.1 of
# the first. Writes BENCH_INCR_JSON (default bench/results-incremental.json).
# BENCH_DIR, BUILD_DIR as for bench/run. Needs root.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$root/build}
engine=$build/tests/engine/cedana-engine
wl=$build/tests/workloads/wl-incr
json=${BENCH_INCR_JSON:-$root/bench/results-incremental.json}
sizes=${*:-${BENCH_INCR_SIZES:-1024}}
rounds=${BENCH_ROUNDS:-3}

for f in "$engine" "$wl"; do
	[ -x "$f" ] || {
		echo "bench/incremental.sh: $f missing: build first (make build)" >&2
		exit 1
	}
done
[ "$(id -u)" = 0 ] || {
	echo "bench/incremental.sh: needs root (the engine)" >&2
	exit 1
}

work=$(mktemp -d "${BENCH_DIR:-/var/tmp}/cedana-bench-incr.XXXXXX")
records=$work/rounds.jsonl
wl_pid=
driver=
cleanup() {
	[ -n "$driver" ] && kill "$driver" 2>/dev/null
	[ -n "$wl_pid" ] && kill -9 "$wl_pid" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT
: >"$records"

log() { echo "bench/incremental.sh: $*" >&2; }

# wait_for FILE REGEX: up to 300 s.
wait_for() {
	for _ in $(seq 1 6000); do
		grep -q "$2" "$1" 2>/dev/null && return 0
		sleep 0.05
	done
	log "no \"$2\" in $1:"
	cat "$1" "$work/err" >&2 2>/dev/null
	return 1
}

# stat_n FILE NAME K: the K-th (1, 2) value of "stat NAME N" in FILE.
stat_n() {
	awk -v n="$2" -v k="$3" '$1 == "stat" && $2 == n { if (++i == k) print $3 }' "$1"
}

# one_round MiB ROUND: appends one JSON line to $records.
one_round() {
	local mib=$1 round=$2
	rm -rf "$work/img1" "$work/img2" "$work/in" "$work/trigger"
	(
		for fd in "/proc/$BASHPID/fd"/*; do
			fd=${fd##*/}
			[ "$fd" -gt 2 ] && eval "exec $fd>&-"
		done
		CEDANA_WL_TRIGGER=$work/trigger CEDANA_WL_TIMEOUT=1800 exec setsid "$wl" "$mib" solo
	) </dev/null >"$work/log" 2>&1 &
	wl_pid=$!
	disown "$wl_pid"
	wait_for "$work/log" '^READY$' || return 1
	mkfifo "$work/in"
	"$engine" dump "$wl_pid" "$work/img1" --leave-running --timings --then "$work/img2" \
		<"$work/in" >"$work/out" 2>"$work/err" &
	driver=$!
	exec 7>"$work/in"
	wait_for "$work/out" "dumped $work/img1" || return 1
	kill -USR1 "$wl_pid"
	wait_for "$work/log" '^CHANGED 1$' || return 1
	echo next >&7
	exec 7>&-
	wait "$driver" || {
		driver=
		log "the dumps failed:"
		cat "$work/err" >&2
		return 1
	}
	driver=
	grep -q "dumped $work/img2 incremental 1" "$work/out" || {
		log "the second dump was not incremental"
		return 1
	}
	# the tracked program must still be right
	touch "$work/trigger"
	wait_for "$work/log" '^\(PASS\|FAIL\)' || return 1
	grep -q '^PASS$' "$work/log" || {
		log "wl-incr: $(grep '^FAIL' "$work/log")"
		return 1
	}
	wl_pid=
	printf '{"mib": %s, "round": %s, "first_dump_ns": %s, "incr_dump_ns": %s, ' "$mib" \
		"$round" "$(stat_n "$work/err" total_ns 1)" "$(stat_n "$work/err" total_ns 2)" >>"$records"
	printf '"first_pages_bytes": %s, "incr_pages_bytes": %s' \
		"$(stat_n "$work/err" pages_bytes 1)" "$(stat_n "$work/err" pages_bytes 2)" >>"$records"
	# where each dump's time went (the engine's stages, docs/engine.md)
	local stage
	for stage in freeze state mem_scan write fsync; do
		printf ', "first_%s_ns": %s, "incr_%s_ns": %s' "$stage" \
			"$(stat_n "$work/err" "${stage}_ns" 1)" "$stage" \
			"$(stat_n "$work/err" "${stage}_ns" 2)" >>"$records"
	done
	printf '}\n' >>"$records"
	log "$mib MiB round $round: first dump $(($(stat_n "$work/err" total_ns 1) / 1000000)) ms," \
		"second $(($(stat_n "$work/err" total_ns 2) / 1000000)) ms"
}

for mib in $sizes; do
	for ((r = 1; r <= rounds; r++)); do
		one_round "$mib" "$r" || printf '{"mib": %s, "round": %s, "failed": true}\n' \
			"$mib" "$r" >>"$records"
	done
done

python3 - "$records" "$json" <<'EOF'
import json, statistics, sys, time
rounds = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
out = []
print(f"{'incremental (5% written)':<26}{'first s':>9}{'second s':>10}{'ratio':>7}"
      f"{'first MiB':>11}{'second MiB':>12}")
for mib in sorted({r["mib"] for r in rounds}):
    ok = [r for r in rounds if r["mib"] == mib and not r.get("failed")]
    w = {"name": f"random {mib} MiB incremental", "mib": mib,
         "rounds_run": len([r for r in rounds if r["mib"] == mib]), "rounds_ok": len(ok)}
    if ok:
        med = lambda k: statistics.median(r[k] for r in ok)
        w.update({"first_dump_s": round(med("first_dump_ns") / 1e9, 3),
                  "incr_dump_s": round(med("incr_dump_ns") / 1e9, 3),
                  "incr_dump_ratio_first": round(med("incr_dump_ns") / med("first_dump_ns"), 3),
                  "first_pages_mib": round(med("first_pages_bytes") / 2**20, 1),
                  "incr_pages_mib": round(med("incr_pages_bytes") / 2**20, 1)})
        print(f"{w['name']:<26}{w['first_dump_s']:>9.2f}{w['incr_dump_s']:>10.2f}"
              f"{w['incr_dump_ratio_first']:>7.2f}{w['first_pages_mib']:>11.0f}"
              f"{w['incr_pages_mib']:>12.1f}")
    out.append(w)
with open(sys.argv[2], "w") as f:
    json.dump({"date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
               "target": "incr_dump_ratio_first <= 0.1", "workloads": out, "rounds": rounds},
              f, indent=1)
    f.write("\n")
print(f"results: {sys.argv[2]}")
sys.exit(0 if out and all(w["rounds_ok"] == w["rounds_run"] for w in out) else 1)
EOF
