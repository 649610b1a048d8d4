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

# start_wl PROGRAM [ARGS...]: runs it in a session of its own, output to $LOG.
start_wl() {
	CEDANA_WL_TRIGGER="$TRIGGER" setsid "$@" </dev/null >"$LOG" 2>&1 &
	WL_PID=$!
	wait_ready
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

# kill_session SID: kills every task of the session and waits until their
# pids are free (orphans are reaped by init, which can take a moment).
kill_session() {
	pkill -9 -s "$1"
	for _ in $(seq 1 1000); do
		pgrep -s "$1" >/dev/null || return 0
		sleep 0.01
	done
	return 1
}

# dump_restore [DUMP-FLAGS...]: dumps $WL_PID, restores it appending to $LOG,
# triggers it and leaves the restored root's exit code in $status.
dump_restore() {
	run "$ENGINE" dump "$WL_PID" "$IMG" "$@"
	assert_success
	if [[ " $* " == *" --leave-running "* ]]; then
		kill -0 "$WL_PID"
		kill_session "$WL_PID"
	fi
	wait "$WL_PID" 2>/dev/null || true
	WL_PID=
	( sleep 0.5; touch "$TRIGGER" ) &
	run timeout 60 "$ENGINE" restore "$IMG" --stdout "$LOG" --stderr "$LOG" \
		--pid-file "$T/restored.pid"
}
