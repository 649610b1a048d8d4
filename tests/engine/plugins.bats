#!/usr/bin/env bats
# The plugin hook points of the engine (docs/plugins.md), with the test
# plugin (tests/plugins/test-plugin.c): it appends "HOOK PID" to
# $CEDANA_TEST_PLUGIN_LOG, fails the hook named by $CEDANA_TEST_PLUGIN_FAIL.
load helpers

setup() {
	engine_setup
	export CEDANA_PLUGINS_DIR="$BUILD_DIR/tests/plugins/good"
	export CEDANA_TEST_PLUGIN_LOG="$T/hooks"
	unset CEDANA_TEST_PLUGIN_FAIL CEDANA_TEST_PLUGIN_FAIL_PID CEDANA_TEST_PLUGIN_THREAD_RUN
}
teardown() { engine_teardown; }

# tree_pids: the workload's tasks, parents first, sorted for comparison
tree_pids() { descendants "$WL_PID" | sort -n; }

# hook_pids HOOK: the pids the hook was called for, sorted
hook_pids() { awk -v h="$1" '$1 == h { print $2 }' "$T/hooks" | sort -n; }

@test "plugins: dump and restore call the hooks in order, for every task of the tree" {
	start_wl "$WL_DIR/wl-tree"
	pids=$(tree_pids)
	[ "$(echo "$pids" | wc -l)" -gt 1 ]
	dump_restore
	assert_success
	run tail -1 "$LOG"
	assert_output "PASS"
	[ "$(hook_pids pause_devices)" = "$pids" ]
	[ "$(hook_pids checkpoint_devices)" = "$pids" ]
	[ "$(hook_pids restore_devices)" = "$pids" ]
	# no resume after a dump that killed the tree
	run grep -c '^resume_devices' "$T/hooks"
	assert_output 0
	# every pause before any checkpoint, restore_prepare (pid 0) once before restore_devices
	run awk '{print $1}' "$T/hooks"
	assert_output "$(for p in $pids; do echo pause_devices; done
		for p in $pids; do echo checkpoint_devices; done
		echo restore_prepare
		for p in $pids; do echo restore_devices; done)"
	grep -qx 'restore_prepare 0' "$T/hooks"
	# the image records the plugin and its tasks, and keeps its file, 0600
	run jq -c '.plugins | map({name, pids: (.pids | sort)})' "$IMG/manifest.json"
	assert_output "[{\"name\":\"test\",\"pids\":[$(echo $pids | tr ' ' ',')]}]"
	[ "$(stat -c %a "$IMG/plugin-test.json")" = 600 ]
}

@test "plugins: --leave-running calls resume_devices for every paused task" {
	start_wl "$WL_DIR/wl-tree"
	pids=$(tree_pids)
	run "$ENGINE" dump "$WL_PID" "$IMG" --leave-running
	assert_success
	kill -0 "$WL_PID"
	[ "$(hook_pids resume_devices)" = "$pids" ]
	grep -q '^resume_devices [0-9]* leave-running$' "$T/hooks"
	run grep -c 'failed' "$T/hooks"
	assert_output 0
}

@test "plugins: a failing pause_devices fails the dump: the tree runs on, no image, resume called" {
	start_wl "$WL_DIR/wl-tree"
	pids=$(tree_pids)
	# the second task's pause fails: the root was paused and is resumed
	second=$(descendants "$WL_PID" | sed -n 2p)
	export CEDANA_TEST_PLUGIN_FAIL=pause_devices CEDANA_TEST_PLUGIN_FAIL_PID=$second
	run "$ENGINE" dump "$WL_PID" "$IMG"
	assert_failure
	assert_output --partial "pid $second: plugin test: pause_devices: pause_devices failed as asked"
	assert [ ! -e "$IMG" ]
	for p in $pids; do
		run awk '{print $3}' "/proc/$p/stat"
		refute_output T
		run grep TracerPid "/proc/$p/status"
		assert_output --regexp 'TracerPid:[[:space:]]+0$'
	done
	# the one that failed is not resumed (it returned no OK), the root is
	run cat "$T/hooks"
	assert_output "pause_devices $WL_PID
pause_devices $second
resume_devices $WL_PID failed"
}

@test "plugins: a failing checkpoint_devices fails the dump and resumes every paused task" {
	start_wl "$WL_DIR/wl-tree"
	pids=$(tree_pids)
	export CEDANA_TEST_PLUGIN_FAIL=checkpoint_devices
	run "$ENGINE" dump "$WL_PID" "$IMG"
	assert_failure
	assert_output --partial "plugin test: checkpoint_devices"
	assert [ ! -e "$IMG" ]
	kill -0 "$WL_PID"
	[ "$(hook_pids resume_devices)" = "$pids" ]
	grep -q '^resume_devices [0-9]* failed$' "$T/hooks"
	# it still works after the failed dump: a dump now succeeds and restores
	unset CEDANA_TEST_PLUGIN_FAIL
	dump_restore
	assert_success
	run tail -1 "$LOG"
	assert_output "PASS"
}

@test "plugins: a failing restore_devices fails the restore and leaves nothing behind" {
	start_wl "$WL_DIR/wl-tree"
	pids=$(tree_pids)
	run "$ENGINE" dump "$WL_PID" "$IMG"
	assert_success
	wait "$WL_PID" 2>/dev/null || true
	WL_PID=
	export CEDANA_TEST_PLUGIN_FAIL=restore_devices
	run timeout 60 "$ENGINE" restore "$IMG" --stdout "$LOG" --stderr "$LOG"
	assert_failure
	assert_output --partial "plugin test: restore_devices: restore_devices failed as asked"
	for p in $pids; do
		assert [ ! -e "/proc/$p" ]
	done
}

