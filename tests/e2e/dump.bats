#!/usr/bin/env bats
# cedana dump process|job: flags, names, where the image goes, and refusals.
load cr-helpers

setup() {
	cr_setup
}

teardown() {
	cr_teardown
}

@test "dump job: the job halts, the path is the last word, the file is 0600, ps shows CHECKPOINT and SIZE" {
	start_counter c
	run "$CEDANA" dump job c --compression lz4
	assert_success
	path=$(last_word)
	assert_regex "$path" "^$CK/dump-job-c-[0-9]+\.tar\.lz4$"
	assert_file_exists "$path"
	assert_equal "$(stat -c %a "$path")" 600
	wait_job_field c status halted
	run "$CEDANA" ps
	assert_line --index 1 --regexp '^c +process +[0-9]+ +halted +no +[0-9]+ seconds? ago +[0-9.]+ KiB +/'
	assert_equal "$(entries "$CK")" "$(basename "$path")"
}

@test "dump process: --dir, --name, --compression; -d; default name dump-process-PID-SECONDS" {
	no_inherited_fds setsid "$WORKLOADS/date-loop.sh" </dev/null >/dev/null 2>&1 &
	pid=$!
	wait_exec "$pid"
	echo "$pid" >>"$BATS_TEST_TMPDIR/extra.pids"
	mkdir "$BATS_TEST_TMPDIR/out"
	run "$CEDANA" dump process "$pid" --dir "$BATS_TEST_TMPDIR/out" --name before-upgrade --compression gzip --leave-running
	assert_success
	assert_equal "$(last_word)" "$BATS_TEST_TMPDIR/out/before-upgrade.tar.gz"
	assert_file_exists "$BATS_TEST_TMPDIR/out/before-upgrade.tar.gz"
	kill -0 "$pid"
	before=$(date +%s)
	run "$CEDANA" dump process "$pid" -d "$BATS_TEST_TMPDIR/out"
	assert_success
	path=$(last_word)
	assert_regex "$path" "^$BATS_TEST_TMPDIR/out/dump-process-$pid-[0-9]+$"
	[ "${path##*-}" -ge "$before" ]
	assert_dir_exists "$path"
	assert_equal "$(stat -c %a "$path")" 700
	# without --leave-running the process is gone
	for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
	run kill -0 "$pid"
	assert_failure
}

@test "dump: dir and compression default to checkpoint.dir and checkpoint.compression" {
	start_counter d
	run "$CEDANA" dump job d --config '{"checkpoint": {"compression": "zstd"}}'
	assert_success
	assert_regex "$(last_word)" "^$CK/dump-job-d-[0-9]+\.tar\.zst$"
}

@test "dump job --leave-running: the job keeps running and can be dumped again" {
	start_counter lr
	run "$CEDANA" dump job lr --leave-running --name one
	assert_success
	assert_equal "$(last_word)" "$CK/one"
	assert_regex "$(job_field lr status)" "^(sleep|running)$"
	run "$CEDANA" dump job lr --name two --compression tar
	assert_success
	assert_equal "$(last_word)" "$CK/two.tar"
	wait_job_field lr status halted
}

@test "every compression gets its suffix" {
	for c in none tar gzip lz4 zlib zstd; do
		start_counter "j-$c"
		run "$CEDANA" dump job "j-$c" --compression "$c" --name "n-$c"
		assert_success
		case $c in
		none) want="$CK/n-none" ;;
		tar) want="$CK/n-tar.tar" ;;
		gzip) want="$CK/n-gzip.tar.gz" ;;
		lz4) want="$CK/n-lz4.tar.lz4" ;;
		zlib) want="$CK/n-zlib.tar.zlib" ;;
		zstd) want="$CK/n-zstd.tar.zst" ;;
		esac
		assert_equal "$(last_word)" "$want"
		assert [ -e "$want" ]
	done
}

