#!/usr/bin/env bats
# Syscall injection into a live process (src/engine/inject).
load helpers

@test "inject: getpid, mmap and munmap run inside a live process, which carries on" {
	run "$BUILD_DIR/tests/engine/inject-test"
	assert_success
	assert_output --partial "ok getpid returns the child's pid"
	assert_output --partial "ok mapping gone"
	assert_output --partial "ok child runs on after release"
	refute_output --partial "FAIL"
}
