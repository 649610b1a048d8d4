#!/usr/bin/env bats
# Credentials kept whole across a checkpoint: every supplementary group, up
# to the kernel's limit (NGROUPS_MAX, 65536), not the first 64.
load helpers

setup() { engine_setup; }
teardown() { engine_teardown; }

# wait_sleeping PID: until PID is `sleep` and nobody traces it.
wait_sleeping() {
	for _ in $(seq 1 1000); do
		[ "$(cat "/proc/$1/comm" 2>/dev/null)" = sleep ] &&
			grep -q '^TracerPid:[[:space:]]*0$' "/proc/$1/status" && return 0
		sleep 0.01
	done
	return 1
}

# groups_roundtrip N: a sleep with N supplementary groups, dumped and
# restored, has the same Groups line in /proc/PID/status. (python3 sets
# them: setpriv takes them as one argument, at most 128 KiB.)
groups_roundtrip() {
	local n=$1 want pid
	no_inherited_fds setsid python3 -c 'import os, sys
os.setgroups(range(2000, 2000 + int(sys.argv[1])))
os.execvp("sleep", ["sleep", "1000"])' "$n" </dev/null >"$LOG" 2>&1 &
	WL_PID=$!
	wait_sleeping "$WL_PID"
	want=$(grep '^Groups:' "/proc/$WL_PID/status")
	[ "$(echo "$want" | wc -w)" -eq $((n + 1)) ]
	run "$ENGINE" dump "$WL_PID" "$IMG"
	assert_success
	wait "$WL_PID" 2>/dev/null || true
	pid=$WL_PID
	WL_PID=
	"$ENGINE" restore "$IMG" --stdout "$LOG" --stderr "$LOG" --pid-file "$T/restored.pid" \
		>"$T/restore.out" 2>&1 &
	wait_sleeping "$pid" || { cat "$T/restore.out" >&2; return 1; }
	run grep '^Groups:' "/proc/$pid/status"
	assert_output "$want"
}

@test "creds: 100 supplementary groups are restored, not the first 64" {
	groups_roundtrip 100
}

@test "creds: 65536 supplementary groups, NGROUPS_MAX (more than the trampoline's data area holds)" {
	groups_roundtrip 65536
}
