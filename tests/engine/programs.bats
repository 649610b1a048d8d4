#!/usr/bin/env bats
# Real programs, not written for us: a shell with a sleep child
# (tests/workloads/date-loop.sh), a python3 interpreter with state, python3
# with threads, java (a thread pool; skipped without a JDK), node (a
# timer and a worker thread; skipped without node), Go (goroutines; skipped
# without golang-go), a PyTorch CPU training loop (skipped without
# python3-torch), and servers on TCP: python3 -m http.server, redis-server
# with 300000 keys, memcached with its worker threads, nginx (a master and
# two workers) and PostgreSQL 15 (several processes, SysV and POSIX shared
# memory, unix and TCP sockets) (skipped only when Debian's package is not
# installed: scripts/install-deps.sh installs them).
load helpers
load redis

setup() { engine_setup; }
teardown() {
	[ -n "${PG_DIR:-}" ] && pg_cleanup
	[ -n "${PG_SESSION_ROOT:-}" ] && pg_session_stop "$PG_SESSION_ROOT"
	[ -f "$T/restored.pid" ] && pkill -9 -s "$(cat "$T/restored.pid")"
	[ -n "${RESP_CLIENT_PID:-}" ] && kill -9 "$RESP_CLIENT_PID" 2>/dev/null
	[ -n "${LOCK_PORT:-}" ] && drop_locks "$LOCK_PORT"
	engine_teardown
}

SRC="$BATS_TEST_DIRNAME/../workloads"

# tree_of SID: "pid ppid pgid sid comm" of every task of the session, sorted.
tree_of() {
	ps -s "$1" -o pid=,ppid=,pgid=,sid=,comm= | sort -n
}

start_date_loop() {
	no_inherited_fds setsid sh "$SRC/date-loop.sh" </dev/null >"$LOG" 2>&1 &
	WL_PID=$!
	for _ in $(seq 1 300); do
		[ "$(ps --ppid "$WL_PID" -o comm= | head -1)" = sleep ] && break
		sleep 0.01
	done
}

date_loop_roundtrip() {
	start_date_loop
	before_tree=$(tree_of "$WL_PID")
	run "$ENGINE" dump "$WL_PID" "$IMG" "$@"
	assert_success
	pid=$WL_PID
	[[ " $* " == *" --leave-running "* ]] && kill_session "$WL_PID"
	wait "$WL_PID" 2>/dev/null || true
	WL_PID=
	run "$ENGINE" restore "$IMG" --stdout "$LOG" --stderr "$LOG" --detach --pid-file "$T/restored.pid"
	assert_success
	assert_equal "$(cat "$T/restored.pid")" "$pid"
	# same tasks under the restored shell (whose own parent is new)
	after_tree=$(tree_of "$pid" | awk '{ if ($1 == '"$pid"') $2 = "-"; print }')
	want_tree=$(echo "$before_tree" | awk '{ if ($1 == '"$pid"') $2 = "-"; print }')
	assert_equal "$after_tree" "$want_tree"
	# two more lines (one a second); patient under load
	lines=$(wc -l <"$LOG")
	for _ in $(seq 1 100); do
		[ "$(wc -l <"$LOG")" -ge $((lines + 2)) ] && break
		sleep 0.1
	done
	[ "$(wc -l <"$LOG")" -ge $((lines + 2)) ]
}

@test "date-loop.sh: a shell and its sleep child keep pids, pgid, sid and go on printing" {
	date_loop_roundtrip
}

@test "date-loop.sh: --leave-running" {
	date_loop_roundtrip --leave-running
}

python_roundtrip() {
	CEDANA_WL_TRIGGER="$TRIGGER" no_inherited_fds setsid python3 -c '
import os, time
trig = os.environ["CEDANA_WL_TRIGGER"]
state = {"n": 0, "data": [i * i for i in range(100000)]}
while state["n"] < 20:
    state["n"] += 1
    time.sleep(0.01)
print("READY", flush=True)
while not os.path.exists(trig):
    state["n"] += 1
    time.sleep(0.01)
ok = state["n"] >= 20 and sum(state["data"]) == sum(i * i for i in range(100000))
print("PASS" if ok else "FAIL: state lost", flush=True)
' </dev/null >"$LOG" 2>&1 &
	WL_PID=$!
	wait_ready
	dump_restore "$@"
	assert_success
	run grep -E '^(PASS|FAIL)' "$LOG"
	assert_output "PASS"
}

@test "python3 -c with a loop and state: dump → kill → restore → PASS" {
	python_roundtrip
}

@test "python3 -c: --leave-running" {
	python_roundtrip --leave-running
}

@test "shared anonymous memory whose pages no task has mapped right now keeps its contents" {
	CEDANA_WL_TRIGGER="$TRIGGER" no_inherited_fds setsid python3 -c '
import mmap, os, time
m = mmap.mmap(-1, 16 * 4096)  # MAP_SHARED | MAP_ANONYMOUS
m[:] = bytes(range(256)) * 256
m.madvise(mmap.MADV_DONTNEED)  # drops the page table entries, not the pages
trig = os.environ["CEDANA_WL_TRIGGER"]
print("READY", flush=True)
while not os.path.exists(trig):
    time.sleep(0.01)
print("PASS" if m[:] == bytes(range(256)) * 256 else "FAIL: contents lost", flush=True)
' </dev/null >"$LOG" 2>&1 &
	WL_PID=$!
	wait_ready
	dump_restore
	assert_success
	run grep -E '^(PASS|FAIL)' "$LOG"
	assert_output "PASS"
}

