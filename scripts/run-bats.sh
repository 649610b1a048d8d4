#!/usr/bin/env bash
# Runs every .bats file in a directory and records the totals for summary.sh
# (a line "LABEL PASSED FAILED SKIPPED SECONDS" in $BUILD/bats-totals).
# --timing: each test's line in the log ends with its duration ("in 812ms"),
# so a CI log shows where a suite's minutes go.
# BATS_SKIP_FILES: file names (space-separated) of the directory not to run.
set -uo pipefail
dir=$1
label=${SUITE_LABEL:-$dir} # one word: summary.sh reads it so
shopt -s nullglob
files=()
for f in "$dir"/*.bats; do
	case " ${BATS_SKIP_FILES:-} " in
	*" $(basename "$f") "*) continue ;;
	esac
	files+=("$f")
done
if [ ${#files[@]} -eq 0 ]; then
	echo "run-bats: no tests in $dir"
	exit 0
fi
# A test that hangs would hold the whole run until CI's limit and leave no
# word of where. No test takes more than seconds (the longest about 20), so
# after BATS_STALL_S (300) with no line from bats the watchdog prints what
# the test's processes and their threads are doing, then kills what the
# test started: the test fails on what it waited for, its teardown
# runs, and the suite goes on. bats stays in the foreground (Ctrl-C reaches
# it); the watchdog beside it ends with this script.
stall=${BATS_STALL_S:-300}

# descendants PID: every process below PID.
descendants() {
	ps -e -o pid=,ppid= | awk -v root="$1" '
		{ parent[$1] = $2 }
		END { for (p in parent) { q = p
			while (q in parent && q != root && q > 1) q = parent[q]
			if (q == root && p != root) print p } }'
}

# test_processes PID: what the running test started, below PID: the
# processes under bats's test runner (bats-exec-test), less the runner's
# own subshells. bats's other shells and its output's formatter stay.
test_processes() {
	ps -e -o pid=,ppid=,args= | awk -v root="$1" '
		{ parent[$1] = $2; runner[$1] = ($3 ~ /bash$/ && $4 ~ /bats-exec-test$/) }
		END { for (p in parent) { if (runner[p]) continue
			under = 0
			for (q = parent[p]; q in parent && q > 1 && q != root; q = parent[q])
				if (runner[q]) under = 1
			if (under && q == root) print p } }'
}

# diagnose PID: the processes below PID, each thread's state, wait channel
# and kernel stack, and every stopped or traced task on the machine.
diagnose() {
	local p t pids
	pids=$(descendants "$1" | tr '\n' ',' | sed 's/,$//')
	[ -n "$pids" ] && ps -o pid,ppid,stat,wchan:30,etime,args -p "$pids"
	for p in $(test_processes "$1"); do
		for t in /proc/"$p"/task/*; do
			echo "task ${t##*/} of $p: $(cut -d' ' -f3 "$t/stat" 2>/dev/null)" \
				"wchan $(cat "$t/wchan" 2>/dev/null)" \
				"$(grep -E '^(TracerPid|SigPnd|ShdPnd|SigBlk)' "$t/status" 2>/dev/null | tr '\n\t' '  ')"
			sed 's/^/    /' "$t/stack" 2>/dev/null
		done
	done
	echo "stopped or traced anywhere:"
	ps -e -o pid,ppid,stat,wchan:30,args | awk '$3 ~ /^[tT]/'
}

# watchdog PID FILE: FILE is bats's output, PID this script; acts after a
# stall, then waits a whole stall again. It ends with this script.
watchdog() {
	local age p
	while kill -0 "$1" 2>/dev/null; do
		sleep 5 </dev/null >/dev/null 2>&1 # holds no pipe of the caller once killed
		age=$(($(date +%s) - $(stat -c %Y "$2")))
		[ "$age" -ge "$stall" ] || continue
		{
			echo "run-bats: no test ended in $age s; what its processes are doing:"
			diagnose "$1"
			echo "run-bats: killing the test's processes"
		} 2>&1 | sed 's/^/# /'
		for p in $(test_processes "$1"); do kill -KILL "$p" 2>/dev/null; done
		touch "$2"
	done
}

out=$(mktemp)
start=$(date +%s)
watchdog "$$" "$out" &
watchdog_pid=$!
bats --tap --timing "${files[@]}" | tee "$out"
rc=${PIPESTATUS[0]}
kill "$watchdog_pid" 2>/dev/null
wait "$watchdog_pid" 2>/dev/null
secs=$(($(date +%s) - start))
passed=$(grep -c '^ok ' "$out" || true)
skipped=$(grep -c '^ok .* # skip' "$out" || true)
failed=$(grep -c '^not ok ' "$out" || true)
build=${BUILD:-build}
mkdir -p "$build"
echo "$label $((passed - skipped)) $failed $skipped $secs" >>"$build/bats-totals"
echo "$label: $((passed - skipped)) passed, $failed failed, $skipped skipped in $secs s"
rm -f "$out"
exit "$rc"
