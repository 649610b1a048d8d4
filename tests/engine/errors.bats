#!/usr/bin/env bats
# Every error case of issue 3: one clear error line, exit 1, nothing left
# behind (no image directory after a failed dump, no process after a failed
# restore), and a dumped tree that keeps running when the dump fails.
load helpers

setup() { engine_setup; }
teardown() {
	mountpoint -q "$T/small" 2>/dev/null && umount "$T/small"
	engine_teardown
}

counter() {
	start_wl "$BUILD_DIR/tests/engine/engine-counter"
}

# The counter still prints (a new number within 2 s, patient under load)
# and is not stopped or traced.
still_counting() {
	local before
	before=$(grep -cE '^[0-9]+$' "$LOG")
	for _ in $(seq 1 200); do
		[ "$(grep -cE '^[0-9]+$' "$LOG")" -gt "$before" ] && break
		sleep 0.01
	done
	[ "$(grep -cE '^[0-9]+$' "$LOG")" -gt "$before" ]
	grep -q '^TracerPid:[[:space:]]*0$' "/proc/$WL_PID/status"
}

@test "dump: a pid that does not exist" {
	run "$ENGINE" dump 999999 "$IMG"
	assert_failure 1
	assert_output "cedana-engine: dump: pid 999999: No such process"
	assert_not_exist "$IMG"
}

@test "dump: a pid we may not trace" {
	counter
	chmod 0777 "$T"
	run setpriv --reuid=65534 --regid=65534 --clear-groups "$ENGINE" dump "$WL_PID" "$IMG"
	assert_failure 1
	assert_output "cedana-engine: dump: pid $WL_PID: Operation not permitted"
	assert_not_exist "$IMG"
	still_counting
}

@test "dump: an image directory that exists already" {
	counter
	mkdir "$IMG"
	run "$ENGINE" dump "$WL_PID" "$IMG"
	assert_failure 1
	assert_output --partial "image directory $IMG: File exists"
	still_counting
}

@test "dump: an image directory that cannot be created" {
	counter
	run "$ENGINE" dump "$WL_PID" "$T/no/such/dir"
	assert_failure 1
	assert_output --partial "No such file or directory"
	still_counting
}

@test "dump: an image directory on a read-only filesystem" {
	counter
	mkdir "$T/small"
	mount -t tmpfs -o ro,size=64k tmpfs "$T/small"
	run "$ENGINE" dump "$WL_PID" "$T/small/img"
	assert_failure 1
	assert_output "cedana-engine: dump: image directory $T/small/img: Read-only file system"
	still_counting
}

@test "dump: a full filesystem leaves nothing behind and the task running" {
	counter
	mkdir "$T/small"
	mount -t tmpfs -o size=64k tmpfs "$T/small"
	run "$ENGINE" dump "$WL_PID" "$T/small/img"
	assert_failure 1
	assert_output --partial "No space left on device"
	assert_not_exist "$T/small/img"
	still_counting
}

@test "dump: an unsupported fd (a fanotify group) is refused naming task, fd and kind" {
	CEDANA_WL_TRIGGER="$TRIGGER" no_inherited_fds setsid python3 -c '
import ctypes, time
fd = ctypes.CDLL(None, use_errno=True).fanotify_init(0, 0)
assert fd >= 0, ctypes.get_errno()
print("READY", flush=True)
time.sleep(60)' </dev/null >"$LOG" 2>&1 &
	WL_PID=$!
	wait_ready
	run "$ENGINE" dump "$WL_PID" "$IMG"
	assert_failure 1
	assert_output --regexp "dump: pid $WL_PID: fd [0-9]+ \(anon_inode:\[fanotify\]\): fanotify is not supported"
	assert_not_exist "$IMG"
	kill -0 "$WL_PID"
	[ "$(awk '{print $3}' /proc/$WL_PID/stat)" != "t" ]
}

