#!/usr/bin/env bats
# Command-line parsing, help and configuration; no daemon unless needed.
load helpers

setup() {
	use_private_env
}

teardown() {
	kill_everything
}

@test "--help works on every command" {
	for cmd in "" daemon "daemon start" "daemon check" check run "run process" exec \
		"exec process" manage "manage process" ps jobs job "job list" "job inspect" \
		"job kill" "job delete" "job attach" "job checkpoints" kill delete attach dump \
		"dump process" "dump job" restore "restore process" "restore job" checkpoint \
		"checkpoint inspect" "checkpoint delete" checkpoints; do
		# shellcheck disable=SC2086
		run "$CEDANA" $cmd --help
		assert_success
		assert_output --partial "Usage:"
		assert_output --partial "cedana $cmd"
	done
}

@test "help lists flags of run process, and of exec" {
	for cmd in "run process" exec; do
		# shellcheck disable=SC2086
		run "$CEDANA" $cmd -h
		assert_success
		for flag in --jid --attach --attachable --out --pid-file --no-server --as-root \
			--address --protocol --config --config-dir --version; do
			assert_output --partial -- "$flag"
		done
	done
}

@test "an unknown flag is refused" {
	run "$CEDANA" ps --frobnicate
	assert_failure 2
	assert_line --index 0 "Error: unknown flag: --frobnicate"
}

@test "an unknown subcommand is refused" {
	run "$CEDANA" job frob
	assert_failure 2
	assert_output --partial 'unknown command "frob" for "cedana job"'
}

@test "a missing argument is refused" {
	run "$CEDANA" job inspect
	assert_failure 2
	assert_output --partial '"cedana job inspect" requires at least 1 argument'
	run "$CEDANA" run process
	assert_failure 2
}

@test "every command that needs a positional argument refuses its absence with exit 2" {
	for cmd in "manage process" "restore process" "restore job" "dump process" "dump job" \
		"job inspect" "job kill" "job delete" "job attach" "job checkpoints" kill delete \
		attach "checkpoint inspect" "checkpoint delete" "run process"; do
		# shellcheck disable=SC2086
		run "$CEDANA" $cmd
		assert_failure 2
		assert_output --partial "Run 'cedana $cmd --help' for usage."
	done
}

@test "a usage error points at the help of the command typed" {
	run "$CEDANA" job kill --frob x
	assert_failure 2
	assert_line --index 1 "Run 'cedana job kill --help' for usage."
}

@test "flags that do not go together are usage errors, and nothing runs" {
	run "$CEDANA" run process --no-server --jid j1 -- touch "$BATS_TEST_TMPDIR/ran"
	assert_failure 2
	assert_line --index 0 "Error: --no-server makes no job: drop --jid"
	assert_line --index 1 "Run 'cedana run process --help' for usage."
	run "$CEDANA" run process --no-server --attach -- touch "$BATS_TEST_TMPDIR/ran"
	assert_failure 2
	assert_output --partial "drop --attach/--attachable"
	assert_file_not_exists "$BATS_TEST_TMPDIR/ran"
	run "$CEDANA" restore process --path /x.tar --no-server --jid j1
	assert_failure 2
	assert_line --index 0 "Error: --no-server makes no job: drop --jid"
	run "$CEDANA" restore process --path /x.tar --no-server --attachable
	assert_failure 2
	run "$CEDANA" restore process --path /x.tar /y.tar
	assert_failure 2
	assert_line --index 0 "Error: give the checkpoint once: --path PATH or PATH"
}

@test "a flag without its value is refused" {
	run "$CEDANA" run process true --jid
	assert_failure 2
	assert_output --partial "flag needs an argument: --jid"
}

@test "no daemon running: a clear error that says how to start it" {
	run "$CEDANA" ps
	assert_failure 1
	assert_output "Error: cannot reach the daemon at $CEDANA_ADDRESS: is it running? start it with: sudo cedana daemon start --address $CEDANA_ADDRESS"
	run "$CEDANA" run process true
	assert_failure 1
	assert_output --partial "cannot reach the daemon"
	run "$CEDANA" job attach x
	assert_failure 1
	assert_output --partial "cannot reach the daemon"
}

@test "a malformed config file is refused" {
	mkdir -p "$CEDANA_CONFIG_DIR"
	echo '{"address": ' >"$CEDANA_CONFIG_DIR/config.json"
	run "$CEDANA" ps
	assert_failure 1
	assert_output --partial "config file $CEDANA_CONFIG_DIR/config.json: malformed JSON"
}

@test "an unreadable config file is refused" {
	mkdir -p "$CEDANA_CONFIG_DIR/config.json"
	run "$CEDANA" ps
	assert_failure 1
	assert_output --partial "config file $CEDANA_CONFIG_DIR/config.json"
}

@test "an unknown config key or bad value is refused" {
	run "$CEDANA" ps --config '{"db": {"pth": "/x"}}'
	assert_failure 1
	assert_output 'Error: --config: unknown config key "db.pth"'
	run "$CEDANA" ps --protocol udp
	assert_failure 1
	assert_output --partial 'invalid value "udp" for protocol'
	CEDANA_CHECKPOINT_COMPRESSION=rar run "$CEDANA" ps
	assert_failure 1
	assert_output --partial "CEDANA_CHECKPOINT_COMPRESSION"
}

@test "config precedence: file, then CEDANA_* environment, then --config, then flags" {
	mkdir -p "$CEDANA_CONFIG_DIR"
	echo "{\"address\": \"$BATS_TEST_TMPDIR/file.sock\"}" >"$CEDANA_CONFIG_DIR/config.json"
	unset CEDANA_ADDRESS
	run "$CEDANA" ps
	assert_output --partial "daemon at $BATS_TEST_TMPDIR/file.sock"
	CEDANA_ADDRESS=/env.sock run "$CEDANA" ps
	assert_output --partial "daemon at /env.sock"
	CEDANA_ADDRESS=/env.sock run "$CEDANA" ps --config '{"address": "/json.sock"}'
	assert_output --partial "daemon at /json.sock"
	run "$CEDANA" ps --config '{"address": "/json.sock"}' --address /flag.sock
	assert_output --partial "daemon at /flag.sock"
}

@test "--config-dir picks the config file" {
	mkdir -p "$BATS_TEST_TMPDIR/other"
	echo '{"address": "/other.sock"}' >"$BATS_TEST_TMPDIR/other/config.json"
	unset CEDANA_ADDRESS
	run "$CEDANA" --config-dir "$BATS_TEST_TMPDIR/other" ps
	assert_output --partial "daemon at /other.sock"
}

@test "daemon start --init-config writes the defaults" {
	start_daemon --init-config
	assert_file_exists "$CEDANA_CONFIG_DIR/config.json"
	run python3 -c "import json; c = json.load(open('$CEDANA_CONFIG_DIR/config.json')); print(c['db']['path'], c['protocol'], c['checkpoint']['compression'])"
	assert_output "/tmp/cedana.db unix none"
}

@test "--no-server runs the job as a child and passes its exit code" {
	run "$CEDANA" run process --no-server "$WORKLOADS/exit-code.sh" 7
	assert_failure 7
	assert_output "exiting with 7"
	run "$CEDANA" run process --no-server --out "$BATS_TEST_TMPDIR/o.txt" -- sh -c 'echo to-file'
	assert_success
	assert_file_contains "$BATS_TEST_TMPDIR/o.txt" "to-file"
	run "$CEDANA" run process --no-server no-such-command-xyz
	assert_failure 1
	assert_output "Error: command not found: no-such-command-xyz"
}
