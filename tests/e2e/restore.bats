#!/usr/bin/env bats
# cedana restore process|job: through the daemon (a job, its log or an attach
# stream) and --no-server; exit codes, repeated restores and refusals.
load cr-helpers

setup() {
	cr_setup
}

teardown() {
	cr_teardown
}

# dump_job JID [FLAGS...]: dumps and leaves the checkpoint path in $CKPT.
dump_job() {
	run "$CEDANA" dump job "$@"
	assert_success
	CKPT=$(last_word)
}

@test "run → dump job → restore job --attach exits with the job's code" {
	start_date_loop a 3 7
	wait_file_contains "$(log_of a)" UTC
	dump_job a
	run "$TERM_PY" -- "$CEDANA" restore job a --attach
	assert_failure 7
	assert_output --partial UTC
	assert_equal "$(job_field a exit_code)" 7
	assert_equal "$(grep -c UTC "$(log_of a)")" 1
}

@test "attachable job → restore job (not attached): its output and CODE go to the job's log" {
	"$CEDANA" run process --attachable --jid t -- sh -c '"$0" 3 5; c=$?; echo "code $c"; exit $c' "$WORKLOADS/date-loop.sh"
	sleep 0.3
	dump_job t
	run "$CEDANA" restore job t
	assert_success
	assert_output --regexp '^Restored job t \(pid [0-9]+\)$'
	wait_job_field t exit_code 5
	assert_file_contains "$(log_of t)" '^code 5$'
	assert_equal "$(job_field t log)" "$(log_of t)"
	assert_equal "$(job_field t attachable)" False
}

@test "job → restore process --no-server: a child of the CLI, its exit code is ours" {
	start_date_loop n 3 9
	wait_file_contains "$(log_of n)" UTC
	dump_job n --compression zstd
	run "$CEDANA" restore process --path "$CKPT" --no-server --pid-file "$BATS_TEST_TMPDIR/n.pid"
	assert_failure 9
	assert_equal "$(grep -c UTC <<<"$output")" 2
	assert_file_exists "$BATS_TEST_TMPDIR/n.pid"
	# nothing of the unpacked image is left beside the archive
	assert_equal "$(entries "$CK")" "$(basename "$CKPT")"
}

@test "every compression round-trips (wl-counter continues without a gap)" {
	for c in none tar gzip lz4 zlib zstd; do
		start_counter "c-$c"
		dump_job "c-$c" --compression "$c"
		run "$CEDANA" restore job "c-$c"
		assert_success
		finish_counter "c-$c"
	done
	assert_equal "$(entries "$CK" | grep -c .)" 6
}

@test "restore process --path: a new job whose output is appended to its log; --jid, --pid-file, --out" {
	start_counter p
	dump_job p --compression lz4
	run "$CEDANA" restore process --path "$CKPT" --jid p2 --pid-file "$BATS_TEST_TMPDIR/p2.pid"
	assert_success
	assert_equal "$(job_field p2 pid)" "$(cat "$BATS_TEST_TMPDIR/p2.pid")"
	assert_equal "$(job_field p2 pid)" "$(job_field p pid)"
	assert_equal "$(job_field p2 log)" "$(log_of p2)"
	# the restored tree is the daemon's child, so the daemon records its exit code
	assert_equal "$(ps -o ppid= -p "$(job_field p2 pid)" | tr -d ' ')" "$DAEMON_PID"
	# stdin reads /dev/null, output goes to the log
	assert_equal "$(readlink "/proc/$(job_field p2 pid)/fd/0")" /dev/null
	assert_equal "$(readlink "/proc/$(job_field p2 pid)/fd/1")" "$(log_of p2)"
	assert_equal "$(readlink "/proc/$(job_field p2 pid)/fd/2")" "$(log_of p2)"
	touch "$(trigger_of p)"
	wait_job_field p2 exit_code 0
	assert_file_contains "$(log_of p2)" '^PASS$'
	# restored again, this time into --out, with a generated job id
	run "$CEDANA" restore process --path "$CKPT" --out "$BATS_TEST_TMPDIR/out.log"
	assert_success
	jid=$(awk '{print $3}' <<<"$output")
	wait_job_field "$jid" exit_code 0
	assert_file_contains "$BATS_TEST_TMPDIR/out.log" '^PASS$'
	assert_equal "$(job_field "$jid" log)" "$BATS_TEST_TMPDIR/out.log"
}

