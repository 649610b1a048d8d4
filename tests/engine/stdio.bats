#!/usr/bin/env bats
# The root's fds 0, 1 and 2: recorded as the objects they are and restored
# so, unless the restore caller replaces a slot (--stdin/--stdout/--stderr)
# or the dump caller declared it its own (--external-stdio). A replacement N
# goes to the root's fd N even when fds 0-2 were one open file at dump time.
load helpers

setup() { engine_setup; }
teardown() {
	exec 7>&- 2>/dev/null || true
	engine_teardown
}

# A python root: "before" to stdout and stderr, READY, then at the trigger
# a line read from stdin (if $1 is "read") and "after" with stdout's
# O_APPEND flag.
STDIO_PY='
import fcntl, os, sys, time
trig = os.environ["CEDANA_WL_TRIGGER"]
print("before", flush=True)
print("before", file=sys.stderr, flush=True)
open(os.environ["READY_FILE"], "w").write("READY\n")
while not os.path.exists(trig):
    time.sleep(0.01)
line = sys.stdin.readline().strip() if sys.argv[1] == "read" else ""
append = bool(fcntl.fcntl(1, fcntl.F_GETFL) & os.O_APPEND)
print("after", line, "append=%s" % append, flush=True)
print("after", file=sys.stderr, flush=True)'

# start_stdio_py MODE STDIN (output as the caller redirects it): a background
# command's stdin must be redirected on the command itself, or it is /dev/null.
start_stdio_py() {
	LOG="$T/ready"
	CEDANA_WL_TRIGGER="$TRIGGER" READY_FILE="$LOG" no_inherited_fds setsid python3 -c "$STDIO_PY" "$1" <"$2" &
	WL_PID=$!
	wait_ready
}

@test "stdio: a root's output files come back as they were (offset, O_APPEND), none given" {
	start_stdio_py none /dev/null >>"$T/app.log" 2>"$T/err.log"
	run "$ENGINE" dump "$WL_PID" "$IMG"
	assert_success
	wait "$WL_PID" 2>/dev/null || true
	WL_PID=
	# written by someone else meanwhile: O_APPEND writes after it
	echo outside >>"$T/app.log"
	touch "$TRIGGER"
	run timeout 60 "$ENGINE" restore "$IMG" --pid-file "$T/restored.pid"
	assert_success
	assert_equal "$output" ""
	assert_equal "$(cat "$T/app.log")" "$(printf 'before\noutside\nafter  append=True')"
	# no O_APPEND: at its offset, after "before"
	assert_equal "$(cat "$T/err.log")" "$(printf 'before\nafter')"
}

@test "stdio: --stdout and --stderr replace object slots; stdin keeps its file" {
	echo "from-file" >"$T/in"
	start_stdio_py read "$T/in" >>"$T/app.log" 2>"$T/err.log"
	run "$ENGINE" dump "$WL_PID" "$IMG"
	assert_success
	wait "$WL_PID" 2>/dev/null || true
	WL_PID=
	touch "$TRIGGER"
	run timeout 60 "$ENGINE" restore "$IMG" --stdout "$T/out" --stderr "$T/err" \
		--pid-file "$T/restored.pid"
	assert_success
	assert_equal "$(cat "$T/out")" "after from-file append=True"
	assert_equal "$(cat "$T/err")" "after"
	assert_equal "$(cat "$T/app.log")" "before"
}

@test "stdio: external slots take the replacement, a FIFO stdin stays with --external-only" {
	mkfifo "$T/fifo"
	# the writer outside the tree holds the FIFO: it reconnects by path
	exec 7<>"$T/fifo"
	start_stdio_py read "$T/fifo" >"$T/job.log" 2>&1
	run "$ENGINE" dump "$WL_PID" "$IMG" --external-stdio 6
	assert_success
	wait "$WL_PID" 2>/dev/null || true
	WL_PID=
	grep -q '"fd":1,"kind":5' "$IMG/manifest.json"
	grep -q '"fd":0,"kind":4' "$IMG/manifest.json"
	touch "$TRIGGER"
	( sleep 0.5; echo via-fifo >&7 ) &
	run timeout 60 "$ENGINE" restore "$IMG" --stdin /dev/null --stdout "$T/new.log" \
		--stderr "$T/new.log" --external-only --pid-file "$T/restored.pid"
	assert_success
	assert_equal "$(cat "$T/new.log")" "$(printf 'after via-fifo append=True\nafter')"
}

