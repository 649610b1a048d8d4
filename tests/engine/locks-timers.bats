#!/usr/bin/env bats
# POSIX timers and file locks (the round trips are in workloads.bats): what
# the dump refuses by name, leaving the task running, and a lock another
# process took meanwhile, which fails the restore by name leaving nothing.
load helpers

setup() {
	engine_setup
	HOLDER=
	LT="$BUILD_DIR/tests/engine/engine-locks-timers"
}

teardown() {
	[ -n "$HOLDER" ] && kill -9 "$HOLDER" 2>/dev/null
	[ -n "${WL_PID:-}" ] && kill_tree "$WL_PID"
	engine_teardown
}

@test "dump refuses a lease by name" {
	start_wl "$LT" lease "$T/leased"
	dump_refused "\($T/leased\): a LEASE ACTIVE READ lock is not supported"
}

@test "dump refuses an OFD lock that only a mapping holds" {
	start_wl "$LT" mapped-ofd "$T/mapped"
	dump_refused "its OFDLCK WRITE lock on file"
	assert_output --partial "is held through no fd of the tree"
}

@test "dump refuses a POSIX lock seen through a shared fd table" {
	start_wl "$LT" shared-files "$T/shared"
	# the locks module's refusal, or the tree check's for any shared fd table
	dump_refused "a POSIX lock of pid $WL_PID in a shared fd table is not supported|pids [0-9]+ and [0-9]+ share their fd table \(CLONE_FILES\)"
}

@test "dump refuses a POSIX timer on another process's CPU clock" {
	start_wl "$LT" cpuclock
	dump_refused "POSIX timer 0 counts the CPU time of pid"
	assert_output --partial "not supported"
}

@test "dump refuses POSIX timers where the kernel cannot restore their ids; the task runs on" {
	start_wl "$WL_DIR/wl-posix-timer"
	CEDANA_ENGINE_FAULT=no-timer-ids dump_refused \
		"pid $WL_PID: has 6 POSIX timers, and this kernel cannot create a timer with a given id"
	touch "$TRIGGER"
	wait "$WL_PID"
	WL_PID=
	run grep -E '^(PASS|FAIL)' "$LOG"
	assert_output "PASS"
}

@test "restore fails naming the process that holds a lock of the image; no task is left" {
	local pids p
	start_wl "$WL_DIR/wl-locks"
	pids=$(descendants "$WL_PID")
	run "$ENGINE" dump "$WL_PID" "$IMG"
	assert_success
	wait "$WL_PID" 2>/dev/null || true
	WL_PID=
	flock -x "$TRIGGER.locks-b" sleep 60 &
	HOLDER=$!
	for _ in $(seq 1 500); do
		grep -q "FLOCK  ADVISORY  WRITE $HOLDER " /proc/locks && break
		sleep 0.01
	done
	run "$ENGINE" restore "$IMG" --stdout "$LOG" --stderr "$LOG"
	assert_failure 1
	assert_output --partial "locks: fd 12: FLOCK WRITE lock 0+0: conflicts with pid $HOLDER"
	for p in $pids; do
		[ ! -e "/proc/$p" ]
	done
}

# The timers and locks are set by the task after its credentials: as the
# user, with the user's limits and rights.
user_roundtrip() {
	chmod 0777 "$T"
	start_wl setpriv --reuid=65534 --regid=65534 --clear-groups "$WL_DIR/$1"
	dump_restore
	assert_success
	run grep -E '^(PASS|FAIL)' "$LOG"
	assert_output "PASS"
}

@test "a user's POSIX timers come back, created as the user" {
	user_roundtrip wl-posix-timer
}

@test "a user's file locks come back, set as the user" {
	user_roundtrip wl-locks
}
