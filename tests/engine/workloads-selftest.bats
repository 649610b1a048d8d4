#!/usr/bin/env bats
# Every workload run and triggered WITHOUT a checkpoint must PASS; where a broken state can be
# provoked from outside, the workload must notice it and FAIL, so its checks are known to bite.
load '/usr/lib/bats/bats-support/load'
load '/usr/lib/bats/bats-assert/load'
load ../workloads/lib

setup() {
	: "${BUILD_DIR:=$BATS_TEST_DIRNAME/../../build}"
}

teardown() {
	wl_cleanup
}

# Runs a workload through the protocol with no checkpoint and expects PASS.
run_plain() {
	wl_start "$@"
	wl_wait_ready
	wl_trigger
	wl_wait_exit
	wl_assert_pass
}

@test "every tests/workloads/wl-*.c is built" {
	local src
	for src in "$WL_SRC"/wl-*.c; do
		[ -x "$(wl_bin "$(basename "$src" .c)")" ] || {
			echo "$src is not built: add it to tests/workloads/meson.build" >&2
			return 1
		}
	done
}

@test "wl-counter passes and counts 1, 2, 3, … without a gap" {
	run_plain wl-counter
	wl_check_counter "$WL_LOG"
}

@test "a workload starts as the leader of its own session, holding only fds 0-2" {
	wl_start wl-counter
	wl_wait_ready
	[ "$(ps -o sid= -p "$WL_PID")" -eq "$WL_PID" ]
	[ "$(readlink "/proc/$WL_PID/exe")" = "$(wl_bin wl-counter)" ]
	run ls "/proc/$WL_PID/fd"
	assert_output "$(printf '0\n1\n2')"
}

@test "wl-counter fails when its heap counter is corrupted" {
	wl_start wl-counter
	wl_wait_ready
	addr=$(sed -n 's/^wl-counter: heap counter at \(0x[0-9a-f]*\)$/\1/p' "$WL_LOG")
	[ -n "$addr" ]
	kill -STOP "$WL_PID"
	wl_tamper mem "$WL_PID" "$addr" 0000000000000000
	kill -CONT "$WL_PID"
	wl_trigger
	wl_wait_exit
	wl_assert_fail "heap counter"
}

@test "the counter check catches a gap and a repeat" {
	printf '1\n2\nREADY\n3\n' >"$BATS_TEST_TMPDIR/ok"
	wl_check_counter "$BATS_TEST_TMPDIR/ok"
	printf '1\n2\n4\n' >"$BATS_TEST_TMPDIR/gap"
	run wl_check_counter "$BATS_TEST_TMPDIR/gap"
	assert_failure
	printf '1\n2\n2\n3\n' >"$BATS_TEST_TMPDIR/repeat"
	run wl_check_counter "$BATS_TEST_TMPDIR/repeat"
	assert_failure
}

@test "a workload that is never triggered gives up with FAIL: no trigger" {
	WL_TIMEOUT=1 wl_start wl-counter
	wl_wait_ready
	wl_wait_exit
	wl_assert_fail "no trigger"
}

@test "wl-memory passes with the default 256 MiB" {
	run_plain wl-memory
}

@test "wl-lazy-fork passes with no checkpoint" {
	run_plain wl-lazy-fork 64
}

@test "wl-incr passes with no checkpoint, and after two generations of changes" {
	run_plain wl-incr 4
	wl_start wl-incr 4
	wl_wait_ready
	kill -USR1 "$WL_PID"
	wait_log_line "^CHANGED 1$"
	kill -USR1 "$WL_PID"
	wait_log_line "^CHANGED 2$"
	wl_trigger
	wl_wait_exit
	wl_assert_pass
}

wait_log_line() {
	for _ in $(seq 1 500); do
		grep -q "$1" "$WL_LOG" && return 0
		sleep 0.01
	done
	return 1
}

