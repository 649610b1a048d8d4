#!/usr/bin/env bats
# --tcp-established and --tcp-close through the CLI and the daemon: a redis
# job with a client outside it (tests/engine/resp-client.py) on one TCP
# connection. The engine's own tests are in tests/engine/programs.bats.
load cr-helpers

setup() {
	command -v redis-server >/dev/null || skip "redis-server is not installed (Debian: redis-server)"
	command -v nft >/dev/null || skip "nft is not installed (Debian: nftables)"
	cr_setup
	PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	C="$BATS_TEST_TMPDIR/client"
	mkdir "$C"
}

teardown() {
	local t hex
	cr_teardown
	# a lock a failed test left (tables named after 127.0.0.1:PORT)
	hex=$(printf '0200%04x7f000001' "$PORT")
	for t in $(nft list tables 2>/dev/null | awk '$3 ~ /^cedana_tcp_/ { print $3 }'); do
		[[ $t == *"$hex"* ]] && nft delete table inet "$t"
	done
	return 0
}

# redis as job JID on $PORT, and the client connected to it (outside the job).
start_redis_and_client() {
	printf 'port %s\nbind 127.0.0.1\nsave ""\nappendonly no\ndaemonize no\ndir %s\nlogfile ""\n' \
		"$PORT" "$BATS_TEST_TMPDIR" >"$BATS_TEST_TMPDIR/redis.conf"
	"$CEDANA" run process --jid "$1" -- redis-server "$BATS_TEST_TMPDIR/redis.conf"
	wait_file_contains "$(log_of "$1")" "Ready to accept connections"
	no_inherited_fds setsid python3 "$BATS_TEST_DIRNAME/../engine/resp-client.py" "$PORT" "$C" \
		</dev/null >"$C.log" 2>&1 &
	echo $! >>"$BATS_TEST_TMPDIR/extra.pids"
	for _ in $(seq 1 500); do
		[ -e "$C/ready" ] && return 0
		sleep 0.02
	done
	cat "$C.log" >&2
	return 1
}

client_result() {
	for _ in $(seq 1 600); do
		[ -e "$C/result" ] && break
		sleep 0.1
	done
	cat "$C/result" "$C.log"
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
	run client_result
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
	run client_result
	assert_output --regexp "^FAIL: (ConnectionResetError|EOFError|BrokenPipeError)"
}
