#!/usr/bin/env bats
# Attach on a real terminal (tests/e2e/term.py runs the CLI on a pty).
load helpers

setup() {
	common_setup
}

teardown() {
	common_teardown
}

@test "run --attach streams output and passes the exit code through" {
	run "$TERM_PY" -- "$CEDANA" run process --attach --jid a "$WORKLOADS/date-loop.sh" 2 7
	assert_failure 7
	assert_equal "$(grep -c 'UTC' <<<"$output")" 2
	assert_equal "$(job_field a exit_code)" 7
}

@test "run --attach forwards stdin to the job" {
	run "$TERM_PY" 'sleep:0.3' 'send:ping\n' 'wait:ping.*ping' 'send:\x04' -- \
		"$CEDANA" run process -a --jid cat cat
	assert_success
	# the job's terminal echoes it and cat writes it back; on a loaded
	# machine the outer terminal may echo it once more before the CLI has
	# made it raw (as with any tool typed into before it starts)
	n=$(grep -c ping <<<"$output")
	[ "$n" -ge 2 ] && [ "$n" -le 3 ]
}

@test "Ctrl-C detaches and the job keeps running; job attach reattaches" {
	run "$TERM_PY" 'wait:UTC' 'send:\x03' -- "$CEDANA" run process -a --jid loop "$WORKLOADS/date-loop.sh"
	assert_success
	assert_output --partial "detached from job loop"
	assert_equal "$(job_field loop status)" sleep
	run "$CEDANA" ps
	assert_line --index 1 --regexp '^loop +process +[0-9]+ +(sleep|running) +no +\[Attachable\]$'
	run "$TERM_PY" 'wait:UTC' 'send:\x03' -- "$CEDANA" job attach loop
	assert_success
	assert_output --partial UTC
	assert_equal "$(job_field loop status)" sleep
}

@test "attach keeps up with a job that writes as fast as it can; Ctrl-C detaches" {
	"$CEDANA" run process --attachable --jid flood -- sh -c 'while :; do echo tick; done'
	sleep 1 # let the daemon's replay buffer fill up
	run "$TERM_PY" 'sleep:1' 'send:\x03' -- "$CEDANA" job attach flood
	assert_success
	refute_output --partial "connection to the daemon was lost"
	assert_output --partial "detached from job flood"
	assert [ "$(grep -c tick <<<"$output")" -gt 1000 ]
	assert_regex "$(job_field flood status)" '^(running|sleep)$'
}

@test "--attachable buffers output until someone attaches; attach by PID" {
	run "$CEDANA" run process --attachable --jid later -- sh -c 'echo early-output; read x; echo "got $x"; exit 4'
	assert_success
	pid=$(job_field later pid)
	sleep 0.3
	run "$TERM_PY" 'wait:early-output' 'send:abc\r' 'wait:got abc' -- "$CEDANA" attach "$pid"
	assert_failure 4
}

@test "attaching to an ended attachable job replays its output and exit code" {
	"$CEDANA" run process --attachable --jid done -- sh -c 'echo last-words; exit 5'
	wait_job_field done exit_code 5
	run "$TERM_PY" -- "$CEDANA" job attach done
	assert_failure 5
	assert_output --partial last-words
}

@test "attach refuses jobs that are not attachable or do not exist" {
	"$CEDANA" run process --jid plain "$WORKLOADS/date-loop.sh"
	run "$CEDANA" job attach plain
	assert_failure 1
	assert_output "Error: job plain is not attachable (run it with --attachable)"
	run "$CEDANA" job attach nope
	assert_failure 1
	assert_output "Error: job nope not found"
	run "$CEDANA" attach 4000000
	assert_failure 1
	assert_output "Error: no job with PID 4000000"
	run "$CEDANA" attach "$(job_field plain pid)"
	assert_failure 1
	assert_output --partial "is not attachable"
	run "$CEDANA" run process --attach --out x.log true
	assert_failure 2
	assert_output --partial "--out cannot be combined"
}
