#!/usr/bin/env bats
# Every self-checking workload (tests/workloads/README.md) through the
# engine: dump (original killed, or --leave-running and then killed),
# restore appending to the same log, trigger, expect PASS and exit code 0.
load helpers

setup() { engine_setup; }
teardown() {
	sysv_remove
	engine_teardown
}

# SysV workloads list their objects in "$TRIGGER.ipc" ("KIND ID" lines,
# KIND m, q or s as ipcrm takes it): they outlive their processes.
sysv_remove() {
	local kind id
	[ -f "$TRIGGER.ipc" ] || return 0
	while read -r kind id; do
		ipcrm "-$kind" "$id" 2>/dev/null || true
	done <"$TRIGGER.ipc"
}

# One mode under ASan (make asan-engine sets CEDANA_TEST_ASAN=1): the
# engine's code differs under --leave-running only once the tree is dumped
# (dump.c, dump_main): the tree is let go (release_tree: each task's and
# thread's registers put back, an interrupted syscall made to restart as the
# kind it was, the signal mask, a stop signal held back sent again), its TCP
# connections leave repair mode (cd_tcp_dump_end), its SysV objects are left
# to it; the restore of either image is the same code. So under ASan every
# workload runs dumped and killed, and with --leave-running only those that
# reach each of those paths: a spinning task, tasks in a restartable syscall
# (ERESTARTSYS and its kin, one branch: pipe read, wait; ERESTART_RESTARTBLOCK,
# another: nanosleep), pending signals, a tree, threads, zombies, stopped
# tasks, TCP connections, a SysV segment; and the states that only a
# --leave-running test sets up (NAME:WL_ARGS with no dumped-and-killed twin).
# The refusals run as they are (most only with --leave-running). The plain
# pass (make engine-tests) runs all.
ASAN_LEAVE_RUNNING=" wl-counter wl-signals wl-nanosleep wl-pipe-read wl-wait wl-tree wl-threads "
ASAN_LEAVE_RUNNING+=" wl-threads:64 wl-zombie wl-stopped wl-tcp-pair wl-inet wl-shm "
ASAN_LEAVE_RUNNING+=" wl-memory:64 wl-sched:idle wl-thp:advised wl-mlock:future-onfault "
ASAN_LEAVE_RUNNING+=" wl-madvise:mbind wl-stopped:sigstop "

# asan_one_mode NAME [DUMP-FLAGS...]: skips a --leave-running run of NAME
# (with $WL_ARGS) that the ASan pass leaves to the plain pass (above).
asan_one_mode() {
	[ -n "${CEDANA_TEST_ASAN:-}" ] && [[ " $* " == *" --leave-running "* ]] || return 0
	[[ "$ASAN_LEAVE_RUNNING" == *" $1${WL_ARGS:+:$WL_ARGS} "* ]] && return 0
	skip "ASan: the dumped-and-killed run covers it (workloads.bats, ASAN_LEAVE_RUNNING)"
}

# wl_sysv_roundtrip NAME [--leave-running]: as wl_roundtrip; after a
# --leave-running dump the original is killed and its objects removed, so
# the restore makes them again (a plain dump removes them itself).
wl_sysv_roundtrip() {
	local name=$1
	shift
	asan_one_mode "$name" "$@"
	start_wl "$WL_DIR/$name"
	run "$ENGINE" dump "$WL_PID" "$IMG" "$@"
	assert_success
	if [ "$#" -gt 0 ]; then
		kill_tree "$WL_PID"
		wait "$WL_PID" 2>/dev/null || true
		sysv_remove
	else
		wait "$WL_PID" 2>/dev/null || true
		# the dump took them: none is left behind
		while read -r kind id; do
			run sh -c "ipcs -$kind | awk '{print \$2}' | grep -qx $id"
			assert_failure
		done <"$TRIGGER.ipc"
	fi
	WL_PID=
	trigger_when_restored
	run timeout 60 "$ENGINE" restore "$IMG" --stdout "$LOG" --stderr "$LOG" \
		--pid-file "$T/restored.pid"
	[ "$status" -eq 0 ] || cat "$LOG" >&2
	assert_success
	run grep -E '^(PASS|FAIL)' "$LOG"
	assert_output "PASS"
}

# wl_roundtrip NAME [DUMP-FLAGS...]
wl_roundtrip() {
	local name=$1
	shift
	asan_one_mode "$name" "$@"
	start_wl "$WL_DIR/$name" ${WL_ARGS:-}
	dump_restore "$@"
	[ "$status" -eq 0 ] || cat "$LOG" >&2
	assert_success
	run grep -E '^(PASS|FAIL)' "$LOG"
	assert_output "PASS"
}

# wl_refused NAME ARG REGEX [DUMP-FLAGS...]: the dump of workload NAME run
# with ARG fails naming the state (REGEX), leaves no image, and the workload
# runs on to PASS.
wl_refused() {
	local name=$1 arg=$2 regex=$3
	shift 3
	start_wl "$WL_DIR/$name" "$arg"
	dump_refused "$regex" "$@"
	touch "$TRIGGER"
	wait "$WL_PID"
	WL_PID=
	run grep -E '^(PASS|FAIL)' "$LOG"
	assert_output "PASS"
}

counter_continues() {
	grep -E '^[0-9]+$' "$LOG" | awk 'NR != $1 { print "gap or repeat at " NR ": " $1; exit 1 }'
}

@test "wl-counter: dump → kill → restore → continues with the next number" {
	wl_roundtrip wl-counter
	run counter_continues
	assert_success
}

@test "wl-counter: --leave-running" {
	wl_roundtrip wl-counter --leave-running
}

@test "wl-memory: dump → kill → restore → PASS" {
	wl_roundtrip wl-memory
}

@test "wl-memory: --leave-running" {
	WL_ARGS=64 wl_roundtrip wl-memory --leave-running
}

@test "wl-lazy-fork: dump → kill → restore → PASS" {
	WL_ARGS=64 wl_roundtrip wl-lazy-fork
}

@test "wl-lazy-fork: --leave-running" {
	WL_ARGS=64 wl_roundtrip wl-lazy-fork --leave-running
}

@test "wl-incr: dump → kill → restore → PASS" {
	WL_ARGS=8 wl_roundtrip wl-incr
}

@test "wl-incr: --leave-running" {
	WL_ARGS=8 wl_roundtrip wl-incr --leave-running
}

@test "wl-files: dump → kill → restore → PASS" {
	wl_roundtrip wl-files
}

@test "wl-files: --leave-running" {
	wl_roundtrip wl-files --leave-running
}

@test "wl-signals: dump → kill → restore → PASS" {
	wl_roundtrip wl-signals
}

@test "wl-signals: --leave-running" {
	wl_roundtrip wl-signals --leave-running
}

@test "wl-itimer: dump → kill → restore → PASS" {
	wl_roundtrip wl-itimer
}

@test "wl-itimer: --leave-running" {
	wl_roundtrip wl-itimer --leave-running
}

@test "wl-simd: dump → kill → restore → PASS" {
	wl_roundtrip wl-simd
}

@test "wl-simd: --leave-running" {
	wl_roundtrip wl-simd --leave-running
}

@test "wl-simd threads: 4 threads each get their own vector registers, MXCSR and x87 back" {
	WL_ARGS=threads wl_roundtrip wl-simd
}

@test "wl-simd threads: --leave-running" {
	WL_ARGS=threads wl_roundtrip wl-simd --leave-running
}

@test "wl-nanosleep: a task in nanosleep sleeps on for the time left" {
	wl_roundtrip wl-nanosleep
}

@test "wl-nanosleep: --leave-running" {
	wl_roundtrip wl-nanosleep --leave-running
}

@test "wl-pipe-read: a task blocked reading a pipe stays blocked, then reads" {
	wl_roundtrip wl-pipe-read
}

