#!/usr/bin/env bats
# The job lifecycle through a real daemon: run, ps, inspect, kill, delete, manage.
load helpers

setup() {
	common_setup
}

teardown() {
	common_teardown
}

@test "run process without --jid picks a readable unique id" {
	run "$CEDANA" run process "$WORKLOADS/date-loop.sh"
	assert_success
	assert_output --regexp '^[a-z]+_[a-z]+[0-9]$'
	jid=$output
	run "$CEDANA" run process "$WORKLOADS/date-loop.sh"
	assert_success
	refute_output "$jid"
}

@test "run process --jid, ps shows the job live with its log" {
	run "$CEDANA" run process --jid myjob "$WORKLOADS/date-loop.sh"
	assert_success
	assert_output myjob
	run "$CEDANA" ps
	assert_success
	assert_line --index 0 --regexp '^JOB +TYPE +PID +STATUS +GPU +CHECKPOINT +SIZE +LOG$'
	assert_line --index 1 --regexp "^myjob +process +[0-9]+ +(running|sleep) +no +$CEDANA_JOB_LOG_DIR/cedana-output-myjob.log$"
	for cmd in jobs "job list"; do
		# shellcheck disable=SC2086
		run "$CEDANA" $cmd
		assert_line --index 1 --partial myjob
	done
}

@test "run process --gpu-enabled is accepted; GPU says no for a job with no GPU files" {
	run "$CEDANA" run process --gpu-enabled --jid g -- "$WORKLOADS/date-loop.sh"
	assert_success
	assert_output g
	run "$CEDANA" ps
	assert_success
	assert_line --index 1 --regexp "^g +process +[0-9]+ +(running|sleep) +no +"
	run "$CEDANA" job inspect g
	assert_output --partial '"gpu": false'
}

@test "exec is an alias of run and flags may follow the command" {
	run "$CEDANA" exec process "$WORKLOADS/date-loop.sh" -j after
	assert_success
	assert_output after
	run "$CEDANA" run process -j dash -- sh -c 'echo "$0 $1"' a --jid
	assert_success
	wait_file_contains "$CEDANA_JOB_LOG_DIR/cedana-output-dash.log" "a --jid"
}

@test "exec takes every flag of run process, without the word process" {
	run "$CEDANA" exec --jid ex --out "$BATS_TEST_TMPDIR/ex.out" --pid-file "$BATS_TEST_TMPDIR/ex.pid" \
		-- sh -c 'echo "from $0"; exit 3' exec-test
	assert_success
	assert_output ex
	wait_file_contains "$BATS_TEST_TMPDIR/ex.out" "from exec-test"
	[ "$(cat "$BATS_TEST_TMPDIR/ex.pid")" = "$(job_field ex pid)" ]
	run "$CEDANA" exec --no-server -- sh -c 'exit 4'
	assert_failure 4
	run "$CEDANA" exec -a --attachable --as-root --jid x2 -o f --no-server -- true
	assert_failure 2
	assert_output --partial "--no-server runs on this terminal"
}

@test "the log file gets the output and is for the job's owner only" {
	"$CEDANA" run process --jid logged -- sh -c 'echo out; echo err >&2'
	log="$CEDANA_JOB_LOG_DIR/cedana-output-logged.log"
	wait_file_contains "$log" err
	assert_file_contains "$log" out
	run stat -c '%a %U' "$log"
	assert_output "600 root"
}

@test "the job runs in its own session with the caller's environment and directory" {
	cd "$BATS_TEST_TMPDIR"
	MY_VAR=hello-job "$CEDANA" run process --jid envjob -- sh -c 'echo "$MY_VAR $(pwd) $(ps -o sid= -p $$) $$"'
	log="$CEDANA_JOB_LOG_DIR/cedana-output-envjob.log"
	wait_file_contains "$log" hello-job
	read -r var dir sid pid <"$log"
	assert_equal "$var" hello-job
	assert_equal "$dir" "$BATS_TEST_TMPDIR"
	assert_equal "$sid" "$pid"
}

