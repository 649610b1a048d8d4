#!/usr/bin/env bats
# Parallel streams (docs/engine.md, "Parallel streams"): page data over N
# files per task, each with its own codec; the restore finds the layout in
# the manifest, and a damaged or missing stream is refused before any
# restored task runs.
load helpers

setup() { engine_setup; }
teardown() { engine_teardown; }

# roundtrip CODEC: wl-memory (a child sharing memory, random, zero and text
# pages) dumped over 3 streams with CODEC, restored, checked by itself.
roundtrip() {
	start_wl "$WL_DIR/wl-memory" 48
	dump_restore --streams 3 --codec "$1"
	[ "$status" -eq 0 ] || cat "$LOG" >&2
	assert_success
	run grep -E '^(PASS|FAIL)' "$LOG"
	assert_output "PASS"
}

# streamed_image CODEC: a dump of wl-memory over 3 streams, the tree gone.
streamed_image() {
	start_wl "$WL_DIR/wl-memory" 48
	run "$ENGINE" dump "$WL_PID" "$IMG" --streams 3 --codec "$1"
	assert_success
	wait "$WL_PID" 2>/dev/null || true
	WL_PID=
	# the layout is in the manifest, the plain page files are not there
	run jq -c .pages "$IMG/manifest.json"
	assert_output "{\"streams\":3,\"codec\":\"$1\"}"
	root=$(jq -r .root "$IMG/manifest.json")
	[ -f "$IMG/pages-$root.2.img" ]
	[ ! -e "$IMG/pages-$root.img" ]
}

# refused_before_run: the restore fails naming $1 and no task of the image
# ever ran (wl-memory prints nothing after the trigger unless it runs).
refused_before_run() {
	: >"$LOG"
	touch "$TRIGGER"
	run timeout 60 "$ENGINE" restore "$IMG" --stdout "$LOG" --stderr "$LOG"
	assert_failure
	[[ "$output" =~ $1 ]] || { echo "$output" >&2; false; }
	sleep 0.3
	run cat "$LOG"
	assert_output ""
}

@test "streams: 3 streams, no codec: roundtrip" { roundtrip none; }
@test "streams: 3 streams, lz4: roundtrip" { roundtrip lz4; }
@test "streams: 3 streams, zstd: roundtrip" { roundtrip zstd; }

@test "streams: 2 streams, lz4, --leave-running: roundtrip" {
	start_wl "$WL_DIR/wl-memory" 48
	dump_restore --streams 2 --codec lz4 --leave-running
	assert_success
	run grep -E '^(PASS|FAIL)' "$LOG"
	assert_output "PASS"
}

@test "streams: lz4 never makes the image bigger than its page data (random pages stored as they are)" {
	streamed_image lz4
	# wl-memory's 48 MiB of random data: stored (not grown past a page a chunk)
	size=$(cat "$IMG"/pages-*.img | wc -c)
	data=$(jq '[.tasks[].pages_size] | add' "$IMG/manifest.json")
	[ "$size" -le $((data + data / 256 + 65536)) ]
}

@test "streams: a corrupt lz4 stream is refused before any task runs" {
	streamed_image lz4
	# one byte inside the first record's data of stream 1 (past its header page)
	printf '\x5a' | dd of="$IMG/pages-$root.1.img" bs=1 seek=4196 conv=notrunc status=none
	refused_before_run 'corrupt image'
}

@test "streams: a corrupt uncompressed stream is refused before any task runs" {
	streamed_image none
	printf '\x5a' | dd of="$IMG/pages-$root.0.img" bs=1 seek=5000 conv=notrunc status=none
	refused_before_run 'checksum mismatch'
}

@test "streams: a missing stream file is refused before any task runs" {
	streamed_image zstd
	rm "$IMG/pages-$root.2.img"
	refused_before_run "pages-$root.2.img"
}

