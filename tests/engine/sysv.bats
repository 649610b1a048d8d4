#!/usr/bin/env bats
# SysV IPC objects (host IPC namespace) the tree used: shared memory
# segments go into the image (wl-shm in workloads.bats restores them);
# what cannot be brought back is refused at dump by name, before anything
# is killed: the tree runs on, no image is left. See docs/engine.md (SysV
# IPC). Each workload prints the id of the object
# it made, removed in teardown (the objects outlive their processes).
load helpers

setup() { engine_setup; }
teardown() {
	local kind id
	[ -n "${OUTSIDER:-}" ] && kill "$OUTSIDER" 2>/dev/null
	if [ -s "$T/ipc" ]; then
		read -r kind id <"$T/ipc"
		ipcrm "-$kind" "$id" 2>/dev/null || true
	fi
	engine_teardown
}

# sysv_wl KIND CODE: a python3 task that runs CODE (which sets i, the id),
# writes "KIND i" to $T/ipc, prints READY and sleeps.
sysv_wl() {
	CEDANA_WL_TRIGGER="$TRIGGER" IPC_OUT="$T/ipc" no_inherited_fds setsid python3 -c '
import ctypes, os, struct, sys, time
libc = ctypes.CDLL(None, use_errno=True)
libc.shmat.restype = ctypes.c_void_p
CREAT = 0o1000
'"$2"'
if i < 0:
    sys.exit("FAIL: " + os.strerror(ctypes.get_errno()))
with open(os.environ["IPC_OUT"], "w") as f:
    f.write("'"$1"' %d\n" % i)
print("READY", flush=True)
time.sleep(60)' </dev/null >"$LOG" 2>&1 &
	WL_PID=$!
	wait_ready
}

# sysv_wl_attached: a segment made by ipcmk (outside the tree), its id in
# $shmid, attached by the workload.
sysv_wl_attached() {
	shmid=$(ipcmk -M 4096 | grep -oE '[0-9]+$')
	echo "m $shmid" >"$T/ipc"
	sysv_wl m '
i = '"$shmid"'
if libc.shmat(i, None, 0) in (None, ctypes.c_void_p(-1).value):
    i = -1'
}

# dump_gone: a plain dump succeeds, and the object of $T/ipc went into the
# image: it is no longer on the host.
dump_gone() {
	local kind id
	read -r kind id <"$T/ipc"
	run "$ENGINE" dump "$WL_PID" "$IMG"
	assert_success
	wait "$WL_PID" 2>/dev/null || true
	WL_PID=
	run sh -c "ipcs -$kind | awk '{print \$2}' | grep -qx $id"
	assert_failure
}

@test "sysv: a message queue the tree sent to goes into the image with its messages" {
	sysv_wl q '
i = libc.msgget(0, CREAT | 0o600)
m = struct.pack("l", 7) + b"hello"
if i >= 0 and libc.msgsnd(i, m, 5, 0) < 0:
    i = -1'
	read -r _ id <"$T/ipc"
	dump_gone
	run jq -c '[.sysv_msq[] | [.id, .key, .mode, .msgs]]' "$IMG/manifest.json"
	assert_output "[[$id,0,384,[{\"mtype\":7,\"data\":\"68656c6c6f\"}]]]"
}

@test "sysv: a semaphore set the tree operated on goes into the image with its values" {
	sysv_wl s '
i = libc.semget(0, 2, CREAT | 0o600)
op = struct.pack("Hhh", 1, 3, 0)
if i >= 0 and libc.semop(i, op, 1) < 0:
    i = -1'
	read -r _ id <"$T/ipc"
	dump_gone
	run jq -c '[.sysv_sem[] | [.id, .key, .mode, .operated, .vals]]' "$IMG/manifest.json"
	assert_output "[[$id,0,384,1,[0,3]]]"
}

@test "sysv: a semaphore set a task of the tree waits on (no pid of the tree in it) goes into the image" {
	# made by ipcmk; the workload blocks in semop, which records no pid
	semid=$(ipcmk -S 1 | grep -oE '[0-9]+$')
	sysv_wl s '
i = '"$semid"'
with open(os.environ["IPC_OUT"], "w") as f:
    f.write("s %d\n" % i)
if os.fork() == 0:
    libc.semop(i, struct.pack("Hhh", 0, -1, 0), 1)
    os._exit(0)
time.sleep(0.3)'
	dump_gone
	run jq -c '[.sysv_sem[] | .id]' "$IMG/manifest.json"
	assert_output "[$semid]"
}

@test "sysv: SEM_UNDO adjustments of a task are refused by name" {
	sysv_wl s '
i = libc.semget(0, 1, CREAT | 0o600)
op = struct.pack("Hhh", 0, 1, 0x1000)
if i >= 0 and libc.semop(i, op, 1) < 0:
    i = -1'
	dump_refused "dump: pid $WL_PID: SEM_UNDO adjustments \\(semadj\\) of SysV semaphores: not supported"
}

