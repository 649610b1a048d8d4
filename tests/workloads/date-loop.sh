#!/bin/sh
# Prints the date every second. With COUNT, stops after COUNT lines and exits
# with CODE (default 0); without, runs until killed.
count=${1:-0}
code=${2:-0}
i=0
while [ "$count" -eq 0 ] || [ "$i" -lt "$count" ]; do
	date
	i=$((i + 1))
	[ "$count" -ne 0 ] && [ "$i" -ge "$count" ] && break
	sleep 1
done
exit "$code"