@test "wl-incr fails when a page is changed behind its back" {
	wl_start wl-incr 4 solo
	wl_wait_ready
	kill -USR1 "$WL_PID"
	wait_log_line "^CHANGED 1$"
	local addr
	addr=$(sed -n 's/^wl-incr: memory at \(0x[0-9a-f]*\)$/\1/p' "$WL_LOG")
	wl_tamper mem "$WL_PID" "$(printf '0x%x' $((addr + 5 * 4096 + 8)))" deadbeef
	wl_trigger
	wl_wait_exit
	wl_assert_fail "page 5 differs at 8 (generation 1)"
}

@test "wl-incr fails on a signal it did not ask for" {
	wl_start wl-incr 4 solo
	wl_wait_ready
	kill -USR2 "$WL_PID"
	wl_trigger
	wl_wait_exit
	wl_assert_fail "signal 12 arrived"
}

# The address wl-memory prints on stderr for a region ("shared" or "random").
memory_addr() {
	sed -n "s/^wl-memory: .*$1 at \(0x[0-9a-f]*\).*/\1/p" "$WL_LOG"
}

@test "wl-memory fails when its shared memory is corrupted" {
	wl_start wl-memory 16
	wl_wait_ready
	wl_tamper mem "$WL_PID" "$(memory_addr shared)" deadbeef
	wl_trigger
	wl_wait_exit
	wl_assert_fail "shared memory differs at offset 0"
}

@test "wl-memory fails when its random memory is corrupted" {
	wl_start wl-memory 16
	wl_wait_ready
	addr=$(printf '0x%x' $(($(memory_addr random) + 5 * 4096 + 8)))
	wl_tamper mem "$WL_PID" "$addr" deadbeef
	wl_trigger
	wl_wait_exit
	wl_assert_fail "random memory differs at offset $((5 * 4096 + 8))"
}

@test "wl-memory fails when the file under an unwritten page of its mapping changes" {
	wl_start wl-memory 16
	wl_wait_ready
	# Page 1 was never written, so the private mapping still shows the file.
	printf 'changed' | dd of="$WL_TRIGGER.mem-file" bs=4096 seek=1 conv=notrunc status=none
	wl_trigger
	wl_wait_exit
	wl_assert_fail "private file mapping page 1 (from the file) differs"
}

@test "wl-memory still passes when the file under a written page changes" {
	wl_start wl-memory 16
	wl_wait_ready
	# Page 2 was written: the mapping holds a private copy the file no longer affects.
	printf 'changed' | dd of="$WL_TRIGGER.mem-file" bs=4096 seek=2 conv=notrunc status=none
	wl_trigger
	wl_wait_exit
	wl_assert_pass
}

@test "wl-files passes" {
	run_plain wl-files
}

# Reads what is waiting in a pipe or FIFO, without blocking, as an intruder would.
steal() {
	dd if="$1" of=/dev/null bs=64k count=1 iflag=nonblock status=none
}

@test "wl-files fails when the unread data of its FIFO is stolen" {
	wl_start wl-files
	wl_wait_ready
	steal "$WL_TRIGGER.fifo"
	wl_trigger
	wl_wait_exit
	wl_assert_fail "fifo: fewer bytes than written"
}

@test "wl-files fails when the pipe from its child is drained through /proc/PID/fd" {
	wl_start wl-files
	wl_wait_ready
	steal "/proc/$WL_PID/fd/21"
	wl_trigger
	wl_wait_exit
	wl_assert_fail "pipe from the child: fewer bytes than written"
}

@test "wl-files fails when the pipe to its child is drained (the child notices)" {
	wl_start wl-files
	wl_wait_ready
	steal "/proc/$WL_PID/fd/20"
	wl_trigger
	wl_wait_exit
	wl_assert_fail "exited 1, want 0"
	grep -q 'pipe from the parent: fewer bytes than written' "$WL_LOG"
}

@test "wl-files fails when the file it reads changes under its offset" {
	wl_start wl-files
	wl_wait_ready
	printf 'changed' | dd of="$WL_TRIGGER.files-ro" bs=1 seek=4097 conv=notrunc status=none
	wl_trigger
	wl_wait_exit
	wl_assert_fail "read-only file content at offset 4097 differs"
}

