#!/usr/bin/env bats
# Plugins through the daemon (docs/plugins.md), with the test plugin
# (tests/plugins): its hooks run in the dump and restore workers, its file
# travels with the checkpoint, inspect shows it, and restore --no-server
# loads plugins too.
load cr-helpers

setup() {
	export CEDANA_PLUGINS_DIR="$BUILD_DIR/tests/plugins/good"
	export CEDANA_TEST_PLUGIN_LOG="$BATS_TEST_TMPDIR/hooks"
	cr_setup
}

teardown() {
	cr_teardown
}

@test "plugins: dump job and restore job run the hooks; inspect shows the plugin's file" {
	start_counter p
	pid=$("$CEDANA" job inspect p | jq -r .pid)
	run "$CEDANA" dump job p --compression lz4
	assert_success
	run cat "$BATS_TEST_TMPDIR/hooks"
	assert_output "pause_devices $pid
checkpoint_devices $pid"
	id=$("$CEDANA" job checkpoints p | awk 'NR == 2 {print $1}')
	run "$CEDANA" checkpoint inspect "$id"
	assert_success
	assert_equal "$(jq -c .plugins <<<"$output")" "{\"test\":{\"test\":true,\"pid\":$pid}}"
	# the file is in the archive, 0600
	run tar --use-compress-program=lz4 -tvf "$(jq -r .path <<<"$output")"
	assert_line --regexp '^-rw------- .* plugin-test\.json$'
	run "$CEDANA" restore job p
	assert_success
	run tail -2 "$BATS_TEST_TMPDIR/hooks"
	assert_output "restore_prepare 0
restore_devices $pid"
	finish_counter p
}

@test "plugins: a failing pause_devices fails dump job; the job runs on" {
	# the daemon's environment is its workers'
	stop_daemon
	export CEDANA_TEST_PLUGIN_FAIL=pause_devices
	start_daemon
	start_counter r
	run "$CEDANA" dump job r
	assert_failure
	assert_output --partial "plugin test: pause_devices: pause_devices failed as asked"
	assert_equal "$(entries "$CK")" ""
	finish_counter r
}

@test "plugins: restore --no-server refuses an image whose plugin is not loaded, by name" {
	start_counter n
	run "$CEDANA" dump job n
	assert_success
	path=$(last_word)
	CEDANA_PLUGINS_DIR="$BATS_TEST_TMPDIR/none" run "$CEDANA" restore process "$path" --no-server
	assert_failure
	assert_output --partial "image needs plugin test, which is not loaded"
}
