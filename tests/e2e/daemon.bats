#!/usr/bin/env bats
# The daemon itself: health check, the HTTP API, robustness, shutdown and restart.
load helpers

setup() {
	use_private_env
}

teardown() {
	kill_everything
}

api() {
	curl -sS --unix-socket "$CEDANA_ADDRESS" "$@"
}

# Prints "HTTP-STATUS BODY" of a request.
api_status() {
	local code
	code=$(curl -sS --unix-socket "$CEDANA_ADDRESS" -o "$BATS_TEST_TMPDIR/body" -w '%{http_code}' "$@")
	echo "$code $(cat "$BATS_TEST_TMPDIR/body")"
}

@test "check says what it checked and passes" {
	start_daemon
	for cmd in check "daemon check"; do
		# shellcheck disable=SC2086
		run "$CEDANA" $cmd
		assert_success
		assert_line --regexp "^ok +socket +$CEDANA_ADDRESS answers: daemon [0-9.]+, pid $DAEMON_PID$"
		assert_line --regexp "^ok +db +$CEDANA_DB_PATH is readable$"
		for feature in ptrace "clone3 set_tid" pidfd_getfd userfaultfd "cgroup freezer"; do
			assert_line --regexp "^ok +$feature "
		done
	done
	run "$CEDANA" check --full
	assert_success
	assert_line --regexp "^ok +job log dir +$CEDANA_JOB_LOG_DIR is writable$"
}

@test "check fails with a non-zero exit when a check fails or no daemon runs" {
	run "$CEDANA" check
	assert_failure
	assert_output --partial "FAIL socket"
	assert_output --partial "cannot reach the daemon"
	CEDANA_JOB_LOG_DIR=/nonexistent-dir start_daemon
	run "$CEDANA" check --full
	assert_failure 1
	assert_line --regexp "^FAIL job log dir +/nonexistent-dir: No such file or directory$"
	assert_line --index -1 "Error: 1 check failed"
}

@test "the socket is usable by every local user" {
	start_daemon
	run stat -c %a "$CEDANA_ADDRESS"
	assert_output 666
}

@test "daemon start --db picks the database and refuses a second daemon on the socket" {
	start_daemon --db "$BATS_TEST_TMPDIR/picked.db"
	"$CEDANA" run process --jid indb true
	run sqlite3 "$BATS_TEST_TMPDIR/picked.db" 'SELECT jid FROM jobs; PRAGMA journal_mode; PRAGMA user_version'
	assert_output $'indb\nwal\n4'
	run "$CEDANA" daemon start
	assert_failure 1
	assert_output --partial "Error: a daemon is already listening on $CEDANA_ADDRESS"
}

@test "the API works with curl --unix-socket" {
	start_daemon
	run api -X POST -d "{\"jid\": \"viacurl\", \"args\": [\"$WORKLOADS/date-loop.sh\"], \"cwd\": \"/\"}" http://x/v1/jobs
	assert_success
	assert_output --partial '"jid":"viacurl"'
	run api http://x/v1/jobs
	assert_output --partial '"jid":"viacurl"'
	run api http://x/v1/jobs/viacurl
	assert_output --partial '"status":"sleep"'
	run api -X POST -d '{"signal": 15}' http://x/v1/jobs/viacurl/kill
	assert_success
	run api -X DELETE http://x/v1/jobs/viacurl
	assert_output '{"deleted":"viacurl"}'
	run api http://x/v1/health
	assert_output --partial '"checks":['
}

