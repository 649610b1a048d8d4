#!/usr/bin/env bats
# --tcp-established and --tcp-close through the CLI and the daemon: a redis
# job with a client outside it (tests/engine/resp-client.py) on one TCP
# connection. The engine's own tests are in tests/engine/programs.bats.
load cr-helpers
load ../engine/redis

setup() {
	command -v redis-server >/dev/null || skip "redis-server is not installed (Debian: redis-server)"
	command -v nft >/dev/null || skip "nft is not installed (Debian: nftables)"
	cr_setup
	PORT=$(free_port)
	C="$BATS_TEST_TMPDIR/client"
	mkdir "$C"
}

teardown() {
	cr_teardown
	drop_locks "$PORT"
}

# redis as job JID on $PORT, and the client connected to it (outside the job).
start_redis_and_client() {
	redis_conf "$PORT" "$BATS_TEST_TMPDIR"
	"$CEDANA" run process --jid "$1" -- redis-server "$BATS_TEST_TMPDIR/redis.conf"
	wait_file_contains "$(log_of "$1")" "Ready to accept connections"
	local r=0
	resp_client_start "$PORT" "$C" || r=$?
	echo "$RESP_CLIENT_PID" >>"$BATS_TEST_TMPDIR/extra.pids"
	return "$r"
}

@test "dump job refuses a connection to a client outside it unless --tcp-established; restore job needs it too; the client keeps its connection (its queues in a zstd archive)" {
	start_redis_and_client r
	run "$CEDANA" dump job r
	assert_failure
	assert_output --regexp "a TCP connection 127\.0\.0\.1:$PORT -> 127\.0\.0\.1:[0-9]+ to a peer outside the tree: dump with --tcp-established"
	kill -0 "$(job_field r pid)"
	run "$CEDANA" dump job r --tcp-established --compression zstd
	assert_success
	wait_job_field r status halted
	touch "$C/gap"
	run "$CEDANA" restore job r
	assert_failure
	assert_output --partial "to a peer outside the checkpoint: restore with --tcp-established"
	run "$CEDANA" restore job r --tcp-established
	assert_success
	run resp_client_result "$C"
	assert_output "PASS"
}

@test "dump job --tcp-close: the restored job's connection is closed, the client is reset; --tcp-established with --tcp-close is refused" {
	start_redis_and_client c
	run "$CEDANA" dump job c --tcp-close --tcp-established
	assert_failure
	assert_output --partial '"tcp_established" and "tcp_close" together'
	run "$CEDANA" dump job c --tcp-close
	assert_success
	wait_job_field c status halted
	run "$CEDANA" restore job c
	assert_success
	touch "$C/gap"
	run resp_client_result "$C"
	assert_output --regexp "^FAIL: (ConnectionResetError|EOFError|BrokenPipeError)"
}
