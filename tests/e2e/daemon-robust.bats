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
		timeout 60 "$CEDANA" restore job "$j" >"$BATS_TEST_TMPDIR/restore-$j.out" 2>&1 3>&- &
		pids+=($!)
	done
	for i in 0 1 2; do
		wait "${pids[$i]}" || { cat "$BATS_TEST_TMPDIR"/restore-*.out >&2; return 1; }
	done
	for j in a b c; do
		finish_counter "$j"
	done
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
