# Harness side of the workload protocol (README.md), for bats tests: start a workload with
# its log and trigger, wait for READY, trigger it, collect its verdict. Needs BUILD_DIR.
#
#   wl_start wl-counter            # or: wl_start_cmd sh "$WL_SRC/date-loop.sh"
#   wl_wait_ready                  # READY in $WL_LOG
#   …dump $WL_PID here; after --leave-running: wl_kill_tree "$WL_PID"; restore…
#   wl_trigger; wl_wait_exit       # exit status in $WL_STATUS
#   wl_assert_pass                 # exactly one verdict line, PASS, and exit 0
#   wl_check_counter "$WL_LOG"     # wl-counter only: 1, 2, 3, … with no gap or repeat
#   wl_wait_lines N                # date-loop.sh: the log has grown to N lines

WL_SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
: "${WL_TIMEOUT:=20}"

wl_bin() {
	echo "$BUILD_DIR/tests/workloads/$1"
}

# Closes every fd but 0, 1 and 2 (bats leaks some), so a workload holds only what it opens.
wl_close_fds() {
	local fd
	for fd in /proc/$BASHPID/fd/*; do
		fd=${fd##*/}
		[ "$fd" -gt 2 ] && eval "exec $fd>&-"
	done
	return 0
}

# Starts "$@" in the background with the protocol's environment, in a fresh directory
# WL_DIR holding the log (WL_LOG) and, once created, the trigger (WL_TRIGGER). It runs in a
# session of its own (the engine dumps whole sessions unless --shell-job), as WL_PID, unless
# WL_SETSID=0.
wl_start_cmd() {
	local setsid=setsid
	[ "${WL_SETSID:-1}" = 0 ] && setsid=
	WL_DIR=$(mktemp -d "${BATS_TEST_TMPDIR:-${TMPDIR:-/tmp}}/wl.XXXXXX")
	WL_LOG=$WL_DIR/log
	WL_TRIGGER=$WL_DIR/trigger
	: >"$WL_LOG"
	(
		wl_close_fds
		# setsid(1) does not fork here: a background subshell leads no process group.
		CEDANA_WL_TRIGGER=$WL_TRIGGER CEDANA_WL_TIMEOUT=$WL_TIMEOUT exec $setsid "$@"
	) </dev/null >>"$WL_LOG" 2>&1 &
	WL_PID=$!
}

wl_start() {
	local name=$1
	shift
	wl_start_cmd "$(wl_bin "$name")" "$@"
}

# True while PID exists and is not a zombie.
# alive: not a zombie, or one whose main thread alone has exited (others run)
wl_alive() {
	local state threads
	read -r state threads < <(awk '{ sub(/^.*\) /, ""); print $1, $18 }' "/proc/$1/stat" 2>/dev/null) ||
		return 1
	[ -n "$state" ] && { [ "$state" != Z ] || [ "${threads:-1}" -gt 1 ]; }
}

wl_wait_ready() {
	local limit=${1:-$WL_TIMEOUT} i
	for ((i = 0; i < limit * 20; i++)); do
		grep -qx READY "$WL_LOG" && return 0
		if ! wl_alive "$WL_PID"; then
			echo "workload $WL_PID ended before READY; log:" >&2
			cat "$WL_LOG" >&2
			return 1
		fi
		sleep 0.05
	done
	echo "no READY from $WL_PID after ${limit}s; log:" >&2
	cat "$WL_LOG" >&2
	return 1
}

# Waits until the log has at least N lines (for date-loop.sh, which has no protocol).
wl_wait_lines() {
	local n=$1 limit=${2:-$WL_TIMEOUT} i
	for ((i = 0; i < limit * 20; i++)); do
		[ "$(wc -l <"$WL_LOG")" -ge "$n" ] && return 0
		sleep 0.05
	done
	echo "the log has fewer than $n lines after ${limit}s:" >&2
	cat "$WL_LOG" >&2
	return 1
}

wl_trigger() {
	touch "$WL_TRIGGER"
}