@test "dump refuses a PID or job that does not exist" {
	run "$CEDANA" dump process 4000000
	assert_failure 1
	assert_output "Error: no process with PID 4000000"
	run "$CEDANA" dump process abc
	assert_failure 1
	assert_output 'Error: invalid PID "abc"'
	run "$CEDANA" dump job nope
	assert_failure 1
	assert_output "Error: job nope not found"
	assert_equal "$(entries "$CK")" ""
}

@test "dump refuses an unknown compression and creates nothing" {
	start_counter u
	run "$CEDANA" dump job u --compression rar
	assert_failure 1
	assert_output "Error: unknown compression 'rar' (expected none, tar, gzip, lz4, zlib or zstd)"
	run curl -sS --unix-socket "$CEDANA_ADDRESS" http://localhost/v1/dump \
		-d '{"type": "job", "jid": "u", "compression": "rar"}'
	assert_output --partial "unknown compression 'rar'"
	assert_equal "$(entries "$CK")" ""
	assert_regex "$(job_field u status)" "^(sleep|running)$"
}

@test "dump refuses a halted job" {
	"$CEDANA" run process --jid h -- true
	wait_job_field h status halted
	run "$CEDANA" dump job h
	assert_failure 1
	assert_output "Error: job h is not running (halted): there is nothing to dump"
	assert_equal "$(entries "$CK")" ""
}

@test "dump refuses a missing directory, an existing name and a bad name; nothing left behind" {
	start_counter e
	run "$CEDANA" dump job e --dir "$BATS_TEST_TMPDIR/missing"
	assert_failure 1
	assert_output --partial "$BATS_TEST_TMPDIR/missing"
	run "$CEDANA" dump job e --name taken --leave-running
	assert_success
	run "$CEDANA" dump job e --name taken
	assert_failure 1
	assert_output "Error: $CK/taken already exists"
	run "$CEDANA" dump job e --name ../up
	assert_failure 1
	assert_output --partial 'invalid name "../up"'
	assert_equal "$(entries "$CK")" taken
	assert_regex "$(job_field e status)" "^(sleep|running)$"
}

@test "default names never collide: a taken one gets -2, -3; dump job; restore job cycles all work" {
	start_counter u
	now=$(date +%s)
	# the next few seconds' names are taken, as by dumps within one second
	for t in $(seq "$now" $((now + 5))); do
		touch "$CK/dump-job-u-$t"
	done
	run "$CEDANA" dump job u --leave-running
	assert_success
	assert_regex "$(last_word)" "^$CK/dump-job-u-[0-9]+-2$"
	run "$CEDANA" dump job u --leave-running
	assert_success
	assert_regex "$(last_word)" "^$CK/dump-job-u-[0-9]+-(2|3)$"
	for _ in 1 2 3; do
		run "$CEDANA" dump job u
		assert_success
		wait_job_field u status halted
		run "$CEDANA" restore job u
		assert_success
	done
	finish_counter u
}

@test "dump refuses a name or directory with control characters" {
	start_counter n
	run "$CEDANA" dump job n --name $'a\nb' --leave-running
	assert_failure 1
	assert_output --partial "control characters"
	run "$CEDANA" dump job n --name $'a\tb' --leave-running
	assert_failure 1
	mkdir "$BATS_TEST_TMPDIR/"$'x\ny'
	run "$CEDANA" dump job n --dir "$BATS_TEST_TMPDIR/"$'x\ny' --leave-running
	assert_failure 1
	assert_output --partial '"dir" must not contain control characters'
	assert_equal "$(entries "$CK")" ""
	assert_equal "$(entries "$BATS_TEST_TMPDIR/"$'x\ny')" ""
	run "$CEDANA" run process --jid $'j\nk' -- true
	assert_failure 1
	assert_output --partial "invalid job id"
}

