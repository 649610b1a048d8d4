#!/usr/bin/env bash
# End-to-end check of GPU checkpoint/restore (the gpu plugin, docs/gpu.md)
# on a machine with an NVIDIA GPU, from a tree where cedana is built:
#
#   CEDANA=build/src/cedana scripts/gpu-check.sh
#
# It builds the workloads of tests/gpu with nvcc, starts a private daemon,
# and checks, each with a timeout:
#   * run process (CUDA) -> dump job -> restore job: the count goes on, no FAIL
#   * dump job --leave-running: the job runs on
#   * dump process / restore process of a process the daemon did not start
#   * the PyTorch loop: dump job -> restore job, the steps and the loss go on
# then prints figures: the plugin's own checkpoint and restore time (its
# hooks driven by tests/gpu/plugin-probe.c on the live job), dump and restore time for 2, 8 and 32 GiB of device
# state next to the D2H/H2D copy bandwidth measured in the same run, and the
# image size with no compression and with lz4. It fits in 8 minutes on an
# H200; the 32 GiB row is skipped, saying so, when time, disk or memory is
# short. Exit 0 when every check passed, or with "SKIP: reason" where there
# is no GPU; non-zero on any failure, after the daemon's log.
#
# Environment (nothing is taken from installed paths):
#   CEDANA                  the cedana binary (default build/src/cedana)
#   CEDANA_PLUGINS_DIR      the plugin directory (default: next to the binary
#                           in a build tree, build/src/plugins/gpu)
#   CEDANA_LD_LIBRARY_PATH  library path for cedana only (default: the
#                           caller's LD_LIBRARY_PATH); the workloads, nvcc and
#                           python3 run without it, so libraries carried for a
#                           binary built elsewhere do not shadow the machine's
#   GPU_CHECK_DIR           work directory (default a new one under /tmp);
#                           images go there, up to 32 GiB at a time
#   GPU_CHECK_SIZES         device state sizes in GiB (default "2 8 32")
#   GPU_CHECK_BUDGET        seconds the whole run may take (default 450)
#   NVCC, PYTHON            default nvcc (or /usr/local/cuda/bin/nvcc), python3
#   GPU_PLUGIN_PROBE        tests/gpu/plugin-probe built here (default: the
#                           build tree's, else built with cc on the spot;
#                           "none": no plugin figures)
set -u

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CEDANA=${CEDANA:-$ROOT/build/src/cedana}
CLIB=${CEDANA_LD_LIBRARY_PATH:-${LD_LIBRARY_PATH:-}}
SIZES=${GPU_CHECK_SIZES:-2 8 32}
BUDGET=${GPU_CHECK_BUDGET:-450}
PYTHON=${PYTHON:-python3}
START=$(date +%s.%N)
WORK=
DAEMON_PID=
JOBS=()
EXTRA_PIDS=()
RESULTS=()
FIGURES=()
NOTES=()
BW_D2H="?"
BW_H2D="?"

# The machine's own tools run without the carried libraries.
unset LD_LIBRARY_PATH

elapsed() {
	awk -v s="$START" -v n="$(date +%s.%N)" 'BEGIN { printf "%.1f", n - s }'
}

say() {
	echo "[$(elapsed)s] $*"
}

c() { # cedana with its libraries and a timeout: c SECONDS ARGS...
	local t=$1
	shift
	timeout --kill-after=10 "$t" env LD_LIBRARY_PATH="$CLIB" "$CEDANA" "$@"
}