@test "wl-signals passes" {
	run_plain wl-signals
}

@test "wl-signals fails when a blocked signal is left pending from outside" {
	wl_start wl-signals
	wl_wait_ready
	kill -INT "$WL_PID"
	wl_trigger
	wl_wait_exit
	wl_assert_fail "pending signals differ at signal 2"
}

@test "wl-signals fails when its handler ran before the trigger" {
	wl_start wl-signals
	wl_wait_ready
	kill -USR1 "$WL_PID"
	wl_trigger
	wl_wait_exit
	wl_assert_fail "a signal arrived before it was sent or unblocked (usr1 1"
}

@test "wl-signals fails when a third real-time signal is queued" {
	wl_start wl-signals
	wl_wait_ready
	kill -s RTMIN+3 "$WL_PID"
	wl_trigger
	wl_wait_exit
	wl_assert_fail "pending SIGRTMIN+3 arrived 3 times on unblock, want 2"
}

@test "wl-itimer passes" {
	run_plain wl-itimer
}

@test "wl-simd passes at every level the CPU has" {
	local levels=(sse) level
	local -A regs=([sse]=xmm [avx]=ymm [avx512]=zmm)
	grep -qw avx /proc/cpuinfo && levels+=(avx)
	grep -qw avx512f /proc/cpuinfo && grep -qw avx512bw /proc/cpuinfo && levels+=(avx512)
	run_plain wl-simd
	for level in "${levels[@]}"; do
		run_plain wl-simd "$level"
		grep -q "holding [0-9]* ${regs[$level]} registers" "$WL_LOG"
		run_plain wl-simd "$level" threads 3
		grep -q "holding [0-9]* ${regs[$level]} registers.* in 3 thread(s)" "$WL_LOG"
	done
	run_plain wl-simd threads
}

@test "wl-simd fails when a register is changed while it waits" {
	wl_start wl-simd
	wl_wait_ready
	wl_tamper xmm0 "$WL_PID"
	wl_trigger
	wl_wait_exit
	wl_assert_fail "mm0 byte 0 is"
}

# nanosleep (35) or clock_nanosleep (230), whichever libc uses.
SLEEP_SYSCALLS="35 230"

@test "wl-nanosleep passes" {
	run_plain wl-nanosleep 1
}

@test "wl-nanosleep sleeps on after a handled signal interrupts it" {
	wl_start wl-nanosleep 2
	wl_wait_ready
	wl_wait_syscall "$WL_PID" $SLEEP_SYSCALLS
	kill -USR1 "$WL_PID"
	wl_trigger
	wl_wait_exit
	wl_assert_pass
	grep -q 'interrupted 1 times (0 without a signal)' "$WL_LOG"
}

@test "wl-nanosleep fails when its sleep is cut short" {
	wl_start wl-nanosleep 30
	wl_wait_ready
	wl_wait_syscall "$WL_PID" $SLEEP_SYSCALLS
	wl_tamper return "$WL_PID" 0
	wl_trigger
	wl_wait_exit
	wl_assert_fail "asked for 30 s"
}

@test "wl-nanosleep sleeps on after an EINTR without a signal" {
	wl_start wl-nanosleep 2
	wl_wait_ready
	wl_wait_syscall "$WL_PID" $SLEEP_SYSCALLS
	wl_tamper return "$WL_PID" -4
	wl_trigger
	wl_wait_exit
	wl_assert_pass
	grep -q 'interrupted 1 times (1 without a signal)' "$WL_LOG"
}

@test "wl-nanosleep strict fails when its sleep ends in EINTR without a signal" {
	wl_start wl-nanosleep 30 strict
	wl_wait_ready
	wl_wait_syscall "$WL_PID" $SLEEP_SYSCALLS
	wl_tamper return "$WL_PID" -4
	wl_trigger
	wl_wait_exit
	wl_assert_fail "nanosleep returned EINTR with no signal handled"
}