@test "restore: a thread's tid that is in use is refused before any task exists" {
	CEDANA_WL_TRIGGER="$TRIGGER" no_inherited_fds setsid python3 -c '
import threading, time
threading.Thread(target=time.sleep, args=(60,), daemon=True).start()
print("READY", flush=True)
time.sleep(60)' </dev/null >"$LOG" 2>&1 &
	WL_PID=$!
	wait_ready
	run "$ENGINE" dump "$WL_PID" "$IMG"
	assert_success
	wait "$WL_PID" 2>/dev/null || true
	pid=$WL_PID
	# the thread's tid, taken by another process
	sleep 1000 &
	WL_PID=$!
	python3 - "$IMG/manifest.json" "$WL_PID" <<-'PY'
		import json, sys
		j = json.load(open(sys.argv[1]))
		j["tasks"][0]["threads"][0]["tid"] = int(sys.argv[2])
		json.dump(j, open(sys.argv[1], "w"))
	PY
	run "$ENGINE" restore "$IMG" --stdout "$LOG" --stderr "$LOG"
	assert_failure 1
	assert_output "cedana-engine: restore: pid $WL_PID is in use"
	run kill -0 "$pid"
	assert_failure
}

@test "dump: a root whose session leader is outside the tree dumps with no flags" {
	CEDANA_WL_TRIGGER="$TRIGGER" no_inherited_fds "$BUILD_DIR/tests/engine/engine-counter" </dev/null >"$LOG" 2>&1 &
	WL_PID=$!
	wait_ready
	run "$ENGINE" dump "$WL_PID" "$IMG"
	assert_success
	wait "$WL_PID" 2>/dev/null || true
	WL_PID=
	( sleep 0.3; touch "$TRIGGER" ) &
	run timeout 60 "$ENGINE" restore "$IMG" --stdout "$LOG" --stderr "$LOG"
	assert_success
	run tail -1 "$LOG"
	assert_output "PASS"
}

@test "dump: a process group whose leader has left it is refused (restore could not recreate it)" {
	CEDANA_WL_TRIGGER="$TRIGGER" no_inherited_fds setsid python3 -c '
import os, time
if os.fork() == 0:
    os.setpgid(0, 0)
    if os.fork() == 0:
        time.sleep(1000)
    os.setpgid(0, os.getppid())
    time.sleep(1000)
time.sleep(0.5)
print("READY", flush=True)
time.sleep(1000)
' </dev/null >"$LOG" 2>&1 &
	WL_PID=$!
	wait_ready
	run "$ENGINE" dump "$WL_PID" "$IMG"
	kill_session "$WL_PID"
	assert_failure 1
	assert_output --regexp "pid [0-9]+: its process group [0-9]+ has lost its leader"
	assert_not_exist "$IMG"
}

# An image of the counter, the original gone.
counter_image() {
	counter
	"$ENGINE" dump "$WL_PID" "$IMG"
	wait "$WL_PID" 2>/dev/null || true
	PID=$WL_PID
	WL_PID=
}

refuse_restore() {
	run "$ENGINE" restore "$IMG" --stdout "$LOG" --stderr "$LOG"
	assert_failure 1
	assert_output --partial "$1"
	[ "${#lines[@]}" -eq 1 ]
	[ ! -e "/proc/$PID" ]
}

@test "restore: a missing image" {
	PID=999999
	refuse_restore "restore: image $IMG: No such file or directory"
}

@test "restore: a corrupt page file" {
	counter_image
	printf '\xff' | dd of="$IMG/pages-$PID.img" bs=1 seek=100 conv=notrunc status=none
	refuse_restore "pages-$PID.img: checksum mismatch (corrupt image)"
}

# Page checksums are checked as the pages stream into the new, stopped
# tasks: by each task for the memory it premaps itself, by the controller for
# the rest (the stack: the page file's last pages here). A bad byte in either
# kills the tree before it runs an instruction: it prints nothing.
corrupt_at() {
	printf '\xff' | dd of="$IMG/pages-$PID.img" bs=1 seek="$1" conv=notrunc status=none
	run "$ENGINE" restore "$IMG" --stdout "$T/after.log" --stderr "$T/after.log"
	assert_failure 1
	assert_output --partial "pages-$PID.img: checksum mismatch (corrupt image)"
	[ "${#lines[@]}" -eq 1 ]
	[ ! -e "/proc/$PID" ]
	[ ! -s "$T/after.log" ]
}

