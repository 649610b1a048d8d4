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

# restore --lazy runs the tree again within tens of ms; loading these (and
# the ~35 libraries they pull in) cost every command 25-70 ms at start
@test "the binary links neither libcurl, libarchive nor libmicrohttpd: loaded when used" {
	run ldd "$CEDANA"
	assert_success
	refute_output --partial libcurl
	refute_output --partial libarchive
	refute_output --partial libmicrohttpd
	refute_output --partial libgnutls
}
