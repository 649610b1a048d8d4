#!/usr/bin/env bats
# Process attributes and credentials (tests/engine/attrs.c checks itself):
# umask, nice, rlimits, comm, cwd, oom_score_adj, affinity, personality,
# no_new_privs, dumpable, uids/gids/groups, rseq, robust list, clear-tid.
load helpers

setup() {
	engine_setup
	chmod 0755 "$T"
	chmod 0777 "$T"
}
teardown() { engine_teardown; }

attrs_roundtrip() {
	local how=$1
	shift
	CEDANA_WL_TRIGGER="$TRIGGER" no_inherited_fds setsid $how "$BUILD_DIR/tests/engine/engine-attrs" \
		</dev/null >"$LOG" 2>&1 &
	WL_PID=$!
	wait_ready
	dump_restore "$@"
	assert_success
	run grep -E '^(PASS|FAIL)' "$LOG"
	assert_output "PASS"
}

@test "attrs: as root" {
	attrs_roundtrip ""
}

@test "attrs: as root, --leave-running" {
	attrs_roundtrip "" --leave-running
}

@test "attrs: as uid 1000 with supplementary groups" {
	attrs_roundtrip "setpriv --reuid=1000 --regid=1000 --groups=1000,24"
}

@test "attrs: as root with fewer capabilities" {
	attrs_roundtrip "setpriv --inh-caps=-all --bounding-set=-sys_admin,-net_raw"
}
