# Lazy restore (docs/engine.md, "Lazy restore"): the tree runs before its
# private anonymous memory is filled; a server answers its faults and a
# background pass fills the rest, checking each page file's checksum.
load helpers

setup() { engine_setup; }
teardown() { engine_teardown; }

lazy_roundtrip() {
	local name=$1
	shift
	start_wl "$WL_DIR/$name" ${WL_ARGS:-}
	RESTORE_FLAGS="--lazy $*" dump_restore
	[ "$status" -eq 0 ] || cat "$LOG" >&2
	assert_success
	run grep -E '^(PASS|FAIL)' "$LOG"
	assert_output "PASS"
}

@test "lazy: wl-memory (random pages checked one by one, a child sharing pages) → PASS" {
	WL_ARGS=64 lazy_roundtrip wl-memory
}

@test "lazy: a corrupt page file is found by the background pass, the tree killed and the error reported" {
	start_wl "$WL_DIR/wl-memory" 64
	run "$ENGINE" dump "$WL_PID" "$IMG"
	assert_success
	wait "$WL_PID" 2>/dev/null || true
	WL_PID=
	# flip one byte near the end of the largest page file
	local f
	f=$(ls -S "$IMG"/pages-*.img | head -1)
	local size
	size=$(stat -c %s "$f")
	printf '\xa5' | dd of="$f" bs=1 seek=$((size - 100)) conv=notrunc status=none
	run timeout 60 "$ENGINE" restore "$IMG" --stdout "$LOG" --stderr "$LOG" \
		--pid-file "$T/restored.pid" --lazy
	# the tree ran (lazily) and was killed by the server: never a PASS
	echo "$output"
	[[ "$output" == *"checksum mismatch"* ]]
	[[ "$output" == *"lazy restore: the tree was killed"* ]]
	[ "$status" -ne 0 ]
	run grep -E '^PASS' "$LOG"
	assert_failure
}

@test "lazy: fork, MADV_DONTNEED, munmap and mremap while the pass runs → PASS" {
	# the pass takes over a second (64 chunks, 20 ms each): the trigger
	# (0.5 s) comes while most of the memory is still missing
	CEDANA_ENGINE_FAULT=lazy-slow WL_ARGS=256 lazy_roundtrip wl-lazy-fork
}

@test "lazy: a read error in the pass is reported and the tree killed" {
	start_wl "$WL_DIR/wl-memory" 64
	run "$ENGINE" dump "$WL_PID" "$IMG"
	assert_success
	wait "$WL_PID" 2>/dev/null || true
	WL_PID=
	CEDANA_ENGINE_FAULT=lazy-read run timeout 60 "$ENGINE" restore "$IMG" --stdout "$LOG" \
		--stderr "$LOG" --pid-file "$T/restored.pid" --lazy
	echo "$output"
	[[ "$output" == *"injected fault lazy-read"* ]]
	[[ "$output" == *"lazy restore: the tree was killed"* ]]
	[ "$status" -eq 137 ]
	run grep -E '^PASS' "$LOG"
	assert_failure
}

@test "lazy: the page file cut short during the pass (read from its mapping) is reported and the tree killed" {
	start_wl "$WL_DIR/wl-lazy-fork" 256
	run "$ENGINE" dump "$WL_PID" "$IMG"
	assert_success
	wait "$WL_PID" 2>/dev/null || true
	WL_PID=
	local f pid
	f=$(ls -S "$IMG"/pages-*.img | head -1)
	# the pass takes over a second (64 chunks, 20 ms each): cut once the
	# tree runs, while the pass reads
	CEDANA_ENGINE_FAULT=lazy-slow "$ENGINE" restore "$IMG" --stdout "$LOG" --stderr "$LOG" \
		--pid-file "$T/restored.pid" --lazy --detach 2>"$T/err"
	pid=$(cat "$T/restored.pid")
	truncate -s $(($(stat -c %s "$f") / 4)) "$f"
	for _ in $(seq 300); do
		grep -q "tree was killed" "$T/err" && break
		sleep 0.1
	done
	cat "$T/err" >&2
	run grep -E "cut short|UFFDIO_COPY" "$T/err"
	assert_success
	for _ in $(seq 50); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	run kill -0 "$pid"
	assert_failure
	run grep -E '^PASS' "$LOG"
	assert_failure
}

@test "lazy: an image dumped over streams is refused by name before any task is made" {
	start_wl "$WL_DIR/wl-memory" 64
	run "$ENGINE" dump "$WL_PID" "$IMG" --streams 2 --codec lz4
	assert_success
	wait "$WL_PID" 2>/dev/null || true
	WL_PID=
	local before
	before=$(wc -l <"$LOG")
	run timeout 60 "$ENGINE" restore "$IMG" --stdout "$LOG" --stderr "$LOG" \
		--pid-file "$T/restored.pid" --lazy
	assert_failure
	assert_output --partial "--lazy: the image's pages are in streams"
	# refused before the tree was made: nothing of it ran or wrote
	[ "$(wc -l <"$LOG")" -eq "$before" ]
	[ ! -s "$T/restored.pid" ]
	# and without --lazy it restores
	RESTORE_FLAGS= run timeout 120 "$ENGINE" restore "$IMG" --stdout "$LOG" --stderr "$LOG" \
		--pid-file "$T/restored.pid" --detach
	assert_success
}
