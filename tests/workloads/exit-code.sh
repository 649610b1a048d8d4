#!/bin/sh
# Exits with CODE (default 0) after SECONDS (default 0), to check that exit
# codes pass through cedana unchanged.
code=${1:-0}
seconds=${2:-0}
[ "$seconds" -gt 0 ] && sleep "$seconds"
echo "exiting with $code"
exit "$code"