@test "a shell pipeline dumps at any moment and runs on after the restore" {
	no_inherited_fds setsid bash -c '(while :; do echo x; sleep 0.01; done) | cat >>"$0"' "$T/out" \
		</dev/null >"$LOG" 2>&1 &
	WL_PID=$!
	for _ in $(seq 1 300); do [ -s "$T/out" ] && break; sleep 0.01; done
	# at any moment: the subshell may have a sleep that has exited, unreaped
	for i in $(seq 1 10); do
		run "$ENGINE" dump "$WL_PID" "$T/img$i" --leave-running
		assert_success
	done
	run "$ENGINE" dump "$WL_PID" "$IMG"
	assert_success
	wait "$WL_PID" 2>/dev/null || true
	WL_PID=
	run timeout 60 "$ENGINE" restore "$IMG" --stdout "$LOG" --stderr "$LOG" --detach \
		--pid-file "$T/restored.pid"
	assert_success
	n=$(wc -l <"$T/out")
	for _ in $(seq 1 500); do [ "$(wc -l <"$T/out")" -ge $((n + 5)) ] && break; sleep 0.01; done
	assert [ "$(wc -l <"$T/out")" -ge $((n + 5)) ]
	echo "# $(grep -l exit_status "$T"/img*/manifest.json "$IMG/manifest.json" | wc -l) of 11 images held a zombie" >&3
}

# python3 with four threads counting under a lock into shared state and one
# blocked in queue.get() (a condition variable: a futex wait) until the
# main thread puts an item after the trigger.
python_threads_roundtrip() {
	CEDANA_WL_TRIGGER="$TRIGGER" no_inherited_fds setsid python3 -c '
import os, queue, threading, time
trig = os.environ["CEDANA_WL_TRIGGER"]
lock = threading.Lock()
state = {"total": 0, "per": [0] * 4}
stop = threading.Event()
q = queue.Queue()
got = []
def count(i):
    while not stop.is_set():
        with lock:
            state["per"][i] += 1
            state["total"] += 1
        time.sleep(0.001)
def getter():
    got.append((q.get(), os.path.exists(trig)))
threads = [threading.Thread(target=count, args=(i,), name="count-%d" % i) for i in range(4)]
threads.append(threading.Thread(target=getter, name="getter"))
for t in threads:
    t.start()
time.sleep(0.1)
with lock:
    at_ready = list(state["per"])
print("READY", flush=True)
while not os.path.exists(trig):
    time.sleep(0.01)
time.sleep(0.1)
q.put("item")
stop.set()
for t in threads:
    t.join()
ok = (got == [("item", True)] and state["total"] == sum(state["per"])
      and all(a > b for a, b in zip(state["per"], at_ready)))
print("PASS" if ok else "FAIL: %r %r %r" % (got, state, at_ready), flush=True)
' </dev/null >"$LOG" 2>&1 &
	WL_PID=$!
	wait_ready
	[ "$(ls /proc/"$WL_PID"/task | wc -l)" -eq 6 ]
	dump_restore "$@"
	assert_success
	run grep -E '^(PASS|FAIL)' "$LOG"
	assert_output "PASS"
}

@test "python3 threads: counters under a lock and one in queue.get() carry on" {
	python_threads_roundtrip
}

@test "python3 threads: --leave-running" {
	python_threads_roundtrip --leave-running
}

# java (Debian's JDK): a thread pool of four counting under a lock, some 20
# threads in all. Without -XX:-UsePerfData the JVM holds a flock through a
# mapping of its hsperfdata file, which the dump refuses by name.
java_roundtrip() {
	command -v javac >/dev/null || skip "javac is not installed (Debian: default-jdk-headless)"
	# compiled first: java's source launcher holds a socket, which the dump refuses
	javac -d "$T/java" "$SRC/java/Counters.java"
	CEDANA_WL_TRIGGER="$TRIGGER" no_inherited_fds setsid java -XX:-UsePerfData \
		-cp "$T/java" Counters </dev/null >"$LOG" 2>&1 &
	WL_PID=$!
	wait_ready
	[ "$(ls /proc/"$WL_PID"/task | wc -l)" -gt 10 ]
	dump_restore "$@"
	assert_success
	run grep -E '^(PASS|FAIL)' "$LOG"
	assert_output "PASS"
}

@test "java: a thread pool counting under a lock carries on" {
	java_roundtrip
}

@test "java: --leave-running" {
	java_roundtrip --leave-running
}

# node (nodesource's): libuv's event loops are epolls with eventfds and
# pipes; a setInterval on the main thread and a worker_threads worker
# posting a message every 5 ms must both carry on, and no message be lost.
node_roundtrip() {
	command -v node >/dev/null || skip "node is not installed"
	CEDANA_WL_TRIGGER="$TRIGGER" no_inherited_fds setsid node -e '
const fs = require("fs");
const { Worker } = require("worker_threads");
const trig = process.env.CEDANA_WL_TRIGGER;
const w = new Worker(`
const { parentPort } = require("worker_threads");
let n = 0;
setInterval(() => parentPort.postMessage(++n), 5);
`, { eval: true });
let ticks = 0, msgs = 0, lastMsg = 0, atTrigger = null, ready = false;
w.on("message", (n) => { msgs++; lastMsg = n; });
setInterval(() => {
  ticks++;
  if (!ready && msgs > 10) { ready = true; console.log("READY"); return; }
  if (!ready) return;
  if (atTrigger === null) { if (fs.existsSync(trig)) atTrigger = { ticks, msgs }; return; }
  if (ticks > atTrigger.ticks + 20 && msgs > atTrigger.msgs + 20) {
    const ok = lastMsg === msgs;
    console.log(ok ? "PASS" : `FAIL: message ${lastMsg} is the ${msgs}th received`);
    process.exit(ok ? 0 : 1);
  }
}, 5);
' </dev/null >"$LOG" 2>&1 &
	WL_PID=$!
	wait_ready
	[ "$(ls /proc/"$WL_PID"/task | wc -l)" -gt 2 ]
	dump_restore "$@"
	assert_success
	run grep -E '^(PASS|FAIL)' "$LOG"
	assert_output "PASS"
}

