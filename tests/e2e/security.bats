#!/usr/bin/env bats
# What a user on the shared socket must not be able to make the root daemon
# do. A throwaway user is created for the file.
load helpers

E2E_USER=cedana-sec

setup_file() {
	user_setup_file
}

teardown_file() {
	user_teardown_file
}

setup() {
	user_setup
}

teardown() {
	user_teardown
}

as_user() {
	run_as_e2e_user "$@"
}

@test "checkpoint delete does not follow a directory the user swapped for a symlink" {
	run as_user "$CEDANA" run process --jid mine -- "$WORKLOADS/date-loop.sh"
	assert_success
	mkdir -m 755 "$SHARED/home" "$SHARED/rootonly"
	chown "$E2E_USER" "$SHARED/home"
	as_user mkdir "$SHARED/home/ck"
	run as_user "$CEDANA" dump job mine --dir "$SHARED/home/ck" --name img --leave-running
	assert_success
	id=$("$CEDANA" job checkpoints mine | awk 'NR == 2 {print $1}')
	echo precious >"$SHARED/rootonly/img"
	as_user mv "$SHARED/home/ck" "$SHARED/home/ck.old"
	as_user ln -s "$SHARED/rootonly" "$SHARED/home/ck"
	run as_user "$CEDANA" checkpoint delete "$id"
	assert_failure 1
	assert_output --partial "symbolic link"
	assert_file_exists "$SHARED/rootonly/img"
	# root deleting it is refused the same way
	run "$CEDANA" checkpoint delete "$id"
	assert_failure 1
	assert_file_exists "$SHARED/rootonly/img"
}

@test "a dump that cannot open the memory of a non-dumpable process leaves its signal mask alone" {
	# PR_SET_DUMPABLE 0: /proc/PID/mem is closed to its owner
	no_inherited_fds setpriv --reuid="$E2E_USER" --regid="$E2E_USER" --clear-groups /usr/bin/python3 -c \
		'import ctypes, time; ctypes.CDLL(None).prctl(4, 0, 0, 0, 0); time.sleep(300)' &
	pid=$!
	echo "$pid" >>"$BATS_TEST_TMPDIR/extra.pids"
	# python3 (not yet the root shell that starts it) made itself non-dumpable
	for _ in $(seq 100); do
		[ "$(cat "/proc/$pid/comm" 2>/dev/null)" = python3 ] &&
			[ "$(stat -c %u "/proc/$pid" 2>/dev/null)" = 0 ] && break
		sleep 0.05
	done
	before=$(awk '/^SigBlk/ {print $2}' "/proc/$pid/status")
	mkdir -m 755 "$SHARED/home"
	chown "$E2E_USER" "$SHARED/home"
	run as_user "$CEDANA" dump process "$pid" --dir "$SHARED/home" --leave-running
	assert_failure 1
	assert_equal "$(awk '/^SigBlk/ {print $2}' "/proc/$pid/status")" "$before"
	run kill -0 "$pid"
	assert_success
}

@test "the daemon refuses a database file another user planted" {
	stop_daemon
	mkdir -m 755 "$SHARED/home"
	chown "$E2E_USER" "$SHARED/home"
	export CEDANA_DB_PATH="$SHARED/home/planted.db"
	as_user sqlite3 "$CEDANA_DB_PATH" 'CREATE TABLE t(x)'
	run timeout 10 "$CEDANA" daemon start
	assert_failure 1
	assert_output --partial "db $CEDANA_DB_PATH: owned by uid $USER_UID, not by the daemon's uid 0: refused"
	[ ! -S "$CEDANA_ADDRESS" ]
}