@test "stdio: one open file on fds 0-2 restores onto three different files" {
	CEDANA_WL_TRIGGER="$TRIGGER" no_inherited_fds setsid python3 -c '
import os, sys, time
trig = os.environ["CEDANA_WL_TRIGGER"]
print("READY", flush=True)
while not os.path.exists(trig):
    time.sleep(0.01)
print("to-stdout", flush=True)
print("to-stderr", file=sys.stderr, flush=True)' <>"$LOG" >&0 2>&0 &
	WL_PID=$!
	wait_ready
	# one open file description behind all three
	[ "$(stat -L -c %i "/proc/$WL_PID/fd/0")" = "$(stat -L -c %i "/proc/$WL_PID/fd/2")" ]
	run "$ENGINE" dump "$WL_PID" "$IMG"
	assert_success
	wait "$WL_PID" 2>/dev/null || true
	WL_PID=
	: >"$T/in"
	touch "$TRIGGER"
	run timeout 60 "$ENGINE" restore "$IMG" --stdin "$T/in" --stdout "$T/out" \
		--stderr "$T/err" --pid-file "$T/restored.pid"
	assert_success
	assert_equal "$(cat "$T/out")" "to-stdout"
	assert_equal "$(cat "$T/err")" "to-stderr"
	assert_equal "$(stat -c %s "$T/in")" "0"
}

# start_piped_to_cat: the python root with its stdout a pipe to a cat
# outside its tree (`prog | cat`).
start_piped_to_cat() {
	LOG="$T/ready"
	{
		CEDANA_WL_TRIGGER="$TRIGGER" READY_FILE="$LOG" no_inherited_fds setsid python3 \
			-c "$STDIO_PY" none </dev/null 2>/dev/null &
		echo $! >"$T/wl.pid"
		wait
	} 3>&- | no_inherited_fds cat >"$T/cat.out" &
	wait_ready
	WL_PID=$(cat "$T/wl.pid")
}

@test "stdio: a pipe to a process outside the tree is refused at dump, naming fd and holder; it runs on" {
	start_piped_to_cat
	run "$ENGINE" dump "$WL_PID" "$IMG"
	assert_failure 1
	assert_output --regexp "^cedana-engine: dump: pid $WL_PID: fd 1 \(pipe:\[[0-9]+\]\): pid [0-9]+ \((cat|bash)\) outside the tree holds this pipe: .*--external-stdio"
	assert_file_not_exists "$IMG"
	# running on, neither stopped nor traced
	[[ "$(awk '{print $3}' "/proc/$WL_PID/stat")" == [RS] ]]
	assert_equal "$(awk '/^TracerPid/ {print $2}' "/proc/$WL_PID/status")" 0
	touch "$TRIGGER"
	for _ in $(seq 100); do grep -q after "$T/cat.out" && break; sleep 0.05; done
	assert_equal "$(cat "$T/cat.out")" "$(printf 'before\nafter  append=False')"
	WL_PID=
}

@test "stdio: a pipe on a slot declared external is not refused; the restore replaces it" {
	start_piped_to_cat
	run "$ENGINE" dump "$WL_PID" "$IMG" --external-stdio 2
	assert_success
	wait "$WL_PID" 2>/dev/null || true
	WL_PID=
	touch "$TRIGGER"
	run timeout 60 "$ENGINE" restore "$IMG" --stdout "$T/out" --pid-file "$T/restored.pid"
	assert_success
	assert_equal "$(cat "$T/out")" "after  append=True"
}

@test "stdio: a FIFO held outside the tree with unread data in it is refused at dump" {
	mkfifo "$T/fifo"
	exec 7<>"$T/fifo"
	start_stdio_py read "$T/fifo" >"$T/out" 2>&1
	echo pending >&7
	run "$ENGINE" dump "$WL_PID" "$IMG"
	assert_failure 1
	assert_output --regexp "^cedana-engine: dump: pid $WL_PID: fd 0 \(FIFO $T/fifo\): 8 unread bytes, and pid [0-9]+ \(bash\) outside the tree holds it"
	assert_file_not_exists "$IMG"
	touch "$TRIGGER"
	for _ in $(seq 100); do grep -q after "$T/out" && break; sleep 0.05; done
	assert_equal "$(sed -n 3p "$T/out")" "after pending append=False"
}