@test "node: setInterval and a worker_threads worker carry on (epoll, eventfd)" {
	node_roundtrip
}

@test "node: --leave-running" {
	node_roundtrip --leave-running
}

# Go (Debian's golang-go): goroutines counting under a mutex, a channel
# pipeline, a time.Ticker and a reader parked in the netpoller, on the
# runtime's threads (GOMAXPROCS 4), its epoll and pipe, and SIGURG
# preemption (tests/workloads/go/counters.go). Built once per file run, with
# the Go caches under the file's tmpdir: about a second.
go_counters() {
	local bin="$BATS_FILE_TMPDIR/go-counters"
	if [ ! -x "$bin" ]; then
		GOCACHE="$BATS_FILE_TMPDIR/go-cache" GOPATH="$BATS_FILE_TMPDIR/go-path" \
			go build -o "$bin" "$SRC/go/counters.go" >&2 || return 1
	fi
	echo "$bin"
}

go_roundtrip() {
	command -v go >/dev/null || skip "go is not installed (Debian: golang-go)"
	bin=$(go_counters)
	CEDANA_WL_TRIGGER="$TRIGGER" no_inherited_fds setsid "$bin" </dev/null >"$LOG" 2>&1 &
	WL_PID=$!
	wait_ready
	[ "$(ls /proc/"$WL_PID"/task | wc -l)" -ge 4 ]
	dump_restore "$@"
	assert_success
	run grep -E '^(PASS|FAIL)' "$LOG"
	assert_output "PASS"
}

@test "go: goroutines, a channel pipeline, a ticker and a reader parked in the netpoller carry on" {
	go_roundtrip
}

@test "go: --leave-running" {
	go_roundtrip --leave-running
}

# PyTorch (Debian's python3-torch, so Debian's python3, not a python3
# earlier on PATH) training on four OpenMP threads
# (tests/workloads/torch/train.py): the loop checks its own losses against a
# reference run of the same seed; here the log shows the steps went on from
# the dump, not from 0. A "-- restore" line marks where the restored
# process's output starts. OMP_WAIT_POLICY=passive: idle OpenMP workers
# sleep instead of spinning, which on a small CI machine with more threads
# than cores makes a step about 1.7 times faster (the default, spinning
# policy was checked by hand and restores too). TORCH_PY names another
# interpreter.
TORCH_PY=${TORCH_PY:-/usr/bin/python3}

torch_roundtrip() {
	# find_spec, not an import: importing torch takes seconds
	"$TORCH_PY" -c 'import importlib.util, sys; sys.exit(importlib.util.find_spec("torch") is None)' \
		|| skip "python3-torch is not installed (for $TORCH_PY)"
	OMP_WAIT_POLICY=passive CEDANA_WL_TRIGGER="$TRIGGER" no_inherited_fds setsid \
		"$TORCH_PY" "$SRC/torch/train.py" </dev/null >"$LOG" 2>&1 &
	WL_PID=$!
	wait_ready
	# the main thread and three OpenMP workers at least
	[ "$(ls /proc/"$WL_PID"/task | wc -l)" -ge 4 ]
	run "$ENGINE" dump "$WL_PID" "$IMG" "$@"
	assert_success
	[[ " $* " == *" --leave-running "* ]] && kill_tree "$WL_PID"
	wait "$WL_PID" 2>/dev/null || true
	WL_PID=
	echo "-- restore" >>"$LOG"
	( sleep 0.5; touch "$TRIGGER" ) &
	run timeout 60 "$ENGINE" restore "$IMG" --stdout "$LOG" --stderr "$LOG" \
		--pid-file "$T/restored.pid"
	assert_success
	run grep -E '^(PASS|FAIL)' "$LOG"
	assert_output "PASS"
	# the steps: before the mark, the original's; after it, the restored
	# loop's, which begin right after the dumped one (plain) or at most one
	# past the original's last (--leave-running: the original went on),
	# above the step at READY either way
	ready=$(awk '/^at-ready step/ { print $3 }' "$LOG")
	last=$(awk '/^-- restore/ { exit } /^step/ { s = $2 } END { print s }' "$LOG")
	first=$(awk 'r && /^step/ { print $2; exit } /^-- restore/ { r = 1 }' "$LOG")
	echo "# at READY step $ready, last before the dump $last, first after the restore $first" >&3
	assert [ "$first" -gt "$ready" ]
	if [[ " $* " == *" --leave-running "* ]]; then
		assert [ "$first" -le $((last + 1)) ]
	else
		assert_equal "$first" $((last + 1))
	fi
	# a step printed twice (--leave-running) printed the same loss twice
	run awk '/^step/ { if ($2 in l && l[$2] != $4) print "step " $2 ": " l[$2] " then " $4; l[$2] = $4 }' "$LOG"
	assert_output ""
}

@test "pytorch: a CPU training loop on four OpenMP threads goes on from its step and loss" {
	torch_roundtrip
}

@test "pytorch: --leave-running" {
	torch_roundtrip --leave-running
}

# start_server CMD...: runs a server in a session of its own as $WL_PID,
# output to $LOG.
start_server() {
	no_inherited_fds setsid "$@" </dev/null >"$LOG" 2>&1 &
	WL_PID=$!
}

