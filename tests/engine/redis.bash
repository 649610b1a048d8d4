# redis-server and a RESP client outside its tree, shared by the engine's
# tests (programs.bats) and the CLI's (tests/e2e/tcp.bats): the server's
# config, the client (resp-client.py), its verdict, and the connection locks
# (nftables tables cedana_tcp_*) a failed test may leave behind.

# free_port: a TCP port of 127.0.0.1 free right now (servers here may not
# take port 0: a client must know it).
free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# redis_conf PORT DIR: writes DIR/redis.conf, a redis-server on
# 127.0.0.1:PORT in the foreground with no persistence, its files in DIR.
redis_conf() {
	printf 'port %s\nbind 127.0.0.1\nsave ""\nappendonly no\ndaemonize no\ndir %s\nlogfile ""\n' \
		"$1" "$2" >"$2/redis.conf"
}

# resp_client_start PORT DIR: resp-client.py in a session of its own (no
# fd of the test: outside every tree) connected to 127.0.0.1:PORT, its
# files in DIR and its output in DIR.log, as $RESP_CLIENT_PID; returns once
# it is past its first SET and GET (DIR/ready).
resp_client_start() {
	no_inherited_fds setsid python3 "$(dirname "${BASH_SOURCE[0]}")/resp-client.py" "$1" "$2" \
		</dev/null >"$2.log" 2>&1 &
	RESP_CLIENT_PID=$!
	for _ in $(seq 1 500); do
		[ -e "$2/ready" ] && return 0
		sleep 0.02
	done
	cat "$2.log" >&2
	return 1
}

# resp_client_result DIR: the client's verdict, once it has one (60 s at
# most), and its output.
resp_client_result() {
	for _ in $(seq 1 600); do
		[ -e "$1/result" ] && break
		sleep 0.1
	done
	cat "$1/result" "$1.log"
}

# drop_locks PORT: deletes the connection locks a failed test left for
# connections of 127.0.0.1:PORT.
drop_locks() {
	command -v nft >/dev/null || return 0
	local hex t
	hex=$(printf '0200%04x7f000001' "$1")
	for t in $(nft list tables 2>/dev/null | awk '$3 ~ /^cedana_tcp_/ { print $3 }'); do
		[[ $t == *"$hex"* ]] && nft delete table inet "$t"
	done
	return 0
}
