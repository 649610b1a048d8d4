# Shared helpers for the engine's bats tests: start a program the way the
# workload protocol says, wait for READY, dump, restore, trigger.
load '/usr/lib/bats/bats-support/load'
load '/usr/lib/bats/bats-assert/load'
load '/usr/lib/bats/bats-file/load'

: "${BUILD_DIR:=$BATS_TEST_DIRNAME/../../build}"
ENGINE="$BUILD_DIR/tests/engine/cedana-engine"
WL_DIR="$BUILD_DIR/tests/workloads"

engine_setup() {
	T=$(mktemp -d "${BATS_TMPDIR:-/tmp}/engine.XXXXXX")
	LOG="$T/log"
	TRIGGER="$T/trigger"
	IMG="$T/img"
	WL_PID=
}

engine_teardown() {
	[ -n "${WL_PID:-}" ] && kill -9 "$WL_PID" 2>/dev/null
	[ -f "$T/restored.pid" ] && kill -9 "$(cat "$T/restored.pid")" 2>/dev/null
	rm -rf "$T"
}

# no_inherited_fds CMD...: runs CMD with every fd above 2 closed. What a
# test starts must not inherit the runner's pipes (bats's fd 3, a caller's
# pipe to tee): a pipe held by a process outside the dumped tree is refused.
no_inherited_fds() {
	local fd
	for fd in $(ls "/proc/$BASHPID/fd"); do
		[ "$fd" -gt 2 ] && eval "exec $fd>&-"
	done
	exec "$@"
}

# start_wl PROGRAM [ARGS...]: runs it in a session of its own, output to $LOG.
start_wl() {
	CEDANA_WL_TRIGGER="$TRIGGER" no_inherited_fds setsid "$@" </dev/null >"$LOG" 2>&1 &
	WL_PID=$!
	wait_ready
}

# bench_mem_start CONTENTS MiB: bench-mem in a session of its own (output
# to $LOG), its memory filled. Once restored it checks all of it at once
# and writes "verified ok" or "verified bad" to $T/resumed (the first gap
# after the file was emptied or removed only). Skips the test
# where bench-mem is not built.
bench_mem_start() {
	[ -x "$BUILD_DIR/bench/bench-mem" ] || skip "no bench-mem"
	CEDANA_WL_TRIGGER="$TRIGGER" no_inherited_fds setsid env BENCH_MEM_TIMEOUT=300 \
		"$BUILD_DIR/bench/bench-mem" "$2" "$1" single "$T/resumed" </dev/null >"$LOG" 2>&1 &
	WL_PID=$!
	for _ in $(seq 1 6000); do
		grep -qx READY "$LOG" && return 0
		sleep 0.05
	done
	echo "no READY in $LOG" >&2
	return 1
}

# bench_mem_image CONTENTS MiB [DUMP FLAGS...]: bench-mem dumped, gone; its
# report file emptied, for the restored one's (bench-mem writes only the
# first gap after that: a stall of the original before its dump is not it).
bench_mem_image() {
	bench_mem_start "$1" "$2"
	shift 2
	run "$ENGINE" dump "$WL_PID" "$IMG" "$@"
	assert_success
	wait "$WL_PID" 2>/dev/null || true
	WL_PID=
	: >"$T/resumed"
}

wait_ready() {
	for _ in $(seq 1 1000); do
		grep -q '^READY$' "$LOG" 2>/dev/null && return 0
		sleep 0.01
	done
	echo "no READY in $LOG" >&2
	cat "$LOG" >&2
	return 1
}

# dump_refused REGEX [DUMP-FLAGS...]: the dump of $WL_PID fails naming the
# state (REGEX, also in $output after) before anything is killed: no image,
# and the task runs on, neither stopped nor traced.
dump_refused() {
	local regex=$1
	shift
	run "$ENGINE" dump "$WL_PID" "$IMG" "$@"
	assert_failure 1
	assert_output --regexp "$regex"
	assert_not_exist "$IMG"
	kill -0 "$WL_PID"
	[[ "$(awk '{print $3}' "/proc/$WL_PID/stat")" != [tT] ]]
	grep -q '^TracerPid:[[:space:]]*0$' "/proc/$WL_PID/status"
}

# descendants PID: PID and every task below it, parents first.
descendants() {
	local p
	echo "$1"
	for p in $(cat /proc/"$1"/task/*/children 2>/dev/null); do
		descendants "$p"
	done
}

# kill_tree PID: kills PID and all its descendants and waits until their
# pids are free (orphans are reaped by init, which can take a moment).
kill_tree() {
	local pids p
	pids=$(descendants "$1")
	kill -9 $pids 2>/dev/null
	for p in $pids; do
		for _ in $(seq 1 1000); do
			[ -e "/proc/$p" ] || break
			# the root stays a zombie until this shell reaps it
			[ "$p" = "$1" ] && [ "$(awk '{print $3}' "/proc/$p/stat" 2>/dev/null)" = Z ] && break
			sleep 0.01
		done
	done
}

# kill_session SID: the same for a whole session.
kill_session() {
	pkill -9 -s "$1"
	for _ in $(seq 1 1000); do
		pgrep -s "$1" >/dev/null || return 0
		sleep 0.01
	done
	return 1
}

# trigger_when_restored: in the background, touches $TRIGGER once the
# restore has written $T/restored.pid (it does so when the restored tree
# runs), so that the workload checks its state right after the restore, as
# a fixed half second used to make it do at best, and no later. Gives up
# (no trigger) when $T is gone, the teardown of a failed restore; holds none
# of bats's fds, so a test does not wait for it.
trigger_when_restored() {
	(
		for _ in $(seq 1 6000); do
			[ -s "$T/restored.pid" ] && break
			[ -d "$T" ] || exit 0
			sleep 0.01
		done
		touch "$TRIGGER"
	) 3>&- &
}

# dump_restore [DUMP-FLAGS...]: dumps $WL_PID, restores it appending to $LOG,
# triggers it and leaves the restored root's exit code in $status.
dump_restore() {
	run "$ENGINE" dump "$WL_PID" "$IMG" "$@"
	assert_success
	if [[ " $* " == *" --leave-running "* ]]; then
		kill -0 "$WL_PID"
		kill_tree "$WL_PID"
	fi
	wait "$WL_PID" 2>/dev/null || true
	WL_PID=
	trigger_when_restored
	run timeout 60 "$ENGINE" restore "$IMG" --stdout "$LOG" --stderr "$LOG" \
		--pid-file "$T/restored.pid" ${RESTORE_FLAGS:-}
}

# Waits until pid is in a group stop (state T): kill -STOP returns before
# the task has stopped, and a dump that starts first sees it stop mid-way.
wait_stopped() {
	for _ in $(seq 1 200); do
		[ "$(awk '{print $3}' /proc/"$1"/stat)" = T ] && return 0
		sleep 0.01
	done
	return 1
}