# The record index (docs/image-format.md, `pages`): pages-PID.idx, one
# u32 a chunk after a 32-byte header, written with the streams when they
# have a codec; the restore knows each record's place from it.
# index_roundtrip CODEC: wl-memory over 3 streams with CODEC, its record
# index checked (0600, the header, one entry a chunk), restored, checked by
# itself.
index_roundtrip() {
	start_wl "$WL_DIR/wl-memory" 48
	dump_restore --streams 3 --codec "$1"
	[ "$status" -eq 0 ] || cat "$LOG" >&2
	assert_success
	run grep -E '^(PASS|FAIL)' "$LOG"
	assert_output "PASS"
	local pid idx size n
	for pid in $(jq -r '.tasks[] | select(.pages_size > 0) | .pid' "$IMG/manifest.json"); do
		idx="$IMG/pages-$pid.idx"
		[ "$(stat -c %a "$idx")" = 600 ]
		size=$(jq -r ".tasks[] | select(.pid == $pid) | .pages_size" "$IMG/manifest.json")
		n=$(((size + 2097151) / 2097152))
		[ "$(stat -c %s "$idx")" -eq $((32 + 4 * n)) ]
		# magic "CDPI", version 1, 3 streams, the codec; the size, the count
		[ "$(od -An -tu4 -N16 "$idx" | xargs)" = "1229997123 1 3 $2" ]
		[ "$(od -An -tu8 -j16 -N16 "$idx" | xargs)" = "$size $n" ]
	done
}

@test "streams: an lz4 dump writes a record index (0600, an entry a chunk) and restores through it" {
	index_roundtrip lz4 1
}

@test "streams: a zstd dump writes a record index (0600, an entry a chunk) and restores through it" {
	index_roundtrip zstd 2
}

@test "streams: no record index without a codec" {
	streamed_image none
	run ls "$IMG"
	refute_output --partial ".idx"
}

# corrupt_index HOW: wl-memory over 3 lz4 streams, its root's index damaged
# (python3 HOW on the bytes b, b2 the result), refused before any task runs.
corrupt_index() {
	streamed_image lz4
	python3 - "$IMG/pages-$root.idx" "$1" <<-'PY'
	import struct, sys
	path, how = sys.argv[1], sys.argv[2]
	b = bytearray(open(path, "rb").read())
	exec(how)
	open(path, "wb").write(b)
	PY
	refused_before_run "pages-$root.idx.*corrupt image"
}

@test "streams: a truncated record index is refused before any task runs" {
	corrupt_index 'del b[-4:]'
}

@test "streams: a record index with a wrong chunk count is refused before any task runs" {
	corrupt_index 'b[24] ^= 1'
}

@test "streams: a record index with a wrong magic is refused before any task runs" {
	corrupt_index 'b[0] ^= 1'
}

@test "streams: a record index whose records do not add up to a stream file is refused before any task runs" {
	# chunk 0 an lz4 record a page short of its chunk (a valid entry):
	# stream 0's records no longer add up to its file
	corrupt_index 'struct.pack_into("<I", b, 32, 0x011ff000)'
}

@test "streams: a record index with a codec not the image's is refused before any task runs" {
	corrupt_index 'b[35] = 2'
}

# An index that adds up (two entries of one stream swapped) but lies about
# where records are: each record's header is checked against it when read.
@test "streams: a record index that lies about its records is refused like a bad header" {
	bench_mem_image mix 64 --streams 2 --codec lz4
	root=$(jq -r .root "$IMG/manifest.json")
	python3 - "$IMG/pages-$root.idx" <<-'PY'
	import struct, sys
	b = bytearray(open(sys.argv[1], "rb").read())
	n = struct.unpack_from("<Q", b, 24)[0]
	e = [struct.unpack_from("<I", b, 32 + 4 * k)[0] for k in range(n)]
	# the first entry of stream 0 that differs from chunk 0's
	j = next(k for k in range(2, n, 2) if e[k] != e[0])
	struct.pack_into("<I", b, 32, e[j])
	struct.pack_into("<I", b, 32 + 4 * j, e[0])
	open(sys.argv[1], "wb").write(b)
	PY
	: >"$T/resumed"
	run timeout 60 "$ENGINE" restore "$IMG" --stdin /dev/null --stdout "$LOG" --stderr "$LOG"
	assert_failure
	[[ "$output" =~ "bad record at".*"corrupt image" ]] || { echo "$output" >&2; false; }
	run cat "$T/resumed"
	assert_output ""
}

# no_index_roundtrip CODEC: as an image written before the index, which
# the restore walks header by header.
no_index_roundtrip() {
	start_wl "$WL_DIR/wl-memory" 48
	run "$ENGINE" dump "$WL_PID" "$IMG" --streams 3 --codec "$1"
	assert_success
	wait "$WL_PID" 2>/dev/null || true
	WL_PID=
	rm "$IMG"/pages-*.idx
	trigger_when_restored
	run timeout 60 "$ENGINE" restore "$IMG" --stdout "$LOG" --stderr "$LOG" \
		--pid-file "$T/restored.pid"
	[ "$status" -eq 0 ] || cat "$LOG" >&2
	assert_success
	run grep -E '^(PASS|FAIL)' "$LOG"
	assert_output "PASS"
}