# Every thread made by pthread_create has an (empty) undo list: a set some
# other program holds must not get a multi-threaded tree refused.
@test "sysv: a threaded task is dumped while a set it does not use exists on the host" {
	semid=$(ipcmk -S 1 | grep -oE '[0-9]+$')
	sysv_wl s '
import threading
threading.Thread(target=time.sleep, args=(60,), daemon=True).start()
i = '"$semid"
	run "$ENGINE" dump "$WL_PID" "$IMG" --leave-running
	assert_success
	run jq -c '[.sysv_sem[]?] | length' "$IMG/manifest.json"
	assert_output "0"
	run sh -c "ls /proc/$WL_PID/task | wc -l"
	assert_output "2"
}

@test "sysv: a segment the tree created (not attached) goes into the image and is removed with the tree" {
	sysv_wl m '
i = libc.shmget(0, 4096, CREAT | 0o600)'
	read -r _ id <"$T/ipc"
	run "$ENGINE" dump "$WL_PID" "$IMG"
	assert_success
	wait "$WL_PID" 2>/dev/null || true
	WL_PID=
	run jq -c '[.sysv_shm[] | [.id, .key, .mode, .size, .removed]]' "$IMG/manifest.json"
	assert_output "[[$id,0,384,4096,0]]"
	assert_exist "$IMG/sysv-shm-$id.img"
	run sh -c "ipcs -m | awk '{print \$2}' | grep -qx $id"
	assert_failure
}

# The key and id of a segment are the restored tree's: one that another
# process holds on the restoring host refuses the restore, by name, before
# any task exists.
@test "sysv: a segment id taken on the restoring host refuses the restore before any task exists" {
	sysv_wl_attached
	run "$ENGINE" dump "$WL_PID" "$IMG" --leave-running
	assert_success
	pid=$WL_PID
	kill -9 "$WL_PID"
	wait "$WL_PID" 2>/dev/null || true
	WL_PID=
	# the segment is still ipcmk's
	run "$ENGINE" restore "$IMG"
	assert_failure
	assert_output --regexp "restore: SysV shared memory segment key 0x[0-9a-f]{8} \(id $shmid\) is taken on this host"
	[ ! -e "/proc/$pid" ]
	ipcs -m -i "$shmid" | grep -q "nattch=0"
}

@test "sysv: a segment also attached outside the tree is refused by name" {
	sysv_wl_attached
	# an outsider keeps it attached
	python3 -c '
import ctypes, time
libc = ctypes.CDLL(None, use_errno=True)
libc.shmat.restype = ctypes.c_void_p
a = libc.shmat('"$shmid"', None, 0)
assert a not in (None, ctypes.c_void_p(-1).value)
print("ok", flush=True)
time.sleep(60)' >"$T/outsider" &
	OUTSIDER=$!
	for _ in $(seq 100); do grep -q ok "$T/outsider" && break; sleep 0.05; done
	dump_refused "dump: SysV shared memory segment \(key 0x[0-9a-f]{8}, id $shmid\) used by the tree is also attached by 1 process mapping\(s\) outside the tree"
	kill "$OUTSIDER"
}

@test "sysv: an attachment partly unmapped is refused by name" {
	sysv_wl m '
i = libc.shmget(0, 8192, CREAT | 0o600)
a = libc.shmat(i, None, 0)
if a in (None, ctypes.c_void_p(-1).value) or libc.munmap(ctypes.c_void_p(a + 4096), 4096):
    i = -1'
	read -r _ id <"$T/ipc"
	dump_refused "dump: pid $WL_PID: mapping [0-9a-f]+-[0-9a-f]+: part of an attachment of SysV shared memory segment \(key 0x00000000, id $id\) \(some of it unmapped\): not supported"
}

@test "sysv: objects the tree never used do not refuse its dump" {
	# a queue with a message, a set operated on, a segment: all by
	# processes outside the tree
	q=$(ipcmk -Q | grep -oE '[0-9]+$')
	s=$(ipcmk -S 1 | grep -oE '[0-9]+$')
	m=$(ipcmk -M 4096 | grep -oE '[0-9]+$')
	echo "q $q" >"$T/ipc"
	python3 -c '
import ctypes, struct
libc = ctypes.CDLL(None, use_errno=True)
assert libc.msgsnd('"$q"', struct.pack("l", 1) + b"x", 1, 0) == 0
assert libc.semop('"$s"', struct.pack("Hhh", 0, 1, 0), 1) == 0'
	start_wl "$BUILD_DIR/tests/engine/engine-counter"
	run "$ENGINE" dump "$WL_PID" "$IMG" --leave-running
	ipcrm -s "$s" -m "$m"
	assert_success
	kill -0 "$WL_PID"
}
