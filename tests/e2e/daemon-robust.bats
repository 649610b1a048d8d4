#!/usr/bin/env bats
# The daemon under concurrent and interrupted checkpoint/restore requests.
load cr-helpers

setup() {
	cr_setup
}

teardown() {
	cr_teardown
}

@test "concurrent restores both finish (a worker holds no other request's pipe)" {
	for j in a b c; do
		start_counter "$j"
		run "$CEDANA" dump job "$j"
		assert_success
	done
	pids=()
	for j in a b c; do
		timeout 180 "$CEDANA" restore job "$j" >"$BATS_TEST_TMPDIR/restore-$j.out" 2>&1 3>&- &
		pids+=($!)
	done
	for i in 0 1 2; do
		wait "${pids[$i]}" || { cat "$BATS_TEST_TMPDIR"/restore-*.out >&2; return 1; }
	done
	for j in a b c; do
		finish_counter "$j"
	done
}

# A fork of the daemon copies its locks as its other threads hold them; a
# worker that is a program of its own holds none (src/daemon/worker.h).
@test "a dump's worker is cedana run afresh (__worker dump), holding none of the daemon's fds" {
	CEDANA_WL_TRIGGER=$(trigger_of big) "$CEDANA" run process --jid big -- "$WL_BIN/wl-memory" 512
	wait_file_contains "$(log_of big)" READY
	"$CEDANA" dump job big --name big >"$BATS_TEST_TMPDIR/dump.out" 2>&1 3>&- &
	dump=$!
	worker=
	for _ in $(seq 200); do
		worker=$(pgrep -P "$DAEMON_PID" -f "__worker dump" | head -1)
		[[ -n "$worker" ]] && break
		sleep 0.05
	done
	[[ -n "$worker" ]]
	assert_equal "$(tr '\0' ' ' <"/proc/$worker/cmdline" | cut -d' ' -f1-3)" "cedana __worker dump"
	assert_equal "$(readlink "/proc/$worker/exe")" "$(readlink "/proc/$DAEMON_PID/exe")"
	# the daemon's database and sockets (its listener, its connections)
	ours=$(ls -l "/proc/$DAEMON_PID/fd/" | awk '{print $NF}' | grep -E "^socket:|cedana\.db$" | sort -u)
	theirs=$(ls -l "/proc/$worker/fd/" | awk '{print $NF}' | sort -u)
	wait "$dump"
	[[ -n "$ours" ]]
	# taken while it ran: the worker's own socket to the daemon is there
	grep -q "^socket:" <<<"$theirs"
	assert_equal "$(comm -12 <(echo "$ours") <(echo "$theirs"))" ""
}

@test "cedana __worker is not a command: refused, status 2" {
	run "$CEDANA" __worker
	assert_failure 2
	assert_output --partial "__worker is the daemon's own: not a command"
	run "$CEDANA" __worker restore '{"op_fd": 99, "log_level": 2}'
	assert_failure 2
	assert_output --partial "map the operation's page (fd 99)"
}

@test "SIGTERM during a dump ends the daemon promptly and leaves no scratch directory" {
	CEDANA_WL_TRIGGER=$(trigger_of big) "$CEDANA" run process --jid big -- "$WL_BIN/wl-memory" 512
	wait_file_contains "$(log_of big)" READY
	"$CEDANA" dump job big --name big >/dev/null 2>&1 3>&- &
	echo $! >>"$BATS_TEST_TMPDIR/extra.pids"
	for _ in $(seq 200); do
		compgen -G "$CK/.big.dump-*" >/dev/null && break
		sleep 0.05
	done
	compgen -G "$CK/.big.dump-*" >/dev/null
	kill -TERM "$DAEMON_PID"
	for _ in $(seq 200); do
		kill -0 "$DAEMON_PID" 2>/dev/null || break
		sleep 0.05
	done
	run kill -0 "$DAEMON_PID"
	assert_failure
	wait "$DAEMON_PID" || true
	DAEMON_PID=
	assert_equal "$(compgen -G "$CK/.big.dump-*")" ""
}