@test "the same image restores again and again" {
	start_date_loop r 2 3
	wait_file_contains "$(log_of r)" UTC
	dump_job r --compression gzip
	for i in 1 2 3; do
		run "$CEDANA" restore job r
		assert_success
		wait_job_field r exit_code 3
	done
	assert_equal "$(grep -c UTC "$(log_of r)")" 4
	for i in 1 2; do
		run "$CEDANA" restore process --path "$CKPT" --no-server
		assert_failure 3
	done
}

@test "restore --attachable, then attach; --attach on restore process" {
	start_date_loop at 3 4
	wait_file_contains "$(log_of at)" UTC
	dump_job at
	run "$CEDANA" restore job at --attachable
	assert_success
	assert_equal "$(job_field at attachable)" True
	run "$TERM_PY" -- "$CEDANA" job attach at
	assert_failure 4
	assert_equal "$(grep -c UTC <<<"$output")" 2
	run "$TERM_PY" -- "$CEDANA" restore process --path "$CKPT" --attach --jid at2
	assert_failure 4
	assert_equal "$(job_field at2 exit_code)" 4
}

@test "restore --leave-stopped leaves the tree stopped until SIGCONT" {
	start_counter s
	dump_job s
	run "$CEDANA" restore job s --leave-stopped
	assert_success
	assert_equal "$(job_field s status)" stopped
	n=$(grep -cE '^[0-9]+$' "$(log_of s)")
	sleep 0.2
	assert_equal "$(grep -cE '^[0-9]+$' "$(log_of s)")" "$n"
	kill -CONT "$(job_field s pid)"
	finish_counter s
}

@test "restore reads an archive by its content, but only under one of our suffixes" {
	start_date_loop f 2 6
	wait_file_contains "$(log_of f)" UTC
	dump_job f --compression zstd
	# under a wrong known suffix: unpacked by its content
	mv "$CKPT" "$CK/wrong-suffix.tar.gz"
	run "$CEDANA" restore process --path "$CK/wrong-suffix.tar.gz" --no-server
	assert_failure 6
	run "$CEDANA" restore process --path "$CK/wrong-suffix.tar.gz" --jid f2
	assert_success
	wait_job_field f2 exit_code 6
	# under an unknown suffix: refused, naming the suffixes, nothing created
	mv "$CK/wrong-suffix.tar.gz" "$CK/renamed.bin"
	msg="Error: checkpoint $CK/renamed.bin: not a checkpoint image: an archive's name ends in one of .tar, .tar.gz, .tar.lz4, .tar.zlib, .tar.zst (or give an image directory)"
	run "$CEDANA" restore process --path "$CK/renamed.bin" --jid f3
	assert_failure 1
	assert_output "$msg"
	run "$CEDANA" restore process --path "$CK/renamed.bin" --no-server
	assert_failure 1
	assert_output "$msg"
	run "$CEDANA" job inspect f3
	assert_output "Error: job f3 not found"
	assert_file_not_exists "$(log_of f3)"
	assert_equal "$(entries "$CK")" "renamed.bin"
}

@test "restore refuses a path that does not exist, an unrecognised and a corrupted archive; nothing left behind" {
	run "$CEDANA" restore process --path "$CK/nope.tar"
	assert_failure 1
	assert_output "Error: checkpoint $CK/nope.tar: No such file or directory"
	echo "not an image" >"$CK/junk.tar.zst"
	run "$CEDANA" restore process --path "$CK/junk.tar.zst"
	assert_failure 1
	assert_output --partial "not a checkpoint image"
	start_counter k
	dump_job k --compression gzip
	size=$(stat -c %s "$CKPT")
	head -c $((size / 2)) "$CKPT" >"$CK/half.tar.gz"
	run "$CEDANA" restore process --path "$CK/half.tar.gz" --jid half
	assert_failure 1
	assert_output --partial "$CK/half.tar.gz"
	run "$CEDANA" restore process --path "$CK/half.tar.gz" --no-server
	assert_failure 1
	run "$CEDANA" job inspect half
	assert_output "Error: job half not found"
	assert_file_not_exists "$(log_of half)"
	assert_equal "$(entries "$CK" | sort | tr '\n' ' ')" "$(basename "$CKPT") half.tar.gz junk.tar.zst "
	run "$CEDANA" restore process
	assert_failure 2
	assert_line --index 0 "Error: restore process needs --path PATH of a checkpoint"
}