@test "--out writes output to a file and --pid-file records the PID" {
	run "$CEDANA" run process --jid outjob -o out.txt --pid-file "$BATS_TEST_TMPDIR/pid" -- sh -c 'echo hi-out'
	assert_success
	wait_file_contains "$PWD/out.txt" hi-out
	rm -f "$PWD/out.txt"
	assert_equal "$(cat "$BATS_TEST_TMPDIR/pid")" "$(job_field outjob pid)"
	assert_equal "$(job_field outjob log)" "$PWD/out.txt"
	assert_file_not_exists "$CEDANA_JOB_LOG_DIR/cedana-output-outjob.log"
}

@test "a --pid-file that cannot be written fails before the job starts; a failed run leaves no pid file" {
	for mode in "" --no-server; do
		# shellcheck disable=SC2086
		run "$CEDANA" run process $mode --pid-file "$BATS_TEST_TMPDIR/missing/pid" -- touch "$BATS_TEST_TMPDIR/ran"
		assert_failure 1
		assert_output --partial "pid file $BATS_TEST_TMPDIR/missing/pid"
		# shellcheck disable=SC2086
		run "$CEDANA" run process $mode --pid-file "$BATS_TEST_TMPDIR" -- touch "$BATS_TEST_TMPDIR/ran"
		assert_failure 1
		# shellcheck disable=SC2086
		run "$CEDANA" run process $mode --pid-file "$BATS_TEST_TMPDIR/p" -- /no/such/command
		assert_failure
		assert_file_not_exists "$BATS_TEST_TMPDIR/p"
	done
	sleep 0.2
	assert_file_not_exists "$BATS_TEST_TMPDIR/ran"
	assert_equal "$(sqlite3 "$CEDANA_DB_PATH" 'SELECT count(*) FROM jobs')" 0
}

@test "a duplicate job id is refused" {
	"$CEDANA" run process --jid dup "$WORKLOADS/date-loop.sh"
	run "$CEDANA" run process --jid dup true
	assert_failure 1
	assert_output "Error: job dup already exists"
	run "$CEDANA" run process --jid 'bad/id' true
	assert_failure 1
	assert_output --partial 'invalid job id "bad/id"'
}

@test "command not found: refused, no job, no log left behind" {
	run "$CEDANA" run process --jid ghost no-such-command-xyz
	assert_failure 1
	assert_output "Error: command not found: no-such-command-xyz"
	run "$CEDANA" ps
	refute_output --partial ghost
	assert_file_not_exists "$CEDANA_JOB_LOG_DIR/cedana-output-ghost.log"
	run "$CEDANA" job inspect ghost
	assert_failure
}

@test "job inspect prints JSON with the exit code of an ended job" {
	"$CEDANA" run process --jid ends "$WORKLOADS/exit-code.sh" 3
	wait_job_field ends exit_code 3
	run "$CEDANA" job inspect ends
	assert_success
	run python3 -c "import json, sys; j = json.loads(sys.argv[1]); print(j['jid'], j['type'], j['status'], j['exit_code'], j['cmd'][-1])" "$output"
	assert_output "ends process halted 3 3"
	run "$CEDANA" job inspect nope
	assert_failure 1
	assert_output "Error: job nope not found"
}

@test "job kill sends a signal; the exit code records it" {
	"$CEDANA" run process --jid k1 "$WORKLOADS/date-loop.sh"
	"$CEDANA" run process --jid k2 "$WORKLOADS/date-loop.sh"
	run "$CEDANA" job kill k1 --signal TERM
	assert_success
	assert_output "killed k1 (TERM)"
	wait_job_field k1 exit_code 143
	run "$CEDANA" kill k2
	assert_success
	wait_job_field k2 exit_code 137
	assert_equal "$(job_field k2 status)" halted
	run "$CEDANA" job kill k1
	assert_failure 1
	assert_output "Error: job k1 is not running"
	run "$CEDANA" kill nope
	assert_failure 1
	assert_output "Error: job nope not found"
	run "$CEDANA" kill k1 --signal NOPE
	assert_failure 1
	assert_output 'Error: unknown signal "NOPE"'
}

