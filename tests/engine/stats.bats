#!/usr/bin/env bats
# The engine's stats, progress and leave_stopped options (through the
# driver's --stats and --leave-stopped).
load helpers

setup() { engine_setup; }
teardown() { engine_teardown; }

# stat NAME FILE: the value of a "stat NAME V" line.
stat_of() {
	awk -v n="$1" '$1 == "stat" && $2 == n { print $3 }' "$2"
}

# progress_ok STAGE MIN FILE: the stage's progress lines grow to their total,
# which is at least MIN bytes.
progress_ok() {
	awk -v s="$1" -v min="$2" '$1 == "progress" && $2 == s {
			if ($3 < last || $3 > $4) exit 1
			last = $3; n++; d = $3; t = $4 }
		END { if (n < 2 || d != t || d < min) exit 1 }' "$3"
}

@test "stats: a dump reads each task's smaps at most twice (proc.c's cache), and the tree runs on" {
	start_wl "$WL_DIR/wl-memory" 64
	# the progress adds a pass over the tree's mappings (count_pages)
	"$ENGINE" dump "$WL_PID" "$IMG" --stats --leave-running 2>"$T/dump.err"
	assert_equal "$(stat_of tasks "$T/dump.err")" 2
	# per task: the listing before our scratch page and the one with it;
	# the checks, the progress and the pages use the first again
	reads=$(stat_of smaps_reads "$T/dump.err")
	[ -n "$reads" ] && [ "$reads" -le 4 ] || { echo "smaps read ${reads:-?} times" >&2; false; }
	[ "$(stat_of smaps_hits "$T/dump.err")" -ge 4 ]
	touch "$TRIGGER"
	timeout 60 tail --pid="$WL_PID" -f /dev/null
	WL_PID=
	run grep -E '^(PASS|FAIL)' "$LOG"
	assert_output "PASS"
}

@test "stats: a dump and a restore report their page data and time per phase" {
	start_wl "$WL_DIR/wl-memory" 64
	"$ENGINE" dump "$WL_PID" "$IMG" --stats 2>"$T/dump.err"
	wait "$WL_PID" 2>/dev/null || true
	WL_PID=
	pages=$(cat "$IMG"/pages-*.img | wc -c)
	assert_equal "$(stat_of pages_bytes "$T/dump.err")" "$pages"
	assert_equal "$(stat_of tasks "$T/dump.err")" 2
	run progress_ok dump "$pages" "$T/dump.err"
	assert_success
	for s in freeze_ns state_ns files_ns mem_scan_ns write_ns release_ns total_ns; do
		[ "$(stat_of $s "$T/dump.err")" -gt 0 ] || { echo "$s is 0" >&2; false; }
	done
	sum=0
	for s in freeze_ns state_ns files_ns mem_scan_ns write_ns fsync_ns release_ns; do
		sum=$((sum + $(stat_of $s "$T/dump.err")))
	done
	[ "$sum" -le "$(stat_of total_ns "$T/dump.err")" ]

	touch "$TRIGGER"
	run timeout 60 "$ENGINE" restore "$IMG" --stdout "$LOG" --stderr "$LOG" --stats \
		--pid-file "$T/restored.pid"
	assert_success
	grep '^stat\|^progress' <<<"$output" >"$T/restore.err"
	assert_equal "$(stat_of tasks "$T/restore.err")" 2
	[ "$(stat_of pages_bytes "$T/restore.err")" -ge "$pages" ]
	for s in validate_ns create_ns mem_ns state_ns release_ns total_ns; do
		[ "$(stat_of $s "$T/restore.err")" -gt 0 ] || { echo "$s is 0" >&2; false; }
	done
	# the checksums are checked as the pages go back: no pass of their own
	# over the page files (only System V segments, none here, have one)
	run progress_ok restore "$pages" "$T/restore.err"
	assert_success
	run awk '$1 == "progress" { print $2 }' "$T/restore.err"
	assert_equal "$(uniq <<<"$output" | tr '\n' ' ')" "restore "
	run grep -E '^(PASS|FAIL)' "$LOG"
	assert_output "PASS"
}

@test "leave_stopped: every restored task is stopped until SIGCONT" {
	start_wl "$WL_DIR/wl-tree"
	run "$ENGINE" dump "$WL_PID" "$IMG"
	assert_success
	wait "$WL_PID" 2>/dev/null || true
	WL_PID=
	touch "$TRIGGER"
	run timeout 60 "$ENGINE" restore "$IMG" --stdout "$LOG" --stderr "$LOG" --leave-stopped \
		--detach --pid-file "$T/restored.pid"
	assert_success
	root=$(cat "$T/restored.pid")
	for p in $(descendants "$root"); do
		for _ in $(seq 1 100); do
			[ "$(awk '{print $3}' "/proc/$p/stat")" = T ] && break
			sleep 0.01
		done
		assert_equal "$(awk '{print $3}' "/proc/$p/stat")" T
	done
	sleep 0.3
	run grep -cE '^(PASS|FAIL)' "$LOG"
	assert_output 0
	for p in $(descendants "$root"); do kill -CONT "$p"; done
	for _ in $(seq 1 500); do grep -qE '^(PASS|FAIL)' "$LOG" && break; sleep 0.01; done
	run grep -E '^(PASS|FAIL)' "$LOG"
	assert_output "PASS"
}