# wait_port PORT: until something listens on 127.0.0.1:PORT.
wait_port() {
	for _ in $(seq 1 500); do
		python3 -c 'import socket, sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1).close()' "$1" 2>/dev/null && return 0
		sleep 0.02
	done
	echo "nothing listens on port $1" >&2
	cat "$LOG" >&2
	return 1
}

# server_roundtrip [DUMP-FLAGS...]: dumps the server $WL_PID (timed into
# $DUMP_S), kills it after --leave-running, restores it detached (timed into
# $RESTORE_S); the port is free again in between.
server_roundtrip() {
	local t0 t1 t2
	t0=$(date +%s.%N)
	run "$ENGINE" dump "$WL_PID" "$IMG" "$@"
	t1=$(date +%s.%N)
	assert_success
	if [[ " $* " == *" --leave-running "* ]]; then
		kill -0 "$WL_PID"
		kill_session "$WL_PID"
	fi
	wait "$WL_PID" 2>/dev/null || true
	WL_PID=
	run timeout 60 "$ENGINE" restore "$IMG" --stdout "$LOG" --stderr "$LOG" --detach \
		--pid-file "$T/restored.pid"
	t2=$(date +%s.%N)
	assert_success
	DUMP_S=$(echo "$t1 - $t0" | bc)
	RESTORE_S=$(echo "$t2 - $t1" | bc)
}

http_server_roundtrip() {
	local port
	port=$(free_port)
	mkdir "$T/www"
	echo "served after the restore $$" >"$T/www/file.txt"
	start_server python3 -m http.server "$port" --bind 127.0.0.1 --directory "$T/www"
	wait_port "$port"
	run curl -sf "http://127.0.0.1:$port/file.txt"
	assert_output "served after the restore $$"
	server_roundtrip "$@"
	# a fresh client, after the restore
	run curl -sf -m 10 "http://127.0.0.1:$port/file.txt"
	assert_success
	assert_output "served after the restore $$"
}

@test "python3 -m http.server: after the restore a fresh client gets a file" {
	http_server_roundtrip
}

@test "python3 -m http.server: --leave-running" {
	http_server_roundtrip --leave-running
}

REDIS_KEYS=300000

