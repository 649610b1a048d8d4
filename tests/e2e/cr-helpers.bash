# Shared by the checkpoint/restore tests: a private daemon per test, the
# engine's workloads, and small helpers around dump and restore.
load helpers

# CEDANA is BUILD/src/cedana; the workloads are built beside it.
: "${BUILD_DIR:=$(cd "$(dirname "$CEDANA")/.." && pwd)}"
WL_BIN="$BUILD_DIR/tests/workloads"

cr_setup() {
	use_private_env
	CK="$BATS_TEST_TMPDIR/ck"
	mkdir -p "$CK"
	export CEDANA_CHECKPOINT_DIR="$CK"
	start_daemon
}

cr_teardown() {
	kill_everything
	local m
	for m in $(cat "$BATS_TEST_TMPDIR/mounts" 2>/dev/null); do
		umount "$m" 2>/dev/null || true
	done
}

log_of() {
	echo "$CEDANA_JOB_LOG_DIR/cedana-output-$1.log"
}

trigger_of() {
	echo "$BATS_TEST_TMPDIR/trigger-$1"
}

# The last word of the last line of $output: what scripts take as the path.
last_word() {
	tail -n1 <<<"$output" | awk '{print $NF}'
}

# start_counter JID [RUN-FLAGS...]: wl-counter as a job, once it has counted a bit.
start_counter() {
	local jid=$1
	shift
	CEDANA_WL_TRIGGER=$(trigger_of "$jid") "$CEDANA" run process --jid "$jid" "$@" -- "$WL_BIN/wl-counter"
	wait_file_contains "$(log_of "$jid")" READY
	wait_file_contains "$(log_of "$jid")" '^5$'
}

# The counter of JID ends with PASS, exit code 0, and counted 1, 2, 3 … without a gap.
finish_counter() {
	local jid=$1 log=${2:-$(log_of "$1")}
	touch "$(trigger_of "$jid")"
	wait_job_field "$jid" exit_code 0 || { cat "$log" >&2; return 1; }
	grep -qx PASS "$log" || { cat "$log" >&2; return 1; }
	grep -E '^[0-9]+$' "$log" | awk '$1 != NR { print "count line " NR " is " $1; bad = 1; exit 1 }
		END { if (!bad && NR < 5) { print "too few numbers: " NR; exit 1 } }' >&2
}

# A date-loop.sh job that has printed its first line.
start_date_loop() {
	local jid=$1 count=$2 code=$3
	shift 3
	"$CEDANA" run process --jid "$jid" "$@" -- "$WORKLOADS/date-loop.sh" "$count" "$code"
}

# Files in DIR, hidden ones too (nothing may be left behind).
entries() {
	ls -A "$1"
}
