#!/usr/bin/env bats
# Incremental checkpoints through the daemon (docs/engine.md, "Incremental
# checkpoints"): `dump job --leave-running --incremental` keeps the job's
# trackers in the daemon; the next such dump writes only what changed,
# names its parent, `job checkpoints` shows the chain, a restore follows it,
# and a parent cannot be deleted while a checkpoint names it.
load cr-helpers

setup() {
	cr_setup
}

teardown() {
	cr_teardown
}

# start_incr JID MiB: wl-incr as a job, once READY.
start_incr() {
	CEDANA_WL_TRIGGER=$(trigger_of "$1") "$CEDANA" run process --jid "$1" -- \
		"$WL_BIN/wl-incr" "$2" solo
	wait_file_contains "$(log_of "$1")" READY
}

# The pid of job JID.
job_pid() {
	"$CEDANA" ps | awk -v j="$1" '$1 == j { print $3 }'
}

# Sum of the page files of checkpoint directory DIR.
pages_size() {
	stat -c %s "$1"/image/pages-*.img "$1"/pages-*.img 2>/dev/null | awk '{ s += $1 } END { print s }'
}

@test "incremental: the second dump holds the changes, job checkpoints shows the chain, restore follows it" {
	start_incr inc 32
	run "$CEDANA" dump job inc --leave-running --incremental --name one
	assert_success
	assert_output --partial "note: no earlier incremental dump"
	kill -USR1 "$(job_pid inc)"
	wait_file_contains "$(log_of inc)" '^CHANGED 1$'
	run "$CEDANA" dump job inc --leave-running --incremental --name two
	assert_success
	assert_line --regexp '^Incremental: the changes since checkpoint ck-[0-9a-f]{12}$'
	assert_equal "$(last_word)" "$CK/two"
	local full incr
	full=$(pages_size "$CK/one")
	incr=$(pages_size "$CK/two")
	[ "$incr" -lt $((full / 4)) ] || { echo "full $full incremental $incr" >&2; false; }
	run "$CEDANA" job checkpoints inc
	assert_success
	assert_line --index 0 --regexp '^ID +TIME +SIZE +PARENT +PATH$'
	local one two
	one=$(awk '$NF ~ /\/one$/ { print $1 }' <<<"$output")
	two=$(awk '$NF ~ /\/two$/ { print $1 }' <<<"$output")
	assert_line --regexp "^$two +.* +$one +$CK/two\$"
	assert_line --regexp "^$one +.* +- +$CK/one\$"
	# the parent stays while a checkpoint names it
	run "$CEDANA" checkpoint delete "$one"
	assert_failure 1
	assert_output "Error: checkpoint $one is the parent of incremental checkpoint $two: delete that one first"
	assert_file_exists "$CK/one/manifest.json"
	# the original ran on untouched by the tracking: its fds, pages, signals
	assert_equal "$(ls /proc/"$(job_pid inc)"/fd | sort -n | tr '\n' ' ')" "0 1 2 "
	touch "$(trigger_of inc)"
	wait_job_field inc exit_code 0 || { cat "$(log_of inc)" >&2; false; }
	rm "$(trigger_of inc)"
	run "$CEDANA" restore job inc
	assert_success
	touch "$(trigger_of inc)"
	wait_job_field inc exit_code 0 || { cat "$(log_of inc)" >&2; false; }
	run grep -c '^PASS$' "$(log_of inc)"
	assert_output 2
}

@test "incremental: deleting the newest first, then its parent, works" {
	start_incr del 8
	"$CEDANA" dump job del --leave-running --incremental --name a
	"$CEDANA" dump job del --leave-running --incremental --name b
	local a b
	a=$("$CEDANA" job checkpoints del | awk '$NF ~ /\/a$/ { print $1 }')
	b=$("$CEDANA" job checkpoints del | awk '$NF ~ /\/b$/ { print $1 }')
	run "$CEDANA" checkpoint delete "$b"
	assert_success
	run "$CEDANA" checkpoint delete "$a"
	assert_success
	assert_equal "$(entries "$CK")" ""
}

@test "incremental: a compressed dump is full, with a note; without --leave-running it is refused" {
	start_incr cmp 8
	"$CEDANA" dump job cmp --leave-running --incremental --name a
	run "$CEDANA" dump job cmp --leave-running --incremental --name b --compression lz4
	assert_success
	assert_output --partial 'note: incremental dumps need compression "none": dumped in full'
	refute_output --partial "Incremental:"
	run "$CEDANA" dump job cmp --incremental --name c
	assert_failure 1
	assert_output --partial "--incremental is for repeated dumps of a job with --leave-running"
}

@test "incremental: after a daemon restart the next dump is full" {
	start_incr rs 8
	"$CEDANA" dump job rs --leave-running --incremental --name a
	stop_daemon
	start_daemon
	run "$CEDANA" dump job rs --leave-running --incremental --name b
	assert_success
	assert_output --partial "note: no earlier incremental dump"
	run grep -c '"parent"' "$CK/b/manifest.json"
	assert_output 0
}

# Each task's tracker is a userfaultfd the worker gets from the daemon; the
# worker once kept only its first 16 fds, so the 7 tasks past the 14th of a
# tree of 21 lost their trackers and were dumped in full again (their page
# files as large as in the first dump; the others were half as large).
@test "incremental: a job of 21 processes keeps all its trackers: every task's second dump is smaller" {
	"$CEDANA" run process --jid many -- sh -c 'for i in $(seq 20); do sleep 1000 & done; echo READY; wait'
	wait_file_contains "$(log_of many)" READY
	for _ in $(seq 100); do
		[[ $(pgrep -c -P "$(job_pid many)" sleep) == 20 ]] && break
		sleep 0.05
	done
	run "$CEDANA" dump job many --leave-running --incremental --name one
	assert_success
	run "$CEDANA" dump job many --leave-running --incremental --name two
	assert_success
	assert_line --regexp '^Incremental: the changes since checkpoint ck-[0-9a-f]{12}$'
	local n=0 f full incr
	for f in "$CK"/two/pages-*.img; do
		full=$(stat -c %s "$CK/one/${f##*/}")
		incr=$(stat -c %s "$f")
		[ "$incr" -lt "$full" ] || { echo "${f##*/}: full $full incremental $incr" >&2; false; }
		n=$((n + 1))
	done
	assert_equal "$n" 21
}