# redis_load PORT N: SET key:I val:I*7 for I in 0..N-1 through one pipe.
redis_load() {
	python3 -c '
import sys
n = int(sys.argv[1])
w = sys.stdout.write
for i in range(n):
    k, v = "key:%d" % i, "val:%d" % (i * 7)
    w("*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(k), k, len(v), v))
' "$2" | redis-cli -p "$1" --pipe
}

redis_roundtrip() {
	command -v redis-server >/dev/null && command -v redis-cli >/dev/null ||
		skip "redis-server is not installed (Debian: redis-server redis-tools)"
	local port
	port=$(free_port)
	# its own config in the test's directory: no persistence, no daemon
	redis_conf "$port" "$T"
	start_server redis-server "$T/redis.conf"
	wait_port "$port"
	run redis_load "$port" "$REDIS_KEYS"
	assert_success
	assert_output --partial "errors: 0, replies: $REDIS_KEYS"
	run redis-cli -p "$port" dbsize
	assert_output "$REDIS_KEYS"
	server_roundtrip "$@"
	echo "# redis $REDIS_KEYS keys: dump ${DUMP_S}s, restore ${RESTORE_S}s, image $(du -sh "$IMG" | cut -f1)" >&3
	# a fresh redis-cli reads every key back and writes new ones
	run redis-cli -p "$port" dbsize
	assert_output "$REDIS_KEYS"
	# one KEYS and an MGET of 1000 keys a line: the same keys and values
	# checked as a SCAN and a GET a key would (those took a minute, most
	# of it round trips)
	run sh -c "redis-cli -p $port keys 'key:*' | wc -l"
	assert_output "$REDIS_KEYS"
	run sh -c "seq 0 $((REDIS_KEYS - 1)) | awk '{ printf \"%s key:%d\", (NR % 1000 == 1 ? \"MGET\" : \"\"), \$1 } NR % 1000 == 0 { print \"\" } END { if (NR % 1000) print \"\" }' | redis-cli -p $port | awk '\$0 != \"val:\" (NR - 1) * 7 { bad++ } END { print NR, bad + 0 }'"
	assert_output "$REDIS_KEYS 0"
	run redis-cli -p "$port" set after-restore yes
	assert_output "OK"
	run redis-cli -p "$port" get after-restore
	assert_output "yes"
	run redis-cli -p "$port" dbsize
	assert_output "$((REDIS_KEYS + 1))"
}

@test "redis-server with 300000 keys: a fresh redis-cli reads every key back and writes new ones" {
	redis_roundtrip
}

@test "redis-server: --leave-running" {
	redis_roundtrip --leave-running
}

# ---- a client outside the tree on an established connection (TCP repair) ----

# locks PORT: how many connection locks name 127.0.0.1:PORT.
locks() {
	nft list tables 2>/dev/null | grep -c "cedana_tcp_.*$(printf '0200%04x7f000001' "$1")" || true
}

# redis_with_client: redis-server on $PORT as $WL_PID with a key, and
# resp-client.py outside its tree ($RESP_CLIENT_PID, its files in $T/client)
# connected to it, past its first SET and GET.
redis_with_client() {
	command -v redis-server >/dev/null && command -v redis-cli >/dev/null ||
		skip "redis-server is not installed (Debian: redis-server redis-tools)"
	PORT=$(free_port)
	LOCK_PORT=$PORT
	redis_conf "$PORT" "$T"
	start_server redis-server "$T/redis.conf"
	wait_port "$PORT"
	mkdir "$T/client"
	resp_client_start "$PORT" "$T/client"
}

@test "redis-server with 300000 keys: a client outside the tree keeps its connection with --tcp-established, across a SET sent while the server is gone" {
	command -v nft >/dev/null || skip "nft is not installed (Debian: nftables)"
	local t0 t1 t2
	redis_with_client
	run redis_load "$PORT" "$REDIS_KEYS"
	assert_output --partial "errors: 0, replies: $REDIS_KEYS"
	t0=$(date +%s.%N)
	run "$ENGINE" dump "$WL_PID" "$IMG" --tcp-established
	t1=$(date +%s.%N)
	assert_success
	wait "$WL_PID" 2>/dev/null || true
	WL_PID=
	# the server is gone and its connection locked: the client's SET waits
	# (dropped, retransmitted), with no reset and no answer
	touch "$T/client/gap"
	sleep 1
	assert_not_exist "$T/client/result"
	assert_equal "$(locks "$PORT")" 1
	t2=$(date +%s.%N)
	run timeout 60 "$ENGINE" restore "$IMG" --stdout "$LOG" --stderr "$LOG" --detach \
		--pid-file "$T/restored.pid" --tcp-established
	assert_success
	echo "# redis $REDIS_KEYS keys and a client: dump $(echo "$t1 - $t0" | bc)s, restore $(echo "$(date +%s.%N) - $t2" | bc)s" >&3
	run resp_client_result "$T/client"
	assert_output "PASS"
	assert_equal "$(locks "$PORT")" 0
	# and a fresh client sees what the old one wrote, and every key
	run redis-cli -p "$PORT" get during
	assert_output "2"
	run redis-cli -p "$PORT" dbsize
	assert_output "$((REDIS_KEYS + 2))"
}

@test "redis-server: without --tcp-established the dump refuses, naming the connection; redis and its client run on" {
	redis_with_client
	run "$ENGINE" dump "$WL_PID" "$IMG"
	assert_failure
	assert_output --regexp "pid $WL_PID: fd [0-9]+ \(socket:\[[0-9]+\]\): a TCP connection 127\.0\.0\.1:$PORT -> 127\.0\.0\.1:[0-9]+ to a peer outside the tree: dump with --tcp-established to keep it"
	assert_not_exist "$IMG"
	kill -0 "$WL_PID"
	touch "$T/client/gap"
	run resp_client_result "$T/client"
	assert_output "PASS"
	assert_equal "$(locks "$PORT")" 0
}

@test "redis-server: --tcp-established --leave-running: the original serves its client on after the dump" {
	command -v nft >/dev/null || skip "nft is not installed (Debian: nftables)"
	redis_with_client
	run "$ENGINE" dump "$WL_PID" "$IMG" --tcp-established --leave-running
	assert_success
	assert_equal "$(locks "$PORT")" 0
	touch "$T/client/gap"
	run resp_client_result "$T/client"
	assert_output "PASS"
}

@test "redis-server: a dump with --tcp-established that fails after the lock releases it; redis and its client run on" {
	command -v nft >/dev/null || skip "nft is not installed (Debian: nftables)"
	redis_with_client
	CEDANA_ENGINE_FAULT=dump-memory run "$ENGINE" dump "$WL_PID" "$IMG" --tcp-established
	assert_failure
	assert_output --partial "injected fault dump-memory"
	assert_not_exist "$IMG"
	assert_equal "$(locks "$PORT")" 0
	touch "$T/client/gap"
	run resp_client_result "$T/client"
	assert_output "PASS"
}

@test "redis-server: an image with a connection to the outside is restored only with --tcp-established or --tcp-close; --tcp-close resets it, fresh clients are served" {
	command -v nft >/dev/null || skip "nft is not installed (Debian: nftables)"
	redis_with_client
	run "$ENGINE" dump "$WL_PID" "$IMG" --tcp-established
	assert_success
	wait "$WL_PID" 2>/dev/null || true
	WL_PID=
	run "$ENGINE" restore "$IMG" --detach --pid-file "$T/restored.pid"
	assert_failure
	assert_output --regexp "a TCP connection 127\.0\.0\.1:$PORT -> 127\.0\.0\.1:[0-9]+ to a peer outside the checkpoint: restore with --tcp-established"
	run timeout 60 "$ENGINE" restore "$IMG" --stdout "$LOG" --stderr "$LOG" --detach \
		--pid-file "$T/restored.pid" --tcp-close
	assert_success
	assert_equal "$(locks "$PORT")" 0
	touch "$T/client/gap"
	run resp_client_result "$T/client"
	assert_output --regexp "^FAIL: (ConnectionResetError|EOFError|BrokenPipeError)"
	run redis-cli -p "$PORT" get before
	assert_output "1"
}

# mc PORT REQUEST: memcached's answer to one request on a fresh connection.
mc() {
	python3 -c '
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), 10)
s.sendall(sys.argv[2].encode().replace(b"|", b"\r\n"))
s.shutdown(socket.SHUT_WR)
out = b""
while True:
    b = s.recv(4096)
    if not b:
        break
    out += b
print(out.decode().replace("\r\n", "|"))
' "$1" "$2"
}

