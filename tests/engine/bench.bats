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
		[w] = r["workloads"]
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