@test "a user gets at most 64 connections at a time; root still gets served" {
	kept="$BATS_TEST_TMPDIR/kept"
	mkfifo "$BATS_TEST_TMPDIR/hold"
	setpriv --reuid="$E2E_USER" --regid="$E2E_USER" --clear-groups /usr/bin/python3 \
		"$BATS_TEST_DIRNAME/conn-flood.py" "$CEDANA_ADDRESS" 100 hold \
		<"$BATS_TEST_TMPDIR/hold" >"$kept" 3>&- &
	flood=$!
	echo "$flood" >>"$BATS_TEST_TMPDIR/extra.pids"
	exec 5>"$BATS_TEST_TMPDIR/hold"
	for _ in $(seq 200); do
		[ -s "$kept" ] && break
		sleep 0.05
	done
	assert_equal "$(cat "$kept")" 64
	run "$CEDANA" ps
	assert_success
	exec 5>&-
	wait "$flood"
	# their connections count again once the daemon has seen them close
	for _ in $(seq 100); do
		as_user "$CEDANA" ps >/dev/null 2>&1 && break
		sleep 0.05
	done
	run as_user "$CEDANA" ps
	assert_success
}

@test "a user's job gets the supplementary groups the socket carried, not those of /proc/PID" {
	run setpriv --reuid="$E2E_USER" --regid="$E2E_USER" --groups=4242 /usr/bin/python3 \
		"$BATS_TEST_DIRNAME/peer-groups.py" "$CEDANA_ADDRESS" grp
	assert_success
	assert_output --partial "201"
	wait_job_field grp exit_code 0
	assert_file_contains "$CEDANA_JOB_LOG_DIR/cedana-output-grp.log" "4242"
}

# Dumps the user's job "mine" (date-loop) into $SHARED/home/img and keeps a
# copy of its manifest as manifest.orig.
dump_users_job() {
	run as_user "$CEDANA" run process --jid mine -- "$WORKLOADS/date-loop.sh"
	assert_success
	mkdir -m 755 "$SHARED/home"
	chown "$E2E_USER" "$SHARED/home"
	run as_user "$CEDANA" dump job mine --dir "$SHARED/home" --name img
	assert_success
	wait_job_field mine status halted
	as_user cp "$SHARED/home/img/manifest.json" "$SHARED/home/manifest.orig"
}

# Sets one field of every task of the user's manifest (a python expression
# on t), from the original, as the user.
edit_tasks() {
	as_user /usr/bin/python3 -c '
import json, sys
m = json.load(open(sys.argv[1]))
for t in m["tasks"]:
    exec(sys.argv[3])
json.dump(m, open(sys.argv[2], "w"))' "$SHARED/home/manifest.orig" "$SHARED/home/img/manifest.json" "$1"
}

# Adds fd 9 (the python dict in $1, fields not given 0) to the first task of the
# user's manifest, from the original, and a pipe when $2 gives one.
add_fd() {
	as_user /usr/bin/python3 -c '
import json, os, sys
m = json.load(open(sys.argv[1]))
fd = {"fd": 9, "kind": 0, "flags": 0, "pos": 0, "writer": 0, "own_type": 0, "own_pid": 0, "sig": 0}
fd.update(eval(sys.argv[3]))
if sys.argv[4]:
    m["pipes"].append(eval(sys.argv[4]))
m["tasks"][0]["fds"].append(fd)
fd["obj"] = 2 + sum(len(t["fds"]) for t in m["tasks"])
json.dump(m, open(sys.argv[2], "w"))' "$SHARED/home/manifest.orig" "$SHARED/home/img/manifest.json" "$1" "${2:-}"
}

@test "restore job refuses a user's checkpoint edited to ask for root's credentials" {
	dump_users_job
	manifest="$SHARED/home/img/manifest.json"
	as_user /usr/bin/python3 -c '
import json, sys
m = json.load(open(sys.argv[1]))
for t in m["tasks"]:
    t["uids"] = [0, 0, 0, 0]
    t["gids"] = [0, 0, 0, 0]
    t["cap_eff"] = t["cap_prm"] = -1
json.dump(m, open(sys.argv[1], "w"))' "$manifest"
	run "$CEDANA" restore job mine
	assert_failure 1
	assert_output --partial "uids are not all $USER_UID, the job's owner"
	assert_output --partial "refused: the checkpoint of a job of uid $USER_UID asks for more than that user has"
	assert_equal "$(job_field mine status)" halted
	# the image as dumped restores, as the user
	as_user cp "$SHARED/home/manifest.orig" "$manifest"
	run "$CEDANA" restore job mine
	assert_success
	pid=$(job_field mine pid)
	assert_equal "$(stat -c %u "/proc/$pid")" "$USER_UID"
	assert_equal "$(awk '/^Uid/ {print $2 $3 $4 $5}' "/proc/$pid/status")" "$USER_UID$USER_UID$USER_UID$USER_UID"
}