@test "plugins: restore_devices may let a thread run and stop it again (thread_run/thread_stop)" {
	start_wl "$WL_DIR/wl-tree"
	export CEDANA_TEST_PLUGIN_THREAD_RUN=1
	dump_restore
	assert_success
	run tail -1 "$LOG"
	assert_output "PASS"
}

@test "plugins: an image that needs a plugin that is not loaded is refused by name, before anything is created" {
	start_wl "$WL_DIR/wl-tree"
	pids=$(tree_pids)
	run "$ENGINE" dump "$WL_PID" "$IMG"
	assert_success
	wait "$WL_PID" 2>/dev/null || true
	WL_PID=
	export CEDANA_PLUGINS_DIR="$T/no-plugins"
	run timeout 60 "$ENGINE" restore "$IMG" --stdout "$LOG" --stderr "$LOG"
	assert_failure
	assert_output "cedana-engine: restore: image needs plugin test, which is not loaded"
	for p in $pids; do
		assert [ ! -e "/proc/$p" ]
	done
	run grep -c '^restore' "$T/hooks"
	assert_output 0
}

@test "plugins: a plugin that takes no part is not recorded and not needed" {
	start_wl "$WL_DIR/wl-counter"
	unset CEDANA_TEST_PLUGIN_LOG
	run "$ENGINE" dump "$WL_PID" "$IMG"
	assert_success
	run jq 'has("plugins")' "$IMG/manifest.json"
	assert_output false
	wait "$WL_PID" 2>/dev/null || true
	WL_PID=
	export CEDANA_PLUGINS_DIR="$T/no-plugins"
	( sleep 0.5; touch "$TRIGGER" ) &
	run timeout 60 "$ENGINE" restore "$IMG" --stdout "$LOG" --stderr "$LOG"
	assert_success
}

@test "plugins: an fd the engine refuses is left out when a plugin claims it" {
	# /dev/full: a character device the engine does not reopen (as a GPU's)
	start_wl bash -c 'exec 7>/dev/full; exec "$0"' "$BUILD_DIR/tests/engine/engine-counter"
	readlink "/proc/$WL_PID/fd/7" | grep -qx /dev/full
	run "$ENGINE" dump "$WL_PID" "$IMG"
	assert_failure
	assert_output --partial "fd 7 (/dev/full): unsupported file kind"
	assert [ ! -e "$IMG" ]
	export CEDANA_TEST_PLUGIN_CLAIM=/dev/full
	dump_restore
	assert_success
	run tail -1 "$LOG"
	assert_output "PASS"
	grep -qx "claim_fd $(head -1 <(awk '$1 == "pause_devices" {print $2}' "$T/hooks"))" "$T/hooks"
	run jq -r '.tasks[0].fds[].fd' "$IMG/manifest.json"
	refute_line 7
}

# ---- the CLI: plugin list, features, check (no daemon needed) ----

@test "plugins: plugin list shows each plugin, its version, status, detail and file" {
	run "$CEDANA" plugin list
	assert_success
	assert_line --regexp '^NAME +VERSION +STATUS +DETAIL$'
	assert_line --regexp '^test +1\.0\.0 +ready +test plugin ready$'
	assert_line --regexp "^ +$BUILD_DIR/tests/plugins/good/test-plugin\.so$"
	CEDANA_PLUGINS_DIR="$BUILD_DIR/tests/plugins/bad" run "$CEDANA" plugin list
	assert_success
	assert_line --regexp '^bad-abi +- +broken +plugin ABI version 99, this cedana knows 1$'
	assert_line --regexp '^no-entry +- +broken +no cedana_plugin_entry symbol$'
	CEDANA_PLUGINS_DIR="$T/none" run "$CEDANA" plugin list
	assert_success
	assert_output "no plugins in $T/none"
}

@test "plugins: a plugin file others may write is refused by name, never loaded" {
	mkdir -m 0755 "$T/plugins"
	install -m 0757 "$BUILD_DIR/tests/plugins/good/test-plugin.so" "$T/plugins/"
	CEDANA_PLUGINS_DIR="$T/plugins" CEDANA_TEST_PLUGIN_FAIL=init run "$CEDANA" plugin list
	assert_success
	assert_line --regexp "^test-plugin +- +broken +$T/plugins/test-plugin.so: writable by group or others: refused$"
	chmod 0755 "$T/plugins/test-plugin.so"
	chown 1:1 "$T/plugins/test-plugin.so"
	CEDANA_PLUGINS_DIR="$T/plugins" run "$CEDANA" plugin list
	assert_line --regexp "^test-plugin +- +broken +$T/plugins/test-plugin.so: owned by uid 1, not root: refused$"
}

@test "plugins: features prints the matrix and its legend" {
	run "$CEDANA" features
	assert_success
	assert_output "FEATURE  test
test      ✔  

✔ provided and ready  • provided, not available here  — not provided  ✖ broken"
	CEDANA_PLUGINS_DIR="$BUILD_DIR/tests/plugins/bad" run "$CEDANA" features
	assert_success
	assert_line --index 0 'FEATURE  bad-abi  bad-name  test  no-entry'
	assert_line --index 1 --regexp '^test +✖ +✖ +✔ +✖ *$'
}

@test "plugins: check prints one line per plugin, NAME: DETAIL" {
	run "$CEDANA" check --address "$T/no-daemon.sock"
	assert_failure
	assert_line 'ok   test: test plugin ready'
	CEDANA_PLUGINS_DIR="$BUILD_DIR/tests/plugins/bad" run "$CEDANA" check --address "$T/no-daemon.sock"
	assert_line 'FAIL no-entry: no cedana_plugin_entry symbol'
}
