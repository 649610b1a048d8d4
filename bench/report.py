#!/usr/bin/env python3
"""bench/run's second half: medians of the rounds, each throughput next to the
ceiling that bounds it, a table on the terminal and the JSON file.

    report.py BASELINE.json ROUNDS.jsonl OUT.json FSTYPE final|partial

Exits 1 when a round failed or a restored process found its memory wrong."""
import json
import os
import statistics
import sys
import time

MIB = 1024 * 1024


def median(rounds, key):
    return statistics.median(r[key] for r in rounds)


def ceilings(base):
    """MiB/s; restore_bound is min(first touch, first read of an O_DIRECT
    file): a restore reads the page files the dump wrote with O_DIRECT and
    writes them into fresh pages, and cannot beat the slower. (The cold read
    of a buffered-written file can come from the host's cache on a VM.)"""
    c = {k.replace("_gibs", "_mibs"): round(v * 1024, 1) for k, v in base.items()
         if k.endswith("_gibs")}
    c["restore_bound_mibs"] = min(c["first_touch_mibs"], c["read_fresh_mibs"])
    return c


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


def summarize(name, rounds, ceil):
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
    w.update({
        "resident_mib": round(resident, 1),
        "image_mib": round(image, 1),
        "image_size_ratio": round(image / resident, 3),
        "dump_s": round(dump_s, 3),
        "dump_mibs": round(resident / dump_s, 1),
        "dump_ratio_write_direct": round(resident / dump_s / ceil["write_direct_mibs"], 3),
        "dump_peak_rss_mib": round(median(ok, "dump_rss_kib") / 1024, 1),
        "dump_peak_rss_ratio_resident": round(median(ok, "dump_rss_kib") / 1024 / resident, 3),
        "restore_s": round(restore_s, 3),
        "restore_cmd_s": round(median(ok, "restore_cmd_ns") / 1e9, 3),
        "restore_mibs": round(resident / restore_s, 1),
        "restore_ratio_bound": round(resident / restore_s / ceil["restore_bound_mibs"], 3),
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


def table(ceil, work):
    print(f"ceilings (MiB/s): memcpy {ceil['memcpy_mibs']:.0f}, "
          f"first touch {ceil['first_touch_mibs']:.0f}, "
          f"write buffered+fsync {ceil['write_buffered_mibs']:.0f}, "
          f"write O_DIRECT {ceil['write_direct_mibs']:.0f}, "
          f"read cold {ceil['read_buffered_mibs']:.0f}, "
          f"first read of an O_DIRECT file {ceil['read_fresh_mibs']:.0f}, "
          f"read O_DIRECT {ceil['read_direct_mibs']:.0f}")
    print("dump bound: write O_DIRECT; restore bound: min(first touch, first read) = "
          f"{ceil['restore_bound_mibs']:.0f} MiB/s; MiB = resident memory (Pss)")
    head = (f"{'workload':<26}{'resident':>9}{'image':>8}{'dump s':>8}{'MiB/s':>7}{'/bound':>7}"
            f"{'RSS':>6}{'restore s':>10}{'MiB/s':>7}{'/bound':>7}{'RSS':>6}{'after':>7}  ok")
    print(head)
    print("-" * len(head))
    for w in work:
        if "resident_mib" not in w:
            print(f"{w['name']:<26}  all {w['rounds_run']} rounds failed")
            continue
        print(f"{w['name']:<26}{w['resident_mib']:>9.0f}{w['image_mib']:>8.0f}"
              f"{w['dump_s']:>8.2f}{w['dump_mibs']:>7.0f}{w['dump_ratio_write_direct']:>7.2f}"
              f"{w['dump_peak_rss_mib']:>6.0f}{w['restore_s']:>10.2f}{w['restore_mibs']:>7.0f}"
              f"{w['restore_ratio_bound']:>7.2f}{w['restore_peak_rss_mib']:>6.0f}"
              f"{w['restored_resident_mib']:>7.0f}  {'yes' if w['verified'] else 'NO'}")


def stage_table(work):
    """Where the time went, by the engine's own clock (dump, then restore)."""
    print("engine stages, s (dump | restore):")
    for w in work:
        parts = []
        for key in ("dump_stages", "restore_stages"):
            parts.append(" ".join(f"{n[:-2]} {v:.2f}" for n, v in w.get(key, {}).items()
                                  if n.endswith("_s") and n != "total_s"))
        print(f"  {w['name']:<26}{parts[0]} | {parts[1]}")


def main():
    base_path, rounds_path, out, fstype = sys.argv[1:5]
    partial = sys.argv[5] == "partial"
    with open(base_path) as f:
        base = json.load(f)
    with open(rounds_path) as f:
        rounds = [json.loads(line) for line in f if line.strip()]
    ceil = ceilings(base)
    groups = {}
    for r in rounds:
        name = f"{r['contents']} {r['mib']} MiB" + ("" if r["mode"] == "single" else
                                                    f" {r['mode']}")
        groups.setdefault(name, []).append(r)
    work = [summarize(name, rs, ceil) for name, rs in groups.items()]
    table(ceil, work)
    stage_table(work)
    result = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "kernel": os.uname().release,
                    "image_fstype": fstype},
        "tool": "tests/engine/cedana-engine (the engine's driver)",
        "baseline_mib": base["size_mib"],
        "ceilings": ceil,
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