@test "job kill takes several jobs and the whole process group" {
	"$CEDANA" run process --jid g1 -- sh -c 'sleep 300 & wait'
	"$CEDANA" run process --jid g2 "$WORKLOADS/date-loop.sh"
	pid=$(job_field g1 pid)
	sleep 0.2
	child=$(pgrep -P "$pid" sleep)
	run "$CEDANA" job kill g1 g2 -s 15
	assert_success
	wait_job_field g1 status halted
	wait_job_field g2 status halted
	run kill -0 "$child"
	assert_failure
}

@test "job delete kills a live job and removes it" {
	"$CEDANA" run process --jid d1 "$WORKLOADS/date-loop.sh"
	"$CEDANA" run process --jid d2 true
	pid=$(job_field d1 pid)
	run "$CEDANA" job delete d1 d2
	assert_success
	assert_output $'deleted d1\ndeleted d2'
	for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
	run kill -0 "$pid"
	assert_failure
	run "$CEDANA" ps
	assert_output --regexp '^JOB[^\n]*$'
	run "$CEDANA" delete d1
	assert_failure 1
	assert_output "Error: job d1 not found"
}

@test "manage process adopts a running process" {
	sleep 300 3>&- &
	pid=$!
	echo "$pid" >>"$BATS_TEST_TMPDIR/extra.pids"
	run "$CEDANA" manage process "$pid" --jid adopted
	assert_success
	assert_output adopted
	run "$CEDANA" ps
	assert_line --index 1 --regexp "^adopted +process +$pid +sleep +no"
	assert_equal "$(job_field adopted cmd)" "['sleep', '300']"
	run "$CEDANA" manage process "$pid"
	assert_failure 1
	assert_output "Error: process $pid is already managed as job adopted"
	run "$CEDANA" job kill adopted
	assert_success
	wait_job_field adopted status halted
}

@test "manage process: bad PIDs and --upcoming are refused" {
	run "$CEDANA" manage process 4000000
	assert_failure 1
	assert_output "Error: no process with PID 4000000"
	run "$CEDANA" manage process abc
	assert_failure 1
	assert_output 'Error: invalid PID "abc"'
	run "$CEDANA" manage process --upcoming
	assert_failure 1
	assert_output --partial "--upcoming is for containers"
	run "$CEDANA" ps
	assert_equal "${#lines[@]}" 1
}

@test "a file planted under the job's log name is replaced, not written through" {
	echo precious >"$BATS_TEST_TMPDIR/precious"
	ln "$BATS_TEST_TMPDIR/precious" "$CEDANA_JOB_LOG_DIR/cedana-output-planted.log"
	"$CEDANA" run process --jid planted -- sh -c 'echo job-output'
	wait_file_contains "$CEDANA_JOB_LOG_DIR/cedana-output-planted.log" job-output
	assert_equal "$(cat "$BATS_TEST_TMPDIR/precious")" precious
}

@test "ps shows a job's newest checkpoint: age and size" {
	"$CEDANA" run process --jid ck "$WORKLOADS/date-loop.sh"
	now=$(date +%s)
	sqlite3 "$CEDANA_DB_PATH" "INSERT INTO checkpoints (id, jid, time, size, path, compression) VALUES ('ck-1', 'ck', $((now - 7200)), 1024, '/x1', 'none');
		INSERT INTO checkpoints (id, jid, time, size, path, compression) VALUES ('ck-2', 'ck', $((now - 2)), 659456, '/x2', 'zstd')"
	run "$CEDANA" ps
	assert_line --index 1 --regexp '^ck +process +[0-9]+ +(sleep|running) +no +[0-9] seconds ago +644 KiB +/'
	assert_equal "$(job_field ck checkpoint)" "{'id': 'ck-2', 'jid': 'ck', 'time': $((now - 2)), 'size': 659456, 'path': '/x2', 'compression': 'zstd', 'parent': None}"
}