@test "streams: an lz4 image without its record index (older images) still restores" {
	no_index_roundtrip lz4
}

@test "streams: a zstd image without its record index (older images) still restores" {
	no_index_roundtrip zstd
}

@test "streams: out-of-range stream counts and codecs are refused before the tree is touched" {
	start_wl "$WL_DIR/wl-memory" 8
	run "$ENGINE" dump "$WL_PID" "$IMG" --streams 17
	assert_failure
	[[ "$output" =~ "streams 17 out of range" ]]
	[ ! -e "$IMG/manifest.json" ]
	kill -0 "$WL_PID"
	touch "$TRIGGER"
	wait "$WL_PID"
}

@test "streams: an incremental dump over streams restores through its parent" {
	start_wl "$WL_DIR/wl-incr" 16
	mkfifo "$T/in"
	"$ENGINE" dump "$WL_PID" "$T/img1" --leave-running --streams 2 --codec lz4 \
		--then "$T/img2" <"$T/in" >"$T/out" 2>"$T/err" &
	driver=$!
	exec 7>"$T/in"
	for _ in $(seq 1 3000); do grep -q "incremental 0" "$T/out" && break; sleep 0.01; done
	kill -USR1 "$WL_PID"
	for _ in $(seq 1 3000); do grep -q "^CHANGED 1$" "$LOG" && break; sleep 0.01; done
	echo next >&7
	exec 7>&-
	wait "$driver"
	run grep "dumped $T/img2 incremental 1" "$T/out"
	assert_success
	run jq -c .pages "$T/img2/manifest.json"
	assert_output '{"streams":2,"codec":"lz4"}'
	kill_tree "$WL_PID"
	wait "$WL_PID" 2>/dev/null || true
	WL_PID=
	( sleep 0.5; touch "$TRIGGER" ) &
	run timeout 60 "$ENGINE" restore "$T/img2" --stdout "$LOG" --stderr "$LOG"
	[ "$status" -eq 0 ] || cat "$LOG" >&2
	assert_success
	run grep -E '^(PASS|FAIL)' "$LOG"
	assert_output "PASS"
}

# The restore decodes each chunk once, into the new task's premapped
# memory: neither the controller nor the task holds a decoded copy of the
# image. 256 MiB of bench-mem's mix (about 180 MiB of page data, lz4 to
# about a third). Before, both held all of it: controller peak 257 MiB,
# task peak 255 MiB above its memory once running; after, 15 MiB and 7 MiB.
# Bounds: the docs' 64 MiB plus 1 % of the image above the task's memory,
# and that plus 32 MiB (its own code and image) for the controller.
@test "streams: a 256 MiB lz4 restore keeps no decoded copy of the image (peak RSS bounded)" {
	bench_mem_image mix 256 --streams 2 --codec lz4
	run /usr/bin/time -f "%M" -o "$T/rss" timeout 120 "$ENGINE" restore "$IMG" \
		--stdin /dev/null --stdout "$LOG" --stderr "$LOG" --detach \
		--pid-file "$T/restored.pid"
	assert_success
	pid=$(cat "$T/restored.pid")
	for _ in $(seq 1 1200); do grep -q '^verified' "$T/resumed" 2>/dev/null && break; sleep 0.05; done
	run grep '^verified' "$T/resumed"
	assert_output "verified ok"
	hwm=$(awk '/^VmHWM/ { print $2 }' "/proc/$pid/status")
	rss=$(awk '/^VmRSS/ { print $2 }' "/proc/$pid/status")
	ctl=$(tail -1 "$T/rss")
	echo "controller peak ${ctl} KiB, task peak ${hwm} KiB, now ${rss} KiB" >&2
	[ $((hwm - rss)) -lt $(((64 + 3) * 1024)) ]
	[ "$ctl" -lt $(((64 + 3 + 32) * 1024)) ]
}