show_logs() {
	local f
	echo "----- daemon log (last 80 lines): $WORK/daemon.log"
	tail -n 80 "$WORK/daemon.log" 2>/dev/null
	for f in "$WORK"/*.out; do
		[ -f "$f" ] || continue
		echo "----- $f (last 15 lines)"
		tail -n 15 "$f"
	done
}

summary() {
	local r
	echo
	echo "===== gpu-check summary ====="
	echo "machine: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | head -n1), kernel $(uname -r)"
	echo "copy bandwidth (pinned cudaMemcpy, this run): D2H $BW_D2H GiB/s, H2D $BW_H2D GiB/s"
	echo "plugin ckpt/rest: lock+checkpoint and restore+unlock by the plugin alone; dump/restore: the whole cedana command"
	printf '%-8s %12s %12s %9s %11s %13s %13s %13s\n' "device" "plugin ckpt" "plugin rest" "dump (s)" "restore (s)" "image none" "image lz4" "lz4 dump (s)"
	for r in "${FIGURES[@]+"${FIGURES[@]}"}"; do
		echo "$r"
	done
	for r in "${RESULTS[@]+"${RESULTS[@]}"}"; do
		echo "check: $r"
	done
	for r in "${NOTES[@]+"${NOTES[@]}"}"; do
		echo "note: $r"
	done
	echo "total time: $(elapsed) s"
}

cleanup() {
	local j p
	for j in "${JOBS[@]+"${JOBS[@]}"}"; do
		c 20 job kill "$j" >/dev/null 2>&1
	done
	for p in "${EXTRA_PIDS[@]+"${EXTRA_PIDS[@]}"}"; do
		kill -KILL "$p" 2>/dev/null
	done
	if [ -n "$DAEMON_PID" ]; then
		kill -TERM "$DAEMON_PID" 2>/dev/null
		wait "$DAEMON_PID" 2>/dev/null
	fi
	[ -n "$WORK" ] && [ -z "${GPU_CHECK_DIR:-}" ] && rm -rf "$WORK"
}

die() {
	echo "FAIL: $*"
	RESULTS+=("FAIL: $*")
	show_logs
	summary
	echo "RESULT: FAIL"
	cleanup
	exit 1
}

skip() {
	echo "SKIP: $*"
	exit 0
}

# --- preflight ----------------------------------------------------------

if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L >/dev/null 2>&1; then
	skip "no NVIDIA GPU here (nvidia-smi missing or finds no device)"
fi
# GPU_CHECK_SELFTEST=1: the script's own flow with stand-in workloads
# (NVCC, PYTHON and nvidia-smi faked by the caller), on a machine with no GPU.
if [ "${GPU_CHECK_SELFTEST:-0}" != 1 ]; then
	ls /dev/nvidia[0-9]* >/dev/null 2>&1 || skip "no /dev/nvidia* device"
fi
NVCC=${NVCC:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}
[ -x "$NVCC" ] || { echo "FAIL: a GPU but no nvcc (set NVCC)"; exit 1; }
[ -x "$CEDANA" ] || { echo "FAIL: CEDANA=$CEDANA is not an executable"; exit 1; }
if [ -z "${CEDANA_PLUGINS_DIR:-}" ] && [ -f "$(dirname "$CEDANA")/plugins/gpu/cedana-gpu.so" ]; then
	CEDANA_PLUGINS_DIR=$(cd "$(dirname "$CEDANA")/plugins/gpu" && pwd)
fi
[ -n "${CEDANA_PLUGINS_DIR:-}" ] && export CEDANA_PLUGINS_DIR

if [ -n "${GPU_CHECK_DIR:-}" ]; then
	WORK=$GPU_CHECK_DIR
	mkdir -p "$WORK" || exit 1
else
	WORK=$(mktemp -d /tmp/gpu-check.XXXXXX) || exit 1
fi
trap 'echo "interrupted"; cleanup; exit 130' INT TERM
IMG=$WORK/images BIN=$WORK/bin
mkdir -p "$IMG" "$BIN" "$WORK/logs" "$WORK/config"
export CEDANA_ADDRESS=$WORK/cedana.sock CEDANA_DB_PATH=$WORK/cedana.db
export CEDANA_JOB_LOG_DIR=$WORK/logs CEDANA_CONFIG_DIR=$WORK/config

say "cedana: $CEDANA ($(c 10 --version 2>&1 | head -n1)), plugins: ${CEDANA_PLUGINS_DIR:-default}"
nvidia-smi --query-gpu=name,driver_version,memory.total,memory.used --format=csv
missing=$(env LD_LIBRARY_PATH="$CLIB" ldd "$CEDANA" 2>&1 | grep "not found")
[ -z "$missing" ] || die "cedana's libraries are missing (set CEDANA_LD_LIBRARY_PATH): $missing"

# --- build --------------------------------------------------------------

say "building the workloads with $NVCC"
for w in wl-cuda bandwidth; do
	timeout 240 "$NVCC" -O2 -o "$BIN/$w" "$ROOT/tests/gpu/$w.cu" >"$WORK/nvcc-$w.log" 2>&1 ||
		die "nvcc $w.cu: $(tail -n 5 "$WORK/nvcc-$w.log")"
done
PLUGIN_SO=${CEDANA_PLUGINS_DIR:+$CEDANA_PLUGINS_DIR/cedana-gpu.so}
PROBE=${GPU_PLUGIN_PROBE:-$(dirname "$CEDANA")/../tests/gpu/gpu-plugin-probe}
if [ ! -x "$PROBE" ] && command -v cc >/dev/null 2>&1; then
	PROBE=$BIN/plugin-probe
	timeout 120 cc -O2 -I"$ROOT/src" -o "$PROBE" "$ROOT/tests/gpu/plugin-probe.c" -ldl \
		>"$WORK/cc-probe.log" 2>&1 || PROBE=
fi
[ "${GPU_PLUGIN_PROBE:-}" = none ] && PROBE=
if [ -z "$PROBE" ] || [ ! -x "$PROBE" ] || [ ! -f "$PLUGIN_SO" ]; then
	NOTES+=("no plugin probe figures (probe '${PROBE}', plugin '${PLUGIN_SO}')")
	PROBE=
fi
HAVE_TORCH=1
timeout 120 "$PYTHON" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' \
	>"$WORK/torch-probe.log" 2>&1 || HAVE_TORCH=0

say "copy bandwidth"
bw=$(timeout 120 "$BIN/bandwidth" 2048) || die "bandwidth: $bw"
echo "$bw"
BW_D2H=$(echo "$bw" | awk '/^D2H/ { print $2 }')
BW_H2D=$(echo "$bw" | awk '/^H2D/ { print $2 }')

# --- daemon -------------------------------------------------------------

say "starting the daemon"
env LD_LIBRARY_PATH="$CLIB" "$CEDANA" daemon start >"$WORK/daemon.log" 2>&1 </dev/null &
DAEMON_PID=$!
for _ in $(seq 100); do
	[ -S "$CEDANA_ADDRESS" ] && break
	kill -0 "$DAEMON_PID" 2>/dev/null || break
	sleep 0.1
done
[ -S "$CEDANA_ADDRESS" ] || die "the daemon did not start"
c 30 check 2>&1 | sed 's/^/  check: /'
c 30 plugin list 2>&1 | sed 's/^/  plugin list: /'

# --- helpers over the workloads' output ---------------------------------

# wait_for FILE REGEX SECONDS: until a line matches; a FAIL line fails.
wait_for() {
	local f=$1 re=$2 t=$3 i
	for ((i = 0; i < t * 10; i++)); do
		grep -q "FAIL" "$f" 2>/dev/null && die "$f: $(grep -m1 FAIL "$f")"
		grep -qE "$re" "$f" 2>/dev/null && return 0
		sleep 0.1
	done
	die "$f: no line matching '$re' within $t s"
}

last_count() { # the CUDA workload's last count in FILE, 0 if none
	local n
	n=$(grep -oE '^count [0-9]+' "$1" 2>/dev/null | tail -n1 | awk '{ print $2 }')
	echo "${n:-0}"
}

# counts_on FILE SECONDS: the count goes past where it is now, once started.
counts_on() {
	local f=$1 t=$2 from i
	from=$(last_count "$f")
	for ((i = 0; i < t * 10; i++)); do
		grep -q "FAIL" "$f" && die "$f: $(grep -m1 FAIL "$f")"
		[ "$(last_count "$f")" -ge $((from + 3)) ] && break
		sleep 0.1
	done
	[ "$(last_count "$f")" -ge $((from + 3)) ] || die "$f: the count stays at $(last_count "$f")"
	# One READY: the restored process went on, nothing started it again.
	[ "$(grep -c '^READY' "$f")" -eq 1 ] || die "$f: the workload started again"
}

# The second field of "Dumped ... to PATH".
image_path() {
	echo "$1" | grep -E '^Dumped ' | tail -n1 | awk '{ print $NF }'
}

size_of() {
	du -sb "$1" 2>/dev/null | awk '{ printf "%.2f GiB", $1 / 1073741824 }'
}

now() { date +%s.%N; }

indent() {
	local line
	while IFS= read -r line; do
		echo "  $line"
	done <<<"$1"
}

# A live process, not a zombie waiting for its parent.
alive() {
	[ -r "/proc/$1/stat" ] && ! sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | grep -q '^Z'
}
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

# run_cuda JID MIB: a managed CUDA workload, READY and counting.
run_cuda() {
	local jid=$1 mib=$2 out
	out=$(c 60 run process --jid "$jid" --out "$WORK/$jid.out" -- "$BIN/wl-cuda" "$mib" 2>&1) ||
		die "run process $jid: $out"
	JOBS+=("$jid")
	wait_for "$WORK/$jid.out" '^READY' 180
	wait_for "$WORK/$jid.out" '^count 3 ok' 60
}

# dump_job JID TIMEOUT ARGS...: sets DUMP_S and DUMP_PATH.
dump_job() {
	local jid=$1 t=$2 out t0
	shift 2
	t0=$(now)
	out=$(c "$t" dump job "$jid" --dir "$IMG" "$@" 2>&1) || die "dump job $jid $*: $out"
	DUMP_S=$(secs "$t0" "$(now)")
	DUMP_PATH=$(image_path "$out")
	[ -e "$DUMP_PATH" ] || die "dump job $jid: no image in: $out"
	indent "$out"
}

# restore_job JID TIMEOUT: sets RESTORE_S.
restore_job() {
	local jid=$1 t=$2 out t0
	t0=$(now)
	out=$(c "$t" restore job "$jid" 2>&1) || die "restore job $jid: $out"
	RESTORE_S=$(secs "$t0" "$(now)")
	indent "$out"
}

# probe JID TIMEOUT: the plugin's hooks alone on the live job (lock +
# checkpoint, then restore + unlock); sets PROBE_PAUSE and PROBE_RESUME.
probe() {
	local jid=$1 t=$2 pid out
	PROBE_PAUSE="-" PROBE_RESUME="-"
	[ -n "$PROBE" ] || return 0
	pid=$(grep -oE 'pid [0-9]+' "$WORK/$jid.out" | head -n1 | awk '{ print $2 }')
	mkdir -p "$IMG/probe-$jid"
	out=$(timeout --kill-after=10 "$t" env LD_LIBRARY_PATH="$CLIB" "$PROBE" "$PLUGIN_SO" "$pid" \
		"$IMG/probe-$jid" 2>&1) || die "plugin probe on $jid (pid $pid): $out"
	indent "$out"
	PROBE_PAUSE=$(echo "$out" | awk '/^pause/ { print $2 }')
	PROBE_RESUME=$(echo "$out" | awk '/^resume/ { print $2 }')
	counts_on "$WORK/$jid.out" 60
	rm -rf "$IMG/probe-$jid"
}

# figure GIB LZ4(0/1): dump and restore times of a job with GIB GiB on the
# device, the image sizes; the job must count on after each.
figure() {
	local gib=$1 lz4=$2 jid="cu$1" t=$((60 + $1 * 8)) none_size lz4_size="-" lz4_s="-"
	say "$gib GiB: run process, dump job, restore job"
	run_cuda "$jid" $((gib * 1024))
	probe "$jid" "$t"
	dump_job "$jid" "$t" --name "$jid-none" --compression none
	local dump_s=$DUMP_S
	none_size=$(size_of "$DUMP_PATH")
	alive "$(grep -oE 'pid [0-9]+' "$WORK/$jid.out" | head -n1 | awk '{ print $2 }')" &&
		die "dump job $jid: the job still runs after a dump without --leave-running"
	restore_job "$jid" "$t"
	local restore_s=$RESTORE_S
	counts_on "$WORK/$jid.out" 60
	rm -rf "$DUMP_PATH"
	if [ "$lz4" = 1 ]; then
		say "$gib GiB: dump job --leave-running --compression lz4"
		dump_job "$jid" $((t * 2)) --name "$jid-lz4" --compression lz4 --leave-running
		lz4_s=$DUMP_S
		lz4_size=$(size_of "$DUMP_PATH")
		counts_on "$WORK/$jid.out" 60
		rm -rf "$DUMP_PATH"
	fi
	c 20 job kill "$jid" >/dev/null 2>&1
	FIGURES+=("$(printf '%-8s %12s %12s %9s %11s %13s %13s %13s' "$gib GiB" "$PROBE_PAUSE" "$PROBE_RESUME" "$dump_s" "$restore_s" "$none_size" "$lz4_size" "$lz4_s")")
	RESULTS+=("ok: $gib GiB CUDA job: dump job, restore job, counting on with no FAIL$([ "$lz4" = 1 ] && echo "; dump --leave-running lz4, running on")")
}

# --- checks -------------------------------------------------------------

# A process the daemon did not start: dump process kills it, restore
# process brings it back as a job.
check_unmanaged() {
	local out upid t0
	say "unmanaged CUDA process: dump process, restore process"
	# Only stdio: an fd inherited from this shell or its caller (a pipe to
	# a process outside the tree) would make the dump refuse it. Our child,
	# disowned: the shell reaps it when the dump kills it (its pid must be
	# free for the restore) and says nothing.
	(
		for fd in /proc/"$BASHPID"/fd/*; do
			n=${fd##*/}
			[ "$n" -gt 2 ] && eval "exec $n>&-" 2>/dev/null
		done
		exec setsid "$BIN/wl-cuda" 512
	) >"$WORK/um.out" 2>&1 </dev/null &
	EXTRA_PIDS+=($!)
	disown $!
	wait_for "$WORK/um.out" '^count 3 ok' 120
	upid=$(grep -oE 'pid [0-9]+' "$WORK/um.out" | head -n1 | awk '{ print $2 }')
	EXTRA_PIDS+=("$upid")
	out=$(c 120 dump process "$upid" --dir "$IMG" --name um 2>&1) || die "dump process $upid: $out"
	indent "$out"
	sleep 0.5
	alive "$upid" && die "dump process $upid: the process still runs"
	t0=$(now)
	out=$(c 120 restore process --path "$(image_path "$out")" --jid um 2>&1) ||
		die "restore process: $out"
	indent "$out"
	JOBS+=(um)
	counts_on "$WORK/um.out" 60
	c 20 job kill um >/dev/null 2>&1
	rm -rf "$IMG/um"*
	RESULTS+=("ok: unmanaged CUDA process: dump process, restore process ($(secs "$t0" "$(now)") s), counting on")
}

