#!/usr/bin/env bats
# External stdio: the root's fds 0, 1 and 2 take the caller's replacements
# 0, 1 and 2, even when they were one open file at dump time.
load helpers

setup() { engine_setup; }
teardown() { engine_teardown; }

@test "stdio: one open file on fds 0-2 restores onto three different files" {
	CEDANA_WL_TRIGGER="$TRIGGER" setsid python3 -c '
import os, sys, time
trig = os.environ["CEDANA_WL_TRIGGER"]
print("READY", flush=True)
while not os.path.exists(trig):
    time.sleep(0.01)
print("to-stdout", flush=True)
print("to-stderr", file=sys.stderr, flush=True)' <>"$LOG" >&0 2>&0 &
	WL_PID=$!
	wait_ready
	# one open file description behind all three
	[ "$(stat -L -c %i "/proc/$WL_PID/fd/0")" = "$(stat -L -c %i "/proc/$WL_PID/fd/2")" ]
	run "$ENGINE" dump "$WL_PID" "$IMG"
	assert_success
	wait "$WL_PID" 2>/dev/null || true
	WL_PID=
	: >"$T/in"
	touch "$TRIGGER"
	run timeout 60 "$ENGINE" restore "$IMG" --stdin "$T/in" --stdout "$T/out" \
		--stderr "$T/err" --pid-file "$T/restored.pid"
	assert_success
	assert_equal "$(cat "$T/out")" "to-stdout"
	assert_equal "$(cat "$T/err")" "to-stderr"
	assert_equal "$(stat -c %s "$T/in")" "0"
}