@test "wl-pipe-read: --leave-running" {
	wl_roundtrip wl-pipe-read --leave-running
}

@test "wl-wait: a task blocked in wait() waits on" {
	wl_roundtrip wl-wait
}

@test "wl-wait: --leave-running" {
	wl_roundtrip wl-wait --leave-running
}

@test "wl-tree: sessions, process groups and parents are preserved (--shell-job)" {
	# started in this shell's session, as the workload protocol says
	CEDANA_WL_TRIGGER="$TRIGGER" no_inherited_fds "$WL_DIR/wl-tree" </dev/null >"$LOG" 2>&1 &
	WL_PID=$!
	wait_ready
	dump_restore --shell-job
	assert_success
	run grep -E '^(PASS|FAIL)' "$LOG"
	assert_output "PASS"
}

@test "wl-tree: --leave-running" {
	wl_roundtrip wl-tree --leave-running
}

@test "wl-python.sh: a python3 interpreter with state" {
	CEDANA_WL_TRIGGER="$TRIGGER" no_inherited_fds setsid sh "$BATS_TEST_DIRNAME/../workloads/wl-python.sh" \
		</dev/null >"$LOG" 2>&1 &
	WL_PID=$!
	wait_ready
	dump_restore
	assert_success
	run grep -E '^(PASS|FAIL)' "$LOG"
	assert_output "PASS"
}

@test "wl-python.sh: --leave-running" {
	CEDANA_WL_TRIGGER="$TRIGGER" no_inherited_fds setsid sh "$BATS_TEST_DIRNAME/../workloads/wl-python.sh" \
		</dev/null >"$LOG" 2>&1 &
	WL_PID=$!
	wait_ready
	dump_restore --leave-running
	assert_success
	run grep -E '^(PASS|FAIL)' "$LOG"
	assert_output "PASS"
}

@test "wl-chain: pages shared with an ancestor 21 and 40 levels up are restored" {
	WL_ARGS=21 wl_roundtrip wl-chain
	rm -rf "$IMG" "$TRIGGER"
	: >"$LOG"
	WL_ARGS=40 wl_roundtrip wl-chain
}

@test "wl-cow: pages a parent and child share copy-on-write are still shared, own pages their own" {
	wl_roundtrip wl-cow
}

@test "wl-cow: --leave-running" {
	wl_roundtrip wl-cow --leave-running
}

@test "wl-spin: a task stopped in user space runs on" {
	wl_roundtrip wl-spin
}

@test "wl-sched: SCHED_BATCH with nice 7" {
	wl_roundtrip wl-sched
}

@test "wl-sched: SCHED_IDLE, --leave-running" {
	WL_ARGS=idle wl_roundtrip wl-sched --leave-running
}

@test "wl-sched: SCHED_FIFO priority 11 with SCHED_RESET_ON_FORK" {
	WL_ARGS="fifo reset" wl_roundtrip wl-sched
}

@test "wl-sched: SCHED_RR priority 11" {
	WL_ARGS=rr wl_roundtrip wl-sched
}

@test "wl-pdeathsig: a child's parent-death signal" {
	wl_roundtrip wl-pdeathsig
}

@test "wl-pdeathsig: --leave-running" {
	wl_roundtrip wl-pdeathsig --leave-running
}

@test "wl-pdeathsig: refused on the root, whose parent is not in the checkpoint; it runs on" {
	start_wl "$WL_DIR/wl-pdeathsig" root
	run "$ENGINE" dump "$WL_PID" "$IMG" --leave-running
	assert_failure
	assert_output --partial "parent-death signal 28 (PR_SET_PDEATHSIG)"
	touch "$TRIGGER"
	wait "$WL_PID"
	WL_PID=
	run grep -E '^(PASS|FAIL)' "$LOG"
	assert_output "PASS"
}

@test "SCHED_DEADLINE is refused at dump, naming it; the task runs on" {
	start_wl "$WL_DIR/wl-counter"
	chrt -d --sched-runtime 2000000 --sched-deadline 10000000 --sched-period 10000000 \
		-p 0 "$WL_PID"
	run "$ENGINE" dump "$WL_PID" "$IMG" --leave-running
	assert_failure
	assert_output --partial "SCHED_DEADLINE is not supported"
	touch "$TRIGGER"
	wait "$WL_PID"
	WL_PID=
	run grep -E '^(PASS|FAIL)' "$LOG"
	assert_output "PASS"
}

@test "wl-subreaper: the child-subreaper flag, and it still adopts orphans" {
	wl_roundtrip wl-subreaper
}

@test "wl-subreaper: --leave-running" {
	wl_roundtrip wl-subreaper --leave-running
}

@test "wl-thp: PR_SET_THP_DISABLE" {
	wl_roundtrip wl-thp
}

@test "wl-thp: PR_SET_THP_DISABLE except advised, --leave-running" {
	WL_ARGS=advised wl_roundtrip wl-thp --leave-running
}

@test "wl-timerslack: PR_SET_TIMERSLACK" {
	wl_roundtrip wl-timerslack
}

@test "wl-timerslack: --leave-running" {
	wl_roundtrip wl-timerslack --leave-running
}

@test "wl-zombie: unreaped children come back as zombies with their exit code and signal" {
	wl_roundtrip wl-zombie
}

@test "wl-zombie: --leave-running" {
	wl_roundtrip wl-zombie --leave-running
}

@test "wl-loginuid: the audit login uid" {
	wl_roundtrip wl-loginuid
}

@test "wl-loginuid: --leave-running" {
	wl_roundtrip wl-loginuid --leave-running
}

@test "wl-membarrier: private (plain, sync-core) and global expedited registrations" {
	wl_roundtrip wl-membarrier
}

@test "wl-membarrier: --leave-running" {
	wl_roundtrip wl-membarrier --leave-running
}

@test "wl-pipe-flags: O_NONBLOCK, O_DIRECT and size set after pipe(), a second open file of one end" {
	wl_roundtrip wl-pipe-flags
}

@test "wl-pipe-flags: --leave-running" {
	wl_roundtrip wl-pipe-flags --leave-running
}

@test "wl-pipe-flags: unread packets of an O_DIRECT pipe are refused, naming the fd; it runs on" {
	start_wl "$WL_DIR/wl-pipe-flags" packets
	run "$ENGINE" dump "$WL_PID" "$IMG" --leave-running
	assert_failure
	assert_output --regexp "pid [0-9]+: fd 12: unread packets of an O_DIRECT pipe"
	touch "$TRIGGER"
	wait "$WL_PID"
	WL_PID=
	run grep -E '^(PASS|FAIL)' "$LOG"
	assert_output "PASS"
}

@test "wl-fown: SIGIO owners (process, thread, group), F_SETSIG and O_ASYNC" {
	wl_roundtrip wl-fown
}

@test "wl-fown: --leave-running" {
	wl_roundtrip wl-fown --leave-running
}

@test "wl-fown: a SIGIO owner outside the tree is refused, naming it; it runs on" {
	start_wl "$WL_DIR/wl-fown" outside
	run "$ENGINE" dump "$WL_PID" "$IMG" --leave-running
	assert_failure
	assert_output --regexp "pid [0-9]+: fd 14 \(.*\.fown\): its SIGIO owner, pid [0-9]+, is not in the checkpoint"
	touch "$TRIGGER"
	wait "$WL_PID"
	WL_PID=
	run grep -E '^(PASS|FAIL)' "$LOG"
	assert_output "PASS"
}

@test "wl-reg-flags: O_APPEND, O_NONBLOCK, O_DIRECT, O_NOATIME as opened or set later, offsets" {
	wl_roundtrip wl-reg-flags
}

@test "wl-reg-flags: --leave-running" {
	wl_roundtrip wl-reg-flags --leave-running
}

