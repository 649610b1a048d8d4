#!/usr/bin/env bash
# The README's quick start, run end to end against a private daemon.
set -euo pipefail
cedana=${1:-build/src/cedana}
"$cedana" --version