@test "restore job refuses a user's checkpoint edited to open a file only root may write" {
	echo secret >"$SHARED/rootfile"
	chmod 644 "$SHARED/rootfile"
	dump_users_job
	as_user /usr/bin/python3 -c '
import json, os, sys
m = json.load(open(sys.argv[1]))
fd = {"fd": 9, "kind": 0, "flags": os.O_RDWR, "pos": 0, "path": sys.argv[2], "writer": 0,
      "own_type": 0, "own_pid": 0, "sig": 0}
m["tasks"][0]["fds"].append(fd)
# ids go from 3, one per open file: the last one a table of this size holds is free
fd["obj"] = 2 + sum(len(t["fds"]) for t in m["tasks"])
json.dump(m, open(sys.argv[1], "w"))' "$SHARED/home/img/manifest.json" "$SHARED/rootfile"
	run "$CEDANA" restore job mine
	assert_failure 1
	assert_output --partial "the job's owner may not read and write $SHARED/rootfile"
	assert_equal "$(job_field mine status)" halted
}

# Sets the user's manifest's SysV objects (a python statement on m), from
# the original, as the user.
edit_sysv() {
	as_user /usr/bin/python3 -c '
import json, sys
m = json.load(open(sys.argv[1]))
exec(sys.argv[3])
json.dump(m, open(sys.argv[2], "w"))' "$SHARED/home/manifest.orig" "$SHARED/home/img/manifest.json" "$1"
}

@test "restore job checks the owner of a user's SysV objects, a locked segment and a queue's size" {
	dump_users_job
	local own="\"mode\": 0o600, \"uid\": $USER_UID, \"gid\": $(id -g "$E2E_USER")"
	local shm="{\"key\": 0, \"id\": 77, $own, \"removed\": 0, \"locked\": 0, \"size\": 4096, \"pages_size\": 0, \"pages_csum\": 0, \"runs\": []}"
	edit_sysv "m['sysv_shm'] = [dict($shm, uid=0)]"
	run "$CEDANA" restore job mine
	assert_failure 1
	assert_output --partial "SysV shared memory segment id 77: owner 0:"
	edit_sysv "m['sysv_shm'] = [dict($shm, locked=1)]"
	run "$CEDANA" restore job mine
	assert_failure 1
	assert_output --partial "SysV shared memory segment id 77: locked (SHM_LOCK)"
	local q="{\"key\": 0, \"id\": 78, $own, \"qbytes\": 16384, \"msgs\": []}"
	edit_sysv "m['sysv_msq'] = [dict($q, gid=0)]"
	run "$CEDANA" restore job mine
	assert_failure 1
	assert_output --partial "SysV message queue id 78: owner $USER_UID:0"
	edit_sysv "m['sysv_msq'] = [dict($q, qbytes=$(( $(cat /proc/sys/kernel/msgmnb) + 1 )))]"
	run "$CEDANA" restore job mine
	assert_failure 1
	assert_output --partial "SysV message queue id 78: msg_qbytes"
	edit_sysv "m['sysv_sem'] = [{\"key\": 0, \"id\": 79, $own, \"operated\": 0, \"vals\": [1], \"uid\": 0}]"
	run "$CEDANA" restore job mine
	assert_failure 1
	assert_output --partial "SysV semaphore set id 79: owner 0:"
	assert_equal "$(job_field mine status)" halted
}