last_step() {
	local n
	n=$(grep -oE '^step [0-9]+' "$1" | tail -n1 | awk '{ print $2 }')
	echo "${n:-0}"
}

check_torch() {
	local f=$WORK/pt.out out before first_loss loss_before loss_after after i
	if [ "$HAVE_TORCH" = 0 ]; then
		die "$PYTHON has no torch with CUDA: $(tail -n 3 "$WORK/torch-probe.log")"
	fi
	say "PyTorch loop (1 GiB tensor): dump job, restore job"
	out=$(c 60 run process --jid pt --out "$f" -- "$PYTHON" -u "$ROOT/tests/gpu/wl-torch.py" 1024 2>&1) ||
		die "run process pt: $out"
	JOBS+=(pt)
	wait_for "$f" '^step 200 ' 180
	dump_job pt 180 --name pt
	before=$(last_step "$f")
	first_loss=$(grep -m1 -oE 'loss [0-9.]+' "$f" | awk '{ print $2 }')
	loss_before=$(grep -E "^step $before " "$f" | awk '{ print $4 }')
	restore_job pt 180
	for ((i = 0; i < 600; i++)); do
		grep -qE 'FAIL|BAD|Traceback' "$f" && die "$f: $(grep -m1 -E 'FAIL|BAD|Traceback' "$f")"
		[ "$(last_step "$f")" -ge $((before + 100)) ] && break
		sleep 0.1
	done
	after=$(last_step "$f")
	[ "$after" -ge $((before + 100)) ] || die "$f: the steps stay at $after after the restore"
	[ "$(grep -c '^READY' "$f")" -eq 1 ] || die "$f: the training started again"
	# The step after the restore is the next one, and the loss goes on from
	# where it was, not from the first loss of a fresh model.
	grep -qE "^step $((before + 50)) " "$f" || die "$f: no step $((before + 50)) after the restore"
	loss_after=$(grep -E "^step $((before + 50)) " "$f" | awk '{ print $4 }')
	awk -v a="$loss_after" -v b="$loss_before" -v f="$first_loss" \
		'BEGIN { exit !(a <= b * 1.5 + 1e-6 && (f == b || a < f)) }' ||
		die "$f: loss $loss_after after the restore, $loss_before before, $first_loss at the start"
	c 20 job kill pt >/dev/null 2>&1
	rm -rf "$DUMP_PATH"
	RESULTS+=("ok: PyTorch job: step $before (loss $loss_before) -> restore -> step $((before + 50)) (loss $loss_after), big tensor checksum ok (dump $DUMP_S s, restore $RESTORE_S s)")
}