@test "a request dripped a byte a second is cut off at the request deadline, headers or body" {
	stop_daemon
	CEDANA_REQUEST_TIMEOUT=3 start_daemon
	for part in headers body; do
		run "$BATS_TEST_DIRNAME/drip.py" "$CEDANA_ADDRESS" "$part" 15
		assert_success
		[ "$output" != open ] || fail "$part: the connection was never closed"
		# 3 s, give or take the watchdog's period and a loaded machine
		awk -v t="$output" 'BEGIN { exit !(t >= 2.5 && t < 6) }' || fail "$part: closed after $output s"
	done
	grep -q "its request was not read within 3 s" "$BATS_TEST_TMPDIR/daemon.log"
	# a request that runs longer than the deadline is not cut off, nor is an
	# attach stream, nor a kept-alive connection's next request
	run "$TERM_PY" -- "$CEDANA" run process --attach --jid slow "$WORKLOADS/date-loop.sh" 5 3
	assert_failure 3
	assert_equal "$(grep -c UTC <<<"$output")" 5
	run curl -sS --unix-socket "$CEDANA_ADDRESS" http://x/v1/health http://x/v1/jobs
	assert_success
	assert_output --partial '"jobs":['
}

# Waits until a dump of NAME has made its scratch directory in $CK.
wait_dump_scratch() {
	for _ in $(seq 200); do
		compgen -G "$CK/.$1.dump-*" >/dev/null && return 0
		sleep 0.05
	done
	return 1
}

# The job runs on: same pid, not stopped, its log still growing.
assert_runs_on() {
	local jid=$1 pid=$2 n
	assert_equal "$(job_field "$jid" pid)" "$pid"
	assert_not_equal "$(job_field "$jid" status)" halted
	assert_not_equal "$(awk '{print $3}' "/proc/$pid/stat")" T
	n=$(grep -cE '^[0-9]+$' "$(log_of "$jid")")
	wait_file_contains "$(log_of "$jid")" "^$((n + 2))\$"
}

# A daemon that holds every dump with the tree stopped and the image written;
# job c (its pid in $pid) being dumped as img by a client (its pid in $client).
start_stalled_dump() {
	stop_daemon
	CEDANA_ENGINE_FAULT=dump-stall start_daemon
	start_counter c
	pid=$(job_field c pid)
	"$CEDANA" dump job c --name img >/dev/null 2>&1 3>&- &
	client=$!
	echo "$client" >>"$BATS_TEST_TMPDIR/extra.pids"
	wait_dump_scratch img
}

kill_daemon_hard() {
	kill -KILL "$DAEMON_PID"
	wait "$DAEMON_PID" || true
	DAEMON_PID=
}

@test "kill -9 of the daemon mid-dump: the job runs on; the next start removes the partial files and check says so" {
	start_stalled_dump
	kill_daemon_hard
	# the worker died with the daemon and let the tree go
	for _ in $(seq 100); do
		[ "$(awk '{print $3}' "/proc/$pid/stat")" != t ] && break
		sleep 0.05
	done
	rm -f "$CEDANA_ADDRESS" # the dead daemon's, or start_daemon would not wait
	start_daemon
	assert_runs_on c "$pid"
	assert_equal "$(entries "$CK")" ""
	run "$CEDANA" job checkpoints c
	refute_output --partial img
	run "$CEDANA" daemon check
	assert_output --partial "dump of job c to $CK/img: unfinished: removed 1 partial file(s); the process ran on"
	# no longer the daemon's child (it died): the counter's own word, not its exit code
	touch "$(trigger_of c)"
	wait_file_contains "$(log_of c)" PASS
}