@test "wl-opath: O_PATH fds of a file, a directory, a symlink, a FIFO and a device" {
	wl_roundtrip wl-opath
}

@test "wl-opath: --leave-running" {
	wl_roundtrip wl-opath --leave-running
}

@test "wl-procfile: /proc/self/status, /proc/CHILD/stat at an offset, /proc/self/task" {
	wl_roundtrip wl-procfile
}

@test "wl-procfile: --leave-running" {
	wl_roundtrip wl-procfile --leave-running
}

@test "wl-procfile: a /proc file of a process outside the tree is refused, naming it; it runs on" {
	start_wl "$WL_DIR/wl-procfile" outside
	run "$ENGINE" dump "$WL_PID" "$IMG" --leave-running
	assert_failure
	assert_output --regexp "pid [0-9]+: fd 13 \(/proc/[0-9]+/stat\): a file of pid [0-9]+, which is not in the checkpoint"
	touch "$TRIGGER"
	wait "$WL_PID"
	WL_PID=
	run grep -E '^(PASS|FAIL)' "$LOG"
	assert_output "PASS"
}

@test "wl-procfile: a deleted working directory is refused, naming it; it runs on" {
	start_wl "$WL_DIR/wl-procfile" cwd-deleted
	run "$ENGINE" dump "$WL_PID" "$IMG" --leave-running
	assert_failure
	assert_output --regexp "pid [0-9]+: its working directory .*\.cwd \(deleted\) was deleted"
	touch "$TRIGGER"
	wait "$WL_PID"
	WL_PID=
	run grep -E '^(PASS|FAIL)' "$LOG"
	assert_output "PASS"
}

@test "wl-chroot: children behind a changed root, cwd outside it, files from before and after" {
	wl_roundtrip wl-chroot
}

@test "wl-chroot: --leave-running" {
	wl_roundtrip wl-chroot --leave-running
}

@test "wl-caps: capabilities, bounding and ambient sets and securebits of children" {
	wl_roundtrip wl-caps
}

@test "wl-caps: --leave-running" {
	wl_roundtrip wl-caps --leave-running
}

@test "wl-caps: securebits (PR_SET_KEEPCAPS left set) are refused, naming them; it runs on" {
	wl_refused wl-caps securebits "pid [0-9]+ \(wl-caps\): securebits 0x10 \(PR_SET_SECUREBITS, PR_SET_KEEPCAPS\) are not supported" --leave-running
}

@test "wl-mlock: locked memory stays locked after the task dropped to an unprivileged uid" {
	wl_roundtrip wl-mlock
}

@test "wl-mlock: --leave-running" {
	wl_roundtrip wl-mlock --leave-running
}

@test "wl-mlock: mlockall(MCL_FUTURE)" {
	WL_ARGS=future wl_roundtrip wl-mlock
}

@test "wl-mlock: mlockall(MCL_FUTURE|MCL_ONFAULT), --leave-running" {
	WL_ARGS=future-onfault wl_roundtrip wl-mlock --leave-running
}

@test "wl-maps-prot: mprotect'ed ranges of file and anonymous mappings, their data and rights" {
	wl_roundtrip wl-maps-prot
}

@test "wl-maps-prot: --leave-running" {
	wl_roundtrip wl-maps-prot --leave-running
}

@test "wl-madvise: madvise and MAP_NORESERVE flags (VmFlags) and their effect on fork" {
	wl_roundtrip wl-madvise
}

@test "wl-madvise: --leave-running" {
	wl_roundtrip wl-madvise --leave-running
}

# 4000 fds in each of two tasks, in pairs and shared with the child: the
# dump finds each open file's object with kcmp in O(n log n) calls. Compared
# with every earlier fd (O(n^2), main before fdops) the dump took 25.5 s on
# our 2-core test machine, 1.4 s after; the bound is well between.
@test "wl-manyfds: 2000 pairs of fds, shared with a child, dump within 10 s, sharing intact" {
	start_wl "$WL_DIR/wl-manyfds" 2000
	local t0=$EPOCHREALTIME
	run "$ENGINE" dump "$WL_PID" "$IMG" --leave-running
	local took=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
	assert_success
	echo "dump of wl-manyfds 2000: $took s" >&2
	awk -v t="$took" 'BEGIN { exit !(t < 10) }' || {
		echo "the dump took $took s (bound 10 s)" >&2
		return 1
	}
	kill_tree "$WL_PID"
	wait "$WL_PID" 2>/dev/null || true
	WL_PID=
	trigger_when_restored
	run timeout 60 "$ENGINE" restore "$IMG" --stdout "$LOG" --stderr "$LOG" \
		--pid-file "$T/restored.pid"
	[ "$status" -eq 0 ] || cat "$LOG" >&2
	assert_success
	run grep -E '^(PASS|FAIL)' "$LOG"
	assert_output "PASS"
}

@test "wl-manyfds: dump → kill → restore → PASS" {
	WL_ARGS=2000 wl_roundtrip wl-manyfds
}

@test "wl-clone-share: a child sharing our fd table is refused with --leave-running, naming it; it runs on" {
	wl_refused wl-clone-share files "pids [0-9]+ and [0-9]+ share their fd table \(CLONE_FILES\)" --leave-running
}

@test "wl-threads: 9 threads counting, in cond wait, nanosleep, join, epoll_wait, with a pending tgkill and an altstack" {
	wl_roundtrip wl-threads
}

@test "wl-threads: --leave-running" {
	wl_roundtrip wl-threads --leave-running
}

@test "wl-threads 64: dump → kill → restore → PASS" {
	WL_ARGS=64 wl_roundtrip wl-threads
}

@test "wl-threads 64: --leave-running" {
	WL_ARGS=64 wl_roundtrip wl-threads --leave-running
}

@test "wl-thread-attrs: per-thread sched_setattr (batch, idle, fifo+reset, rr), robust lists, rseq (one unregistered)" {
	wl_roundtrip wl-thread-attrs
}

@test "wl-thread-attrs: --leave-running" {
	wl_roundtrip wl-thread-attrs --leave-running
}