# An incremental restore reads what the child did not change from its
# parent, a run of the parent's page file at a time (parent.c). bench-mem's
# 256 MiB of random pages are one run in the first dump and, unchanged,
# one run of src 4 in the second: the restore asks for all 256 MiB of the
# parent at once. Over streams, the reader decodes what it is asked for
# into a window, so before the controller held a 256 MiB copy (peak about
# 270 MiB); read a chunk at a time, it holds one. Bound: as above.
@test "streams: an incremental lz4 restore reads its parent's 256 MiB run in pieces (peak RSS bounded)" {
	bench_mem_start random 256
	mkfifo "$T/in"
	"$ENGINE" dump "$WL_PID" "$T/img1" --leave-running --streams 2 --codec lz4 \
		--then "$T/img2" <"$T/in" >"$T/out" 2>"$T/err" &
	driver=$!
	exec 7>"$T/in"
	for _ in $(seq 1 6000); do grep -q "incremental 0" "$T/out" && break; sleep 0.05; done
	# it saw the dump's gap and checked its memory: not in the middle of
	# that (its report file open) when dumped again
	for _ in $(seq 1 1200); do grep -aq '^verified' "$T/resumed" && break; sleep 0.05; done
	echo next >&7
	exec 7>&-
	wait "$driver"
	run grep "dumped $T/img2 incremental 1" "$T/out"
	assert_success
	# the 256 MiB are the parent's: one run of src 4 here
	run jq '[.tasks[].vmas[].runs[] | select(.[2] == 4) | .[1]] | max' "$T/img2/manifest.json"
	[ "$output" -ge 65536 ] || { cat "$T/img2/manifest.json" >&2; false; }
	kill -9 "$WL_PID"
	wait "$WL_PID" 2>/dev/null || true
	WL_PID=
	: >"$T/resumed"
	run /usr/bin/time -f "%M" -o "$T/rss" timeout 120 "$ENGINE" restore "$T/img2" \
		--stdin /dev/null --stdout "$LOG" --stderr "$LOG" --detach \
		--pid-file "$T/restored.pid"
	assert_success
	for _ in $(seq 1 1200); do grep -aq '^verified' "$T/resumed" && break; sleep 0.05; done
	run grep -a '^verified' "$T/resumed"
	assert_output "verified ok"
	ctl=$(tail -1 "$T/rss")
	echo "controller peak ${ctl} KiB" >&2
	[ "$ctl" -lt $(((64 + 3 + 32) * 1024)) ]
}

# Chunks that lie in their stream as they are (every chunk with no codec;
# with lz4, through the record index, the records stored as they are, as
# random memory's are) are read straight into the new task's memory by the
# task itself, in steps shared with a controller thread, as a plain page
# file is (docs/engine.md, "Stored records read in place"). Before, the
# controller read every chunk and wrote it in with process_vm_writev: the
# task read nothing. The task's own read count (/proc/PID/io rchar) tells.
# read_in_place STREAMS CODEC
read_in_place() {
	bench_mem_image random 256 --streams "$1" --codec "$2"
	run timeout 120 "$ENGINE" restore "$IMG" --stdin /dev/null --stdout "$LOG" --stderr "$LOG" \
		--detach --pid-file "$T/restored.pid"
	assert_success
	pid=$(cat "$T/restored.pid")
	rchar=$(awk '/^rchar/ { print $2 }' "/proc/$pid/io")
	syscr=$(awk '/^syscr/ { print $2 }' "/proc/$pid/io")
	echo "the task read $rchar bytes in $syscr calls" >&2
	[ "$rchar" -ge $((4 << 20)) ]
	# one read a chunk, a record's header with its chunk (rec_read_joined):
	# the header read on its own cost an I/O a chunk (256 MiB, 1 lz4 stream:
	# 194 calls for 94 chunks before, 86 for 80 after)
	[ "$syscr" -le $((rchar / (2 << 20) + 16)) ]
	for _ in $(seq 1 1200); do grep -q '^verified' "$T/resumed" 2>/dev/null && break; sleep 0.05; done
	run grep '^verified' "$T/resumed"
	assert_output "verified ok"
	kill -9 "$pid"
}

@test "streams: lz4 records stored as they are are read by the task itself, each with its header in one call (rchar, syscr), memory verified" {
	read_in_place 1 lz4
	root=$(jq -r .root "$IMG/manifest.json")
	[ -f "$IMG/pages-$root.idx" ]
}

@test "streams: uncompressed streams are read by the task itself, a call a chunk (rchar, syscr), memory verified" {
	read_in_place 2 none
}
