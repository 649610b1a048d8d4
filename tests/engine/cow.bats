#!/usr/bin/env bats
# Copy-on-write sharing survives a restore: wl-memory's parent and child
# share N MiB of random memory; after dump → kill → restore the child's
# pages must still be the parent's (its Pss counts them half), not copies
# (memory would double). docs/engine.md, "Restore", premapped memory.
load helpers

setup() { engine_setup; }
teardown() { engine_teardown; }

MIB=128

# anon_shared_kib PID: anonymous memory of PID mapped by other tasks too,
# counted whole in Rss and shared out in Pss (KiB).
anon_shared_kib() {
	awk '/^Anonymous:/ { a = $2 } /^Pss_Anon:/ { p = $2 } END { print 2 * (a - p) }' \
		"/proc/$1/smaps_rollup"
}

# child_of PID: its only child.
child_of() {
	cat /proc/"$1"/task/*/children | tr -d ' \n'
}

assert_shares_half() {
	local child kib
	child=$(child_of "$1")
	[ -n "$child" ]
	kib=$(anon_shared_kib "$child")
	echo "child $child: ${kib} KiB of anonymous memory shared ($2)"
	# the random region less the child's own page 0, with slack
	[ "$kib" -ge $(((MIB - 8) * 1024)) ]
}

@test "cow: a parent and child sharing $MIB MiB still share them after restore" {
	start_wl "$WL_DIR/wl-memory" "$MIB"
	assert_shares_half "$WL_PID" "before the dump"
	run "$ENGINE" dump "$WL_PID" "$IMG"
	assert_success
	wait "$WL_PID" 2>/dev/null || true
	WL_PID=
	run timeout 60 "$ENGINE" restore "$IMG" --stdout "$LOG" --stderr "$LOG" --detach \
		--pid-file "$T/restored.pid"
	assert_success
	run assert_shares_half "$(cat "$T/restored.pid")" "after the restore"
	echo "$output"
	assert_success
	touch "$TRIGGER"
	for _ in $(seq 1 600); do
		grep -qE '^(PASS|FAIL)' "$LOG" && break
		sleep 0.1
	done
	run grep -E '^(PASS|FAIL)' "$LOG"
	assert_output "PASS"
}
