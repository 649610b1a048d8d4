#!/usr/bin/env bats
# GPU jobs (docs/gpu.md). The end-to-end check needs an NVIDIA GPU and runs
# scripts/gpu-check.sh; on a machine without one (CI) it is skipped with
# that reason, and what can be checked without a driver is.
load helpers

has_gpu() {
	command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1 &&
		ls /dev/nvidia[0-9]* >/dev/null 2>&1
}

has_libcuda() {
	ldconfig -p 2>/dev/null | grep -q 'libcuda\.so\.1 '
}

@test "gpu: scripts/gpu-check.sh passes end to end (2 GiB) on a machine with a GPU" {
	has_gpu || skip "no NVIDIA GPU on this machine: scripts/gpu-check.sh runs on one (docs/gpu.md)"
	run timeout 600 env CEDANA="$CEDANA" GPU_CHECK_SIZES=2 "$BATS_TEST_DIRNAME/../../scripts/gpu-check.sh"
	assert_success
	assert_output --partial "RESULT: PASS"
}

@test "gpu: without a GPU, scripts/gpu-check.sh says why it skips and exits 0" {
	has_gpu && skip "this machine has a GPU: the check above runs instead"
	run env CEDANA="$CEDANA" "$BATS_TEST_DIRNAME/../../scripts/gpu-check.sh"
	assert_success
	assert_output --regexp "^SKIP: no (NVIDIA GPU here|/dev/nvidia\* device)"
}

@test "gpu: without a driver the plugin is loaded and says so: plugin list, features, check" {
	has_libcuda && skip "this machine has libcuda.so.1"
	use_private_env
	run "$CEDANA" plugin list
	assert_success
	assert_line --regexp '^gpu +[0-9.]+ +unavailable +no driver$'
	run "$CEDANA" features
	assert_success
	assert_line --regexp '^gpu +• *$'
	run "$CEDANA" check
	assert_line --regexp '^ok +gpu: no driver$'
}