@test "restore job checks a user's O_PATH fds and pipe sizes" {
	dump_users_job
	mkdir -m 700 "$SHARED/rootdir"
	touch "$SHARED/rootdir/f"
	add_fd "{\"kind\": 6, \"flags\": os.O_PATH, \"path\": \"$SHARED/rootdir/f\"}"
	run "$CEDANA" restore job mine
	assert_failure 1
	assert_output --partial "the job's owner may not reach $SHARED/rootdir/f"
	add_fd '{"kind": 3, "pos": 123456789}' '{"id": 123456789, "size": 1 << 30, "data": ""}'
	run "$CEDANA" restore job mine
	assert_failure 1
	assert_output --partial "size 1073741824 is above fs.pipe-max-size"
	assert_equal "$(job_field mine status)" halted
}

@test "restore job refuses a user's unix socket that would be root's (the controller gives it its owner)" {
	dump_users_job
	add_fd '{"kind": 15, "sk_type": 1, "sk_listen": 0, "sk_passcred": 0, "sk_backlog": 0,
	         "sk_rcvbuf": 0, "sk_sndbuf": 0, "sk_mode": 0, "sk_uid": 0, "sk_gid": 0, "sk_addr": "",
	         "sk_ino": 4000000000, "sk_peer": 0, "sk_shutdown": 0, "sk_queue": [],
	         "sk_iuid": 0, "sk_igid": 0}'
	run "$CEDANA" restore job mine
	assert_failure 1
	assert_output --partial "fd 9: a unix socket of owner 0:0, not the job's owner or one of its groups"
	assert_equal "$(job_field mine status)" halted
}

@test "restore job refuses a user's TCP or netlink socket that would be root's (the controller gives it its owner)" {
	dump_users_job
	add_fd '{"kind": 16, "sk_family": 2, "sk_type": 1, "sk_proto": 6, "sk_listen": 0,
	         "sk_backlog": 0, "sk_rcvbuf": 0, "sk_sndbuf": 0, "sk_ino": 4000000000,
	         "sk_iuid": 0, "sk_igid": 0, "sk_opts": 0, "sk_linger": 0, "sk_defer": 0,
	         "sk_rcvtimeo": 0, "sk_sndtimeo": 0, "sk_addr": "", "sk_paddr": ""}'
	run "$CEDANA" restore job mine
	assert_failure 1
	assert_output --partial "fd 9: an inet socket of owner 0:0, not the job's owner or one of its groups"
	add_fd '{"kind": 17, "sk_family": 16, "sk_type": 3, "sk_proto": 0, "sk_listen": 0,
	         "sk_backlog": 0, "sk_rcvbuf": 0, "sk_sndbuf": 0, "sk_ino": 4000000001,
	         "sk_iuid": 0, "sk_igid": 0, "sk_opts": 0, "sk_linger": 0, "sk_defer": 0,
	         "sk_rcvtimeo": 0, "sk_sndtimeo": 0, "sk_addr": "", "sk_paddr": ""}'
	run "$CEDANA" restore job mine
	assert_failure 1
	assert_output --partial "fd 9: a netlink socket of owner 0:0, not the job's owner or one of its groups"
	assert_equal "$(job_field mine status)" halted
}

@test "restore job refuses a user's established TCP connection (TCP repair is root's)" {
	dump_users_job
	# 127.0.0.1:1000 -> 127.0.0.1:53, its repair state and an empty queue file
	add_fd '{"kind": 16, "sk_family": 2, "sk_type": 1, "sk_proto": 6, "sk_listen": 0,
	         "sk_backlog": 0, "sk_rcvbuf": 0, "sk_sndbuf": 0, "sk_ino": 4000000000,
	         "sk_iuid": 0, "sk_igid": 0, "sk_opts": 0, "sk_linger": 0, "sk_defer": 0,
	         "sk_rcvtimeo": 0, "sk_sndtimeo": 0, "sk_addr": "020003e87f0000010000000000000000",
	         "sk_paddr": "020000357f0000010000000000000000",
	         "sk_tcp": {"snd_seq": 1, "rcv_seq": 1, "sndq": 0, "unsq": 0, "rcvq": 0, "mss": 1460,
	                    "topts": 0, "swscale": 0, "rwscale": 0, "tsval": 0, "wl1": 0, "swnd": 0,
	                    "maxwnd": 0, "rwnd": 0, "rwup": 0, "shut_rd": 0, "kidle": 7200,
	                    "kintvl": 75, "kcnt": 9, "cork": 0}}'
	as_user touch "$SHARED/home/img/tcp-4000000000.img"
	run "$CEDANA" restore job mine --tcp-established
	assert_failure 1
	assert_output --partial "fd 9: an established TCP connection: restoring it needs TCP repair (CAP_NET_ADMIN), which a user's checkpoint is not given"
	assert_equal "$(job_field mine status)" halted
}

