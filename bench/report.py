#!/usr/bin/env python3
"""bench/run's second half: medians of the rounds, each throughput next to the
ceiling that bounds it, a table on the terminal and the JSON file.

    report.py BASELINES.jsonl ROUNDS.jsonl OUT.json FSTYPE final|partial

BASELINES.jsonl holds one set of ceilings per I/O size (bench/baseline -j):
each workload is bounded by the set measured at its own size.

Exits 1 when a round failed or a restored process found its memory wrong."""
import json
import math
import os
import statistics
import sys
import time

MIB = 1024 * 1024


def median(rounds, key):
    return statistics.median(r[key] for r in rounds)


def ceilings(base):
    """MiB/s, one set of the baseline at its size; restore_bound is
    min(first touch, first read of an O_DIRECT file): a restore reads the
    page files the dump wrote with O_DIRECT and writes them into fresh
    pages, and cannot beat the slower. (The cold read of a buffered-written
    file can come from the host's cache on a VM.)"""
    c = {k.replace("_gibs", "_mibs"): round(v * 1024, 1) for k, v in base.items()
         if k.endswith("_gibs")}
    c["size_mib"] = base["size_mib"]
    c["restore_bound_mibs"] = min(c["first_touch_mibs"], c["read_fresh_mibs"])
    return c


def ceiling_for(ceils, mib):
    """The set measured at the size nearest mib MiB (by ratio): the first
    read of a file, and first touch, slow as they grow."""
    return min(ceils, key=lambda c: abs(math.log(c["size_mib"] / max(mib, 1))))


def bounds(ceils, resident, image):
    """A workload's bounds, MiB/s: the dump writes the image; the restore
    writes resident MiB into fresh pages and reads the image."""
    touch = ceiling_for(ceils, resident)
    disk = ceiling_for(ceils, image)
    return {"dump_bound_mibs": disk["write_direct_mibs"],
            "restore_bound_mibs": min(touch["first_touch_mibs"], disk["read_fresh_mibs"]),
            "ceilings_mib": [touch["size_mib"], disk["size_mib"]]}


def stages(rounds, key):
    """The engine's own split of the time (the driver's --timings), medians:
    seconds for the *_ns stats, counts for the rest."""
    out = {}
    for n in rounds[0].get(key, {}):
        m = statistics.median(r[key][n] for r in rounds)
        if n.endswith("_ns"):
            out[n[:-3] + "_s"] = round(m / 1e9, 3)
        else:
            out[n] = int(m)
    return out


def summarize(name, rounds, ceils):
    ok = [r for r in rounds if not r.get("failed")]
    first = rounds[0]
    w = {"name": name, "mib": first["mib"], "contents": first["contents"],
         "mode": first["mode"], "rounds_run": len(rounds), "rounds_failed": len(rounds) - len(ok)}
    if not ok:
        w["verified"] = False
        return w
    resident = median(ok, "resident_kib") / 1024
    dump_s = median(ok, "dump_ns") / 1e9
    restore_s = median(ok, "restore_ns") / 1e9
    image = median(ok, "image_bytes") / MIB
    b = bounds(ceils, resident, image)
    w.update(b)
    w.update({
        "resident_mib": round(resident, 1),
        "image_mib": round(image, 1),
        "image_size_ratio": round(image / resident, 3),
        "dump_s": round(dump_s, 3),
        "dump_mibs": round(resident / dump_s, 1),
        "dump_ratio_write_direct": round(resident / dump_s / b["dump_bound_mibs"], 3),
        "dump_peak_rss_mib": round(median(ok, "dump_rss_kib") / 1024, 1),
        "dump_peak_rss_ratio_resident": round(median(ok, "dump_rss_kib") / 1024 / resident, 3),
        "restore_s": round(restore_s, 3),
        "restore_cmd_s": round(median(ok, "restore_cmd_ns") / 1e9, 3),
        "restore_mibs": round(resident / restore_s, 1),
        "restore_ratio_bound": round(resident / restore_s / b["restore_bound_mibs"], 3),
        "restore_peak_rss_mib": round(median(ok, "restore_rss_kib") / 1024, 1),
        "restore_peak_rss_ratio_resident":
            round(median(ok, "restore_rss_kib") / 1024 / resident, 3),
        "restored_resident_mib": round(median(ok, "restored_resident_kib") / 1024, 1),
        "restored_resident_ratio": round(median(ok, "restored_resident_kib") / 1024 / resident, 3),
        "dump_stages": stages(ok, "dump_stats"),
        "restore_stages": stages(ok, "restore_stats"),
        "cache_dropped": all(r["cold"] for r in ok),
        "verified": len(ok) == len(rounds) and all(
            r["verified_members"] == r["members"] for r in ok),
    })
    return w


