#!/usr/bin/env bats
# Incremental dumps (docs/engine.md, "Incremental checkpoints"): the driver's
# --then keeps the engine's trackers between two --leave-running dumps of
# wl-incr, which rewrites a known 5% of its pages (and drops one, maps a new
# region, forks a child) in between. The second image holds only what
# changed and names the first; a restore from it follows the chain and
# every page is as the program left it.
load helpers

setup() {
	engine_setup
	IN="$T/in"
	OUT="$T/out"
	DRIVER=
}

teardown() {
	[ -n "${DRIVER:-}" ] && kill "$DRIVER" 2>/dev/null
	exec 7>&- 2>/dev/null || true
	[ -n "${WL_PID:-}" ] && kill_tree "$WL_PID"
	engine_teardown
}

wait_line() {
	for _ in $(seq 1 3000); do
		grep -q "$2" "$1" 2>/dev/null && return 0
		sleep 0.01
	done
	echo "no \"$2\" in $1" >&2
	cat "$1" "$T/err" >&2
	return 1
}

# incr_dumps MiB [ARG]: wl-incr MiB ARG dumped into $T/img1, one generation
# of changes, dumped into $T/img2; the original is left running.
incr_dumps() {
	start_wl "$WL_DIR/wl-incr" "$@"
	mkfifo "$IN"
	"$ENGINE" dump "$WL_PID" "$T/img1" --leave-running --timings --then "$T/img2" \
		<"$IN" >"$OUT" 2>"$T/err" &
	DRIVER=$!
	exec 7>"$IN"
	wait_line "$OUT" "dumped $T/img1 incremental 0"
	kill -USR1 "$WL_PID"
	wait_line "$LOG" "^CHANGED 1$"
	echo next >&7
	exec 7>&-
	wait "$DRIVER"
	DRIVER=
	wait_line "$OUT" "dumped $T/img2 incremental 1"
}

pages_size() {
	stat -c %s "$1"/pages-*.img | awk '{ s += $1 } END { print s }'
}

restore_img2() {
	trigger_when_restored
	run timeout 60 "$ENGINE" restore "$T/img2" --stdout "$LOG" --stderr "$LOG" \
		--pid-file "$T/restored.pid"
}

@test "incremental: the second dump holds the changes only, names its parent, and restores every page" {
	incr_dumps 32
	run grep -o '"parent":{[^}]*}' "$T/img2/manifest.json"
	assert_output --partial "\"path\":\"$T/img1\""
	run grep -c '"parent"' "$T/img1/manifest.json"
	assert_output 0
	# 5% of 32 MiB rewritten, 1 MiB mapped anew; the child forked since is
	# dumped whole (1 MiB of its own, the rest shared with its parent)
	local full incr
	full=$(pages_size "$T/img1")
	incr=$(pages_size "$T/img2")
	echo "full $full incremental $incr" >&3
	[ "$incr" -lt $((full / 5)) ]
	# the tracked program ran on unharmed: no fd, no signal, every page
	kill_tree "$WL_PID"
	wait "$WL_PID" 2>/dev/null || true
	WL_PID=
	restore_img2
	[ "$status" -eq 0 ] || cat "$LOG" >&2
	assert_success
	run grep -E '^(PASS|FAIL)' "$LOG"
	assert_output "PASS"
}

@test "incremental: the tracked original runs on as if never tracked" {
	incr_dumps 16 solo
	# no fd: the userfaultfd was made inside it and closed there
	assert_equal "$(ls /proc/"$WL_PID"/fd | sort -n | tr '\n' ' ')" "0 1 2 "
	touch "$TRIGGER"
	wait "$WL_PID" || true
	WL_PID=
	run grep -E '^(PASS|FAIL)' "$LOG"
	assert_output "PASS"
}

@test "incremental: a missing parent is refused by name before any task exists" {
	incr_dumps 8 solo
	kill_tree "$WL_PID"
	wait "$WL_PID" 2>/dev/null || true
	local pid=$WL_PID
	WL_PID=
	mv "$T/img1" "$T/gone"
	run "$ENGINE" restore "$T/img2"
	assert_failure
	assert_output --partial "parent image $T/img1"
	[ ! -e "/proc/$pid" ]
}

@test "incremental: a parent whose manifest changed is refused" {
	incr_dumps 8 solo
	kill_tree "$WL_PID"
	wait "$WL_PID" 2>/dev/null || true
	WL_PID=
	echo " " >>"$T/img1/manifest.json"
	run "$ENGINE" restore "$T/img2"
	assert_failure
	assert_output --partial "is not the one this checkpoint was made on"
}

@test "incremental: a corrupt parent page file is refused before any task exists" {
	incr_dumps 8 solo
	kill_tree "$WL_PID"
	wait "$WL_PID" 2>/dev/null || true
	WL_PID=
	printf 'X' | dd of="$(ls "$T"/img1/pages-*.img | head -1)" bs=1 seek=4096 conv=notrunc \
		status=none
	run "$ENGINE" restore "$T/img2"
	assert_failure
	assert_output --partial "checksum mismatch"
}

@test "incremental: a dump without a matching parent is full" {
	start_wl "$WL_DIR/wl-incr" 8 solo
	mkfifo "$IN"
	"$ENGINE" dump "$WL_PID" "$T/img1" --leave-running --then "$T/img2" \
		<"$IN" >"$OUT" 2>"$T/err" &
	DRIVER=$!
	exec 7>"$IN"
	wait_line "$OUT" "dumped $T/img1 incremental 0"
	# the parent is changed under the trackers: they are not its own any more
	echo " " >>"$T/img1/manifest.json"
	echo next >&7
	exec 7>&-
	wait "$DRIVER"
	DRIVER=
	wait_line "$OUT" "dumped $T/img2 incremental 0"
	run grep -c '"parent"' "$T/img2/manifest.json"
	assert_output 0
}

@test "incremental: after an execve the next dump is full, and the one after incremental again" {
	local go="$T/go"
	start_wl sh -c "echo READY; while [ ! -e '$go' ]; do sleep 0.05; done; exec sleep 600"
	mkfifo "$IN"
	"$ENGINE" dump "$WL_PID" "$T/img1" --leave-running --then "$T/img2" --then "$T/img3" \
		<"$IN" >"$OUT" 2>"$T/err" &
	DRIVER=$!
	exec 7>"$IN"
	wait_line "$OUT" "dumped $T/img1 incremental 0"
	touch "$go"
	for _ in $(seq 1 500); do
		[ "$(readlink /proc/"$WL_PID"/exe)" = "$(readlink -f "$(command -v sleep)")" ] && break
		sleep 0.01
	done
	# a new mm: nothing of it is registered with the old tracker
	echo next >&7
	wait_line "$OUT" "dumped $T/img2 incremental 0"
	echo next >&7
	exec 7>&-
	wait "$DRIVER"
	DRIVER=
	wait_line "$OUT" "dumped $T/img3 incremental 1"
	kill_tree "$WL_PID"
	wait "$WL_PID" 2>/dev/null || true
	WL_PID=
	run timeout 60 "$ENGINE" restore "$T/img3" --detach --pid-file "$T/restored.pid"
	assert_success
	[ "$(readlink /proc/"$(cat "$T/restored.pid")"/exe)" = "$(readlink -f "$(command -v sleep)")" ]
}
