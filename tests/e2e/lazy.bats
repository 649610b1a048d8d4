#!/usr/bin/env bats
# cedana restore --lazy (docs/engine.md, "Lazy restore"): the tree runs
# before its memory is in; a server loads the rest, through the daemon (a
# job, its image unpacked into a scratch directory) and with --no-server.
load cr-helpers

setup() {
	cr_setup
}

teardown() {
	cr_teardown
}

@test "restore job --lazy: a compressed checkpoint, memory changed while it loads → PASS, exit 0" {
	CEDANA_WL_TRIGGER=$(trigger_of z) "$CEDANA" run process --jid z -- "$WL_BIN/wl-lazy-fork" 128
	wait_file_contains "$(log_of z)" READY
	run "$CEDANA" dump job z --compression zstd
	assert_success
	run "$CEDANA" restore job z --lazy
	assert_success
	assert_output --regexp '^Restored job z \(pid [0-9]+\)$'
	touch "$(trigger_of z)"
	wait_job_field z exit_code 0 || { cat "$(log_of z)" >&2; false; }
	assert_file_contains "$(log_of z)" '^PASS$'
}

@test "restore process --no-server --lazy: wl-memory checks its memory page by page → PASS" {
	CEDANA_WL_TRIGGER=$(trigger_of m) "$CEDANA" run process --jid m -- "$WL_BIN/wl-memory" 64
	wait_file_contains "$(log_of m)" READY
	run "$CEDANA" dump job m
	assert_success
	local ckpt
	ckpt=$(last_word)
	( sleep 1; touch "$(trigger_of m)" ) &
	run "$CEDANA" restore process --path "$ckpt" --no-server --lazy
	assert_success
	assert_output --partial PASS
}

@test "restore job --lazy: a checkpoint of lz4 streams (--streams 2), memory changed while it loads → PASS, exit 0" {
	CEDANA_WL_TRIGGER=$(trigger_of s) "$CEDANA" run process --jid s -- "$WL_BIN/wl-lazy-fork" 128
	wait_file_contains "$(log_of s)" READY
	run "$CEDANA" dump job s --streams 2 --compression lz4
	assert_success
	assert_output --partial "lz4 in 2 streams"
	run "$CEDANA" restore job s --lazy
	assert_success
	assert_output --regexp '^Restored job s \(pid [0-9]+\)$'
	touch "$(trigger_of s)"
	wait_job_field s exit_code 0 || { cat "$(log_of s)" >&2; false; }
	assert_file_contains "$(log_of s)" '^PASS$'
}
