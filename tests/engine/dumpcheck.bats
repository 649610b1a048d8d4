#!/usr/bin/env bats
# Issue 12, item 4: what the restore would refuse is refused at dump time,
# before anything is killed. Each case: the dump (without --leave-running,
# so a dump that went through would kill the tree) fails naming the object
# and what to do, leaves no image directory, and the tree runs on untouched.
load helpers

setup() { engine_setup; }
teardown() {
	local m
	for m in "$T/bin" "$T/sub" "$T/trigger.root-a" "$T/trigger.root-a/proc"; do
		mountpoint -q "$m" 2>/dev/null && umount "$m"
	done
	engine_teardown
}

COUNTER="$BUILD_DIR/tests/engine/engine-counter"

# The counter still prints (a new number within 2 s) and is not traced.
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

# A workload refused, then triggered: it must still PASS.
passes_after() {
	touch "$TRIGGER"
	wait "$WL_PID"
	WL_PID=
	run grep -E '^(PASS|FAIL)' "$LOG"
	assert_output "PASS"
}

@test "dumpcheck: an executable deleted or replaced since it started" {
	cp "$COUNTER" "$T/prog"
	start_wl "$T/prog"
	cp "$T/prog" "$T/prog.new"
	mv "$T/prog.new" "$T/prog"
	dump_refused "pid $WL_PID \(prog\): its executable $T/prog \(deleted\) was deleted or replaced since it started \(an upgrade\?\); a restore could not map it again: restart the process"
	still_counting
}

@test "dumpcheck: an executable that is no longer executable by path" {
	cp "$COUNTER" "$T/prog"
	start_wl "$T/prog"
	chmod 0644 "$T/prog"
	dump_refused "pid $WL_PID \(prog\): its executable $T/prog is not executable by path \(Permission denied\); .*chmod \+x"
	still_counting
}

@test "dumpcheck: an executable whose path now leads to another file (a mount over it)" {
	mkdir "$T/bin" "$T/other"
	cp "$COUNTER" "$T/bin/prog"
	cp /bin/true "$T/other/prog"
	start_wl "$T/bin/prog"
	mount --bind "$T/other" "$T/bin"
	dump_refused "pid $WL_PID \(prog\): its executable $T/bin/prog: the path now leads to another file \(replaced, or a mount over it\); a restore would run that one"
	still_counting
}

# A private mapping of a deleted file is of the image's deleted file
# (fd-deleted.c): its written pages and the file's own come back.
@test "dumpcheck: a file mapped private and deleted since comes back with its pages" {
	start_wl "$WL_DIR/wl-memory" 8
	rm "$TRIGGER.mem-file"
	dump_restore
	[ "$status" -eq 0 ] || cat "$LOG" >&2
	assert_success
	run grep -E '^(PASS|FAIL)' "$LOG"
	assert_output "PASS"
	assert_not_exist "$TRIGGER.mem-file"
}

@test "dumpcheck: a file mapped private, deleted but still linked elsewhere, is refused" {
	start_wl "$WL_DIR/wl-memory" 8
	ln "$TRIGGER.mem-file" "$T/other-link"
	rm "$TRIGGER.mem-file"
	dump_refused "pid [0-9]+: mapping [0-9a-f]+-[0-9a-f]+ \(private $TRIGGER.mem-file \(deleted\)\): a deleted file still linked elsewhere \(1 links\)"
	passes_after
}

@test "dumpcheck: a mapped file hidden by a mount over its directory" {
	mkdir "$T/sub"
	TRIGGER="$T/sub/trigger"
	start_wl "$WL_DIR/wl-memory" 8
	mount -t tmpfs tmpfs "$T/sub"
	dump_refused "pid $WL_PID \(wl-memory\): mapped file $TRIGGER.mem-file \([0-9a-f]+-[0-9a-f]+\): the path now leads to another file \(replaced, or a mount over it\), or to none: No such file or directory"
	umount "$T/sub"
	passes_after
}

@test "dumpcheck: a working directory whose path now leads to another directory" {
	mkdir "$T/sub"
	cd "$T/sub"
	start_wl "$COUNTER"
	cd /
	mount -t tmpfs tmpfs "$T/sub"
	dump_refused "pid $WL_PID \(engine-counter\): its working directory $T/sub: the path now leads to another file \(replaced, or a mount over it\); a restore would enter that one"
	still_counting
}