memcached_roundtrip() {
	command -v memcached >/dev/null || skip "memcached is not installed (Debian: memcached)"
	local port i
	port=$(free_port)
	start_server memcached -u "$(id -un)" -l 127.0.0.1 -p "$port" -U 0 -t 4
	wait_port "$port"
	# four worker threads (and memcached's own), each with its epoll and pipe
	assert [ "$(ls "/proc/$WL_PID/task" | wc -l)" -ge 5 ]
	for i in 1 2 3 4 5 6 7 8; do
		run mc "$port" "set k$i 0 0 2|v$i|"
		assert_output "STORED|"
	done
	server_roundtrip "$@"
	# fresh clients, spread over the workers, read every key and write
	for i in 1 2 3 4 5 6 7 8; do
		run mc "$port" "get k$i|"
		assert_output "VALUE k$i 0 2|v$i|END|"
	done
	run mc "$port" "set new 0 0 3|yes|get new|"
	assert_output "STORED|VALUE new 0 3|yes|END|"
}

@test "memcached with its worker threads: fresh clients read every key back and write new ones" {
	memcached_roundtrip
}

@test "memcached: --leave-running" {
	memcached_roundtrip --leave-running
}

# nginx (Debian's): a master and two workers (nobody's), daemon off, its
# configuration, pid file, logs and temp paths all in the test's directory.
# The workers share the master's listening socket and talk to it over
# socketpairs.
nginx_roundtrip() {
	command -v nginx >/dev/null || skip "nginx is not installed (Debian: nginx)"
	local port i before after
	port=$(free_port)
	chmod 755 "$T" # the workers run as nobody
	mkdir "$T/www"
	echo "nginx served after the restore $$" >"$T/www/file.txt"
	cat >"$T/nginx.conf" <<-CONF
		daemon off;
		master_process on;
		worker_processes 2;
		pid $T/nginx.pid;
		error_log $T/nginx-error.log;
		events { worker_connections 64; }
		http {
			access_log $T/nginx-access.log;
			client_body_temp_path $T/nginx-body;
			proxy_temp_path $T/nginx-proxy;
			fastcgi_temp_path $T/nginx-fastcgi;
			uwsgi_temp_path $T/nginx-uwsgi;
			scgi_temp_path $T/nginx-scgi;
			server { listen 127.0.0.1:$port; root $T/www; }
		}
	CONF
	# -e: the error log nginx opens before it reads its configuration
	start_server nginx -p "$T" -c "$T/nginx.conf" -e "$T/nginx-error.log"
	wait_port "$port"
	for _ in $(seq 1 300); do
		[ "$(ps --ppid "$WL_PID" -o comm= | wc -l)" -eq 2 ] && break
		sleep 0.01
	done
	before=$(ps -s "$WL_PID" -o pid=,ppid=,user=,args= | sort -n)
	assert_equal "$(echo "$before" | grep -c 'nginx: worker process')" 2
	run curl -sf "http://127.0.0.1:$port/file.txt"
	assert_output "nginx served after the restore $$"
	local sid=$WL_PID
	server_roundtrip "$@"
	echo "# nginx: dump ${DUMP_S}s, restore ${RESTORE_S}s, image $(du -sh "$IMG" | cut -f1)" >&3
	# the master and both workers are back with their pids
	after=$(ps -s "$sid" -o pid=,ppid=,user=,args= | sort -n | awk '{ if ($1 == '"$sid"') $2 = "-"; print }')
	assert_equal "$after" "$(echo "$before" | awk '{ if ($1 == '"$sid"') $2 = "-"; print }')"
	# several fresh clients, each on a connection of its own
	for i in 1 2 3 4 5 6; do
		run curl -sf -m 10 "http://127.0.0.1:$port/file.txt"
		assert_success
		assert_output "nginx served after the restore $$"
	done
	assert [ "$(grep -c 'GET /file.txt' "$T/nginx-access.log")" -ge 7 ]
}

@test "nginx, a master and two workers: fresh clients get a file after the restore" {
	nginx_roundtrip
}

@test "nginx: --leave-running" {
	nginx_roundtrip --leave-running
}

# PostgreSQL 15 (Debian's postgresql-15): initdb (trust) into the test's
# directory as the postgres user, then the postmaster started here, by
# setpriv (which execs), so that this shell stays its parent and reaps it:
# the restore needs its pid free, and pid 1 reaps orphans slowly here
# (pg_ctl would leave it an orphan). Its children each call setsid, so the
# tree, not the session, is what is killed and compared. It holds a SysV
# segment (its interlock), POSIX shared memory in /dev/shm, a unix socket
# in $T/pg/sock and a TCP one.
PG_BIN=/usr/lib/postgresql/15/bin

as_postgres() {
	setpriv --reuid=postgres --regid=postgres --init-groups "$@"
}

# pg_start: a fresh cluster in $T/pg, its postmaster as $WL_PID on $PG_PORT,
# once it answers on both sockets.
pg_start() {
	[ -x "$PG_BIN/postgres" ] && command -v psql >/dev/null ||
		skip "PostgreSQL 15 is not installed (Debian: postgresql-15 postgresql-client-15)"
	chmod 755 "$T" # the postgres user works under it
	mkdir -p "$T/pg/sock"
	chown -R postgres: "$T/pg"
	PG_DIR=$T/pg
	PG_PORT=$(free_port)
	env -C "$T/pg" setpriv --reuid=postgres --regid=postgres --init-groups \
		"$PG_BIN/initdb" -D "$T/pg/data" -A trust -U postgres --no-sync >"$T/pg/initdb.log" 2>&1 ||
		{ cat "$T/pg/initdb.log" >&2; return 1; }
	start_server env -C "$T/pg" setpriv --reuid=postgres --regid=postgres --init-groups \
		"$PG_BIN/postgres" -D "$T/pg/data" -p "$PG_PORT" -k "$T/pg/sock" \
		-c listen_addresses=127.0.0.1
	wait_port "$PG_PORT"
	for _ in $(seq 1 500); do
		psql_at sock "select 1" >/dev/null 2>&1 && break
		sleep 0.02
	done
	run psql_at sock "select 1"
	assert_output "1"
}

