#!/usr/bin/env bats
# What a user on the shared socket must not be able to make the root daemon
# do. A throwaway user is created for the file.
load helpers

E2E_USER=cedana-sec

setup_file() {
	id "$E2E_USER" >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin "$E2E_USER"
}

teardown_file() {
	userdel "$E2E_USER" 2>/dev/null || true
}

setup() {
	use_private_env
	SHARED=$(mktemp -d /tmp/cedana-sec.XXXXXX)
	chmod 755 "$SHARED"
	mkdir -m 755 "$SHARED/logs"
	export CEDANA_ADDRESS="$SHARED/cedana.sock" CEDANA_JOB_LOG_DIR="$SHARED/logs" CEDANA_CONFIG_DIR="$SHARED/config"
	start_daemon
	USER_UID=$(id -u "$E2E_USER")
}

teardown() {
	kill_everything
	rm -rf "$SHARED"
}

as_user() {
	(cd /tmp && setpriv --reuid="$E2E_USER" --regid="$E2E_USER" --clear-groups "$@")
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
