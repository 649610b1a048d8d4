#!/usr/bin/env bats
load helpers

@test "--version prints the version" {
	run "$CEDANA" --version
	assert_success
	assert_output --regexp '^cedana version [0-9]+\.[0-9]+\.[0-9]+$'
}

@test "an unknown command is refused" {
	run "$CEDANA" frobnicate
	assert_failure
	assert_output --partial 'unknown command "frobnicate"'
}