# psql_at sock|tcp SQL: runs SQL over the unix socket or over TCP.
psql_at() {
	local host=$T/pg/sock
	[ "$1" = tcp ] && host=127.0.0.1
	psql -X -A -t -q -v ON_ERROR_STOP=1 -h "$host" -p "$PG_PORT" -U postgres -d postgres -c "$2"
}

# pg_procs PID: "pid ppid args" of the postmaster PID and its children
# (the postmaster's own parent shown as -).
pg_procs() {
	ps -o pid=,ppid=,args= -p "$(descendants "$1" | paste -sd,)" | sort -n |
		awk '{ if ($1 == '"$1"') $2 = "-"; print }'
}

# pg_rows: count, sum and checksum agreement of table t.
PG_ROWS="select count(*), sum(i), bool_and(s = md5(i::text)) from t"

# pg_cleanup: what a killed cluster leaves behind (its SysV segment, its
# /dev/shm files), removed after its tree is gone. A clean stop removes them
# itself: the tests end with one.
pg_cleanup() {
	local root pids shm key
	root=$WL_PID
	[ -z "$root" ] && [ -f "$T/restored.pid" ] && root=$(cat "$T/restored.pid")
	if [ -n "$root" ] && [ -e "/proc/$root" ]; then
		shm=$(cat $(descendants "$root" | sed 's|.*|/proc/&/maps|') 2>/dev/null |
			grep -o '/dev/shm/PostgreSQL\.[0-9]*' | sort -u)
		kill_tree "$root"
		rm -f $shm
	fi
	key=$(awk 'NR == 7 { print $1 }' "$PG_DIR/data/postmaster.pid" 2>/dev/null)
	[ -n "$key" ] && ipcrm -M "$key" 2>/dev/null
	return 0
}

# pg_stop PID: a fast shutdown (SIGINT) of the postmaster PID, which removes
# its shared memory, sockets and pid file.
pg_stop() {
	kill -INT "$1"
	for _ in $(seq 1 1000); do
		[ -e "$PG_DIR/data/postmaster.pid" ] || return 0
		sleep 0.01
	done
	return 1
}

pg_roundtrip() {
	local root before after key pids p t0 t1 tr t2
	pg_start
	root=$WL_PID
	run psql_at sock "create table t (i int primary key, s text);
		insert into t select i, md5(i::text) from generate_series(1, 1000) i"
	assert_success
	run psql_at tcp "$PG_ROWS"
	assert_output "1000|500500|t"
	before=$(pg_procs "$root")
	for p in checkpointer "background writer" walwriter "autovacuum launcher" \
		"logical replication launcher"; do
		assert [ "$(echo "$before" | grep -c "postgres: $p")" -eq 1 ]
	done
	key=$(awk 'NR == 7 { print $1 }' "$T/pg/data/postmaster.pid")
	pids=$(descendants "$root")
	t0=$(date +%s.%N)
	run "$ENGINE" dump "$root" "$IMG" "$@"
	t1=$(date +%s.%N)
	assert_success
	[[ " $* " == *" --leave-running "* ]] && kill_tree "$root"
	wait "$root" 2>/dev/null || true
	WL_PID=
	for p in $pids; do
		for _ in $(seq 1 1000); do [ -e "/proc/$p" ] || break; sleep 0.01; done
	done
	# Its SysV segment outlives the tree (postgres removes it only when it
	# stops cleanly) and a restore refuses to make a segment whose key is
	# taken. A plain dump removes it once the tree is killed (it is in the
	# image); after --leave-running it is the original's: removed here, as
	# a fresh host would not have it.
	if [[ " $* " == *" --leave-running "* ]]; then
		ipcrm -M "$key"
	else
		run ipcrm -M "$key"
		assert_failure
	fi
	tr=$(date +%s.%N)
	run timeout 60 "$ENGINE" restore "$IMG" --stdout "$LOG" --stderr "$LOG" --detach \
		--pid-file "$T/restored.pid"
	t2=$(date +%s.%N)
	assert_success
	echo "# postgresql: dump $(echo "$t1 - $t0" | bc)s, restore $(echo "$t2 - $tr" | bc)s, image $(du -sh "$IMG" | cut -f1)" >&3
	# the postmaster and its checkpointer, walwriter … are back with their pids
	after=$(pg_procs "$root")
	assert_equal "$after" "$before"
	# fresh clients on both sockets read the rows written before and write
	run psql_at sock "$PG_ROWS"
	assert_output "1000|500500|t"
	run psql_at tcp "$PG_ROWS"
	assert_output "1000|500500|t"
	run psql_at sock "insert into t select i, md5(i::text) from generate_series(1001, 1010) i"
	assert_success
	run psql_at tcp "insert into t select i, md5(i::text) from generate_series(1011, 1020) i"
	assert_success
	run psql_at sock "$PG_ROWS"
	assert_output "1020|520710|t"
	run pg_stop "$root"
	assert_success
}

@test "postgresql 15: after the restore psql reads the rows over unix and TCP sockets and writes new ones" {
	pg_roundtrip
}

@test "postgresql 15: --leave-running" {
	pg_roundtrip --leave-running
}