def table(ceils, work):
    for c in ceils:
        print(f"ceilings at {c['size_mib']} MiB (MiB/s): memcpy {c['memcpy_mibs']:.0f}, "
              f"first touch {c['first_touch_mibs']:.0f}, "
              f"write buffered+fsync {c['write_buffered_mibs']:.0f}, "
              f"write O_DIRECT {c['write_direct_mibs']:.0f}, "
              f"read cold {c['read_buffered_mibs']:.0f}, "
              f"first read of an O_DIRECT file {c['read_fresh_mibs']:.0f}, "
              f"read O_DIRECT {c['read_direct_mibs']:.0f}")
    print("dump bound: write O_DIRECT at the image's size; restore bound: min(first touch at "
          "the resident size, first read at the image's) (bound columns, MiB/s); "
          "MiB = resident memory (Pss)")
    head = (f"{'workload':<30}{'resident':>9}{'image':>7}{'dump s':>7}{'MiB/s':>6}{'bound':>6}"
            f"{'ratio':>6}{'RSS':>5}{'restore s':>10}{'MiB/s':>6}{'bound':>6}{'ratio':>6}"
            f"{'RSS':>5}{'after':>6}  ok")
    print(head)
    print("-" * len(head))
    for w in work:
        if "resident_mib" not in w:
            print(f"{w['name']:<30}  all {w['rounds_run']} rounds failed")
            continue
        print(f"{w['name']:<30}{w['resident_mib']:>9.0f}{w['image_mib']:>7.0f}"
              f"{w['dump_s']:>7.2f}{w['dump_mibs']:>6.0f}{w['dump_bound_mibs']:>6.0f}"
              f"{w['dump_ratio_write_direct']:>6.2f}{w['dump_peak_rss_mib']:>5.0f}"
              f"{w['restore_s']:>10.2f}{w['restore_mibs']:>6.0f}{w['restore_bound_mibs']:>6.0f}"
              f"{w['restore_ratio_bound']:>6.2f}{w['restore_peak_rss_mib']:>5.0f}"
              f"{w['restored_resident_mib']:>6.0f}  {'yes' if w['verified'] else 'NO'}")


def stage_table(work):
    """Where the time went, by the engine's own clock (dump, then restore)."""
    print("engine stages, s (dump | restore):")
    for w in work:
        parts = []
        for key in ("dump_stages", "restore_stages"):
            parts.append(" ".join(f"{n[:-2]} {v:.2f}" for n, v in w.get(key, {}).items()
                                  if n.endswith("_s") and n != "total_s"))
        print(f"  {w['name']:<30}{parts[0]} | {parts[1]}")


def main():
    base_path, rounds_path, out, fstype = sys.argv[1:5]
    partial = sys.argv[5] == "partial"
    with open(base_path) as f:
        ceils = [ceilings(json.loads(line)) for line in f if line.strip()]
    with open(rounds_path) as f:
        rounds = [json.loads(line) for line in f if line.strip()]
    groups = {}
    for r in rounds:
        name = f"{r['contents']} {r['mib']} MiB" + ("" if r["mode"] == "single" else
                                                    f" {r['mode']}")
        groups.setdefault(name, []).append(r)
    work = [summarize(name, rs, ceils) for name, rs in groups.items()]
    table(ceils, work)
    stage_table(work)
    result = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "kernel": os.uname().release,
                    "image_fstype": fstype},
        "tool": "tests/engine/cedana-engine (the engine's driver)",
        "baseline_mib": [c["size_mib"] for c in ceils],
        # the largest size's set, and every set
        "ceilings": max(ceils, key=lambda c: c["size_mib"]),
        "ceilings_by_mib": {str(c["size_mib"]): c for c in ceils},
        "workloads": work,
        "rounds": rounds,
        "partial": partial,
        "ok": bool(work) and not partial and all(w.get("verified") for w in work),
    }
    with open(out, "w") as f:
        json.dump(result, f, indent=1)
        f.write("\n")
    print(f"results: {out}")
    if partial:
        print("bench/run: stopped early: the table holds the rounds done", file=sys.stderr)
    elif not result["ok"]:
        print("bench/run: a round failed or a restored process found its memory wrong",
              file=sys.stderr)
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