@test "restore job refuses an unknown job, a job with no checkpoint and a running job" {
	run "$CEDANA" restore job nope
	assert_failure 1
	assert_output "Error: job nope not found"
	start_counter b
	run "$CEDANA" restore job b
	assert_failure 1
	assert_output --regexp "^Error: job b is still running \(pid [0-9]+\): kill it before restoring it$"
	"$CEDANA" job kill b
	wait_job_field b status halted
	run "$CEDANA" restore job b
	assert_failure 1
	assert_output "Error: job b has no checkpoint"
}

@test "restore refuses while the original still holds the PID" {
	start_counter busy
	dump_job busy --leave-running
	run "$CEDANA" restore process --path "$CKPT"
	assert_failure 1
	assert_output --regexp "pid [0-9]+ is in use.*still running"
	run "$CEDANA" restore process --path "$CKPT" --no-server
	assert_failure 1
	assert_output --regexp "pid [0-9]+ is in use.*still running"
	assert_regex "$(job_field busy status)" "^(sleep|running)$"
	run "$CEDANA" ps
	assert_equal "$(grep -c process <<<"$output")" 1
}

@test "a restored job is dumped and restored again, and again" {
	start_counter again
	for c in none gzip zstd; do
		dump_job again --compression "$c"
		run "$CEDANA" restore job again
		assert_success
		sleep 0.2
	done
	finish_counter again
	assert_equal "$("$CEDANA" job checkpoints again | grep -c '^ck-')" 3
}

@test "restore process --no-server --out writes the output to the file" {
	start_date_loop o 2 8
	wait_file_contains "$(log_of o)" UTC
	dump_job o
	run "$CEDANA" restore process --path "$CKPT" --no-server --out "$BATS_TEST_TMPDIR/o.log"
	assert_failure 8
	assert_output ""
	assert_equal "$(grep -c UTC "$BATS_TEST_TMPDIR/o.log")" 1
}

@test "a restore that fails in the engine leaves no process, job, log or scratch directory" {
	# the fault hits a task below the root: date-loop.sh sleeping in its child
	start_date_loop g 0 0
	wait_file_contains "$(log_of g)" UTC
	sleep 0.2
	dump_job g --compression lz4
	stop_daemon
	CEDANA_ENGINE_FAULT=restore-transplant start_daemon
	pid=$(job_field g pid)
	run "$CEDANA" restore process --path "$CKPT" --jid g2
	assert_failure 1
	assert_output --regexp '^Error: .+'
	run "$CEDANA" job inspect g2
	assert_output "Error: job g2 not found"
	assert_file_not_exists "$(log_of g2)"
	run "$CEDANA" restore job g
	assert_failure 1
	assert_equal "$(job_field g status)" halted
	assert_equal "$(entries "$CK")" "$(basename "$CKPT")"
	run kill -0 "$pid"
	assert_failure
}

@test "restore with a --pid-file that cannot be written restores nothing" {
	start_counter w
	dump_job w
	for mode in "" --no-server; do
		# shellcheck disable=SC2086
		run "$CEDANA" restore process --path "$CKPT" $mode --pid-file "$BATS_TEST_TMPDIR/missing/pid"
		assert_failure 1
		assert_output --partial "pid file $BATS_TEST_TMPDIR/missing/pid"
	done
	run "$CEDANA" restore job w --pid-file "$BATS_TEST_TMPDIR/missing/pid"
	assert_failure 1
	assert_equal "$(sqlite3 "$CEDANA_DB_PATH" 'SELECT count(*) FROM jobs')" 1
	assert_equal "$(job_field w status)" halted
	# the checkpoint still restores: no process took its PIDs
	run "$CEDANA" restore job w --pid-file "$BATS_TEST_TMPDIR/w.pid"
	assert_success
	assert_equal "$(cat "$BATS_TEST_TMPDIR/w.pid")" "$(job_field w pid)"
	finish_counter w
}

@test "a failed restore is logged by the daemon, as a failed dump is" {
	start_counter busy
	dump_job busy --leave-running
	run "$CEDANA" restore process --path "$CKPT"
	assert_failure 1
	assert_file_contains "$BATS_TEST_TMPDIR/daemon.log" \
		"warn .* restore of $CKPT failed: restore: pid $(job_field busy pid) is in use"
}