@test "restore: a corrupt page a task premaps itself kills the tree before it runs" {
	counter_image
	corrupt_at 5000
}

@test "restore: a corrupt page the controller writes (the stack, the file's end) kills the tree" {
	counter_image
	corrupt_at $(($(stat -c %s "$IMG/pages-$PID.img") - 1))
}

@test "restore: a truncated page file" {
	counter_image
	truncate -s 4096 "$IMG/pages-$PID.img"
	refuse_restore "pages-$PID.img: truncated or corrupt"
}

@test "restore: a truncated manifest" {
	counter_image
	truncate -s 100 "$IMG/manifest.json"
	refuse_restore "manifest.json: corrupt or truncated"
}

@test "restore: an image of another format version" {
	counter_image
	sed -i 's/"version":1,/"version":99,/' "$IMG/manifest.json"
	refuse_restore "image format version 99, this engine reads version 1"
}

@test "restore: an image from a kernel with another vDSO layout" {
	counter_image
	sed -i 's/"vdso":8192/"vdso":12288/' "$IMG/manifest.json"
	refuse_restore "incompatible kernel: [vdso] is"
}

@test "restore: a pid that is in use" {
	counter
	"$ENGINE" dump "$WL_PID" "$IMG" --leave-running
	run "$ENGINE" restore "$IMG" --stdout "$LOG" --stderr "$LOG"
	assert_failure 1
	assert_output "cedana-engine: restore: pid $WL_PID is in use"
	still_counting
}

@test "restore: a pid held by a zombie names the parent that has not reaped it" {
	# sh starts the counter, then becomes a sleep that never reaps it
	CEDANA_WL_TRIGGER="$TRIGGER" no_inherited_fds setsid sh -c '"$0" & exec sleep 1000' \
		"$BUILD_DIR/tests/engine/engine-counter" </dev/null >"$LOG" 2>&1 &
	holder=$!
	wait_ready
	WL_PID=$(tr -d ' ' <"/proc/$holder/task/$holder/children")
	"$ENGINE" dump "$WL_PID" "$IMG" --shell-job
	for _ in $(seq 1 300); do
		[ "$(awk '{print $3}' "/proc/$WL_PID/stat")" = Z ] && break
		sleep 0.01
	done
	run "$ENGINE" restore "$IMG" --stdout "$LOG" --stderr "$LOG"
	kill -9 "$holder"
	assert_failure 1
	assert_output "cedana-engine: restore: pid $WL_PID is in use by a zombie (not yet reaped by its parent $holder)"
	WL_PID=$holder
}

@test "restore: a mapped file that is gone is refused before any task exists" {
	cp "$BUILD_DIR/tests/engine/engine-counter" "$T/counter-copy"
	CEDANA_WL_TRIGGER="$TRIGGER" no_inherited_fds setsid "$T/counter-copy" </dev/null >"$LOG" 2>&1 &
	WL_PID=$!
	wait_ready
	"$ENGINE" dump "$WL_PID" "$IMG"
	wait "$WL_PID" 2>/dev/null || true
	PID=$WL_PID
	WL_PID=
	rm "$T/counter-copy"
	refuse_restore "restore: pid $PID: executable $T/counter-copy: No such file or directory"
}

@test "dump: a shared mapping of a deleted file still linked elsewhere is refused naming the mapping" {
	CEDANA_WL_TRIGGER="$TRIGGER" no_inherited_fds setsid python3 -c '
import mmap, os, sys, time
path = sys.argv[1]
with open(path, "wb") as f:
    f.write(b"x" * 4096)
os.link(path, path + ".link")
f = open(path, "r+b")
m = mmap.mmap(f.fileno(), 4096)
f.close()
os.unlink(path)
print("READY", flush=True)
time.sleep(60)' "$T/data" </dev/null >"$LOG" 2>&1 &
	WL_PID=$!
	wait_ready
	run "$ENGINE" dump "$WL_PID" "$IMG"
	assert_failure 1
	assert_output --regexp "dump: pid $WL_PID: mapping [0-9a-f]+-[0-9a-f]+ \(shared $T/data \(deleted\)\): a deleted file still linked elsewhere \(1 links\) or not a regular file is not supported"
	assert_not_exist "$IMG"
	kill -0 "$WL_PID"
}

