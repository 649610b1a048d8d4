#!/usr/bin/env bats
# Jobs of a shell: their session and process group belong to the shell,
# outside the tree. They dump with no flags; the restored tree starts a
# session of its own and members of the shell's group share the root's.
load helpers

setup() { engine_setup; }
teardown() {
	[ -n "${JOB_PIDS:-}" ] && kill -9 $JOB_PIDS 2>/dev/null
	engine_teardown
}

# wait_file F: until F exists and is not empty.
wait_file() {
	for _ in $(seq 1 1000); do
		[ -s "$1" ] && return 0
		sleep 0.01
	done
	return 1
}

# layout PID: "pgid sid" of PID.
layout() {
	ps -o pgid=,sid= -p "$1" | awk '{ print $1, $2 }'
}

# restore_detached: restores $IMG, appending to $LOG, and leaves the
# restored root's pid in $NEW.
restore_detached() {
	run timeout 60 "$ENGINE" restore "$IMG" --stdout "$LOG" --stderr "$LOG" --detach \
		--pid-file "$T/restored.pid"
	assert_success
	NEW=$(cat "$T/restored.pid")
}

# wait_pass: the restored workload, triggered, says PASS.
wait_pass() {
	touch "$TRIGGER"
	for _ in $(seq 1 1000); do
		grep -qE '^(PASS|FAIL)' "$LOG" && break
		sleep 0.01
	done
	run grep -E '^(PASS|FAIL)' "$LOG"
	assert_output "PASS"
}

@test "sessions: a background job of a shell with job control dumps with no flags" {
	# as an interactive shell runs `prog > log &`: a group of its own in the
	# shell's session
	CEDANA_WL_TRIGGER="$TRIGGER" no_inherited_fds bash -c 'set -m; "$0" </dev/null >>"$1" 2>&1 & echo $! >"$2"; wait' \
		"$WL_DIR/wl-counter" "$LOG" "$T/job.pid" 2>/dev/null &
	JOB_PIDS=$!
	wait_file "$T/job.pid"
	WL_PID=$(cat "$T/job.pid")
	wait_ready
	assert_equal "$(layout "$WL_PID")" "$WL_PID $(ps -o sid= -p $$ | tr -d ' ')"
	run "$ENGINE" dump "$WL_PID" "$IMG"
	assert_success
	WL_PID=
	restore_detached
	assert_equal "$(layout "$NEW")" "$NEW $NEW"
	wait_pass
	run grep -E '^[0-9]+$' "$LOG"
	assert_success
}

@test "sessions: a job whose group belongs to a shell that has exited" {
	# the job's group is the short-lived sh's: after sh is gone no task
	# leads it, and the restore could not recreate it
	cat >"$T/job.sh" <<-'SH'
		"$1" 2 </dev/null >>"$2" 2>&1 &
		echo $! >"$3"
	SH
	CEDANA_WL_TRIGGER="$TRIGGER" no_inherited_fds bash -c 'set -m; sh "$@" & wait' bash \
		"$T/job.sh" "$WL_DIR/wl-chain" "$LOG" "$T/job.pid" 2>/dev/null &
	JOB_PIDS=$!
	wait_file "$T/job.pid"
	WL_PID=$(cat "$T/job.pid")
	wait_ready
	# sh has exited: the group's leader is gone
	local pgid=$(ps -o pgid= -p "$WL_PID" | tr -d ' ')
	assert [ "$pgid" != "$WL_PID" ]
	run kill -0 "$pgid"
	assert_failure
	run "$ENGINE" dump "$WL_PID" "$IMG"
	assert_success
	# the orphaned root is init's to reap
	for _ in $(seq 1 500); do [ -e "/proc/$WL_PID" ] || break; sleep 0.01; done
	WL_PID=
	restore_detached
	# the whole chain in the root's new session and group
	for p in $(descendants "$NEW"); do
		assert_equal "$(layout "$p")" "$NEW $NEW"
	done
	assert_equal "$(descendants "$NEW" | wc -l)" 3
	wait_pass
}

@test "sessions: a job that has the shell's terminal as its controlling terminal needs --shell-job" {
	command -v script >/dev/null || skip "no script(1)"
	# script gives the shell a pty as controlling terminal
	CEDANA_WL_TRIGGER="$TRIGGER" no_inherited_fds script -qfc \
		"bash -c 'set -m; \"$WL_DIR/wl-counter\" </dev/null >>\"$LOG\" 2>&1 & echo \$! >\"$T/job.pid\"; wait'" \
		/dev/null </dev/null >/dev/null 2>&1 &
	JOB_PIDS=$!
	wait_file "$T/job.pid"
	WL_PID=$(cat "$T/job.pid")
	wait_ready
	run "$ENGINE" dump "$WL_PID" "$IMG"
	assert_failure 1
	assert_output --partial "pid $WL_PID: its controlling terminal belongs to session"
	assert_output --partial "(use --shell-job)"
	assert_not_exist "$IMG"
	run "$ENGINE" dump "$WL_PID" "$IMG" --shell-job
	assert_success
	WL_PID=
	restore_detached
	assert_equal "$(layout "$NEW")" "$NEW $NEW"
	wait_pass
}