@test "dumpcheck: a root directory (chroot) whose path now leads to another directory" {
	start_wl "$WL_DIR/wl-chroot"
	mkdir "$T/empty"
	mount --bind "$T/empty" "$T/trigger.root-a"
	dump_refused "pid [0-9]+ \(wl-chroot\): its root directory $T/trigger.root-a: the path now leads to another file"
	umount "$T/trigger.root-a"
	passes_after
}

@test "dumpcheck: an fd whose path is hidden by a mount over its directory" {
	mkdir "$T/sub"
	TRIGGER="$T/sub/trigger"
	start_wl "$WL_DIR/wl-reg-flags"
	mount -t tmpfs tmpfs "$T/sub"
	dump_refused "pid $WL_PID \(wl-reg-flags\): fd 1[0-4] \($TRIGGER[^)]*\): the path now leads to another file \(replaced, or a mount over it\), or to none: No such file or directory; a restore would open that one: undo the change, or have the process close the fd"
	umount "$T/sub"
	passes_after
}

@test "dumpcheck: a /proc file of a task behind a changed root" {
	start_wl "$WL_DIR/wl-chroot" procfile
	dump_refused "pid [0-9]+ \(wl-chroot\): fd 13 \(/proc/[0-9]+/status\): a /proc file of a task whose root is $T/trigger.root-a \(chroot\) is not supported"
	passes_after
}

@test "dumpcheck: tasks sharing their fd table, cwd and root, or memory (clone flags)" {
	local what
	for what in files fs vm; do
		start_wl "$WL_DIR/wl-clone-share" "$what"
		case $what in
		files) dump_refused "pids [0-9]+ and [0-9]+ share their fd table \(CLONE_FILES\), which a restore would not: not supported" ;;
		fs) dump_refused "pids [0-9]+ and [0-9]+ share their working and root directories \(CLONE_FS\)" ;;
		vm) dump_refused "pids [0-9]+ and [0-9]+ share their memory \(CLONE_VM\)" ;;
		esac
		passes_after
		rm -rf "$T"/trigger* "$LOG"
	done
}

# (one with no link left is restored: wl-deleted)
@test "dumpcheck: an fd of a deleted file still linked elsewhere" {
	start_wl "$WL_DIR/wl-reg-flags"
	ln "$TRIGGER.nb" "$TRIGGER.nb2"
	rm "$TRIGGER.nb"
	dump_refused "pid $WL_PID: fd 11 \($TRIGGER.nb \(deleted\)\): a deleted file that is still linked elsewhere \(1 links\) or not a regular file is not supported: a restore could not open it again; have the process close it"
	passes_after
}

@test "dumpcheck: an fd open for writing whose path is now on a read-only mount" {
	mkdir "$T/sub"
	TRIGGER="$T/sub/trigger"
	start_wl "$WL_DIR/wl-reg-flags"
	mount --bind "$T/sub" "$T/sub"
	mount -o remount,bind,ro "$T/sub"
	dump_refused "pid $WL_PID \(wl-reg-flags\): fd 1[0-4] \($TRIGGER[^)]*\): open for writing, but no longer writable by its path \(Read-only file system\); a restore opens it for writing again"
	umount "$T/sub"
	passes_after
}

@test "dumpcheck: a shared writable mapping whose file is now on a read-only mount" {
	mkdir "$T/sub"
	TRIGGER="$T/sub/trigger"
	start_wl "$WL_DIR/wl-spin"
	mount --bind "$T/sub" "$T/sub"
	mount -o remount,bind,ro "$T/sub"
	dump_refused "pid $WL_PID \(wl-spin\): mapped file $TRIGGER.spin \([0-9a-f]+-[0-9a-f]+\): shared and writable, but no longer writable by its path \(Read-only file system\)"
	umount "$T/sub"
	passes_after
}

@test "dumpcheck: a file of a procfs mounted inside a changed root" {
	mkdir -p "$T/trigger.root-a/proc"
	mount -t proc proc "$T/trigger.root-a/proc"
	start_wl "$WL_DIR/wl-chroot" procfile-inside
	dump_refused "pid [0-9]+ \(wl-chroot\): fd 13 \($T/trigger.root-a/proc/[0-9]+/status\): a file of a procfs mounted elsewhere than /proc is not supported"
	passes_after
}