@test "dump: a SIGSTOP sent while the dump runs is not lost: the dump completes and the task stops" {
	counter
	for delay in 0 0.005 0.01 0.015 0.02 0.03 0.04 0.06; do
		rm -rf "$IMG"
		"$ENGINE" dump "$WL_PID" "$IMG" --leave-running >"$T/dump.out" 2>&1 &
		dumper=$!
		sleep "$delay"
		kill -STOP "$WL_PID"
		wait "$dumper" || { cat "$T/dump.out"; false; }
		wait_stopped "$WL_PID"
		kill -CONT "$WL_PID"
	done
	still_counting
}

@test "dump: a stopped task whose dump fails half-way stays stopped" {
	counter
	kill -STOP "$WL_PID"
	wait_stopped "$WL_PID"
	CEDANA_ENGINE_FAULT=dump-memory run "$ENGINE" dump "$WL_PID" "$IMG"
	assert_failure 1
	assert_output "cedana-engine: dump: pid $WL_PID: injected fault dump-memory"
	assert_not_exist "$IMG"
	sleep 0.2
	[ "$(awk '{print $3}' /proc/$WL_PID/stat)" = T ]
	kill -CONT "$WL_PID"
	still_counting
}

@test "dump: a failure half-way lets the task run on as before (fault injection)" {
	counter
	CEDANA_ENGINE_FAULT=dump-memory run "$ENGINE" dump "$WL_PID" "$IMG"
	assert_failure 1
	assert_output "cedana-engine: dump: pid $WL_PID: injected fault dump-memory"
	assert_not_exist "$IMG"
	still_counting
	# it still works: a real dump and restore afterwards
	dump_restore
	assert_success
	run tail -1 "$LOG"
	assert_output "PASS"
}

@test "dump and restore: a missing kernel feature is refused before anything, naming it" {
	counter
	CEDANA_ENGINE_FAULT=probe-kcmp run "$ENGINE" dump "$WL_PID" "$IMG"
	assert_failure 1
	assert_output "cedana-engine: dump: the kernel feature \"kcmp\" is missing (injected fault probe-kcmp): a dump needs it"
	assert_not_exist "$IMG"
	still_counting
	CEDANA_ENGINE_FAULT=probe-rseq-config run "$ENGINE" dump "$WL_PID" "$IMG"
	assert_failure 1
	assert_output --partial "the kernel feature \"rseq config\" is missing"
	assert_not_exist "$IMG"
	still_counting
	local pid=$WL_PID
	"$ENGINE" dump "$WL_PID" "$IMG"
	wait "$WL_PID" 2>/dev/null || true
	WL_PID=
	CEDANA_ENGINE_FAULT=probe-clone3-set_tid run "$ENGINE" restore "$IMG" --stdout "$LOG" \
		--stderr "$LOG"
	assert_failure 1
	assert_output "cedana-engine: restore: the kernel feature \"clone3 set_tid\" is missing (injected fault probe-clone3-set_tid): a restore needs it"
	# nothing was restored
	[ ! -e "/proc/$pid" ]
}

# restore_fails_cleanly FAULT: a tree image restored with a fault half-way
# fails with it and leaves none of its tasks behind.
restore_fails_cleanly() {
	start_wl "$WL_DIR/wl-tree"
	pids=$(descendants "$WL_PID")
	"$ENGINE" dump "$WL_PID" "$IMG"
	wait "$WL_PID" 2>/dev/null || true
	WL_PID=
	CEDANA_ENGINE_FAULT=$1 run "$ENGINE" restore "$IMG" --stdout "$LOG" --stderr "$LOG"
	assert_failure 1
	assert_output --partial "injected fault $1"
	for p in $pids; do
		for _ in $(seq 1 300); do [ -e "/proc/$p" ] || break; sleep 0.01; done
		[ ! -e "/proc/$p" ]
	done
}