# Waits for the workload (a child of this shell) to end; its exit status goes to WL_STATUS.
wl_wait_exit() {
	local limit=${1:-$((WL_TIMEOUT + 10))} i
	for ((i = 0; i < limit * 20; i++)); do
		wl_alive "$WL_PID" || break
		sleep 0.05
	done
	if wl_alive "$WL_PID"; then
		echo "workload $WL_PID still running after ${limit}s; log:" >&2
		cat "$WL_LOG" >&2
		return 1
	fi
	WL_STATUS=0
	wait "$WL_PID" || WL_STATUS=$?
}

# The verdict lines of a log: PASS or FAIL: …
wl_verdicts() {
	grep -E '^(PASS$|FAIL)' "${1:-$WL_LOG}" || true
}

wl_assert_pass() {
	local v
	v=$(wl_verdicts)
	if [ "$v" != PASS ] || [ "${WL_STATUS:-1}" -ne 0 ]; then
		echo "want PASS and exit 0, got exit ${WL_STATUS:-?}; log:" >&2
		cat "$WL_LOG" >&2
		return 1
	fi
}

# Expects exactly one FAIL line containing TEXT, and exit 1.
wl_assert_fail() {
	local text=$1 v
	v=$(wl_verdicts)
	if [[ "$v" != "FAIL: "*"$text"* ]] || [[ "$v" == *$'\n'* ]] || [ "${WL_STATUS:-0}" -ne 1 ]; then
		echo "want one 'FAIL: …$text…' and exit 1, got exit ${WL_STATUS:-?}; log:" >&2
		cat "$WL_LOG" >&2
		return 1
	fi
}

# The numbers wl-counter printed must run 1, 2, 3, … with no gap and no repeat.
wl_check_counter() {
	grep -E '^[0-9]+$' "$1" | awk '
		$1 != NR { printf "line %d of the count is %s, want %d\n", NR, $1, NR; bad = 1; exit 1 }
		END { if (!bad && NR < 2) { print "too few numbers: " NR; exit 1 } }' >&2
}

# PID and its descendants, deepest first.
wl_descendants() {
	local c
	for c in $(cat /proc/"$1"/task/*/children 2>/dev/null); do
		wl_descendants "$c"
	done
	echo "$1"
}

# Kills the tree rooted at PID (the original after a --leave-running dump) and waits until
# its pids are free. Everything is stopped before anything is killed: a parent that saw its
# child die first would print a FAIL of its own into the log the restored tree shares.
wl_kill_tree() {
	local pids i
	pids=$(wl_descendants "$1")
	# shellcheck disable=SC2086
	kill -STOP $pids 2>/dev/null || true
	# shellcheck disable=SC2086
	kill -KILL $pids 2>/dev/null || true
	wait "$1" 2>/dev/null || true
	for ((i = 0; i < 200; i++)); do
		# shellcheck disable=SC2086
		ps -p "$(echo $pids | tr ' ' ,)" >/dev/null || return 0
		sleep 0.05
	done
	echo "the tree of $1 did not go away: $pids" >&2
	return 1
}

# Kills what is left of the workload's tree (for teardown).
wl_cleanup() {
	[ -n "${WL_PID:-}" ] || return 0
	wl_kill_tree "$WL_PID" || true
}

# Breaks a workload's state from outside: tamper.py mem|xmm0|return|sched … (see there).
wl_tamper() {
	python3 "$WL_SRC/tamper.py" "$@"
}

# Waits until PID is blocked in one of the syscalls numbered NR… (/proc/PID/syscall).
wl_wait_syscall() {
	local pid=$1 i nr
	shift
	for ((i = 0; i < WL_TIMEOUT * 20; i++)); do
		read -r nr _ <"/proc/$pid/syscall" 2>/dev/null || return 1
		for want in "$@"; do
			[ "$nr" = "$want" ] && return 0
		done
		sleep 0.05
	done
	echo "$pid is not blocked in syscall $*" >&2
	return 1
}