@test "wl-nanosleep strict passes after a handled signal" {
	wl_start wl-nanosleep 1 strict
	wl_wait_ready
	wl_wait_syscall "$WL_PID" $SLEEP_SYSCALLS
	kill -USR1 "$WL_PID"
	wl_trigger
	wl_wait_exit
	wl_assert_pass
}

@test "wl-pipe-read passes" {
	run_plain wl-pipe-read
}

@test "wl-pipe-read fails when its writer is killed" {
	wl_start wl-pipe-read
	wl_wait_ready
	kill -KILL "$(cat /proc/"$WL_PID"/task/*/children)"
	wl_trigger
	wl_wait_exit
	wl_assert_fail "the pipe was closed with no message"
}

@test "wl-pipe-read fails when someone else writes into its pipe" {
	wl_start wl-pipe-read
	wl_wait_ready
	printf 'intruder' >"/proc/$WL_PID/fd/10"
	wl_trigger
	wl_wait_exit
	# Under load the real message may follow in the same read.
	wl_assert_fail 'bytes "intruder'
}

@test "wl-pipe-read fails when its read ends in EINTR without a signal" {
	wl_start wl-pipe-read
	wl_wait_ready
	wl_tamper return "$WL_PID" -4
	wl_trigger
	wl_wait_exit
	wl_assert_fail "read: Interrupted system call"
}

@test "wl-wait passes" {
	run_plain wl-wait
}

@test "wl-wait fails when its child is killed" {
	wl_start wl-wait
	wl_wait_ready
	kill -KILL "$(cat /proc/"$WL_PID"/task/*/children)"
	wl_trigger
	wl_wait_exit
	wl_assert_fail "the child was killed by signal 9"
}

@test "wl-wait fails when its waitpid ends in EINTR without a signal" {
	wl_start wl-wait
	wl_wait_ready
	wl_tamper return "$WL_PID" -4
	wl_trigger
	wl_wait_exit
	wl_assert_fail "waitpid: Interrupted system call"
}

@test "wl-tree passes" {
	run_plain wl-tree
	grep -q '^wl-tree: L=[0-9]* A=[0-9]* B=[0-9]* C=[0-9]* G=[0-9]*$' "$WL_LOG"
}

@test "wl-tree passes when started inside another session (it calls setsid itself)" {
	WL_SETSID=0 wl_start wl-tree
	wl_wait_ready
	[ "$(ps -o sid= -p "$WL_PID")" -eq "$WL_PID" ]
	wl_trigger
	wl_wait_exit
	wl_assert_pass
}

@test "wl-tree fails at once when started as a job of a job-control shell" {
	# A job leads its own process group in the shell's session: setsid() is refused.
	WL_SETSID=0 wl_start_cmd bash -c 'set -m; "$0" & wait $!' "$(wl_bin wl-tree)"
	wl_wait_exit
	wl_assert_fail "setsid: Operation not permitted"
}

# The pid wl-tree gave a member (L, A, B, C or G).
tree_pid() {
	sed -n "s/^wl-tree: .*$1=\([0-9]*\).*/\1/p" "$WL_LOG"
}

@test "wl-tree fails when its grandchild is killed, and leaves nothing behind" {
	wl_start wl-tree
	wl_wait_ready
	kill -KILL "$(tree_pid G)"
	wl_trigger
	wl_wait_exit
	wl_assert_fail "member A: child"
	grep -q "A: child $(tree_pid G) killed by signal 9" "$WL_LOG"
	sleep 0.2
	for m in L A B C; do
		if wl_alive "$(tree_pid $m)"; then
			echo "member $m is still running" >&2
			return 1
		fi
	done
}

@test "wl-tree fails when a member of another process group is killed" {
	wl_start wl-tree
	wl_wait_ready
	kill -KILL "$(tree_pid B)"
	wl_trigger
	wl_wait_exit
	wl_assert_fail "member B: child $(tree_pid B) killed by signal 9"
}

