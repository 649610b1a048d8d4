#!/usr/bin/env bats
# Issue 12: the root's stdio comes back as the object it was (a file it
# appends to, a FIFO); only what someone asked for is replaced (--out,
# --attach, the daemon's own log or terminal of a managed job).
load cr-helpers

setup() {
	cr_setup
	APP="$BATS_TEST_TMPDIR/app.log"
}

teardown() {
	exec 7>&- 2>/dev/null || true
	cr_teardown
}

# start_appender [STDIN]: `prog >> app.log &` (a session of its own), its pid in $PID.
start_appender() {
	no_inherited_fds setsid sh -c 'while :; do echo tick; sleep 0.05; done' \
		<"${1:-/dev/null}" >>"$APP" 2>&1 &
	PID=$!
	echo "$PID" >>"$BATS_TEST_TMPDIR/extra.pids"
	wait_file_contains "$APP" tick
}

# grows FILE: FILE gets longer within 5 s.
grows() {
	local size
	size=$(stat -c %s "$1")
	for _ in $(seq 100); do
		[ "$(stat -c %s "$1")" -gt "$size" ] && return 0
		sleep 0.05
	done
	echo "$1 did not grow past $size bytes" >&2
	return 1
}

# has_append PID FD: the restored fd kept O_APPEND.
has_append() {
	local flags
	flags=$(awk '/^flags:/ {print $2}' "/proc/$1/fdinfo/$2")
	(( (8#$flags & 02000) != 0 ))
}

dump_appender() {
	run "$CEDANA" dump process "$PID"
	assert_success
	CKPT=$(last_word)
	wait "$PID" 2>/dev/null || true
	echo "outside" >>"$APP"
}

@test "prog >> app.log & → dump process → restore process: it still appends to app.log" {
	start_appender
	dump_appender
	run "$CEDANA" restore process --path "$CKPT" --jid back
	assert_success
	pid=$(job_field back pid)
	grows "$APP"
	has_append "$pid" 1
	assert_equal "$(readlink "/proc/$pid/fd/1")" "$APP"
	# appended after what another writer added meanwhile
	grep -A1 -x outside "$APP" | grep -qx tick
}

@test "prog >> app.log & → dump process → restore process --no-server: it still appends to app.log" {
	start_appender
	dump_appender
	"$CEDANA" restore process --path "$CKPT" --no-server --pid-file "$BATS_TEST_TMPDIR/n.pid" \
		>"$BATS_TEST_TMPDIR/cli.out" 2>&1 3>&- &
	echo $! >>"$BATS_TEST_TMPDIR/extra.pids"
	for _ in $(seq 100); do [ -s "$BATS_TEST_TMPDIR/n.pid" ] && break; sleep 0.05; done
	pid=$(cat "$BATS_TEST_TMPDIR/n.pid")
	echo "$pid" >>"$BATS_TEST_TMPDIR/extra.pids"
	grows "$APP"
	has_append "$pid" 1
	assert_equal "$(readlink "/proc/$pid/fd/2")" "$APP"
	assert_equal "$(cat "$BATS_TEST_TMPDIR/cli.out")" ""
}

@test "a job reading a FIFO on its stdin keeps the FIFO after restore job; its output stays in the job's log" {
	mkfifo "$BATS_TEST_TMPDIR/fifo"
	# a writer outside the job holds the FIFO: it reconnects by path
	exec 7<>"$BATS_TEST_TMPDIR/fifo"
	"$CEDANA" run process --jid f -- sh -c 'exec cat <"$0"' "$BATS_TEST_TMPDIR/fifo"
	echo one >&7
	wait_file_contains "$(log_of f)" '^one$'
	run "$CEDANA" dump job f
	assert_success
	wait_job_field f status halted
	run "$CEDANA" restore job f
	assert_success
	echo two >&7
	wait_file_contains "$(log_of f)" '^two$'
	pid=$(job_field f pid)
	assert_equal "$(readlink "/proc/$pid/fd/0")" "$BATS_TEST_TMPDIR/fifo"
	kill -0 "$pid"
}

@test "restore process --out FILE replaces stdout and stderr, the stdin file stays" {
	echo input >"$BATS_TEST_TMPDIR/in"
	start_appender "$BATS_TEST_TMPDIR/in"
	dump_appender
	run "$CEDANA" restore process --path "$CKPT" --jid o --out "$BATS_TEST_TMPDIR/o.log"
	assert_success
	wait_file_contains "$BATS_TEST_TMPDIR/o.log" tick
	pid=$(job_field o pid)
	assert_equal "$(readlink "/proc/$pid/fd/1")" "$BATS_TEST_TMPDIR/o.log"
	assert_equal "$(readlink "/proc/$pid/fd/0")" "$BATS_TEST_TMPDIR/in"
	assert_equal "$(readlink "/proc/$pid/fd/2")" "$BATS_TEST_TMPDIR/o.log"
}

# start_piped: `prog | cat` (prog in a session of its own), prog's pid in $PID.
start_piped() {
	{
		no_inherited_fds setsid sh -c 'while :; do echo tick; sleep 0.05; done' </dev/null 2>&1 &
		echo $! >"$BATS_TEST_TMPDIR/piped.pid"
		wait
	} 3>&- | no_inherited_fds cat >"$BATS_TEST_TMPDIR/cat.out" &
	wait_file_contains "$BATS_TEST_TMPDIR/cat.out" tick
	PID=$(cat "$BATS_TEST_TMPDIR/piped.pid")
	echo "$PID" >>"$BATS_TEST_TMPDIR/extra.pids"
}

@test "dump process of prog | cat is refused naming the fd and the cat; prog runs on, nothing is written" {
	start_piped
	run "$CEDANA" dump process "$PID"
	assert_failure 1
	assert_output --regexp "^Error: .*pid $PID: fd 1 \(pipe:\[[0-9]+\]\): pid [0-9]+ \((cat|bash)\) outside the tree holds this pipe: .*--external-stdio"
	assert_equal "$(entries "$CK")" ""
	# running: not stopped (T, t) nor gone (Z, X); D is a running sh in
	# vfork, waiting for its child's exec
	[[ "$(awk '{print $3}' "/proc/$PID/stat")" == [RSD] ]]
	assert_equal "$(awk '/^TracerPid/ {print $2}' "/proc/$PID/status")" 0
	grows "$BATS_TEST_TMPDIR/cat.out"
}

@test "dump process --external-stdio of prog | cat → restore process --out: its output goes to --out" {
	start_piped
	run "$CEDANA" dump process "$PID" --external-stdio
	assert_success
	CKPT=$(last_word)
	run "$CEDANA" restore process --path "$CKPT" --jid p --out "$BATS_TEST_TMPDIR/p.log"
	assert_success
	wait_file_contains "$BATS_TEST_TMPDIR/p.log" tick
}
