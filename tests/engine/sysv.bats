#!/usr/bin/env bats
# SysV IPC objects (host IPC namespace) the tree used are refused at dump
# by name, before anything is killed: the tree runs on, no image is left.
# See docs/engine.md (SysV IPC). Each workload prints the id of the object
# it made, removed in teardown (the objects outlive their processes).
load helpers

setup() { engine_setup; }
teardown() {
	local kind id
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

# The dump is refused with MESSAGE and the tree runs on, not traced.
refused() {
	run "$ENGINE" dump "$WL_PID" "$IMG"
	assert_failure 1
	assert_output --regexp "$1"
	assert_not_exist "$IMG"
	kill -0 "$WL_PID"
	[ "$(awk '{print $3}' /proc/$WL_PID/stat)" != "t" ]
	grep -q '^TracerPid:[[:space:]]*0$' "/proc/$WL_PID/status"
}

@test "sysv: a message queue the tree sent to is refused by name" {
	sysv_wl q '
i = libc.msgget(0, CREAT | 0o600)
m = struct.pack("l", 7) + b"hello"
if i >= 0 and libc.msgsnd(i, m, 5, 0) < 0:
    i = -1'
	read -r _ id <"$T/ipc"
	refused "dump: pid $WL_PID: SysV message queue \(key 0x00000000, id $id\) used by the tree"
}

@test "sysv: a semaphore set the tree operated on is refused by name" {
	sysv_wl s '
i = libc.semget(0, 2, CREAT | 0o600)
op = struct.pack("Hhh", 1, 3, 0)
if i >= 0 and libc.semop(i, op, 1) < 0:
    i = -1'
	read -r _ id <"$T/ipc"
	refused "dump: pid $WL_PID: SysV semaphore set \(key 0x00000000, id $id\) used by the tree"
}

@test "sysv: a shared memory segment the tree created (not attached) is refused by name" {
	sysv_wl m '
i = libc.shmget(0, 4096, CREAT | 0o600)'
	read -r _ id <"$T/ipc"
	refused "dump: pid $WL_PID: SysV shared memory segment \(key 0x00000000, id $id\) used by the tree"
}

@test "sysv: a shared memory segment the tree attached (made elsewhere) is refused by name" {
	# made by ipcmk (outside the tree), attached by the workload: its lpid
	# is the tree's, seen as used
	shmid=$(ipcmk -M 4096 | grep -oE '[0-9]+$')
	echo "m $shmid" >"$T/ipc"
	sysv_wl m '
i = '"$shmid"'
if libc.shmat(i, None, 0) in (None, ctypes.c_void_p(-1).value):
    i = -1'
	refused "dump: pid $WL_PID: SysV shared memory segment \(key 0x[0-9a-f]{8}, id $shmid\) used by the tree"
}

@test "sysv: an attached segment last attached by a process outside the tree is refused as a mapping" {
	shmid=$(ipcmk -M 4096 | grep -oE '[0-9]+$')
	echo "m $shmid" >"$T/ipc"
	sysv_wl m '
i = '"$shmid"'
if libc.shmat(i, None, 0) in (None, ctypes.c_void_p(-1).value):
    i = -1'
	# an outsider attaches and detaches: lpid is no longer the tree's
	python3 -c '
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
libc.shmat.restype = ctypes.c_void_p
a = libc.shmat('"$shmid"', None, 0)
assert a not in (None, ctypes.c_void_p(-1).value)
assert libc.shmdt(ctypes.c_void_p(a)) == 0'
	refused "dump: pid $WL_PID: mapping [0-9a-f]+-[0-9a-f]+ \(/SYSV[0-9a-f]{8} \(deleted\)\): a SysV shared memory segment: not supported"
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