@test "bad requests get an error and the daemon keeps serving" {
	start_daemon
	run api_status -X POST -d '{not json' http://x/v1/jobs
	assert_output --regexp '^400 \{"error":"malformed JSON body: .*"\}$'
	run api_status -X POST -d '{"args": []}' http://x/v1/jobs
	assert_output --regexp '^400 .*non-empty array of strings'
	run api_status -X POST -d '{"args": [1]}' http://x/v1/jobs
	assert_output --regexp '^400 '
	run api_status -X POST -d '{"pid": "x"}' http://x/v1/manage
	assert_output --regexp '^400 '
	run api_status http://x/v1/nothing
	assert_output '404 {"error":"no such endpoint: GET /v1/nothing"}'
	run api_status -X POST -d '{"signal": 999}' http://x/v1/jobs/x/kill
	assert_output --regexp '^400 '
	run api_status http://x/v1/jobs/x/attach
	assert_output --regexp '^404 '
	head -c 3000000 /dev/zero | tr '\0' 'a' >"$BATS_TEST_TMPDIR/big"
	run api_status -X POST --data-binary @"$BATS_TEST_TMPDIR/big" http://x/v1/jobs
	assert_output --regexp '^400 '
	run python3 -c "
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(5)
s.connect(sys.argv[1])
s.sendall(b'garbage\\r\\n\\r\\n')
s.recv(100)" "$CEDANA_ADDRESS"
	run "$CEDANA" check
	assert_success
	kill -0 "$DAEMON_PID"
}

@test "wrong-typed fields and query parameters get 400 naming the field; nothing runs" {
	start_daemon
	"$CEDANA" run process --jid j1 -- "$WORKLOADS/date-loop.sh"
	ok="\"args\": [\"touch\", \"$BATS_TEST_TMPDIR/ran\"], \"cwd\": \"/\""
	while IFS='|' read -r body expect; do
		run api_status -X POST -d "{$ok, $body}" http://x/v1/jobs
		assert_output "400 {\"error\":\"$expect\"}"
	done <<-EOF
		"jid": 5|\"jid\" must be a string
		"attachable": "yes"|\"attachable\" must be a boolean (true or false)
		"as_root": 1|\"as_root\" must be a boolean (true or false)
		"out": ["x"]|\"out\" must be a string
		"rows": -1|\"rows\" must be an integer in [0, 65535]
		"cols": 70000|\"cols\" must be an integer in [0, 65535]
		"rows": 1.5|\"rows\" must be an integer in [0, 65535]
		"env": "PATH=/bin"|\"env\" must be an array of strings
	EOF
	run api_status -X POST -d '{"pid": 4294967297}' http://x/v1/manage
	assert_output '400 {"error":"\"pid\" must be an integer in [1, 2147483647]"}'
	run api_status -X POST -d '{"pid": 1, "jid": false}' http://x/v1/manage
	assert_output '400 {"error":"\"jid\" must be a string"}'
	run api_status -X POST -d '{"signal": "TERM"}' http://x/v1/jobs/j1/kill
	assert_output --regexp '^400 .*\\"signal\\" must be an integer in \[1, '
	run api_status -X POST -d '{"jid": "j1", "leave_running": "yes"}' http://x/v1/dump
	assert_output '400 {"error":"\"leave_running\" must be a boolean (true or false)"}'
	run api_status -X POST -d '{"jid": "j1", "name": 7}' http://x/v1/dump
	assert_output '400 {"error":"\"name\" must be a string"}'
	run api_status -X POST -d '{"type": "process", "pid": "1"}' http://x/v1/dump
	assert_output '400 {"error":"\"pid\" must be an integer in [1, 2147483647]"}'
	run api_status -X POST -d '{"path": "/x", "attachable": 1}' http://x/v1/restore
	assert_output '400 {"error":"\"attachable\" must be a boolean (true or false)"}'
	run api_status -X POST -d '{"path": "/x", "rows": 99999}' http://x/v1/restore
	assert_output '400 {"error":"\"rows\" must be an integer in [0, 65535]"}'
	for q in abc 12abc -3 "" 99999999999 "%2012" "%00"; do
		run api_status "http://x/v1/jobs?pid=$q"
		assert_output '400 {"error":"query parameter \"pid\" must be an integer in [1, 2147483647]"}'
	done
	run api_status "http://x/v1/health?full=yes"
	assert_output '400 {"error":"query parameter \"full\" must be 0 or 1"}'
	run api_status -X DELETE "http://x/v1/jobs/j1%00x"
	assert_output '400 {"error":"the URL must not hold %00 (a NUL byte)"}'
	assert_equal "$(job_field j1 status)" sleep
	assert_file_not_exists "$BATS_TEST_TMPDIR/ran"
	# unknown fields stay allowed, and null is as good as absent
	run api_status -X POST -d "{$ok, \"jid\": null, \"frobnicate\": 1}" http://x/v1/jobs
	assert_output --regexp '^201 '
}

