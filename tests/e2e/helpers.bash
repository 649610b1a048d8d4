# Shared setup for end-to-end tests: each test gets its own socket, DB and
# config directory, and a daemon started on demand is stopped in teardown.
load '/usr/lib/bats/bats-support/load'
load '/usr/lib/bats/bats-assert/load'
load '/usr/lib/bats/bats-file/load'

: "${CEDANA:=$BATS_TEST_DIRNAME/../../build/src/cedana}"
WORKLOADS="$BATS_TEST_DIRNAME/../workloads"