# --- run ----------------------------------------------------------------

first=1
for gib in $SIZES; do
	if [ "$first" = 1 ]; then
		figure "$gib" 1
		first=0
		check_unmanaged
		check_torch
		continue
	fi
	spent=$(elapsed)
	free_disk=$(df -B1G --output=avail "$IMG" | tail -n1 | tr -d ' ')
	free_mem=$(awk '/MemAvailable/ { printf "%d", $2 / 1048576 }' /proc/meminfo)
	# A dump and a restore move the state about four times at ~1.5 GiB/s.
	need=$((gib * 4 + 30))
	if awk -v s="$spent" -v n="$need" -v b="$BUDGET" 'BEGIN { exit !(s + n > b) }'; then
		NOTES+=("$gib GiB skipped: $spent s spent, about $need s more needed, budget $BUDGET s")
		continue
	fi
	if [ "$free_disk" -lt $((gib + 4)) ] || [ "$free_mem" -lt $((gib * 2 + 8)) ]; then
		NOTES+=("$gib GiB skipped: ${free_disk} GiB disk free, ${free_mem} GiB memory available")
		continue
	fi
	# lz4 of a large image takes as long again: only where time is ample.
	if awk -v s="$spent" -v n="$need" -v b="$BUDGET" 'BEGIN { exit !(s + 2 * n < b) }'; then
		figure "$gib" 1
	else
		NOTES+=("$gib GiB: no lz4 dump (time)")
		figure "$gib" 0
	fi
done

summary
echo "RESULT: PASS"
cleanup
exit 0