@test "dump process: a process started from a shell (its session leader outside its tree) needs no flag" {
	no_inherited_fds "$WORKLOADS/date-loop.sh" </dev/null >/dev/null 2>&1 &
	pid=$!
	wait_exec "$pid"
	echo "$pid" >>"$BATS_TEST_TMPDIR/extra.pids"
	run "$CEDANA" dump process "$pid"
	assert_success
	assert_dir_exists "$(last_word)"
}

@test "a dump that fails in the engine leaves the job running and nothing in the directory" {
	stop_daemon
	CEDANA_ENGINE_FAULT=dump-memory start_daemon
	start_counter f
	run "$CEDANA" dump job f --compression gzip
	assert_failure 1
	assert_output --regexp '^Error: .+'
	assert_equal "$(entries "$CK")" ""
	assert_regex "$(job_field f status)" "^(sleep|running)$"
	assert_equal "$(job_field f checkpoint)" null
}

@test "a dump that fails while packing (disk full) lets the job run on and leaves nothing" {
	# 8 MiB of incompressible memory, and a line every 0.1 s
	"$CEDANA" run process --jid big -- python3 -u -c '
import os, time
ballast = os.urandom(8 << 20)
i = 0
while True:
    i += 1
    print(i, flush=True)
    time.sleep(0.1)'
	wait_file_contains "$(log_of big)" '^3$'
	pid=$(job_field big pid)
	run "$CEDANA" dump job big --compression none --name probe --leave-running
	assert_success
	size=$(du -sk "$CK/probe" | cut -f1)
	rm -rf "$CK/probe"
	# room for the image directory, not for it and its archive together
	full="$BATS_TEST_TMPDIR/full"
	mkdir "$full"
	mount -t tmpfs -o size=$((size * 3 / 2))k tmpfs "$full"
	echo "$full" >>"$BATS_TEST_TMPDIR/mounts"
	run "$CEDANA" dump job big --compression tar --dir "$full" --name img
	assert_failure 1
	assert_output --partial "No space left on device"
	assert_equal "$(entries "$full")" ""
	# the very process runs on, not stopped, and goes on printing
	assert_not_equal "$(job_field big status)" halted
	assert_equal "$(job_field big pid)" "$pid"
	assert_not_equal "$(awk '{print $3}' "/proc/$pid/stat")" T
	n=$(tail -n1 "$(log_of big)")
	wait_file_contains "$(log_of big)" "^$((n + 3))\$"
	run "$CEDANA" job checkpoints big
	refute_output --partial img
}

@test "dump --streams 3 --compression lz4: a directory of compressed streams, restored as any other" {
	start_counter s
	run "$CEDANA" dump job s --streams 3 --compression lz4
	assert_success
	assert_output --partial "lz4 in 3 streams"
	path=$(last_word)
	assert_regex "$path" "^$CK/dump-job-s-[0-9]+$"
	assert_dir_exists "$path"
	run jq -c .pages "$path/manifest.json"
	assert_output '{"streams":3,"codec":"lz4"}'
	assert_file_exists "$path/pages-$(jq .root "$path/manifest.json").2.img"
	wait_job_field s status halted
	run "$CEDANA" restore job s
	assert_success
	finish_counter s
}

@test "dump --streams: checkpoint.streams is the default; a bad count or a codec streams lack is refused, nothing made" {
	start_counter v
	run "$CEDANA" dump job v --streams 17
	assert_failure 1
	assert_output --partial "--streams 17: expected 1..16"
	run "$CEDANA" dump job v --streams 2 --compression gzip
	assert_failure 1
	assert_output --partial "gzip is not one of its codecs"
	assert_equal "$(entries "$CK")" ""
	CEDANA_CHECKPOINT_STREAMS=2 run "$CEDANA" dump job v --compression zstd
	assert_success
	assert_output --partial "zstd in 2 streams"
	path=$(last_word)
	run jq -c .pages "$path/manifest.json"
	assert_output '{"streams":2,"codec":"zstd"}'
}
