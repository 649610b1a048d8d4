#!/usr/bin/env bats
# A task with a pty open (not its stdio): the pty is reopened by path on
# restore while its master lives on outside the tree.
load helpers

setup() { engine_setup; }
teardown() {
	[ -n "${HOLDER:-}" ] && kill -9 "$HOLDER" 2>/dev/null
	engine_teardown
}

@test "tty: a pty slave fd is a tty again after restore" {
	python3 -c '
import os, pty, time
m, s = pty.openpty()
print(os.ttyname(s), flush=True)
time.sleep(120)' >"$T/pts" 2>&1 &
	HOLDER=$!
	for _ in $(seq 1 300); do [ -s "$T/pts" ] && break; sleep 0.01; done
	pts=$(cat "$T/pts")
	CEDANA_WL_TRIGGER="$TRIGGER" no_inherited_fds setsid python3 -c '
import os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_NOCTTY)
os.dup2(fd, 9)
trig = os.environ["CEDANA_WL_TRIGGER"]
print("READY", flush=True)
while not os.path.exists(trig):
    time.sleep(0.01)
ok = os.isatty(9) and os.ttyname(9) == sys.argv[1]
print("PASS" if ok else "FAIL: fd 9 is not " + sys.argv[1], flush=True)' "$pts" </dev/null >"$LOG" 2>&1 &
	WL_PID=$!
	wait_ready
	dump_restore
	assert_success
	run grep -E '^(PASS|FAIL)' "$LOG"
	assert_output "PASS"
}
