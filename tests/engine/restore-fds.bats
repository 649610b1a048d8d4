#!/usr/bin/env bats
# When restore returns, every restored task holds exactly the fds it was
# dumped with: nothing of the controller (its status pipe, the image's
# files) is left in a task. A task's end of the status pipe used to stay
# when the controller seized the task between its report and its close of
# that end (a race: about one restore in four on a loaded machine).
load helpers

setup() { engine_setup; }
teardown() {
	[ -n "${TREE:-}" ] && kill -9 $TREE 2>/dev/null
	engine_teardown
}

# fd_sets PIDS...: "PID: fd fd …" per task, fds in order.
fd_sets() {
	local p
	for p in "$@"; do
		echo "$p: $(ls "/proc/$p/fd" | sort -n | tr '\n' ' ')"
	done
}

# fds_round PROGRAM [RESTORE-FLAGS...]: PROGRAM dumped and restored with
# --detach; the fds of each task of its tree are compared with the dumped
# ones as soon as restore returns.
fds_round() {
	local before after prog=$1
	shift
	rm -rf "$T"/* && start_wl "$WL_DIR/$prog"
	TREE=$(descendants "$WL_PID")
	before=$(fd_sets $TREE)
	run "$ENGINE" dump "$WL_PID" "$IMG"
	assert_success
	wait "$WL_PID" 2>/dev/null || true
	WL_PID=
	run "$ENGINE" restore "$IMG" --stdout "$LOG" --stderr "$LOG" --detach \
		--pid-file "$T/restored.pid" "$@"
	assert_success
	after=$(fd_sets $TREE)
	kill -9 $TREE
	[ "$before" = "$after" ] || {
		echo "dumped:   $before" >&2
		echo "restored: $after" >&2
		return 1
	}
	TREE=
}

# fds_rounds PROGRAM N: N rounds of fds_round, every second one restored
# with --leave-stopped (the tree stopped when restore returns).
fds_rounds() {
	local i
	for i in $(seq 1 "$2"); do
		if [ $((i % 2)) -eq 0 ]; then
			fds_round "$1" --leave-stopped
		else
			fds_round "$1"
		fi
	done
}

# The task that reports last is the one seized soonest after its report: a
# tree of one task is the likeliest to show the race.
@test "restore-fds: wl-counter, 16 round trips, exactly the dumped fds when restore returns" {
	fds_rounds wl-counter 16
}

# a parent and a child, fds at fixed numbers up to 23
@test "restore-fds: wl-files, 6 round trips, exactly the dumped fds in both tasks" {
	fds_rounds wl-files 6
}
