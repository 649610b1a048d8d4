#!/usr/bin/env bats
# Syscall injection into a live process (src/engine/inject).
load helpers

# The workload tests need a temporary directory (engine_setup).
setup_engine_wl() { engine_setup; }
teardown() { [ -n "${T:-}" ] && engine_teardown || true; }

@test "inject: getpid, mmap and munmap run inside a live process, which carries on" {
	run "$BUILD_DIR/tests/engine/inject-test"
	assert_success
	assert_output --partial "ok getpid returns the child's pid"
	assert_output --partial "ok mapping gone"
	assert_output --partial "ok child runs on after release"
	refute_output --partial "FAIL"
}

@test "inject: a batch of calls runs in one round trip; a failing call in the middle is named and stops it" {
	run "$BUILD_DIR/tests/engine/inject-test"
	assert_success
	assert_output --partial "ok a failing call in a batch is reported by its name"
	assert_output --partial "ok the calls after it did not run"
	assert_output --partial "ok one round trip: the runner ran two calls"
	assert_output --partial "ok a batch runs its calls in order, results and memory come back"
	assert_output --partial "ok the task's SIGTRAP handler is left alone"
	assert_output --partial "ok with SIGTRAP ignored the calls run one by one and it stays ignored"
}

# CEDANA_ENGINE_FAULT=batch-call: the first checked call of a batch's
# second half fails (ENOSYS), as a call the kernel refused would.
@test "inject: a call failing in a batch of a thread's dump is named, and the threads run on untouched" {
	setup_engine_wl
	start_wl "$WL_DIR/wl-threads" 16
	CEDANA_ENGINE_FAULT=batch-call run "$ENGINE" dump "$WL_PID" "$IMG"
	assert_failure
	assert_output --regexp "pid $WL_PID: thread [0-9]+: prctl\(PR_GET_TIMERSLACK\): Function not implemented"
	assert_not_exist "$IMG"
	touch "$TRIGGER"
	wait "$WL_PID"
	WL_PID=
	run grep -E '^(PASS|FAIL)' "$LOG"
	assert_output "PASS"
}

@test "inject: a call failing in a batch of the restore is named and the restore fails cleanly" {
	setup_engine_wl
	start_wl "$WL_DIR/wl-threads" 16
	run "$ENGINE" dump "$WL_PID" "$IMG"
	assert_success
	wait "$WL_PID" 2>/dev/null || true
	WL_PID=
	CEDANA_ENGINE_FAULT=batch-call run timeout 60 "$ENGINE" restore "$IMG" \
		--pid-file "$T/restored.pid"
	assert_failure
	assert_output --regexp "(personality|setpriority): Function not implemented"
	assert_not_exist "$T/restored.pid"
	# nothing of it is left: the same image restores
	trigger_when_restored
	run timeout 60 "$ENGINE" restore "$IMG" --stdout "$LOG" --stderr "$LOG" \
		--pid-file "$T/restored.pid"
	assert_success
	run grep -E '^(PASS|FAIL)' "$LOG"
	assert_output "PASS"
}