@test "wl-python.sh passes, running python3 under its own pid" {
	wl_start_cmd sh "$WL_SRC/wl-python.sh"
	wl_wait_ready
	[[ "$(readlink "/proc/$WL_PID/exe")" == *python3* ]]
	sleep 0.2
	wl_trigger
	wl_wait_exit
	wl_assert_pass
	grep -q '^wl-python: [1-9][0-9]* steps$' "$WL_LOG"
}

@test "wl-python.sh gives up with FAIL: no trigger" {
	WL_TIMEOUT=1 wl_start_cmd sh "$WL_SRC/wl-python.sh"
	wl_wait_ready
	wl_wait_exit
	wl_assert_fail "no trigger"
}

@test "date-loop.sh keeps adding lines (the check the harness makes after a restore)" {
	wl_start_cmd sh "$WL_SRC/date-loop.sh"
	wl_wait_lines 1
	n=$(wc -l <"$WL_LOG")
	wl_wait_lines $((n + 1)) 5
	wl_alive "$WL_PID"
}

@test "wl_kill_tree kills a whole tree at once: no member sees another die" {
	wl_start wl-tree
	wl_wait_ready
	pids=$(wl_descendants "$WL_PID")
	[ "$(echo $pids | wc -w)" -eq 5 ]
	wl_kill_tree "$WL_PID"
	for pid in $pids; do
		! wl_alive "$pid"
	done
	[ -z "$(wl_verdicts)" ]
	! grep -q 'killed by signal' "$WL_LOG"
}

@test "wl-spin passes" {
	run_plain wl-spin
}

@test "wl-spin fails when its child is killed" {
	wl_start wl-spin
	wl_wait_ready
	kill -9 "$(cat /proc/"$WL_PID"/task/*/children)"
	wl_wait_exit
	wl_assert_fail "the child ended before telling us to stop"
}

@test "wl-cow passes" {
	run_plain wl-cow
}

@test "wl-cow fails when the child's pages are unshared (same contents)" {
	local child addr
	wl_start wl-cow
	wl_wait_ready
	child=$(tr -d " " </proc/"$WL_PID"/task/"$WL_PID"/children)
	addr=$(sed -n "s/^wl-cow: region at \(0x[0-9a-f]*\).*/\1/p" "$WL_LOG")
	# writing a page through /proc/PID/mem gives the child its own copy
	python3 -c '
import sys
pid, addr = sys.argv[1], int(sys.argv[2], 16)
with open(f"/proc/{pid}/mem", "r+b", buffering=0) as f:
    f.seek(addr)
    data = f.read(512 * 4096)
    f.seek(addr)
    f.write(data)' "$child" "$addr"
	wl_trigger
	wl_wait_exit
	wl_assert_fail "exited 1, want 0"
	grep -q "shared with the parent" "$WL_LOG"
}

@test "wl-chain passes, 21 deep" {
	run_plain wl-chain 21
	[ "$(grep -c '' "$WL_LOG")" -eq 2 ]
}

@test "wl-chain fails when a task in the middle is killed" {
	local p
	wl_start wl-chain 5
	wl_wait_ready
	p=$WL_PID
	for _ in 1 2 3; do p=$(tr -d " " </proc/"$p"/task/"$p"/children); done
	kill -9 "$p"
	wl_trigger
	wl_wait_exit
	wl_assert_fail "a task of the chain failed (details on stderr)"
}

@test "wl-sched passes with each policy (batch, idle, other, fifo, rr, fifo with reset-on-fork)" {
	local how
	for how in "" idle other fifo rr "fifo reset"; do
		# shellcheck disable=SC2086 # the policy and flag are two words
		run_plain wl-sched $how
		wl_cleanup
	done
}

@test "wl-sched fails when its policy is changed from outside" {
	wl_start wl-sched
	wl_wait_ready
	wl_tamper sched "$WL_PID"
	wl_trigger
	wl_wait_exit
	wl_assert_fail "policy 0, want 0x3"
}