@test "restore job checks every field of a user's checkpoint: nice, limits, oom, dumpable, executable" {
	dump_users_job
	echo secret >"$SHARED/rootonly"
	chmod 700 "$SHARED/rootonly"
	edit_tasks 't["nice"] = -20'
	run "$CEDANA" restore job mine
	assert_failure 1
	assert_output --partial "nice -20, which only a privileged process may set"
	edit_tasks 't["rlimits"][15] = 1 << 40; t["rlimits"][14] = 1024'
	run "$CEDANA" restore job mine
	assert_failure 1
	assert_output --partial "rlimit 7: hard limit 1099511627776 is above"
	edit_tasks 't["oom_score_adj"] = -1000'
	run "$CEDANA" restore job mine
	assert_failure 1
	assert_output --partial "oom_score_adj -1000 is below 0"
	edit_tasks 't["dumpable"] = 2'
	run "$CEDANA" restore job mine
	assert_failure 1
	assert_output --partial "dumpable 2"
	edit_tasks "t[\"mm\"][\"exe\"] = \"$SHARED/rootonly\""
	run "$CEDANA" restore job mine
	assert_failure 1
	assert_output --partial "may not enter or execute $SHARED/rootonly"
	assert_equal "$(job_field mine status)" halted
	# a higher nice is anyone's to choose
	edit_tasks 't["nice"] = 5'
	run "$CEDANA" restore job mine
	assert_success
	pid=$(job_field mine pid)
	assert_equal "$(ps -o ni= -p "$pid" | tr -d ' ')" 5
}

# A thread of the first task (from its own fields), with $1 applied to it.
add_thread() {
	edit_tasks 'th = {k: t[k] for k in ("blocked", "ss_sp", "ss_size", "ss_flags", "rseq_addr",
    "rseq_sig", "rseq_len", "robust_head", "robust_len", "clear_tid", "nice", "sched_policy",
    "sched_prio", "sched_reset_on_fork", "timer_slack_ns", "regs", "xstate", "affinity")}
th.update(tid=t["pid"] + 1, comm="worker", pending=[])
'"$1"'
t["threads"] = [th]'
}

@test "restore job checks each thread's nice and real-time priority" {
	dump_users_job
	add_thread 'th["nice"] = -20'
	run "$CEDANA" restore job mine
	assert_failure 1
	assert_output --regexp "thread [0-9]+: nice -20, which only a privileged process may set"
	add_thread 'th["sched_policy"] = 1; th["sched_prio"] = 50; t["rlimits"][28] = 0'
	run "$CEDANA" restore job mine
	assert_failure 1
	assert_output --regexp "thread [0-9]+: real-time priority 50, above RLIMIT_RTPRIO 0"
	assert_equal "$(job_field mine status)" halted
}

@test "restore job checks a user's scheduling policy and loginuid" {
	dump_users_job
	# SCHED_FIFO 50 with RLIMIT_RTPRIO (rlimit 14) 0
	edit_tasks 't["sched_policy"] = 1; t["sched_prio"] = 50; t["rlimits"][28] = 0'
	run "$CEDANA" restore job mine
	assert_failure 1
	assert_output --partial "real-time priority 50, above RLIMIT_RTPRIO 0"
	edit_tasks 't["loginuid"] = 0'
	run "$CEDANA" restore job mine
	assert_failure 1
	assert_output --partial "loginuid 0 (a user's task may have none or $USER_UID)"
	assert_equal "$(job_field mine status)" halted
	# SCHED_BATCH and the owner's own loginuid are anyone's
	edit_tasks "t[\"sched_policy\"] = 3; t[\"loginuid\"] = $USER_UID"
	run "$CEDANA" restore job mine
	assert_success
	pid=$(job_field mine pid)
	assert_equal "$(python3 -c "import os; print(os.sched_getscheduler($pid))")" 3
	assert_equal "$(cat "/proc/$pid/loginuid")" "$USER_UID"
}

