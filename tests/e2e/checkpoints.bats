#!/usr/bin/env bats
# Checkpoint records: job checkpoints / checkpoints, checkpoint inspect and
# delete, the CHECKPOINT and SIZE columns of ps, --profiling and progress.
load cr-helpers

setup() {
	cr_setup
}

teardown() {
	cr_teardown
}

@test "job checkpoints lists ID TIME SIZE PARENT PATH, newest first; checkpoints is an alias" {
	start_counter c
	run "$CEDANA" dump job c --leave-running --name first
	assert_success
	run "$CEDANA" dump job c --name second --compression gzip
	assert_success
	run "$CEDANA" job checkpoints c
	assert_success
	assert_line --index 0 --regexp '^ID +TIME +SIZE +PARENT +PATH$'
	assert_line --index 1 --regexp "^ck-[0-9a-f]{12} +[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9:]{8} +[0-9.]+ KiB +- +$CK/second.tar.gz$"
	assert_line --index 2 --regexp "^ck-[0-9a-f]{12} +.* +- +$CK/first$"
	assert_equal "${#lines[@]}" 3
	list=$output
	run "$CEDANA" checkpoints c
	assert_output "$list"
	# ps shows the newest one
	assert_equal "$(job_field c checkpoint | grep -o "second.tar.gz")" second.tar.gz
}

@test "checkpoint inspect shows one record; checkpoint delete removes it and its files" {
	start_counter d
	run "$CEDANA" dump job d --leave-running --name keep
	run "$CEDANA" dump job d --name gone --compression zstd
	id=$("$CEDANA" job checkpoints d | awk 'NR == 2 {print $1}')
	run "$CEDANA" checkpoint inspect "$id"
	assert_success
	assert_equal "$(python3 -c 'import json,sys; c=json.load(sys.stdin); print(c["jid"], c["path"], c["compression"], c["size"] > 0)' <<<"$output")" "d $CK/gone.tar.zst zstd True"
	run "$CEDANA" checkpoint delete "$id"
	assert_success
	assert_output "deleted checkpoint $id"
	assert_file_not_exists "$CK/gone.tar.zst"
	run "$CEDANA" job checkpoints d
	assert_equal "${#lines[@]}" 2
	assert_output --partial "$CK/keep"
	# a directory checkpoint goes as a whole
	id=$("$CEDANA" job checkpoints d | awk 'NR == 2 {print $1}')
	run "$CEDANA" checkpoint delete "$id"
	assert_success
	assert_equal "$(entries "$CK")" ""
	run "$CEDANA" ps
	assert_line --index 1 --regexp '^d +process +[0-9]+ +halted +no +/'
	run "$CEDANA" restore job d
	assert_failure 1
	assert_output "Error: job d has no checkpoint"
}

@test "checkpoint inspect/delete and job checkpoints refuse unknown ids" {
	run "$CEDANA" checkpoint inspect ck-nope
	assert_failure 1
	assert_output "Error: checkpoint ck-nope not found"
	run "$CEDANA" checkpoint delete ck-nope
	assert_failure 1
	assert_output "Error: checkpoint ck-nope not found"
	run "$CEDANA" job checkpoints nope
	assert_failure 1
	assert_output "Error: job nope not found"
}

@test "--profiling breaks down where the time went; the path stays the last word" {
	start_counter p
	run "$CEDANA" dump job p --compression lz4 --profiling
	assert_success
	assert_line --index 0 profiling:
	for phase in freeze 'task state' files memory 'write page files' fsync 'kill the tree' \
		'engine dump' compress total; do
		assert_line --regexp "^  $phase .* [0-9.]+ ms\$"
	done
	path=$(last_word)
	assert_file_exists "$path"
	run "$CEDANA" restore job p --profiling
	assert_success
	for phase in unpack validate files 'create the tree' memory 'other state' release \
		'engine restore' total; do
		assert_line --regexp "^  $phase .* [0-9.]+ ms\$"
	done
	finish_counter p
}

@test "restore --no-server --profiling prints the engine's phases on stderr" {
	start_counter q
	run "$CEDANA" dump job q --compression zstd
	assert_success
	path=$(last_word)
	touch "$(trigger_of q)"
	"$CEDANA" restore process --path "$path" --no-server --profiling >"$BATS_TEST_TMPDIR/out" \
		2>"$BATS_TEST_TMPDIR/err"
	for phase in unpack validate 'create the tree' memory 'engine restore' total; do
		assert_file_contains "$BATS_TEST_TMPDIR/err" "^  $phase .* [0-9.]* ms\$"
	done
	run grep -c profiling "$BATS_TEST_TMPDIR/out"
	assert_output 0
	assert_file_contains "$BATS_TEST_TMPDIR/out" '^PASS$'
}

@test "progress of an operation in flight is served at /v1/ops/ID; unknown ids are 404" {
	run curl -sS -w ' %{http_code}' --unix-socket "$CEDANA_ADDRESS" http://localhost/v1/ops/nope
	assert_output '{"error":"no operation nope in flight"}
 404'
}

@test "a dump or restore on a terminal shows its progress (bytes done / total)" {
	CEDANA_WL_TRIGGER=$(trigger_of m) "$CEDANA" run process --jid m -- "$WL_BIN/wl-memory" 48
	wait_file_contains "$(log_of m)" READY
	export CEDANA_PROGRESS_AFTER=0
	run "$TERM_PY" -- "$CEDANA" dump job m --compression gzip
	assert_success
	assert_output --regexp 'compress  [0-9.]+ [KMG]iB / [0-9.]+ [KMG]iB'
	# the progress line is cleared with \r: the path is still the last word
	assert_regex "$(last_word | tr -d '\r')" "^$CK/dump-job-m-[0-9]+\.tar\.gz$"
	# not on a pipe
	run "$CEDANA" restore job m
	assert_success
	refute_output --partial restore
	touch "$(trigger_of m)"
	wait_job_field m exit_code 0
	assert_file_contains "$(log_of m)" '^PASS$'
}