@test "SIGTERM stops the daemon cleanly and leaves jobs running" {
	start_daemon
	"$CEDANA" run process --jid survivor "$WORKLOADS/date-loop.sh"
	pid=$(job_field survivor pid)
	kill -TERM "$DAEMON_PID"
	wait "$DAEMON_PID"
	assert_file_not_exists "$CEDANA_ADDRESS"
	kill -0 "$pid"
	assert_file_contains "$BATS_TEST_TMPDIR/daemon.log" "shutting down, jobs keep running"
}

@test "after a restart on the same DB, live jobs show live and dead ones halted" {
	start_daemon
	"$CEDANA" run process --jid alive "$WORKLOADS/date-loop.sh"
	"$CEDANA" run process --jid dies "$WORKLOADS/date-loop.sh"
	"$CEDANA" run process --jid reused "$WORKLOADS/date-loop.sh"
	stop_daemon
	kill -KILL "$(sqlite3 "$CEDANA_DB_PATH" "SELECT pid FROM jobs WHERE jid = 'dies'")"
	# a PID that lives but belongs to another process: same PID, other start time
	sqlite3 "$CEDANA_DB_PATH" "UPDATE jobs SET start_time = start_time + 1 WHERE jid = 'reused'"
	start_daemon
	run "$CEDANA" ps
	assert_line --regexp '^alive +process +[0-9]+ +(sleep|running) '
	assert_line --regexp '^dies +process +[0-9]+ +halted '
	assert_line --regexp '^reused +process +[0-9]+ +halted '
	run "$CEDANA" kill reused
	assert_failure 1
	assert_output "Error: job reused is not running"
	run "$CEDANA" kill alive
	assert_success
	sqlite3 "$CEDANA_DB_PATH" "UPDATE jobs SET start_time = start_time - 1 WHERE jid = 'reused'"
}

@test "the daemon reaps its jobs: no zombies are left" {
	start_daemon
	"$CEDANA" run process --jid z1 -- sh -c 'sleep 0.1 & exit 0'
	wait_job_field z1 exit_code 0
	sleep 0.3
	run ps -o stat=,pid= --ppid "$DAEMON_PID"
	refute_output --regexp 'Z'
}

@test "tcp is opt-in and works" {
	port=$((20000 + RANDOM % 20000))
	CEDANA_PROTOCOL=tcp CEDANA_ADDRESS="127.0.0.1:$port" "$CEDANA" daemon start \
		>>"$BATS_TEST_TMPDIR/daemon.log" 2>&1 3>&- &
	DAEMON_PID=$!
	echo "$DAEMON_PID" >>"$BATS_TEST_TMPDIR/daemon.pids"
	for _ in $(seq 100); do
		"$CEDANA" --protocol tcp --address "127.0.0.1:$port" ps >/dev/null 2>&1 && break
		sleep 0.05
	done
	run "$CEDANA" --protocol tcp --address "127.0.0.1:$port" run process --jid t1 true
	assert_success
	run "$CEDANA" --protocol tcp --address "127.0.0.1:$port" ps
	assert_output --partial t1
	assert_file_contains "$BATS_TEST_TMPDIR/daemon.log" "EVERY client that reaches 127.0.0.1:$port acts as ROOT"
}

@test "attachable jobs survive a daemon stop too, and say why they cannot be attached after" {
	start_daemon
	"$CEDANA" run process --attachable --jid tty "$WORKLOADS/date-loop.sh"
	pid=$(job_field tty pid)
	stop_daemon
	sleep 1.2
	kill -0 "$pid"
	start_daemon
	assert_equal "$(job_field tty status)" sleep
	run "$CEDANA" job attach tty
	assert_failure 1
	assert_output --partial "its terminal was lost when the daemon restarted"
}