@test "restore job holds a user's locked memory to RLIMIT_MEMLOCK (the restore locks while privileged)" {
	dump_users_job
	# every anonymous mapping locked with RLIMIT_MEMLOCK (rlimit 8) 0, then mlockall(MCL_FUTURE)
	edit_tasks 't["rlimits"][16] = 0
for v in t["vmas"]:
    if v["kind"] == 0: v["flags"] |= 1'
	run "$CEDANA" restore job mine
	assert_failure 1
	assert_output --regexp "task [0-9]+: [0-9]+ bytes of locked memory, above RLIMIT_MEMLOCK 0"
	edit_tasks 't["rlimits"][16] = 0; t["mlock_future"] = 1'
	run "$CEDANA" restore job mine
	assert_failure 1
	assert_output --partial "mlockall(MCL_FUTURE) with RLIMIT_MEMLOCK 0"
	assert_equal "$(job_field mine status)" halted
	# within the limit it is the user's to ask for, and comes back locked
	edit_tasks 'v = min((v for v in t["vmas"] if v["kind"] == 0), key=lambda v: v["end"] - v["start"])
v["flags"] |= 1
t["rlimits"][16] = max(t["rlimits"][16], v["end"] - v["start"])
t["rlimits"][17] = max(t["rlimits"][17], t["rlimits"][16])'
	run "$CEDANA" restore job mine
	assert_success
	pid=$(job_field mine pid)
	run grep -c "^VmFlags:.* lo" "/proc/$pid/smaps"
	assert_output 1
}

@test "restore job checks a user's shared file mapping that may become writable as a write" {
	echo secret >"$SHARED/rootfile"
	chmod 644 "$SHARED/rootfile"
	dump_users_job
	# read-only, but "may write" (flags 1024): the file would be opened read-write
	as_user /usr/bin/python3 -c '
import json, sys
m = json.load(open(sys.argv[1]))
t = m["tasks"][0]
assert t["vmas"][0]["start"] >= 0x200000
t["vmas"].insert(0, {"start": 0x100000, "end": 0x101000, "pgoff": 0, "prot": 1, "shared": 1,
                     "growsdown": 0, "kind": 2, "flags": 1024, "dev": 0, "ino": 0, "shmid": 0,
                     "fsize": 0, "mtime_ns": 0, "path": sys.argv[2], "runs": []})
json.dump(m, open(sys.argv[1], "w"))' "$SHARED/home/img/manifest.json" "$SHARED/rootfile"
	run "$CEDANA" restore job mine
	assert_failure 1
	assert_output --partial "the job's owner may not read and write $SHARED/rootfile"
	assert_equal "$(job_field mine status)" halted
}

@test "restore job uses exactly the manifest it checked: a user swapping it mid-restore never gets root" {
	dump_users_job
	edit_tasks 't["uids"] = [0, 0, 0, 0]; t["gids"] = [0, 0, 0, 0]'
	as_user mv "$SHARED/home/img/manifest.json" "$SHARED/home/img/alt.json"
	as_user cp "$SHARED/home/manifest.orig" "$SHARED/home/img/manifest.json"
	# the user swaps the two as fast as they can while root restores
	as_user /usr/bin/python3 -c '
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
d = sys.argv[1].encode()
a, b = os.path.join(d, b"manifest.json"), os.path.join(d, b"alt.json")
while True:
    libc.renameat2(-100, a, -100, b, 2)' "$SHARED/home/img" >/dev/null 2>&1 3>&- &
	restored=0
	gid=$(id -g "$E2E_USER")
	for _ in $(seq 15); do
		if "$CEDANA" restore job mine >/dev/null 2>&1; then
			pid=$(job_field mine pid)
			assert_equal "$(awk '/^Uid/ {print $2 $3 $4 $5}' "/proc/$pid/status")" "$USER_UID$USER_UID$USER_UID$USER_UID"
			assert_equal "$(awk '/^Gid/ {print $2}' "/proc/$pid/status")" "$gid"
			restored=$((restored + 1))
			"$CEDANA" job kill mine >/dev/null
			wait_job_field mine status halted
		fi
	done
	pkill -KILL -u "$E2E_USER" -f renameat2
	# the swap raced the restores: some got the true manifest, none got root
	echo "# restored $restored of 15, each as uid $USER_UID" >&3
}