@test "wl-pdeathsig passes, with a parent-death signal in the child and on itself (root)" {
	run_plain wl-pdeathsig
	wl_cleanup
	run_plain wl-pdeathsig root
}

@test "wl-subreaper passes and adopts an orphan" {
	run_plain wl-subreaper
}

@test "wl-thp passes, THP disabled completely or except where advised" {
	run_plain wl-thp
	wl_cleanup
	run_plain wl-thp advised
}

@test "wl-timerslack passes" {
	run_plain wl-timerslack
}

@test "wl-timerslack fails when its slack is changed from outside" {
	wl_start wl-timerslack
	wl_wait_ready
	echo 50000 >"/proc/$WL_PID/timerslack_ns"
	wl_trigger
	wl_wait_exit
	wl_assert_fail "timer slack 50000 ns, want 123457"
}

@test "wl-loginuid passes" {
	run_plain wl-loginuid
}

@test "wl-membarrier passes" {
	run_plain wl-membarrier
}

@test "wl-pipe-flags passes, with packets left unread too" {
	run_plain wl-pipe-flags
	wl_cleanup
	run_plain wl-pipe-flags packets
}

@test "wl-pipe-flags fails when its pipe's size is changed from outside" {
	wl_start wl-pipe-flags
	wl_wait_ready
	# the size belongs to the pipe: any open file of it may set it (F_SETPIPE_SZ is 1031)
	python3 -c 'import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_WRONLY)
fcntl.fcntl(fd, 1031, 65536)' "/proc/$WL_PID/fd/11"
	wl_trigger
	wl_wait_exit
	wl_assert_fail "fd 10: pipe size 65536, want 262144"
}

@test "wl-fown passes, with an owner outside too" {
	run_plain wl-fown
	wl_cleanup
	run_plain wl-fown outside
}

@test "wl-reg-flags passes" {
	run_plain wl-reg-flags
}

@test "wl-opath passes" {
	run_plain wl-opath
}

@test "wl-opath fails when its file is renamed from outside" {
	wl_start wl-opath
	wl_wait_ready
	mv "$WL_TRIGGER.opath" "$WL_TRIGGER.opath-moved"
	wl_trigger
	wl_wait_exit
	wl_assert_fail "fd 10: now $WL_TRIGGER.opath-moved"
}

@test "wl-procfile passes, with a file of its parent and with its cwd deleted too" {
	run_plain wl-procfile
	wl_cleanup
	run_plain wl-procfile outside
	wl_cleanup
	run_plain wl-procfile cwd-deleted
}

@test "wl-zombie passes" {
	run_plain wl-zombie
}

@test "wl-chroot passes, holding a /proc file from before its chroot too" {
	run_plain wl-chroot
	wl_cleanup
	run_plain wl-chroot procfile
}

@test "wl-caps passes, with PR_SET_KEEPCAPS left set too" {
	run_plain wl-caps
	wl_cleanup
	run_plain wl-caps securebits
}

@test "wl-eventfd passes" {
	run_plain wl-eventfd
}

@test "wl-shm passes" {
	run_plain wl-shm
}

@test "wl-shm notices a segment changed from outside" {
	wl_start wl-shm
	wl_wait_ready
	# the third segment (never attached by the workload): one byte changed
	python3 -c '
import ctypes, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.shmat.restype = ctypes.c_void_p
a = libc.shmat(int(sys.argv[1]), None, 0)
assert a not in (None, ctypes.c_void_p(-1).value)
ctypes.c_ubyte.from_address(a + 100).value ^= 1
libc.shmdt(ctypes.c_void_p(a))' "$(awk 'NR == 3 {print $2}' "$WL_TRIGGER.ipc")"
	wl_trigger
	wl_wait_exit
	wl_assert_fail "c: contents changed"
	# it leaves its segments on a FAIL
	while read -r kind id; do ipcrm "-$kind" "$id" 2>/dev/null || true; done <"$WL_TRIGGER.ipc"
}

@test "wl-msgq passes" {
	run_plain wl-msgq
}

