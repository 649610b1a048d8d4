#!/usr/bin/env bash
# Dump and restore throughput of the engine on the memory workload, next to
# the machine's O_DIRECT disk write speed measured in the same run.
#   bench/engine-memory.sh [MiB (1024)] [work dir (build/bench)]
# Needs root and a build (BUILD_DIR, default build).
set -euo pipefail
mib=${1:-1024}
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$root/build}
work=${2:-$build/bench}
engine=$build/tests/engine/cedana-engine
wl=$build/tests/workloads/wl-memory

mkdir -p "$work"
dir=$(mktemp -d "$work/engine-memory.XXXXXX")
pid=
cleanup() {
	[ -n "$pid" ] && pkill -9 -s "$pid" 2>/dev/null
	rm -rf "$dir"
}
trap cleanup EXIT

now() { date +%s.%N; }
rate() { echo "$1 $2" | awk '{ printf "%.0f", $1 / $2 }'; }

# Disk ceiling: O_DIRECT writes of the same size, then gone again.
t0=$(now)
dd if=/dev/zero of="$dir/ddtest" bs=8M count=$((mib / 8)) oflag=direct status=none
sync
t1=$(now)
disk=$(rate "$mib" "$(echo "$t1 - $t0" | bc)")
t0=$(now)
dd if="$dir/ddtest" of=/dev/null bs=8M iflag=direct status=none
t1=$(now)
disk_read=$(rate "$mib" "$(echo "$t1 - $t0" | bc)")
rm -f "$dir/ddtest"

CEDANA_WL_TRIGGER=$dir/trigger CEDANA_WL_TIMEOUT=600 setsid "$wl" "$mib" </dev/null >"$dir/log" 2>&1 &
pid=$!
until grep -qsx READY "$dir/log"; do sleep 0.05; done

t0=$(now)
"$engine" dump "$pid" "$dir/img"
t1=$(now)
wait "$pid" 2>/dev/null || true
bytes=$(cat "$dir"/img/pages-*.img | wc -c)
img_mib=$(echo "$bytes" | awk '{ printf "%.0f", $1 / 1048576 }')
dump_s=$(echo "$t1 - $t0" | bc)
# process memory the image stands for: stored pages plus pages shared with
# the parent (stored once) — what the restore writes back
mem_mib=$(python3 -c '
import json, sys
m = json.load(open(sys.argv[1]))
n = sum(r[1] for t in m["tasks"] for v in t["vmas"] for r in v["runs"] if r[2] != 1)
print(round(n * 4096 / 1048576))' "$dir/img/manifest.json")

t0=$(now)
"$engine" restore "$dir/img" --stdout "$dir/log" --stderr "$dir/log" --detach --pid-file "$dir/pid"
t1=$(now)
restore_s=$(echo "$t1 - $t0" | bc)
touch "$dir/trigger"
for _ in $(seq 1 600); do grep -qE '^(PASS|FAIL)' "$dir/log" && break; sleep 0.1; done
verdict=$(grep -E '^(PASS|FAIL)' "$dir/log" || echo "no verdict")

echo "engine-memory: wl-memory $mib MiB (parent + child), page data $img_mib MiB," \
	"process memory (non-zero pages) $mem_mib MiB"
echo "  disk write (dd O_DIRECT):  $disk MiB/s"
echo "  disk read  (dd O_DIRECT):  $disk_read MiB/s"
echo "  dump:    ${dump_s}s  $(rate "$img_mib" "$dump_s") MiB/s of page data written," \
	"$(rate "$mem_mib" "$dump_s") MiB/s of process memory"
echo "  restore: ${restore_s}s  $(rate "$img_mib" "$restore_s") MiB/s of page data read," \
	"$(rate "$mem_mib" "$restore_s") MiB/s of process memory"
echo "  workload after restore: $verdict"
[ "$verdict" = PASS ]