@test "root's --pid-file and --out refuse a symbolic link the user planted" {
	mkdir -m 755 "$SHARED/home"
	chown "$E2E_USER" "$SHARED/home"
	echo precious >"$SHARED/target"
	as_user ln -s "$SHARED/target" "$SHARED/home/root.pid"
	as_user ln -s "$SHARED/target" "$SHARED/home/out.log"
	for mode in "" --no-server; do
		# shellcheck disable=SC2086
		run "$CEDANA" run process $mode --pid-file "$SHARED/home/root.pid" -- touch "$SHARED/ran"
		assert_failure 1
		assert_output --partial "pid file $SHARED/home/root.pid is a symbolic link: refused"
		# shellcheck disable=SC2086
		run "$CEDANA" run process $mode --out "$SHARED/home/out.log" -- touch "$SHARED/ran"
		assert_failure 1
		assert_output --partial "output file $SHARED/home/out.log is a symbolic link: refused"
	done
	sleep 0.2
	assert_equal "$(cat "$SHARED/target")" precious
	assert_file_not_exists "$SHARED/ran"
}

@test "a user's --out file is created as the user, 0600 like a job log" {
	mkdir -m 755 "$SHARED/home"
	chown "$E2E_USER" "$SHARED/home"
	run as_user "$CEDANA" run process --out "$SHARED/home/out.log" -- echo hi
	assert_success
	wait_file_contains "$SHARED/home/out.log" hi
	assert_equal "$(stat -c '%U %a' "$SHARED/home/out.log")" "$E2E_USER 600"
	# and not in a directory only root may write
	mkdir -m 755 "$SHARED/rootonly"
	run as_user "$CEDANA" run process --out "$SHARED/rootonly/out.log" -- echo hi
	assert_failure 1
	assert_output --partial "Permission denied"
	assert_file_not_exists "$SHARED/rootonly/out.log"
}

@test "a user's job of several threads comes back with the user's credentials in every thread" {
	run as_user "$CEDANA" run process --jid threads -- /usr/bin/python3 -c '
import threading, time
for _ in range(3):
    threading.Thread(target=time.sleep, args=(1000,), daemon=True).start()
n = 0
while True:
    n += 1
    time.sleep(0.01)'
	assert_success
	pid=$(job_field threads pid)
	for _ in $(seq 1 200); do [ "$(ls /proc/"$pid"/task | wc -l)" -eq 4 ] && break; sleep 0.05; done
	run as_user "$CEDANA" dump job threads
	assert_success
	wait_job_field threads status halted
	run "$CEDANA" restore job threads
	assert_success
	pid=$(job_field threads pid)
	assert_equal "$(ls /proc/"$pid"/task | wc -l)" 4
	run awk '/^Uid:/ { print $2, $3, $4, $5 }' /proc/"$pid"/task/*/status
	assert_equal "$(sort -u <<<"$output")" "$USER_UID $USER_UID $USER_UID $USER_UID"
	run awk '/^CapEff:/ { print $2 }' /proc/"$pid"/task/*/status
	assert_equal "$(sort -u <<<"$output")" 0000000000000000
	sleep 0.5
	[ "$(awk '{print $3}' /proc/"$pid"/stat)" != Z ]
}