@test "wl-msgq notices a message taken from outside" {
	wl_start wl-msgq
	wl_wait_ready
	# the first message of the first queue (type 1) taken
	python3 -c '
import ctypes, sys
libc = ctypes.CDLL(None, use_errno=True)
buf = ctypes.create_string_buffer(8 + 4096)
assert libc.msgrcv(int(sys.argv[1]), buf, 4096, 1, 0o4000) == 5' \
		"$(awk 'NR == 1 {print $2}' "$WL_TRIGGER.ipc")"
	wl_trigger
	wl_wait_exit
	wl_assert_fail "a: 3 messages"
	while read -r kind id; do ipcrm "-$kind" "$id" 2>/dev/null || true; done <"$WL_TRIGGER.ipc"
}

@test "wl-sem passes" {
	run_plain wl-sem
}

@test "wl-sem notices a value changed from outside" {
	wl_start wl-sem
	wl_wait_ready
	# the first set's second semaphore set to 4 (SETVAL)
	python3 -c '
import ctypes, sys
libc = ctypes.CDLL(None, use_errno=True)
assert libc.semctl(int(sys.argv[1]), 1, 16, 4) == 0' \
		"$(awk 'NR == 1 {print $2}' "$WL_TRIGGER.ipc")"
	wl_trigger
	wl_wait_exit
	wl_assert_fail "a: semaphore 1 is 4, want 5"
	while read -r kind id; do ipcrm "-$kind" "$id" 2>/dev/null || true; done <"$WL_TRIGGER.ipc"
}

@test "wl-signalfd passes" {
	run_plain wl-signalfd
}

@test "wl-timerfd passes" {
	run_plain wl-timerfd
}

@test "wl-thread-attrs passes" {
	run_plain wl-thread-attrs
}

@test "wl-epoll passes" {
	run_plain wl-epoll
}

@test "wl-inotify passes" {
	run_plain wl-inotify
}

@test "wl-stopped passes, plain, seen, sigstop and threads" {
	run_plain wl-stopped
	wl_cleanup
	run_plain wl-stopped seen
	wl_cleanup
	run_plain wl-stopped sigstop
	wl_cleanup
	run_plain wl-stopped threads
}

@test "wl-seccomp passes, plain, strict, notif and differ" {
	run_plain wl-seccomp
	wl_cleanup
	run_plain wl-seccomp strict
	wl_cleanup
	run_plain wl-seccomp notif
	wl_cleanup
	run_plain wl-seccomp differ
}

@test "wl-numa passes, and with a policy on shared memory" {
	[ -e /proc/self/numa_maps ] || skip "no NUMA support"
	run_plain wl-numa
	wl_cleanup
	run_plain wl-numa shared
}

@test "wl-manyfds passes" {
	run_plain wl-manyfds 2000
}

@test "wl-memfd passes, plain, mapped, opened twice, big, map, mapped-sealed and private" {
	run_plain wl-memfd
	wl_cleanup
	run_plain wl-memfd mapped
	wl_cleanup
	run_plain wl-memfd twice
	wl_cleanup
	run_plain wl-memfd big
	wl_cleanup
	run_plain wl-memfd map
	wl_cleanup
	run_plain wl-memfd mapped-sealed
	wl_cleanup
	run_plain wl-memfd private
	[ -d /sys/kernel/mm/hugepages ] || return 0
	wl_cleanup
	run_plain wl-memfd huge
}

@test "wl-memfd-nofd passes, private and shared" {
	run_plain wl-memfd-nofd private
	wl_cleanup
	run_plain wl-memfd-nofd shared
}

@test "wl-deleted passes, plain, mapped, opened twice, big, ghost and private" {
	run_plain wl-deleted
	wl_cleanup
	run_plain wl-deleted mapped
	wl_cleanup
	run_plain wl-deleted twice
	wl_cleanup
	run_plain wl-deleted big
	wl_cleanup
	run_plain wl-deleted ghost
	wl_cleanup
	run_plain wl-deleted private
}

