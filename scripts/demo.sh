#!/usr/bin/env bash
# The README's quick start, run end to end against a private daemon: its own
# socket, DB, config and log directory in a temporary directory, so it never
# touches /run/cedana.sock or a daemon already running.
set -euo pipefail
cedana=$(realpath "${1:-build/src/cedana}")
workloads=$(realpath "$(dirname "$0")/../tests/workloads")

tmp=$(mktemp -d /tmp/cedana-demo.XXXXXX)
export CEDANA_ADDRESS=$tmp/cedana.sock CEDANA_DB_PATH=$tmp/cedana.db
export CEDANA_CONFIG_DIR=$tmp/config CEDANA_JOB_LOG_DIR=$tmp/logs
export CEDANA_CHECKPOINT_DIR=$tmp/checkpoints
mkdir -p "$CEDANA_JOB_LOG_DIR" "$CEDANA_CHECKPOINT_DIR"
daemon_pid=

cleanup() {
	if [ -n "$daemon_pid" ]; then
		kill -TERM "$daemon_pid" 2>/dev/null || true
		wait "$daemon_pid" 2>/dev/null || true
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT

step() {
	printf '\n\033[1m$ %s\033[0m\n' "$*"
	"$@"
}

"$cedana" --version
echo "starting a private daemon on $CEDANA_ADDRESS (log: $tmp/daemon.log)"
"$cedana" daemon start >"$tmp/daemon.log" 2>&1 &
daemon_pid=$!
for _ in $(seq 100); do
	[ -S "$CEDANA_ADDRESS" ] && break
	sleep 0.05
done

step "$cedana" check
step "$cedana" run process --jid demo "$workloads/date-loop.sh"
step "$cedana" run process --jid short "$workloads/exit-code.sh" 3
sleep 2
step "$cedana" ps
step cat "$CEDANA_JOB_LOG_DIR/cedana-output-demo.log"
step "$cedana" job inspect short
if command -v script >/dev/null; then
	# attach on a terminal: three dates, then the job's exit code comes back
	step script -qec "$cedana run process --attach --jid attached $workloads/date-loop.sh 3 5" /dev/null ||
		echo "(the CLI exited with the job's code: $?)"
fi
step "$cedana" job kill demo --signal TERM
sleep 0.5
step "$cedana" ps

# checkpoint/restore: a job is dumped (it halts), restored under the same id
# and carries on; its checkpoints are listed; a checkpoint restores again
# as a child of the CLI, whose exit code is the restored process's
step "$cedana" run process --jid train "$workloads/date-loop.sh" 4 3
sleep 1.5
step "$cedana" dump job train --compression lz4
path=$("$cedana" job checkpoints train | awk 'NR == 2 {print $NF}')
step "$cedana" ps
step "$cedana" restore job train
sleep 3
step cat "$CEDANA_JOB_LOG_DIR/cedana-output-train.log"
step "$cedana" job checkpoints train
step "$cedana" job inspect train
step "$cedana" restore process --path "$path" --no-server ||
	echo "(restored as a child of the CLI; it exited with code $?)"
step "$cedana" job delete demo short attached train
step "$cedana" ps
echo
echo "stopping the daemon"
kill -TERM "$daemon_pid"
wait "$daemon_pid" || true
daemon_pid=
echo "demo: ok"