# A client connected over the unix socket: its backend holds the accepted
# end of a connection whose peer (psql) is outside the tree. Today the dump
# refuses it by name, before anything is killed, and PostgreSQL serves on,
# the connected session too.
@test "postgresql 15: a dump while a psql session is connected is refused by name; it serves on" {
	local root before backend
	pg_start
	root=$WL_PID
	run psql_at sock "create table t (i int primary key, s text);
		insert into t select i, md5(i::text) from generate_series(1, 1000) i"
	assert_success
	# the session reads its input from a FIFO this shell holds open
	mkfifo "$T/psql.in"
	no_inherited_fds psql -X -A -t -q -h "$T/pg/sock" -p "$PG_PORT" -U postgres -d postgres \
		<"$T/psql.in" >"$T/psql.out" 2>&1 &
	local held=$!
	exec 7>"$T/psql.in"
	echo "select 'connected';" >&7
	for _ in $(seq 1 500); do grep -q connected "$T/psql.out" && break; sleep 0.02; done
	run cat "$T/psql.out"
	assert_output "connected"
	before=$(pg_procs "$root")
	assert [ "$(echo "$before" | grep -c 'postgres: postgres postgres \[local\] idle')" -eq 1 ]
	backend=$(echo "$before" | awk '/\[local\] idle/ { print $1 }')
	# named: the backend, its fd, the socket and its path
	dump_refused "pid $backend: fd [0-9]+ \(socket:\[[0-9]+\], unix stream $T/pg/sock/\.s\.PGSQL\.$PG_PORT\): its peer socket:\[[0-9]+\].*, held by pid [0-9]+ \(psql\), is outside the checkpoint"
	# the tree runs on untouched: the same tasks, fresh clients served
	assert_equal "$(pg_procs "$root")" "$before"
	run psql_at tcp "insert into t values (1001, md5('1001'))"
	assert_success
	run psql_at sock "$PG_ROWS"
	assert_output "1001|501501|t"
	# and the connected session goes on on its connection
	echo "$PG_ROWS;" >&7
	exec 7>&-
	wait "$held"
	run cat "$T/psql.out"
	assert_output "connected
1001|501501|t"
	run pg_stop "$root"
	assert_success
}

# ---- PostgreSQL with a client session inside the tree (unix connections) ----
# tests/workloads/pg-session.py, as the postgres user, starts postgres 15 as
# its child on a unix socket only and holds a session to it (the backend's
# accepted end, its own client end, the postmaster's listener: one tree).
# Its backends are sessions of their own: the tree is killed by descent.
# pg_session_shm_key: the SysV key of the server's segment (postmaster.pid, line 7).
pg_session_shm_key() {
	sed -n 7p "$T/pg/data/postmaster.pid" 2>/dev/null | awk '{print $1}'
}

# pg_session_stop ROOT: kills the tree of ROOT and removes the SysV segment a killed
# postmaster leaves (a restore refuses a key that is taken, as a fresh host
# would not have it).
pg_session_stop() {
	local key
	key=$(pg_session_shm_key)
	kill_tree "$1"
	wait "$1" 2>/dev/null || true
	[ -n "$key" ] && ipcrm -M "$key" 2>/dev/null
	return 0
}

pg_session_roundtrip() {
	[ -x "$PG_BIN/postgres" ] || skip "PostgreSQL 15 is not installed (Debian: postgresql-15)"
	id postgres >/dev/null 2>&1 || skip "no postgres user"
	local port pid
	port=$(free_port)
	chmod 755 "$T"
	mkdir "$T/pg" "$T/pg/data" "$T/pg/sock"
	cp "$SRC/pg-session.py" "$T/pg/"
	chown postgres:postgres "$T/pg/data" "$T/pg/sock"
	run setpriv --reuid=postgres --regid=postgres --init-groups \
		"$PG_BIN/initdb" -A trust -D "$T/pg/data"
	assert_success
	CEDANA_WL_TRIGGER="$TRIGGER" no_inherited_fds setsid setpriv --reuid=postgres \
		--regid=postgres --init-groups /usr/bin/python3 "$T/pg/pg-session.py" "$PG_BIN" \
		"$T/pg/data" "$T/pg/sock" "$port" ${PG_SESSION_MODE:-} </dev/null >"$LOG" 2>&1 &
	WL_PID=$!
	PG_SESSION_ROOT=$WL_PID
	wait_ready
	pid=$WL_PID
	run "$ENGINE" dump "$WL_PID" "$IMG" "$@"
	assert_success
	[[ " $* " == *" --leave-running "* ]] && pg_session_stop "$WL_PID"
	wait "$WL_PID" 2>/dev/null || true
	WL_PID=
	run timeout 60 "$ENGINE" restore "$IMG" --stdout "$LOG" --stderr "$LOG" --detach \
		--pid-file "$T/restored.pid"
	assert_success
	touch "$TRIGGER"
	for _ in $(seq 1 200); do
		grep -qE '^(PASS|FAIL)' "$LOG" && break
		sleep 0.05
	done
	run grep -E '^(PASS|FAIL)' "$LOG"
	assert_output "PASS"
	# a fresh client over the same socket reads what the session wrote
	local host="$T/pg/sock"
	[ "${PG_SESSION_MODE:-}" = tcp ] && host=127.0.0.1
	run "$PG_BIN/psql" -h "$host" -p "$port" -U postgres -XAtc "SELECT count(*) FROM t" postgres
	assert_success
	assert_output "1001"
	pg_session_stop "$pid"
	PG_SESSION_ROOT=
}

@test "postgresql 15: a session held by a client inside the tree goes on on the same connection after the restore" {
	pg_session_roundtrip
}

@test "postgresql 15 with a session inside the tree: --leave-running" {
	pg_session_roundtrip --leave-running
}

@test "postgresql 15: a session over TCP loopback held by a client inside the tree goes on on the same connection after the restore, with no flag" {
	PG_SESSION_MODE=tcp pg_session_roundtrip
}

@test "postgresql 15 with a TCP session inside the tree: --leave-running" {
	PG_SESSION_MODE=tcp pg_session_roundtrip --leave-running
}
