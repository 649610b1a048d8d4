#!/usr/bin/env bats
# The daemon under concurrent and interrupted checkpoint/restore requests.
load cr-helpers

setup() {
	cr_setup
}

teardown() {
	cr_teardown
}

@test "concurrent restores both finish (a worker holds no other request's pipe)" {
	for j in a b c; do
		start_counter "$j"
		run "$CEDANA" dump job "$j"
		assert_success
	done
	pids=()
	for j in a b c; do
		timeout 60 "$CEDANA" restore job "$j" >"$BATS_TEST_TMPDIR/restore-$j.out" 2>&1 3>&- &
		pids+=($!)
	done
	for i in 0 1 2; do
		wait "${pids[$i]}" || { cat "$BATS_TEST_TMPDIR"/restore-*.out >&2; return 1; }
	done
	for j in a b c; do
		finish_counter "$j"
	done
}