@test "wl-clone-share passes, sharing fd table, cwd and root, or memory with its child" {
	run_plain wl-clone-share files
	wl_cleanup
	run_plain wl-clone-share fs
	wl_cleanup
	run_plain wl-clone-share vm
}

@test "wl-threads passes, with 9 and 64 threads, a thread's own no_new_privs, its main thread gone" {
	run_plain wl-threads
	wl_cleanup
	run_plain wl-threads 64
	wl_cleanup
	run_plain wl-threads 9 nnp
	wl_cleanup
	run_plain wl-threads 9 leader-exit
}

@test "wl-posix-timer passes" {
	run_plain wl-posix-timer
}

@test "wl-locks passes" {
	run_plain wl-locks
}

@test "wl-mlock passes, with mlockall(MCL_FUTURE) and with MCL_ONFAULT too" {
	run_plain wl-mlock
	wl_cleanup
	run_plain wl-mlock future
	wl_cleanup
	run_plain wl-mlock future-onfault
}

@test "wl-maps-prot passes" {
	run_plain wl-maps-prot
}

@test "wl-madvise passes" {
	run_plain wl-madvise
}

@test "wl-madvise passes with a sealed page, a protection key, a NUMA policy and KSM for all memory" {
	run_plain wl-madvise sealed
	wl_cleanup
	if [ -e /proc/self/numa_maps ]; then
		run_plain wl-madvise mbind
		wl_cleanup
	fi
	if grep -qw pku /proc/cpuinfo; then
		run_plain wl-madvise pkey
		wl_cleanup
	fi
	run_plain wl-madvise merge-any
}

@test "wl-unix-listen passes, in each mode" {
	local mode
	for mode in "" pending pendsent pendout connected dgconnect; do
		run_plain wl-unix-listen $mode
		wl_cleanup
	done
}

@test "wl-unix-creds passes, and with outside" {
	run_plain wl-unix-creds
	wl_cleanup
	run_plain wl-unix-creds outside
}

@test "wl-unix-pair passes" {
	run_plain wl-unix-pair
}

@test "wl-unix-shared passes" {
	run_plain wl-unix-shared
}

@test "wl-unix-dgram passes" {
	run_plain wl-unix-dgram
}

@test "wl-unix-conn passes, and with outside" {
	run_plain wl-unix-conn
	wl_cleanup
	run_plain wl-unix-conn outside
}

@test "wl-unix-rights passes, and with free and glued" {
	run_plain wl-unix-rights
	wl_cleanup
	run_plain wl-unix-rights free
	wl_cleanup
	run_plain wl-unix-rights glued
}

@test "wl-pidfd passes, and with outside, reaped and forked" {
	run_plain wl-pidfd
	wl_cleanup
	run_plain wl-pidfd outside
	wl_cleanup
	run_plain wl-pidfd reaped
	wl_cleanup
	run_plain wl-pidfd forked
}

@test "wl-anonfd passes with each object this kernel lets it make" {
	local m
	for m in fanotify userfaultfd io_uring perf_event bpf-map; do
		"$(wl_bin wl-anonfd)" "$m" probe >/dev/null || continue
		run_plain wl-anonfd "$m"
		wl_cleanup
	done
}

@test "wl-posix-shm passes, and with unlinked" {
	run_plain wl-posix-shm
	wl_cleanup
	run_plain wl-posix-shm unlinked
}

@test "wl-aio passes, and with unreaped" {
	run_plain wl-aio
	wl_cleanup
	run_plain wl-aio unreaped
}

@test "wl-tcp-pair passes, and with a peer outside the tree" {
	run_plain wl-tcp-pair
	wl_cleanup
	run_plain wl-tcp-pair outside
	wl_cleanup
	run_plain wl-tcp-pair held
}

@test "wl-inet passes, and with each state the dump refuses" {
	local mode
	for mode in "" pending established udpqueue udperror packet nlqueue netns held; do
		run_plain wl-inet $mode
		wl_cleanup
	done
}
