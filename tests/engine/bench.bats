#!/usr/bin/env bats
# The benchmark's smoke test: BENCH_QUICK=1 bench/run (256 MiB of random
# memory, dumped and restored once) writes every figure, every ceiling and
# every ratio, and the restored process found its memory intact. No speed
# is asserted (bench/README.md). The ASan pass skips it (Makefile).
load helpers

setup() { engine_setup; }
teardown() { engine_teardown; }

@test "bench: BENCH_QUICK=1 bench/run measures a dump and a restore next to the ceilings" {
	run env BENCH_QUICK=1 BENCH_DIR="$T" BENCH_JSON="$T/results.json" BUILD_DIR="$BUILD_DIR" \
		"$BATS_TEST_DIRNAME/../../bench/run"
	echo "$output"
	assert_success
	assert_output --partial "random 256 MiB"
	run python3 - "$T/results.json" <<-'PY'
		import json, sys
		r = json.load(open(sys.argv[1]))
		c = r["ceilings"]
		for k in ("memcpy_mibs", "first_touch_mibs", "write_buffered_mibs",
		          "write_direct_mibs", "read_buffered_mibs", "read_fresh_mibs", "read_direct_mibs",
		          "restore_bound_mibs"):
		    assert c[k] > 0, k
		# a restore reads what a dump wrote with O_DIRECT: that read bounds it
		assert c["restore_bound_mibs"] == min(c["first_touch_mibs"], c["read_fresh_mibs"]), c
		# one set of ceilings, at the one workload's size, bounds it
		assert list(r["ceilings_by_mib"]) == ["256"] and c["size_mib"] == 256, r["baseline_mib"]
		[w] = r["workloads"]
		assert w["restore_bound_mibs"] == c["restore_bound_mibs"], w
		assert w["dump_bound_mibs"] == c["write_direct_mibs"], w
		assert (w["mib"], w["contents"], w["mode"]) == (256, "random", "single"), w
		for k in ("resident_mib", "image_mib", "dump_s", "dump_mibs", "dump_peak_rss_mib",
		          "restore_s", "restore_mibs", "restore_peak_rss_mib", "restored_resident_mib"):
		    assert w[k] > 0, k
		assert w["dump_stages"]["total_s"] > 0 and w["restore_stages"]["total_s"] > 0, w
		ratios = [k for k in w if "ratio" in k]
		assert len(ratios) >= 4 and all(w[k] > 0 for k in ratios), ratios
		# random pages: the whole process is resident and in the image
		assert w["resident_mib"] >= 250 and w["image_mib"] >= 250, w
		assert w["verified"] is True and w["rounds_failed"] == 0, w
		assert r["rounds"][0]["verified_members"] == 1 and r["ok"] is True
		print("ok", {k: w[k] for k in ratios})
	PY
	echo "$output"
	assert_success
}

# Each workload is bounded by the ceilings measured at its own size: the
# first read of a file slows as it grows (1.0 GiB/s at 1 GiB, 0.6 at 4 GiB
# here), so a 256 MiB restore held to the 4 GiB read would look better
# than it is. report.py alone, on made-up ceilings and rounds.
@test "bench: report.py bounds each workload by the ceilings of its size" {
	python3 - "$T" <<-'PY'
		import json, sys
		t = sys.argv[1]
		def base(mib, gibs):
		    return {"size_mib": mib, "cpus": 2, "memcpy_gibs": 10, "first_touch_gibs": gibs,
		            "write_buffered_gibs": gibs, "write_direct_gibs": gibs / 2,
		            "read_buffered_gibs": 2 * gibs, "read_fresh_gibs": gibs / 4,
		            "read_direct_gibs": gibs}
		def round_(mib, image_mib, contents):
		    return {"mib": mib, "contents": contents, "mode": "single", "round": 1,
		            "resident_kib": mib * 1024, "image_bytes": image_mib << 20,
		            "dump_ns": 10**9, "restore_ns": 10**9, "restore_cmd_ns": 10**9,
		            "dump_rss_kib": 13000, "restore_rss_kib": 13000,
		            "restored_resident_kib": mib * 1024, "dump_stats": {}, "restore_stats": {},
		            "cold": True, "members": 1, "verified_members": 1}
		with open(f"{t}/b.jsonl", "w") as f:
		    for mib, gibs in ((256, 4.0), (4096, 2.0)):
		        f.write(json.dumps(base(mib, gibs)) + "\n")
		with open(f"{t}/r.jsonl", "w") as f:
		    # a 4 GiB process whose image is 300 MiB (compressed)
		    for mib, image, contents in ((256, 256, "random"), (4096, 4096, "random"),
		                                 (4096, 300, "mix")):
		        f.write(json.dumps(round_(mib, image, contents)) + "\n")
		PY
	run python3 "$BATS_TEST_DIRNAME/../../bench/report.py" "$T/b.jsonl" "$T/r.jsonl" \
		"$T/out.json" ext4 final
	echo "$output"
	assert_success
	assert_output --partial "ceilings at 256 MiB"
	assert_output --partial "ceilings at 4096 MiB"
	run python3 - "$T/out.json" <<-'PY'
		import json, sys
		r = json.load(open(sys.argv[1]))
		# MiB/s: first touch 4096 at 256 MiB, 2048 at 4 GiB; first read a quarter
		by = {(w["mib"], w["image_mib"]): w for w in r["workloads"]}
		w = by[(256, 256)]
		assert (w["restore_bound_mibs"], w["dump_bound_mibs"]) == (1024, 2048), w
		assert w["restore_ratio_bound"] == 0.25, w
		w = by[(4096, 4096)]
		assert (w["restore_bound_mibs"], w["dump_bound_mibs"]) == (512, 1024), w
		# the 300 MiB image is read and written at 256 MiB's rates, its
		# 4 GiB touched at 4 GiB's
		w = by[(4096, 300)]
		assert (w["restore_bound_mibs"], w["dump_bound_mibs"]) == (1024, 2048), w
		assert w["ceilings_mib"] == [4096, 256], w
		assert r["ceilings"]["size_mib"] == 4096 and set(r["ceilings_by_mib"]) == {"256", "4096"}
	PY
	echo "$output"
	assert_success
}
