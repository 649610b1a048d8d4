# Shared setup for end-to-end tests: each test gets its own socket, DB and
# config directory, and a daemon started on demand is stopped in teardown.
load '/usr/lib/bats/bats-support/load'
load '/usr/lib/bats/bats-assert/load'
load '/usr/lib/bats/bats-file/load'

: "${CEDANA:=$BATS_TEST_DIRNAME/../../build/src/cedana}"
WORKLOADS="$BATS_TEST_DIRNAME/../workloads"
TERM_PY="$BATS_TEST_DIRNAME/term.py"

# Every cedana call of a test talks to that test's own daemon, DB and logs.
use_private_env() {
	export CEDANA_ADDRESS="$BATS_TEST_TMPDIR/cedana.sock"
	export CEDANA_DB_PATH="$BATS_TEST_TMPDIR/cedana.db"
	export CEDANA_JOB_LOG_DIR="$BATS_TEST_TMPDIR/logs"
	export CEDANA_CONFIG_DIR="$BATS_TEST_TMPDIR/config"
	mkdir -p "$CEDANA_JOB_LOG_DIR"
}

# Starts the daemon in the background and waits for its socket.
start_daemon() {
	"$CEDANA" daemon start "$@" >>"$BATS_TEST_TMPDIR/daemon.log" 2>&1 3>&- &
	DAEMON_PID=$!
	echo "$DAEMON_PID" >>"$BATS_TEST_TMPDIR/daemon.pids"
	for _ in $(seq 100); do
		[ -S "$CEDANA_ADDRESS" ] && return 0
		kill -0 "$DAEMON_PID" 2>/dev/null || break
		sleep 0.05
	done
	cat "$BATS_TEST_TMPDIR/daemon.log" >&2
	return 1
}

stop_daemon() {
	[ -n "${DAEMON_PID:-}" ] || return 0
	kill -TERM "$DAEMON_PID" 2>/dev/null || true
	wait "$DAEMON_PID" 2>/dev/null || true
	DAEMON_PID=
}

# Kills every job the test's DB knows about (jobs outlive the daemon by
# design), then the daemon.
kill_everything() {
	local pid
	if [ -f "$CEDANA_DB_PATH" ]; then
		for pid in $(sqlite3 "$CEDANA_DB_PATH" 'SELECT pid FROM jobs' 2>/dev/null); do
			[ "$pid" -gt 1 ] || continue
			kill -KILL -- "-$pid" 2>/dev/null || true
			kill -KILL "$pid" 2>/dev/null || true
		done
	fi
	for pid in $(cat "$BATS_TEST_TMPDIR/extra.pids" 2>/dev/null); do
		kill -KILL "$pid" 2>/dev/null || true
	done
	stop_daemon
	for pid in $(cat "$BATS_TEST_TMPDIR/daemon.pids" 2>/dev/null); do
		kill -KILL "$pid" 2>/dev/null || true
	done
}

# no_inherited_fds CMD...: runs CMD with every fd above 2 closed. A process
# a test dumps must not inherit the runner's pipes (bats's fd 3, a pipe to
# tee): a pipe held by a process outside the dumped tree is refused.
no_inherited_fds() {
	local fd
	for fd in $(ls "/proc/$BASHPID/fd"); do
		[ "$fd" -gt 2 ] && eval "exec $fd>&-"
	done
	exec "$@"
}

# wait_exec PID: waits (up to 5 s) until PID, started as `no_inherited_fds
# CMD &`, is no longer this shell: only then are the runner's fds closed,
# and a dump sooner would find its pipes.
wait_exec() {
	local shell
	shell=$(readlink "/proc/$$/exe")
	for _ in $(seq 500); do
		[ "$(readlink "/proc/$1/exe" 2>/dev/null)" != "$shell" ] && return 0
		sleep 0.01
	done
	echo "pid $1 did not exec" >&2
	return 1
}

# The value of a field of a job, from `cedana job inspect`.
job_field() {
	"$CEDANA" job inspect "$1" | python3 -c "import json, sys; v = json.load(sys.stdin)['$2']; print('null' if v is None else v)"
}

# Waits (up to 5 s) until `job_field JID FIELD` prints VALUE.
wait_job_field() {
	for _ in $(seq 100); do
		[ "$(job_field "$1" "$2")" = "$3" ] && return 0
		sleep 0.05
	done
	echo "job $1: $2 is $(job_field "$1" "$2"), expected $3" >&2
	return 1
}

# Waits (up to 5 s) until FILE contains TEXT.
wait_file_contains() {
	for _ in $(seq 100); do
		grep -q -- "$2" "$1" 2>/dev/null && return 0
		sleep 0.05
	done
	echo "$1 never contained $2" >&2
	return 1
}

common_setup() {
	use_private_env
	start_daemon
}

common_teardown() {
	kill_everything
}

# Tests of what a non-root user may do: a throwaway user ($E2E_USER, set by the
# file) and a world-searchable directory ($SHARED) holding the daemon's socket
# and logs, so that user can reach them.
user_setup_file() {
	id "$E2E_USER" >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin "$E2E_USER"
}

user_teardown_file() {
	userdel "$E2E_USER" 2>/dev/null || true
}

user_setup() {
	use_private_env
	SHARED=$(mktemp -d "/tmp/$E2E_USER.XXXXXX")
	chmod 755 "$SHARED"
	mkdir -m 755 "$SHARED/logs"
	export CEDANA_ADDRESS="$SHARED/cedana.sock" CEDANA_JOB_LOG_DIR="$SHARED/logs" CEDANA_CONFIG_DIR="$SHARED/config"
	start_daemon
	USER_UID=$(id -u "$E2E_USER")
}

user_teardown() {
	kill_everything
	# whatever the user still runs (a test's helper loop) dies with the test
	pkill -KILL -u "$E2E_USER" 2>/dev/null || true
	rm -rf "$SHARED"
}

# Runs a command as the throwaway user, from a directory they may enter.
run_as_e2e_user() {
	(cd /tmp && setpriv --reuid="$E2E_USER" --regid="$E2E_USER" --clear-groups "$@")
}
