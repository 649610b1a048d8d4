#!/usr/bin/env bats
# A non-root user on the shared 0666 socket: their own jobs only, and no
# process of another user. A throwaway user is created for the file.
load helpers

E2E_USER=cedana-e2e

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

# Runs the CLI as the throwaway user.
as_user() {
	run_as_e2e_user "$CEDANA" "$@"
}

@test "a user's job runs as that user and its log is theirs only" {
	run as_user run process --jid mine -- sh -c 'id -u; sleep 300'
	assert_success
	assert_output mine
	log="$CEDANA_JOB_LOG_DIR/cedana-output-mine.log"
	wait_file_contains "$log" "$USER_UID"
	run stat -c '%a %u' "$log"
	assert_output "600 $USER_UID"
	assert_equal "$(job_field mine uid)" "$USER_UID"
	run as_user ps
	assert_line --index 1 --partial mine
	run as_user job kill mine
	assert_success
}

@test "a user neither sees nor touches another user's job" {
	"$CEDANA" run process --jid roots "$WORKLOADS/date-loop.sh"
	"$CEDANA" run process --jid rootatt --attachable "$WORKLOADS/date-loop.sh"
	run as_user ps
	assert_success
	refute_output --partial roots
	for cmd in "job inspect" "job kill" "job delete" kill delete; do
		# shellcheck disable=SC2086
		run as_user $cmd roots
		assert_failure 1
		assert_output "Error: permission denied: job roots belongs to another user"
	done
	run as_user job attach rootatt
	assert_failure 1
	assert_output "Error: permission denied: job rootatt belongs to another user"
	run as_user attach "$(job_field rootatt pid)"
	assert_failure 1
	assert_equal "$(job_field roots status)" sleep
}

@test "a user can manage only processes they could ptrace" {
	sleep 300 3>&- &
	echo $! >>"$BATS_TEST_TMPDIR/extra.pids"
	run as_user manage process $!
	assert_failure 1
	assert_output "Error: permission denied: process $! belongs to another user"
	setpriv --reuid="$E2E_USER" --regid="$E2E_USER" --clear-groups sleep 300 3>&- &
	echo $! >>"$BATS_TEST_TMPDIR/extra.pids"
	sleep 0.1
	run as_user manage process $! --jid theirs
	assert_success
	assert_equal "$(job_field theirs uid)" "$USER_UID"
}

@test "--as-root is refused for a user" {
	run as_user run process --as-root --jid esc id
	assert_failure 1
	assert_output "Error: permission denied: --as-root needs root"
	run "$CEDANA" ps
	refute_output --partial esc
}

@test "a user dumps their own job into a directory they may write, owned by them; not elsewhere" {
	run as_user run process --jid mine -- "$WORKLOADS/date-loop.sh"
	assert_success
	mkdir -m 700 "$SHARED/ck" "$SHARED/rootonly"
	chown "$E2E_USER" "$SHARED/ck"
	run as_user dump job mine --dir "$SHARED/rootonly" --leave-running
	assert_failure 1
	assert_output --partial "$SHARED/rootonly: not writable by uid $USER_UID"
	assert_equal "$(ls -A "$SHARED/rootonly")" ""
	run as_user dump job mine --dir "$SHARED/ck" --compression lz4
	assert_success
	path=$(tail -n1 <<<"$output" | awk '{print $NF}')
	run stat -c '%a %u' "$path"
	assert_output "600 $USER_UID"
	# another user's job, and restore (which sets the credentials it restores), are root's
	"$CEDANA" run process --jid roots "$WORKLOADS/date-loop.sh"
	run as_user dump job roots --dir "$SHARED/ck"
	assert_failure 1
	assert_output "Error: permission denied: job roots belongs to another user"
	run as_user restore job mine
	assert_failure 1
	assert_output --partial "permission denied: restore needs root"
	# root restores the user's job; the unpack happens outside the user's directory
	run "$CEDANA" restore job mine
	assert_success
	assert_equal "$(ls -A "$SHARED/ck")" "$(basename "$path")"
}