@test "wl-threads: --leave-stopped stops every thread until SIGCONT" {
	start_wl "$WL_DIR/wl-threads"
	run "$ENGINE" dump "$WL_PID" "$IMG"
	assert_success
	wait "$WL_PID" 2>/dev/null || true
	WL_PID=
	touch "$TRIGGER"
	run timeout 60 "$ENGINE" restore "$IMG" --stdout "$LOG" --stderr "$LOG" --leave-stopped \
		--detach --pid-file "$T/restored.pid"
	assert_success
	root=$(cat "$T/restored.pid")
	for _ in $(seq 1 100); do
		! grep -qv '^T$' <(awk '{print $3}' /proc/"$root"/task/*/stat) && break
		sleep 0.01
	done
	run awk '{print $3}' /proc/"$root"/task/*/stat
	assert_equal "$(sort -u <<<"$output")" T
	assert_equal "$(ls /proc/"$root"/task | wc -l)" 9
	sleep 0.3
	run grep -cE '^(PASS|FAIL)' "$LOG"
	assert_output 0
	kill -CONT "$root"
	for _ in $(seq 1 1000); do grep -qE '^(PASS|FAIL)' "$LOG" && break; sleep 0.01; done
	run grep -E '^(PASS|FAIL)' "$LOG"
	assert_output "PASS"
}

@test "wl-threads: a thread with credentials of its own (no_new_privs) is refused, naming it; it runs on" {
	start_wl "$WL_DIR/wl-threads" 9 nnp
	run "$ENGINE" dump "$WL_PID" "$IMG" --leave-running
	assert_failure
	assert_output --regexp "pid [0-9]+ \(wl-threads\): thread [0-9]+ \(wl-cnt-0\): its NoNewPrivs differs from the main thread's"
	assert_not_exist "$IMG"
	touch "$TRIGGER"
	wait "$WL_PID"
	WL_PID=
	run grep -E '^(PASS|FAIL)' "$LOG"
	assert_output "PASS"
}

@test "wl-posix-timer: same ids, clocks, signals and values; armed ones keep firing" {
	wl_roundtrip wl-posix-timer
}

@test "wl-posix-timer: --leave-running" {
	wl_roundtrip wl-posix-timer --leave-running
}

@test "wl-locks: POSIX, OFD and flock locks held as before" {
	wl_roundtrip wl-locks
}

@test "wl-locks: --leave-running" {
	wl_roundtrip wl-locks --leave-running
}

@test "wl-madvise: a sealed mapping (mseal) is refused, naming it; it runs on" {
	wl_refused wl-madvise sealed "pid [0-9]+: mapping [0-9a-f]+-[0-9a-f]+ \(anonymous\) is sealed \(mseal\)" --leave-running
}

@test "wl-madvise: a memory protection key (pkey_mprotect) is refused, naming it; it runs on" {
	grep -qw pku /proc/cpuinfo || skip "no protection keys on this CPU"
	wl_refused wl-madvise pkey "pid [0-9]+: mapping [0-9a-f]+-[0-9a-f]+ \(anonymous\) has memory protection key [0-9]+ \(pkey_mprotect\)" --leave-running
}

@test "wl-madvise: a NUMA memory policy (mbind) comes back" {
	[ -e /proc/self/numa_maps ] || skip "no NUMA support"
	WL_ARGS=mbind wl_roundtrip wl-madvise --leave-running
}

@test "wl-numa: NUMA policies of mappings (mbind) and of each thread (set_mempolicy)" {
	[ -e /proc/self/numa_maps ] || skip "no NUMA support"
	wl_roundtrip wl-numa
	grep -q '"vma_policies":\[{' "$IMG/manifest.json"
}

@test "wl-numa: --leave-running" {
	[ -e /proc/self/numa_maps ] || skip "no NUMA support"
	wl_roundtrip wl-numa --leave-running
}

@test "wl-numa: a NUMA policy of shared memory is refused, naming it; it runs on" {
	[ -e /proc/self/numa_maps ] || skip "no NUMA support"
	wl_refused wl-numa shared "pid [0-9]+: mapping [0-9a-f]+-[0-9a-f]+ \(.*\) has NUMA memory policy bind \(mbind\) on shared memory, which belongs to the memory object and is not restored" --leave-running
}

@test "wl-numa: a policy on a node this machine lacks is refused at restore, before anything runs" {
	[ -e /proc/self/numa_maps ] || skip "no NUMA support"
	start_wl "$WL_DIR/wl-numa"
	run "$ENGINE" dump "$WL_PID" "$IMG"
	assert_success
	wait "$WL_PID" 2>/dev/null || true
	WL_PID=
	# node 40: no test machine has it
	python3 - "$IMG/manifest.json" <<-'PY'
	import json, sys
	m = json.load(open(sys.argv[1]))
	m["tasks"][0]["vma_policies"][-1]["nodes"][0] = 1 << 40
	json.dump(m, open(sys.argv[1], "w"))
	PY
	run timeout 60 "$ENGINE" restore "$IMG" --stdout "$LOG" --stderr "$LOG" --pid-file "$T/restored.pid"
	assert_failure
	assert_output --regexp "pid [0-9]+: mapping [0-9a-f]+-[0-9a-f]+: NUMA memory policy bind on node 40, which this machine does not have"
	assert_not_exist "$T/restored.pid"
	run grep -c '^READY$' "$LOG"
	assert_output 1
}

@test "wl-stopped: a child stopped by SIGTSTP comes back stopped, its stop still to report" {
	wl_roundtrip wl-stopped
	grep -q '"stop_sig":20,"stop_notify":true' "$IMG/manifest.json"
}

@test "wl-stopped: --leave-running" {
	wl_roundtrip wl-stopped --leave-running
}

@test "wl-stopped seen: the stop its parent's wait had reported is not reported again" {
	WL_ARGS=seen wl_roundtrip wl-stopped
}

@test "wl-stopped sigstop: stopped by SIGSTOP, --leave-running" {
	WL_ARGS=sigstop wl_roundtrip wl-stopped --leave-running
}

@test "wl-stopped threads: every thread of a stopped task comes back stopped" {
	WL_ARGS=threads wl_roundtrip wl-stopped
}

@test "a stopped root comes back stopped; SIGCONT resumes it" {
	start_wl "$WL_DIR/wl-counter"
	kill -STOP "$WL_PID"
	wait_stopped "$WL_PID"
	run "$ENGINE" dump "$WL_PID" "$IMG" --leave-running
	assert_success
	# the original is stopped still
	assert_equal "$(awk '{print $3}' /proc/"$WL_PID"/stat)" T
	kill_tree "$WL_PID"
	wait "$WL_PID" 2>/dev/null || true
	WL_PID=
	n=$(grep -cE '^[0-9]+$' "$LOG")
	run timeout 60 "$ENGINE" restore "$IMG" --stdout "$LOG" --stderr "$LOG" --detach \
		--pid-file "$T/restored.pid"
	assert_success
	root=$(cat "$T/restored.pid")
	sleep 0.3
	assert_equal "$(awk '{print $3}' /proc/"$root"/stat)" T
	assert_equal "$(grep -cE '^[0-9]+$' "$LOG")" "$n"
	kill -CONT "$root"
	touch "$TRIGGER"
	for _ in $(seq 1 1000); do grep -qE '^(PASS|FAIL)' "$LOG" && break; sleep 0.01; done
	run grep -E '^(PASS|FAIL)' "$LOG"
	assert_output "PASS"
	run counter_continues
	assert_success
}

@test "a root stopped by SIGTSTP is refused (the restore leaves its group orphaned); it runs on" {
	# not a session leader (no setsid): its group is not orphaned here
	CEDANA_WL_TRIGGER="$TRIGGER" no_inherited_fds "$WL_DIR/wl-counter" </dev/null >"$LOG" 2>&1 &
	WL_PID=$!
	wait_ready
	kill -TSTP "$WL_PID"
	for _ in $(seq 1 100); do [ "$(awk '{print $3}' /proc/"$WL_PID"/stat)" = T ] && break; sleep 0.01; done
	if [ "$(awk '{print $3}' /proc/"$WL_PID"/stat)" != T ]; then
		skip "SIGTSTP did not stop the root (its group is orphaned here)"
	fi
	run "$ENGINE" dump "$WL_PID" "$IMG" --leave-running
	assert_failure
	assert_output --regexp "pid [0-9]+ \(wl-counter\): stopped by SIGTSTP in process group [0-9]+, which the restore leaves orphaned"
	assert_not_exist "$IMG"
	kill -CONT "$WL_PID"
	touch "$TRIGGER"
	wait "$WL_PID"
	WL_PID=
	run grep -E '^(PASS|FAIL)' "$LOG"
	assert_output "PASS"
}

@test "a task traced by another tracer is refused, naming the tracer; it runs on" {
	command -v gdb >/dev/null || command -v strace >/dev/null || skip "no gdb or strace"
	start_wl "$WL_DIR/wl-counter"
	strace -p "$WL_PID" -o /dev/null &
	tracer=$!
	for _ in $(seq 1 200); do grep -q "TracerPid:[[:space:]]*[1-9]" /proc/"$WL_PID"/status && break; sleep 0.01; done
	run "$ENGINE" dump "$WL_PID" "$IMG" --leave-running
	kill "$tracer"
	wait "$tracer" 2>/dev/null || true
	assert_failure
	assert_output --regexp "pid [0-9]+ \(wl-counter\): traced by pid $tracer \(ptrace\); a task under another tracer is not supported"
	assert_not_exist "$IMG"
	touch "$TRIGGER"
	wait "$WL_PID"
	WL_PID=
	run grep -E '^(PASS|FAIL)' "$LOG"
	assert_output "PASS"
}

@test "wl-seccomp: two filters (one with LOG), shared by both threads, in order; no_new_privs" {
	wl_roundtrip wl-seccomp
	grep -q '"seccomp":{"mode":2,"filters":\[{"flags":[0-9]*,"insns":"[0-9a-f]*"},{"flags":[2367],' "$IMG/manifest.json"
}

@test "wl-seccomp: --leave-running" {
	wl_roundtrip wl-seccomp --leave-running
}

@test "wl-seccomp strict: a child in strict mode, blocked in read" {
	WL_ARGS=strict wl_roundtrip wl-seccomp
}

@test "wl-seccomp strict: --leave-running" {
	WL_ARGS=strict wl_roundtrip wl-seccomp --leave-running
}

@test "wl-seccomp: a filter that returns SECCOMP_RET_USER_NOTIF is refused, naming it; it runs on" {
	wl_refused wl-seccomp notif "pid [0-9]+ \(wl-seccomp\): seccomp filter 2 returns SECCOMP_RET_USER_NOTIF: its listener is not restored" --leave-running
}

@test "wl-seccomp: a thread with filters of its own is refused, naming it; it runs on" {
	wl_refused wl-seccomp differ "pid [0-9]+ \(wl-seccomp\): thread [0-9]+ \(wl-seccomp\): its seccomp filters differ from the main thread's" --leave-running
}

@test "wl-madvise: KSM for all memory (PR_SET_MEMORY_MERGE) is refused, naming it; it runs on" {
	wl_refused wl-madvise merge-any "pid [0-9]+: KSM merging of all its memory \(PR_SET_MEMORY_MERGE\)" --leave-running
}

@test "wl-threads: a task whose main thread has exited while others run is refused, naming it; it runs on" {
	start_wl "$WL_DIR/wl-threads" 9 leader-exit
	for _ in $(seq 1 100); do
		[ "$(awk '{print $3}' /proc/"$WL_PID"/stat)" = Z ] && break
		sleep 0.01
	done
	run "$ENGINE" dump "$WL_PID" "$IMG"
	assert_failure
	assert_output --regexp "pid $WL_PID \(wl-threads\): its main thread has exited while 9 other threads run on; not supported"
	assert_not_exist "$IMG"
	touch "$TRIGGER"
	wait "$WL_PID"
	WL_PID=
	run grep -E '^(PASS|FAIL)' "$LOG"
	assert_output "PASS"
}

@test "wl-memfd: memfds held by fds: name, contents, size, seals, mode, position, flags, a dup" {
	wl_roundtrip wl-memfd
}

@test "wl-memfd: --leave-running" {
	wl_roundtrip wl-memfd --leave-running
}

@test "wl-memfd map: a memfd mapped shared comes back as a memfd of its name, with its pages" {
	WL_ARGS=map wl_roundtrip wl-memfd
}

@test "wl-memfd map: --leave-running" {
	WL_ARGS=map wl_roundtrip wl-memfd --leave-running
}

@test "wl-memfd mapped: a memfd held by an fd and mapped shared comes back as one memfd" {
	WL_ARGS=mapped wl_roundtrip wl-memfd
}

@test "wl-memfd mapped: --leave-running" {
	WL_ARGS=mapped wl_roundtrip wl-memfd --leave-running
}

@test "wl-memfd mapped-sealed: a memfd mapped shared, then sealed F_SEAL_FUTURE_WRITE: the mapping still writes, nothing new may" {
	WL_ARGS=mapped-sealed wl_roundtrip wl-memfd
}

@test "wl-memfd mapped-sealed: --leave-running" {
	WL_ARGS=mapped-sealed wl_roundtrip wl-memfd --leave-running
}

@test "wl-memfd private: a memfd held by fds and mapped private keeps its written page and the memfd's" {
	WL_ARGS=private wl_roundtrip wl-memfd
}

@test "wl-memfd private: --leave-running" {
	WL_ARGS=private wl_roundtrip wl-memfd --leave-running
}

@test "wl-memfd-nofd private: a memfd only mapped private, by two tasks: its file, name, size, seals, mode and the copied pages" {
	WL_ARGS=private wl_roundtrip wl-memfd-nofd
	assert_exist "$IMG/memfd-0.img"
}

@test "wl-memfd-nofd private: --leave-running" {
	WL_ARGS=private wl_roundtrip wl-memfd-nofd --leave-running
}

@test "wl-memfd-nofd shared: a sealed memfd only mapped shared, by two tasks: its seals, name, size, mode and pages" {
	WL_ARGS=shared wl_roundtrip wl-memfd-nofd
	assert_exist "$IMG/memfd-0.img"
}

@test "wl-memfd-nofd shared: --leave-running" {
	WL_ARGS=shared wl_roundtrip wl-memfd-nofd --leave-running
}

@test "wl-memfd twice: a memfd opened twice comes back as one memfd with two open files" {
	WL_ARGS=twice wl_roundtrip wl-memfd
}

@test "wl-memfd twice: --leave-running" {
	WL_ARGS=twice wl_roundtrip wl-memfd --leave-running
}

@test "wl-memfd big: a memfd of 20 MiB comes back whole, through its contents file" {
	WL_ARGS=big wl_roundtrip wl-memfd
	assert_exist "$IMG/memfd-2.img"
}

@test "wl-memfd big: --leave-running" {
	WL_ARGS=big wl_roundtrip wl-memfd --leave-running
}

@test "wl-memfd: a memfd of huge pages is refused, naming it; it runs on" {
	[ -d /sys/kernel/mm/hugepages ] || skip "no huge pages (hugetlbfs) in this kernel"
	wl_refused wl-memfd huge "pid [0-9]+: fd 14 \(/memfd:wl-memfd-h \(deleted\)\): a memfd of huge pages \(MFD_HUGETLB\) is not supported"
}

@test "wl-deleted: deleted files held by fds: contents, size, mode, position, access mode, a dup" {
	wl_roundtrip wl-deleted
}

@test "wl-deleted: --leave-running" {
	wl_roundtrip wl-deleted --leave-running
}

@test "wl-deleted mapped: a deleted file held by an fd and mapped shared comes back as one file" {
	WL_ARGS=mapped wl_roundtrip wl-deleted
}

@test "wl-deleted mapped: --leave-running" {
	WL_ARGS=mapped wl_roundtrip wl-deleted --leave-running
}

@test "wl-deleted ghost: a deleted file only mapped shared, by two tasks, comes back as one file at its path" {
	WL_ARGS=ghost wl_roundtrip wl-deleted
	assert_not_exist "$TRIGGER.gh"
}

@test "wl-deleted ghost: --leave-running" {
	WL_ARGS=ghost wl_roundtrip wl-deleted --leave-running
}

@test "wl-deleted private: deleted files mapped private, by an fd's file and with no fd, keep their written pages" {
	WL_ARGS=private wl_roundtrip wl-deleted
	assert_not_exist "$TRIGGER.pg"
}

@test "wl-deleted private: --leave-running" {
	WL_ARGS=private wl_roundtrip wl-deleted --leave-running
}

@test "wl-deleted twice: deleted files opened twice come back as one file each with two open files" {
	WL_ARGS=twice wl_roundtrip wl-deleted
}

@test "wl-deleted twice: --leave-running" {
	WL_ARGS=twice wl_roundtrip wl-deleted --leave-running
}

@test "wl-deleted big: a deleted file of 20 MiB comes back whole, through its contents file" {
	WL_ARGS=big wl_roundtrip wl-deleted
}

@test "wl-deleted big: --leave-running" {
	WL_ARGS=big wl_roundtrip wl-deleted --leave-running
}

@test "wl-deleted: another file now at the path fails the restore, naming it" {
	start_wl "$WL_DIR/wl-deleted"
	run "$ENGINE" dump "$WL_PID" "$IMG"
	assert_success
	wait "$WL_PID" 2>/dev/null || true
	WL_PID=
	echo other >"$TRIGGER.rw"
	run timeout 60 "$ENGINE" restore "$IMG" --stdout "$LOG" --stderr "$LOG"
	assert_failure
	assert_output --regexp "another file is now at $TRIGGER.rw: the deleted file cannot be made again under its name; move that one away"
	run cat "$TRIGGER.rw"
	assert_output other
}

@test "wl-eventfd: counters, EFD_SEMAPHORE, flags, a dup'd eventfd → PASS" {
	wl_roundtrip wl-eventfd
}

@test "wl-eventfd: --leave-running" {
	wl_roundtrip wl-eventfd --leave-running
}

# wl_sysv_twice NAME: dump, restore (detached), dump the restored tree
# again, restore: the objects the restore made are found again by the
# second dump (they record the tree's root as their maker and last user).
wl_sysv_twice() {
	start_wl "$WL_DIR/$1"
	run "$ENGINE" dump "$WL_PID" "$IMG"
	assert_success
	wait "$WL_PID" 2>/dev/null || true
	run "$ENGINE" restore "$IMG" --stdout "$LOG" --stderr "$LOG" --detach \
		--pid-file "$T/restored.pid"
	assert_success
	run "$ENGINE" dump "$(cat "$T/restored.pid")" "$T/img2"
	assert_success
	for _ in $(seq 100); do kill -0 "$WL_PID" 2>/dev/null || break; sleep 0.05; done
	WL_PID=
	rm -f "$T/restored.pid"
	run cmp <(jq -c '[.sysv_shm, .sysv_msq, .sysv_sem] | map(map(.id))' "$IMG/manifest.json") \
		<(jq -c '[.sysv_shm, .sysv_msq, .sysv_sem] | map(map(.id))' "$T/img2/manifest.json")
	assert_success
	trigger_when_restored
	run timeout 60 "$ENGINE" restore "$T/img2" --stdout "$LOG" --stderr "$LOG" \
		--pid-file "$T/restored.pid"
	[ "$status" -eq 0 ] || cat "$LOG" >&2
	assert_success
	run grep -E '^(PASS|FAIL)' "$LOG"
	assert_output "PASS"
}

@test "wl-shm: SysV segments (attached, read-only, unattached, removed) shared by two tasks → PASS" {
	wl_sysv_roundtrip wl-shm
}

@test "wl-shm: --leave-running, then restored after the original and its segments are gone" {
	wl_sysv_roundtrip wl-shm --leave-running
}

@test "wl-shm: dumped again after its restore, restored again → PASS" {
	wl_sysv_twice wl-shm
}

@test "wl-shm: a restore that fails after making the segments removes them; the next one works → PASS" {
	start_wl "$WL_DIR/wl-shm"
	run "$ENGINE" dump "$WL_PID" "$IMG"
	assert_success
	wait "$WL_PID" 2>/dev/null || true
	WL_PID=
	CEDANA_ENGINE_FAULT=restore-transplant run "$ENGINE" restore "$IMG" --stdout "$LOG" \
		--stderr "$LOG"
	assert_failure
	assert_output --partial "injected fault restore-transplant"
	while read -r kind id; do
		run sh -c "ipcs -$kind | awk '{print \$2}' | grep -qx $id"
		assert_failure
	done <"$TRIGGER.ipc"
	trigger_when_restored
	run timeout 60 "$ENGINE" restore "$IMG" --stdout "$LOG" --stderr "$LOG" \
		--pid-file "$T/restored.pid"
	assert_success
	run grep -E '^(PASS|FAIL)' "$LOG"
	assert_output "PASS"
}

@test "wl-msgq: SysV queues with their messages in order, a child waiting in msgrcv → PASS" {
	wl_sysv_roundtrip wl-msgq
}

@test "wl-msgq: --leave-running, then restored after the original and its queues are gone" {
	wl_sysv_roundtrip wl-msgq --leave-running
}

@test "wl-msgq: dumped again after its restore, restored again → PASS" {
	wl_sysv_twice wl-msgq
}

@test "wl-sem: SysV semaphore sets with their values and sem_otime, a child counting → PASS" {
	wl_sysv_roundtrip wl-sem
}

@test "wl-sem: --leave-running, then restored after the original and its sets are gone" {
	wl_sysv_roundtrip wl-sem --leave-running
}

@test "wl-sem: dumped again after its restore, restored again → PASS" {
	wl_sysv_twice wl-sem
}

@test "wl-signalfd: mask, flags, pending signal read through it → PASS" {
	wl_roundtrip wl-signalfd
}

@test "wl-signalfd: --leave-running" {
	wl_roundtrip wl-signalfd --leave-running
}

@test "wl-timerfd: clocks, relative and absolute values, intervals, unread expirations → PASS" {
	wl_roundtrip wl-timerfd
}

@test "wl-timerfd: --leave-running" {
	wl_roundtrip wl-timerfd --leave-running
}

@test "wl-epoll: watches of pipes, eventfds, a timerfd, an epoll, a oneshot; a pipe and the epoll shared with a child → PASS" {
	wl_roundtrip wl-epoll
}

@test "wl-epoll: --leave-running" {
	wl_roundtrip wl-epoll --leave-running
}

@test "wl-epoll: a reported EPOLLONESHOT watch not re-armed is refused, naming it; it runs on" {
	start_wl "$WL_DIR/wl-epoll" fired-oneshot
	run "$ENGINE" dump "$WL_PID" "$IMG" --leave-running
	assert_failure
	assert_output --regexp "pid [0-9]+: fd [0-9]+ \(epoll\): the EPOLLONESHOT watch of fd [0-9]+ has reported and is not re-armed"
	touch "$TRIGGER"
	wait "$WL_PID"
	WL_PID=
	run grep -E '^(PASS|FAIL)' "$LOG"
	assert_output "PASS"
}

@test "wl-epoll: a watch through an fd closed since is refused, naming it; it runs on" {
	start_wl "$WL_DIR/wl-epoll" closed-target
	run "$ENGINE" dump "$WL_PID" "$IMG" --leave-running
	assert_failure
	assert_output --regexp "pid [0-9]+: fd [0-9]+ \(epoll\): it watches a file as fd [0-9]+, which is not that file in this task"
	touch "$TRIGGER"
	wait "$WL_PID"
	WL_PID=
	run grep -E '^(PASS|FAIL)' "$LOG"
	assert_output "PASS"
}

@test "wl-inotify: watches by path with the same numbers and masks, events after → PASS" {
	wl_roundtrip wl-inotify
}

@test "wl-inotify: --leave-running" {
	wl_roundtrip wl-inotify --leave-running
}

@test "wl-inotify: a removed watch (numbering with a gap) is refused, naming it; it runs on" {
	start_wl "$WL_DIR/wl-inotify" removed
	run "$ENGINE" dump "$WL_PID" "$IMG" --leave-running
	assert_failure
	assert_output --regexp "pid [0-9]+: fd [0-9]+ \(inotify\): watch descriptors are not 1..2"
	touch "$TRIGGER"
	wait "$WL_PID"
	WL_PID=
	run grep -E '^(PASS|FAIL)' "$LOG"
	assert_output "PASS"
}

@test "wl-inotify: events not yet read are refused, naming them; it runs on" {
	start_wl "$WL_DIR/wl-inotify" pending
	run "$ENGINE" dump "$WL_PID" "$IMG" --leave-running
	assert_failure
	assert_output --regexp "pid [0-9]+: fd [0-9]+ \(inotify\): [0-9]+ bytes of events not yet read"
	touch "$TRIGGER"
	wait "$WL_PID"
	WL_PID=
	run grep -E '^(PASS|FAIL)' "$LOG"
	assert_output "PASS"
}

@test "wl-unix-listen: listening seqpacket on CUDA's abstract name, a path-bound listener, dgram and unbound sockets → PASS" {
	wl_roundtrip wl-unix-listen
}

@test "wl-unix-listen: --leave-running" {
	wl_roundtrip wl-unix-listen --leave-running
}

@test "wl-unix-listen pending: two clients of the tree waiting to be accepted come back in the accept queue, in order → PASS" {
	WL_ARGS=pending wl_roundtrip wl-unix-listen
}

@test "wl-unix-listen pending: --leave-running" {
	WL_ARGS=pending wl_roundtrip wl-unix-listen --leave-running
}

@test "wl-unix-listen: a client waiting to be accepted with data sent is refused by name; it runs on" {
	wl_refused wl-unix-listen pendsent "pid [0-9]+: fd [0-9]+ \(socket:\[[0-9]+\], unix stream unbound\): connected to a listener that has not accepted it yet, with data it sent waiting in the connection \([0-9]+ bytes of buffer\)" --leave-running
}

@test "wl-unix-listen: a connection waiting to be accepted from a client outside the tree is refused, naming it; it runs on" {
	wl_refused wl-unix-listen pendout "pid [0-9]+: fd 4 \(socket:\[[0-9]+\], unix stream /.*/trigger\.sock\): a connection waits to be accepted from socket:\[[0-9]+\], held by pid [0-9]+ \(wl-unix-listen\), outside the checkpoint" --leave-running
}

@test "wl-unix-listen connected: an accepted connection held with its listener → PASS" {
	WL_ARGS=connected wl_roundtrip wl-unix-listen
}

@test "wl-unix-conn: connections through a path and an abstract listener, ends in two tasks, data both ways, shutdown → PASS" {
	wl_roundtrip wl-unix-conn
}

@test "wl-unix-conn: --leave-running" {
	wl_roundtrip wl-unix-conn --leave-running
}

@test "wl-unix-conn: a connection accepted from a client outside the tree is refused, naming the client; it runs on" {
	wl_refused wl-unix-conn outside "pid [0-9]+: fd [0-9]+ \(socket:\[[0-9]+\], unix stream /.*/trigger\.sock\): its peer socket:\[[0-9]+\] \(unbound\), held by pid [0-9]+ \(wl-unix-conn\), is outside the checkpoint" --leave-running
}

@test "wl-unix-rights: a pipe end, a regular file, a memfd and a bound socket in flight (SCM_RIGHTS) over a pair and a connection → PASS" {
	wl_roundtrip wl-unix-rights
}

@test "wl-unix-rights: --leave-running" {
	wl_roundtrip wl-unix-rights --leave-running
}

@test "wl-unix-rights: an fd in flight of a file no task holds is refused, naming the file; it runs on" {
	wl_refused wl-unix-rights free "pid [0-9]+: fd [0-9]+ \(socket:\[[0-9]+\], unix seqpacket unbound\): an fd in flight \(SCM_RIGHTS\) in its queue, /dev/null, is held by no task of the tree" --leave-running
}

@test "wl-unix-rights: fds in flight glued to bytes written before them in a stream are refused by name; it runs on" {
	wl_refused wl-unix-rights glued "pid [0-9]+: fd [0-9]+ \(socket:\[[0-9]+\], unix stream unbound\): fds in flight \(SCM_RIGHTS\) come with 4 bytes in its stream queue" --leave-running
}

@test "wl-unix-listen dgconnect: a datagram socket connected to a bound one comes back connected → PASS" {
	WL_ARGS=dgconnect wl_roundtrip wl-unix-listen
}

@test "wl-unix-listen: a file other than a socket at the socket's path fails the restore, naming it, and stays" {
	start_wl "$WL_DIR/wl-unix-listen"
	run "$ENGINE" dump "$WL_PID" "$IMG"
	assert_success
	wait "$WL_PID" 2>/dev/null || true
	WL_PID=
	rm -f "$TRIGGER.sock"
	echo data >"$TRIGGER.sock"
	run timeout 60 "$ENGINE" restore "$IMG" --stdout "$LOG" --stderr "$LOG"
	assert_failure
	assert_output --regexp "/trigger\.sock exists and is not a socket: not removed"
	run cat "$TRIGGER.sock"
	assert_output data
}

@test "wl-unix-pair: stream, dgram and seqpacket pairs with data queued both ways, shutdowns, a dup → PASS" {
	wl_roundtrip wl-unix-pair
}

@test "wl-unix-pair: --leave-running" {
	wl_roundtrip wl-unix-pair --leave-running
}

@test "wl-unix-pair: an end of a socket pair in flight (SCM_RIGHTS) is refused by name; it runs on" {
	wl_refused wl-unix-pair rights "pid [0-9]+: fd [0-9]+ \(socket:\[[0-9]+\], unix dgram unbound\): an fd in flight \(SCM_RIGHTS\) in its queue is pid [0-9]+'s fd [0-9]+ \(unix socket\), which a restore could not send again" --leave-running
}

@test "wl-unix-pair: a pair whose maker holds no end (both given to a child) is refused by name; it runs on" {
	wl_refused wl-unix-pair shared "pid [0-9]+: fd [0-9]+ \(socket:\[[0-9]+\], unix stream unbound\): connected to socket:\[[0-9]+\] \(unbound\), made by pid [0-9]+ \(SO_PEERCRED\), which is not the first task of the tree that holds an end" --leave-running
}

@test "wl-unix-shared: stream, dgram and seqpacket pairs made before a fork, one end in each task (and one end in both), data queued both ways → PASS" {
	wl_roundtrip wl-unix-shared
}

@test "wl-unix-shared: --leave-running" {
	wl_roundtrip wl-unix-shared --leave-running
}

@test "wl-unix-dgram: bound dgram sockets with datagrams from unbound senders waiting unread → PASS" {
	wl_roundtrip wl-unix-dgram
}

@test "wl-unix-dgram: --leave-running" {
	wl_roundtrip wl-unix-dgram --leave-running
}

@test "wl-unix-dgram: a datagram from a bound sender waiting unread is refused, naming the sender; it runs on" {
	wl_refused wl-unix-dgram named "pid [0-9]+: fd [0-9]+ \(socket:\[[0-9]+\], unix dgram @wl-unix-dgq-[0-9]+\): a datagram from @wl-unix-dgs-[0-9]+ \(a bound socket\) waits unread in its receive queue" --leave-running
}

@test "wl-unix-creds: credentials in flight (SO_PASSCRED) from two tasks of the tree in a dgram and a stream pair → PASS" {
	wl_roundtrip wl-unix-creds
}

@test "wl-unix-creds: --leave-running" {
	wl_roundtrip wl-unix-creds --leave-running
}

@test "wl-unix-creds: credentials of a process outside the tree are refused, naming its pid; it runs on" {
	wl_refused wl-unix-creds outside "pid [0-9]+: fd [0-9]+ \(socket:\[[0-9]+\], unix dgram unbound\): message 0 in its queue carries the credentials \(SCM_CREDENTIALS\) of pid [0-9]+( \([^)]*\))?, which is not in the checkpoint" --leave-running
}

@test "wl-unix-pair: a peer outside the tree is refused, naming it; it runs on" {
	wl_refused wl-unix-pair outside "pid [0-9]+: fd [0-9]+ \(socket:\[[0-9]+\], unix stream unbound\): its peer socket:\[[0-9]+\] \(@wl-unix-outside-[0-9]+\), held by pid [0-9]+ \(wl-unix-pair\), is outside the checkpoint" --leave-running
}

@test "wl-pidfd: pidfds of a running child, a zombie, itself and a thread (PIDFD_THREAD), their flags → PASS" {
	wl_roundtrip wl-pidfd
}

@test "wl-pidfd: --leave-running" {
	wl_roundtrip wl-pidfd --leave-running
}

@test "wl-pidfd: a pidfd of a process outside the tree is refused, naming it; it runs on" {
	wl_refused wl-pidfd outside "pid [0-9]+: fd 24 \(pidfd\): a pidfd of pid [0-9]+, which is not in the checkpoint" --leave-running
}

@test "wl-pidfd: a pidfd of a reaped process (Pid: -1) is refused, naming it; it runs on" {
	wl_refused wl-pidfd reaped "pid [0-9]+: fd 24 \(pidfd\): its process has exited and been reaped \(Pid: -1\)" --leave-running
}

# wl_anon_refused MODE REGEX: wl-anonfd holding MODE's object at fd 30 is
# refused by name and runs on; skipped with its reason where this kernel or
# these privileges do not let it make the object.
wl_anon_refused() {
	run "$WL_DIR/wl-anonfd" "$1" probe
	[ "$status" -ne 77 ] || skip "$output"
	wl_refused wl-anonfd "$1" "pid [0-9]+: fd 30 \(anon_inode:$2\): $3" --leave-running
}

@test "wl-anonfd: fanotify is refused, naming it and why; it runs on" {
	wl_anon_refused fanotify '\[fanotify\]' "fanotify is not supported: its marks"
}

@test "wl-anonfd: userfaultfd is refused, naming it and why; it runs on" {
	wl_anon_refused userfaultfd '\[userfaultfd\]' "userfaultfd is not supported"
}

@test "wl-anonfd: io_uring is refused, naming it and why; it runs on" {
	wl_anon_refused io_uring '\[io_uring\]' "io_uring is not supported"
}

@test "wl-anonfd: a perf_event counter is refused, naming it and why; it runs on" {
	wl_anon_refused perf_event '\[perf_event\]' "perf_event is not supported"
}

@test "wl-anonfd: a BPF map is refused, naming it and why; it runs on" {
	wl_anon_refused bpf-map 'bpf-map' "a BPF map is not supported"
}

@test "wl-posix-shm: /dev/shm memory mapped by two processes and held by an fd → PASS" {
	wl_roundtrip wl-posix-shm
}

@test "wl-posix-shm: --leave-running" {
	wl_roundtrip wl-posix-shm --leave-running
}

@test "wl-posix-shm unlinked: shared memory whose file was unlinked comes back as that file, deleted" {
	WL_ARGS=unlinked wl_roundtrip wl-posix-shm
}

@test "wl-posix-shm unlinked: --leave-running" {
	WL_ARGS=unlinked wl_roundtrip wl-posix-shm --leave-running
}

@test "wl-aio: an idle AIO ring comes back at its context id, head and tail kept; the context works" {
	wl_roundtrip wl-aio
}

@test "wl-aio: --leave-running" {
	wl_roundtrip wl-aio --leave-running
}

@test "wl-aio unreaped: an AIO ring with a completion not reaped is refused, naming it; it runs on" {
	wl_refused wl-aio unreaped "pid [0-9]+: mapping [0-9a-f]+-[0-9a-f]+ \(/\[aio\] \(deleted\)\): an AIO ring with 1 completed events not yet reaped \(io_getevents\) is not supported" --leave-running
}

@test "wl-pidfd forked: a pidfd inherited across fork comes back as one open file in both tasks" {
	WL_ARGS=forked wl_roundtrip wl-pidfd
}

@test "wl-pidfd forked: --leave-running" {
	WL_ARGS=forked wl_roundtrip wl-pidfd --leave-running
}

@test "wl-inet: TCP listeners (v4, v6, dual-stack) shared with a child, bound and unbound TCP, UDP bound and connected, netlink bound and unbound, with their options → PASS" {
	wl_roundtrip wl-inet
}

@test "wl-inet: --leave-running" {
	wl_roundtrip wl-inet --leave-running
}

@test "wl-inet: a connection waiting to be accepted is refused by name; it runs on" {
	wl_refused wl-inet pending "pid [0-9]+: fd 3 \(socket:\[[0-9]+\], tcp 127\.0\.0\.1:[0-9]+\): connections wait to be accepted \(1\)" --leave-running
}

@test "wl-inet: an accepted connection held with its client, both in the tree, is restored → PASS" {
	WL_ARGS=established wl_roundtrip wl-inet
}

@test "wl-tcp-pair: TCP connections over 127.0.0.1, [::1] and dual-stack with data unread both ways, SHUT_RD, TCP_CORK → PASS" {
	wl_roundtrip wl-tcp-pair
}

@test "wl-tcp-pair: --leave-running" {
	wl_roundtrip wl-tcp-pair --leave-running
}

@test "wl-tcp-pair: a connection from a peer outside the tree over [::1] is refused, naming it; it runs on" {
	wl_refused wl-tcp-pair outside "pid [0-9]+: fd [0-9]+ \(socket:\[[0-9]+\]\): a TCP connection \[::1\]:[0-9]+ -> \[::1\]:[0-9]+ to a peer outside the tree: dump with --tcp-established to keep it" --leave-running
}

@test "wl-tcp-pair: a connection also held by a process outside the tree is refused, naming it; it runs on" {
	wl_refused wl-tcp-pair held "pid [0-9]+: fd [0-9]+ \(socket:\[[0-9]+\], tcp6 \[::1\]:[0-9]+\): a TCP connection to \[::1\]:[0-9]+, also held by pid [0-9]+ \(wl-tcp-pair\) outside the tree" --tcp-established
}

@test "wl-tcp-pair: with --tcp-established the peer outside the tree over [::1] sees no end and no reset, and talks on → PASS" {
	command -v nft >/dev/null || skip "nft is not installed (Debian: nftables)"
	RESTORE_FLAGS=--tcp-established WL_ARGS=outside wl_roundtrip wl-tcp-pair --tcp-established
	run sh -c "nft list tables | grep -c cedana_tcp_"
	assert_output "0"
}

@test "wl-inet: an unread datagram is refused by name; it runs on" {
	wl_refused wl-inet udpqueue "pid [0-9]+: fd [0-9]+ \(socket:\[[0-9]+\], udp 127\.0\.0\.1:[0-9]+\): datagrams wait unread in its receive queue" --leave-running
}

@test "wl-inet: a UDP socket with an error pending is refused by name, the error left for the program; it runs on" {
	wl_refused wl-inet udperror "pid [0-9]+: fd [0-9]+ \(socket:\[[0-9]+\], udp 127\.0\.0\.1:[0-9]+\): an error waits to be read \(SO_ERROR\)" --leave-running
}

@test "wl-inet: a socket of another network namespace is refused by name; it runs on" {
	wl_refused wl-inet netns "pid [0-9]+: fd [0-9]+ \(socket:\[[0-9]+\]\): a socket of another network namespace \(net:\[[0-9]+\]\)" --leave-running
}

@test "wl-inet: a listener also held by a process outside the tree is refused, naming it; it runs on" {
	wl_refused wl-inet held "pid [0-9]+: fd 3 \(socket:\[[0-9]+\], tcp 127\.0\.0\.1:[0-9]+\): also held by pid [0-9]+ \(wl-inet\) outside the tree: a restore would make a second socket" --leave-running
}

@test "wl-inet: a packet socket is refused, naming its family; it runs on" {
	wl_refused wl-inet packet "pid [0-9]+: fd [0-9]+ \(socket:\[[0-9]+\]\): a socket of family 17, AF_PACKET \(packet socket\): not supported" --leave-running
}

@test "wl-inet: a netlink socket with an unread answer is refused by name; it runs on" {
	wl_refused wl-inet nlqueue "pid [0-9]+: fd [0-9]+ \(socket:\[[0-9]+\], netlink protocol 0\): messages wait unread in its receive queue" --leave-running
}
