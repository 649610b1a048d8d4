#!/usr/bin/env bats
# The engine's own counter program: dump, kill, restore, and the output goes
# on with the next number.
load helpers

setup() { engine_setup; }
teardown() { engine_teardown; }

numbers_continue() {
	grep -E '^[0-9]+$' "$LOG" | awk 'NR != $1 { print "gap or repeat at " NR ": " $1; exit 1 }'
}

@test "counter: dump → kill → restore → continues" {
	start_wl "$BUILD_DIR/tests/engine/engine-counter"
	dump_restore
	assert_success
	run numbers_continue
	assert_success
	run tail -1 "$LOG"
	assert_output "PASS"
}

@test "counter: dump --leave-running keeps it running, then restores" {
	start_wl "$BUILD_DIR/tests/engine/engine-counter"
	"$ENGINE" dump "$WL_PID" "$IMG" --leave-running
	before=$(grep -cE '^[0-9]+$' "$LOG")
	sleep 0.2
	after=$(grep -cE '^[0-9]+$' "$LOG")
	[ "$after" -gt "$before" ]
	kill -9 "$WL_PID"
	wait "$WL_PID" 2>/dev/null || true
	WL_PID=
	( sleep 0.3; touch "$TRIGGER" ) &
	run timeout 60 "$ENGINE" restore "$IMG" --stdout "$LOG" --stderr "$LOG"
	assert_success
	run tail -1 "$LOG"
	assert_output "PASS"
}

@test "counter: maps, cmdline, exe and environment are the same after restore" {
	CEDANA_WL_TRIGGER="$TRIGGER" no_inherited_fds setsid "$BUILD_DIR/tests/engine/engine-counter" one two \
		</dev/null >"$LOG" 2>&1 &
	WL_PID=$!
	wait_ready
	pid=$WL_PID
	for f in maps cmdline environ; do cat "/proc/$pid/$f" >"$T/$f.before"; done
	exe=$(readlink "/proc/$pid/exe")
	"$ENGINE" dump "$pid" "$IMG"
	wait "$WL_PID" 2>/dev/null || true
	WL_PID=
	"$ENGINE" restore "$IMG" --stdout "$LOG" --stderr "$LOG" --detach --pid-file "$T/restored.pid"
	for f in maps cmdline environ; do
		cat "/proc/$pid/$f" >"$T/$f.after"
		run diff "$T/$f.before" "$T/$f.after"
		assert_success
	done
	assert_equal "$(readlink "/proc/$pid/exe")" "$exe"
	touch "$TRIGGER"
	for _ in $(seq 1 300); do grep -q '^PASS$' "$LOG" && break; sleep 0.01; done
	run tail -1 "$LOG"
	assert_output "PASS"
}