@test "restore: a failure after tasks exist leaves none behind (fault injection)" {
	restore_fails_cleanly restore-transplant
}

@test "restore: a task failing to prepare leaves none behind, its children included" {
	restore_fails_cleanly restore-prepare
}

@test "restore: a task that fails while its child waits for its data is the error named, not the child it took with it" {
	# wl-tree's A fails after making G; G dies with it (parent-death
	# signal) before the controller writes G's data (fault injection)
	restore_fails_cleanly restore-prepare-orphan
	refute_output --partial "No such process"
}

@test "dump: a task in another namespace is refused" {
	CEDANA_WL_TRIGGER="$TRIGGER" unshare --uts "$BUILD_DIR/tests/engine/engine-counter" \
		</dev/null >"$LOG" 2>&1 &
	WL_PID=$!
	wait_ready
	run "$ENGINE" dump "$WL_PID" "$IMG" --shell-job
	assert_failure 1
	assert_output "cedana-engine: dump: pid $WL_PID: in another uts namespace; namespaces are not supported"
	assert_not_exist "$IMG"
	still_counting
}

@test "a python3 with a seccomp filter comes back with it" {
	CEDANA_WL_TRIGGER="$TRIGGER" no_inherited_fds setsid python3 -c '
import ctypes, time
libc = ctypes.CDLL(None, use_errno=True)
# PR_SET_NO_NEW_PRIVS, then SECCOMP_MODE_FILTER with an allow-all program
libc.prctl(38, 1, 0, 0, 0)
class F(ctypes.Structure):
    _fields_ = [("code", ctypes.c_ushort), ("jt", ctypes.c_ubyte), ("jf", ctypes.c_ubyte), ("k", ctypes.c_uint)]
class P(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(F))]
allow = (F * 1)(F(0x06, 0, 0, 0x7fff0000))
assert libc.prctl(22, 2, ctypes.byref(P(1, allow)), 0, 0) == 0
print("READY", flush=True)
time.sleep(60)' </dev/null >"$LOG" 2>&1 &
	WL_PID=$!
	wait_ready
	run "$ENGINE" dump "$WL_PID" "$IMG"
	assert_success
	wait "$WL_PID" 2>/dev/null || true
	WL_PID=
	run timeout 60 "$ENGINE" restore "$IMG" --stdout "$LOG" --stderr "$LOG" --detach \
		--pid-file "$T/restored.pid"
	assert_success
	WL_PID=$(cat "$T/restored.pid")
	run grep -E "^(Seccomp|Seccomp_filters|NoNewPrivs):" /proc/"$WL_PID"/status
	assert_output --regexp "NoNewPrivs:.1"
	assert_output --regexp "Seccomp:.2"
	assert_output --regexp "Seccomp_filters:.1"
	kill "$WL_PID"
}

@test "restore: a mapped file that changed since the dump is refused" {
	cp "$BUILD_DIR/tests/engine/engine-counter" "$T/counter-copy"
	CEDANA_WL_TRIGGER="$TRIGGER" no_inherited_fds setsid "$T/counter-copy" </dev/null >"$LOG" 2>&1 &
	WL_PID=$!
	wait_ready
	"$ENGINE" dump "$WL_PID" "$IMG"
	wait "$WL_PID" 2>/dev/null || true
	PID=$WL_PID
	WL_PID=
	touch -d '2001-01-01' "$T/counter-copy"
	refuse_restore "restore: pid $PID: mapped file $T/counter-copy changed since the dump"
}

# The count wl-spin's parent keeps in its side file: it moves whenever the
# parent runs an instruction of its loop.
spin_count() { od -An -tu8 -N8 "$TRIGGER.spin" | tr -d ' '; }