@test "kill -9 of the daemon mid-restore: no task is left; the next start removes the scratch and the new log" {
	start_counter c
	pid=$(job_field c pid)
	run "$CEDANA" dump job c --compression lz4
	assert_success
	stop_daemon
	CEDANA_ENGINE_FAULT=restore-stall start_daemon
	"$CEDANA" restore process --path "$(last_word)" --jid back >/dev/null 2>&1 3>&- &
	echo $! >>"$BATS_TEST_TMPDIR/extra.pids"
	for _ in $(seq 200); do
		compgen -G "$CK/.cedana-restore-*" >/dev/null && [ -f "$(log_of back)" ] && break
		sleep 0.05
	done
	assert_file_exists "$(log_of back)"
	sleep 0.5
	kill_daemon_hard
	rm -f "$CEDANA_ADDRESS" # the dead daemon's, or start_daemon would not wait
	start_daemon
	assert_equal "$(compgen -G "$CK/.cedana-restore-*")" ""
	assert_file_not_exists "$(log_of back)"
	run "$CEDANA" daemon check
	assert_output --partial "restore of job back: unfinished: removed $CK/.cedana-restore-"
	run "$CEDANA" job inspect back
	assert_failure
	run kill -0 "$pid"
	assert_failure
}

# The first phase of a restore's progress is the engine reading and checking
# the image and making the tree, before it counts any page data (those pages
# are checksummed as they go in, during "restore"): "prepare", stalled there.
@test "a restore in flight shows its first phase, prepare, at /v1/ops/ID; the client's hang-up cancels it" {
	start_counter c
	run "$CEDANA" dump job c
	assert_success
	stop_daemon
	CEDANA_ENGINE_FAULT=restore-stall start_daemon
	curl -sS --unix-socket "$CEDANA_ADDRESS" -H 'Content-Type: application/json' \
		-d '{"jid": "c", "op": "r-prepare"}' http://localhost/v1/restore >/dev/null 2>&1 3>&- &
	client=$!
	echo "$client" >>"$BATS_TEST_TMPDIR/extra.pids"
	for _ in $(seq 200); do
		run curl -sS --unix-socket "$CEDANA_ADDRESS" http://localhost/v1/ops/r-prepare
		# the op is listed, its phase empty, before the worker starts it
		[[ "$output" == *'"phase":"'[a-z]* || "$output" == *'"phase": "'[a-z]* ]] && break
		sleep 0.05
	done
	assert_output --regexp '"phase": ?"prepare"'
	kill -KILL "$client"
	for _ in $(seq 200); do
		run curl -sS --unix-socket "$CEDANA_ADDRESS" http://localhost/v1/ops/r-prepare
		[[ "$output" == *'no operation'* ]] && break
		sleep 0.05
	done
	assert_output --partial 'no operation r-prepare in flight'
}

@test "a restore worker killed outright after making the tree: every new task dies with it" {
	CEDANA_WL_TRIGGER=$(trigger_of t) "$CEDANA" run process --jid t -- "$WL_BIN/wl-tree"
	wait_file_contains "$(log_of t)" READY
	root=$(job_field t pid)
	pids=$(pgrep -s "$root")
	run "$CEDANA" dump job t
	assert_success
	stop_daemon
	CEDANA_ENGINE_FAULT=restore-stall-tree start_daemon
	"$CEDANA" restore job t >/dev/null 2>&1 3>&- &
	echo $! >>"$BATS_TEST_TMPDIR/extra.pids"
	for _ in $(seq 200); do
		[ -d "/proc/$root" ] && break
		sleep 0.05
	done
	worker=$(awk '{print $4}' "/proc/$root/stat")
	assert_not_equal "$worker" "$DAEMON_PID"
	kill -KILL "$worker"
	for p in $pids; do
		for _ in $(seq 100); do
			[ -d "/proc/$p" ] || break
			sleep 0.05
		done
		assert_file_not_exists "/proc/$p"
	done
}

@test "a client that hangs up mid-dump cancels it: the job runs on and nothing is left" {
	start_stalled_dump
	kill -KILL "$client"
	for _ in $(seq 100); do
		[ -z "$(entries "$CK")" ] && break
		sleep 0.05
	done
	assert_equal "$(entries "$CK")" ""
	assert_runs_on c "$pid"
	grep -q "dump: the client hung up: cancelling worker" "$BATS_TEST_TMPDIR/daemon.log"
	run "$CEDANA" job checkpoints c
	refute_output --partial img
	finish_counter c
}