@test "restore: a failure lets no restored task run an instruction (fault injection)" {
	start_wl "$WL_DIR/wl-spin"
	"$ENGINE" dump "$WL_PID" "$IMG"
	wait "$WL_PID" 2>/dev/null || true
	WL_PID=
	before=$(spin_count)
	# the root is transplanted first, its child fails
	CEDANA_ENGINE_FAULT=restore-transplant run "$ENGINE" restore "$IMG" --stdout "$LOG" \
		--stderr "$LOG"
	assert_failure 1
	assert_output --partial "injected fault restore-transplant"
	sleep 0.3
	[ "$(spin_count)" = "$before" ]
	run grep -v '^READY$' "$LOG"
	assert_output ""
	# the count does move when the restore succeeds
	( sleep 0.5; touch "$TRIGGER" ) &
	run timeout 60 "$ENGINE" restore "$IMG" --stdout "$LOG" --stderr "$LOG"
	assert_success
	[ "$(spin_count)" != "$before" ]
	run tail -1 "$LOG"
	assert_output "PASS"
}

@test "dump: a failure half-way lets every thread run on as before (fault injection)" {
	start_wl "$BUILD_DIR/tests/workloads/wl-threads"
	CEDANA_ENGINE_FAULT=dump-memory run "$ENGINE" dump "$WL_PID" "$IMG"
	assert_failure 1
	assert_output "cedana-engine: dump: pid $WL_PID: injected fault dump-memory"
	assert_not_exist "$IMG"
	[ "$(ls /proc/"$WL_PID"/task | wc -l)" -eq 9 ]
	touch "$TRIGGER"
	wait "$WL_PID"
	WL_PID=
	run grep -E '^(PASS|FAIL)' "$LOG"
	assert_output "PASS"
}

@test "restore: a failure with half the threads made leaves no task or thread behind (fault injection)" {
	start_wl "$BUILD_DIR/tests/workloads/wl-threads"
	tids=$(ls /proc/"$WL_PID"/task)
	"$ENGINE" dump "$WL_PID" "$IMG"
	wait "$WL_PID" 2>/dev/null || true
	WL_PID=
	CEDANA_ENGINE_FAULT=restore-thread run "$ENGINE" restore "$IMG" --stdout "$LOG" --stderr "$LOG"
	assert_failure 1
	assert_output --partial "injected fault restore-thread"
	for p in $tids; do
		for _ in $(seq 1 300); do [ -e "/proc/$p" ] || break; sleep 0.01; done
		[ ! -e "/proc/$p" ]
	done
	# nothing restored ran: no line after READY
	run grep -v '^READY$' "$LOG"
	assert_output ""
}

# python3 whose second thread forks a child (with parent-death signal $1, 0 for none).
thread_child() {
	CEDANA_WL_TRIGGER="$TRIGGER" no_inherited_fds setsid python3 -W ignore -c '
import ctypes, os, sys, threading, time
sig = int(sys.argv[1])
def spawn():
    pid = os.fork()
    if pid == 0:
        if sig:
            ctypes.CDLL(None).prctl(1, sig)
        time.sleep(60)
        os._exit(0)
    time.sleep(60)
threading.Thread(target=spawn, daemon=True).start()
time.sleep(0.3)
print("READY", flush=True)
time.sleep(60)' "$1" </dev/null >"$LOG" 2>&1 &
	WL_PID=$!
	wait_ready
}

@test "dump: a child forked by a thread other than the main one is in the checkpoint" {
	thread_child 0
	run "$ENGINE" dump "$WL_PID" "$IMG" --leave-running
	assert_success
	run python3 -c 'import json, sys; print(len(json.load(open(sys.argv[1]))["tasks"]))' \
		"$IMG/manifest.json"
	assert_output 2
}

@test "dump: a parent-death signal of a child forked by another thread than the main one is refused; it runs on" {
	thread_child 15
	run "$ENGINE" dump "$WL_PID" "$IMG"
	assert_failure 1
	assert_output --regexp "pid [0-9]+ \(python3\): parent-death signal 15, and its parent is thread [0-9]+ of pid $WL_PID, not the main thread: not supported"
	assert_not_exist "$IMG"
	kill -0 "$WL_PID"
}
