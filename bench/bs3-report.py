#!/usr/bin/env python3
"""bench/bs3-report.py - the report of bench/bs3 (BS3 vs s3backer vs the
S3 server's limit, one guest boot).

  bench/bs3-report.py OUTDIR

Reads OUTDIR/bs3-results.json (written in the guest by bench/bs3-guest.sh)
and OUTDIR/server-cpu.txt ("PHASE_ID NAME CPU_SECONDS" lines, sampled on the
host by bench/bs3 at each phase boundary), writes OUTDIR/bs3-bench.md (the
tables), OUTDIR/bs3-bench.json (the records with the server's CPU time and
the ratios) and OUTDIR/bs3-bench.gp, the gnuplot script for
OUTDIR/bs3-bench.png (drawn when gnuplot is installed).
"""
import json
import os
import shutil
import subprocess
import sys

MiB = 2**20
# workload: (label, kind, goal vs s3backer, goal vs the server's PUT at 32)
WORKLOADS = {
    "randwrite": ("4 KiB random write, qd32, flush every 1 s", "rate", 10, 0.5),
    "seqwrite": ("1 MiB sequential write, qd8, + flush", "rate", 3, 0.7),
    "seqread": ("1 MiB sequential read, qd8", "rate", None, None),
    "randread-cold": ("4 KiB random read, qd32, cold", "rate", 2, None),
    "randread-warm": ("4 KiB random read, qd32, warm", "rate", 10, None),
    "mkfs": ("mkfs.ext4 of 16 GiB", "time", 3, None),
    "copy": ("source tree copy onto ext4 + sync", "time", 3, None),
}
BS3 = ("bs3", "bs3-cache")
S3B = ("s3b-4k", "s3b-256k")


def load(outdir):
    recs = json.load(open(os.path.join(outdir, "bs3-results.json")))
    cpu = {}
    try:
        for line in open(os.path.join(outdir, "server-cpu.txt")):
            f = line.split()
            if len(f) >= 3:
                cpu[int(f[0])] = float(f[-1])
    except OSError:
        pass
    for r in recs:
        a, b = cpu.get(r["phase_start"]), cpu.get(r["phase_end"])
        r["server_cpu_s"] = round(b - a, 2) if a is not None and b is not None else None
    return recs


def find(recs, system, workload):
    for r in recs:
        if r["system"] == system and r["workload"] == workload and r["value"] is not None:
            return r
    return None


def better(recs, systems, workload, kind):
    """The better of SYSTEMS on WORKLOAD: (record, system) or (None, None)."""
    best = None
    for s in systems:
        r = find(recs, s, workload)
        if r is None:
            continue
        if best is None or (r["value"] < best["value"] if kind == "time" else r["value"] > best["value"]):
            best = r
    return best


def fmt(r, kind):
    if r is None:
        return "failed / not run"
    if kind == "time":
        return f"{r['value']:.1f} s"
    if r["unit"] == "B/s":
        return f"{r['value'] / MiB:.1f} MiB/s"
    return f"{r['value']:.0f} IOPS ({r['value'] * 4096 / MiB:.1f} MiB/s)"


def speedup(a, b, kind):
    """How many times A is better than B."""
    if a is None or b is None or not a["value"] or not b["value"]:
        return None
    return b["value"] / a["value"] if kind == "time" else a["value"] / b["value"]


def bytes_per_s(r):
    if r is None:
        return None
    return r["value"] if r["unit"] == "B/s" else r["value"] * 4096


def engine_table(outdir):
    """BS3's own counters over each workload (bs3-engine.json), as lines."""
    try:
        snaps = json.load(open(os.path.join(outdir, "bs3-engine.json")))
    except (OSError, ValueError):
        return []
    start, rows = {}, []
    for e in snaps:
        key = (e["system"], e["workload"])
        if e["when"] == "start":
            start[key] = e["stats"]
        elif e["stats"] and start.get(key):
            a, b = start[key], e["stats"]
            d = {k: b.get(k, 0) - a.get(k, 0) for k in ("uploads", "upload_bytes", "retries", "reads_memory", "cache_hits",
                                          "cache_misses", "bytes_stored", "gc_rewritten")}
            # what each PUT carried (headers included), not the volume's net growth
            fill = d["upload_bytes"] / d["uploads"] / MiB if d["uploads"] > 0 and d["upload_bytes"] > 0 else None
            look = d["cache_hits"] + d["cache_misses"]
            rows.append(f"| {key[0]} | {WORKLOADS.get(key[1], (key[1],))[0]} | {d['uploads']} | "
                        + (f"{fill:.2f}" if fill is not None else "-")
                        + f" | {d['retries']} | {d['reads_memory']} | "
                        + (f"{d['cache_hits'] / look:.2f} of {look}" if look else "-")
                        + f" | {d['gc_rewritten']} |")
    if not rows:
        return []
    return ["", "### BS3's own counters over each workload", "",
            "| system | workload | objects stored | MiB per object | S3 retries | reads from unstored data "
            "| cache hit rate | GC rewrites |", "|---|---|---|---|---|---|---|---|"] + rows


def main():
    outdir = sys.argv[1]
    recs = load(outdir)
    srv = {r["workload"]: r for r in recs if r["system"] == "server"}
    put32 = srv.get("put-qd32", {}).get("value")
    md = ["### The server's limit, from the guest (build/s3bench)", "",
          "| in flight | PUT 4 MiB objects | GET 4 MiB objects |", "|---|---|---|"]
    for j in (1, 8, 32):
        p, g = srv.get(f"put-qd{j}", {}), srv.get(f"get-qd{j}", {})
        md.append(f"| {j} | {p.get('value') or '-'} MB/s | {g.get('value') or '-'} MB/s |")
    rg = srv.get("range4k-qd32", {}).get("value")
    md += ["", f"4 KiB ranged GETs at 32 in flight: {rg:.0f} GETs/s." if rg else
           "4 KiB ranged GETs: not measured.", ""]

    md += ["### BS3 and s3backer, same workloads, same boot", "",
           "| workload | BS3 | BS3 + cache | s3backer (better of 4 KiB / 256 KiB blocks) "
           "| better BS3 / better s3backer (goal) | better BS3 / server PUT at 32 (goal) |",
           "|---|---|---|---|---|---|"]
    summary = []
    for w, (label, kind, goal_s3b, goal_srv) in WORKLOADS.items():
        b = find(recs, "bs3", w)
        bc = find(recs, "bs3-cache", w)
        bb = better(recs, BS3, w, kind)
        sb = better(recs, S3B, w, kind)
        x = speedup(bb, sb, kind)
        ratio = "-" if x is None else f"{x:.1f}×"
        if goal_s3b and x is not None:
            ratio += f" ({'met' if x >= goal_s3b else 'missed'}: ≥{goal_s3b}×)"
        vs = "-"
        frac = None
        if goal_srv and bb is not None and put32:
            frac = bytes_per_s(bb) / (put32 * 1e6)
            vs = f"{frac:.2f} ({'met' if frac >= goal_srv else 'missed'}: ≥{goal_srv})"
        which = f" [{sb['system']}]" if sb else ""
        md.append(f"| {label} | {fmt(b, kind)} | {fmt(bc, kind)} | {fmt(sb, kind)}{which} | {ratio} | {vs} |")
        summary.append({"workload": w, "label": label, "kind": kind,
                        "bs3": b and b["value"], "bs3_cache": bc and bc["value"],
                        "bs3_better": bb and bb["system"],
                        "s3backer": sb and sb["value"], "s3backer_system": sb and sb["system"],
                        "bs3_over_s3backer": x, "goal_over_s3backer": goal_s3b,
                        "bs3_over_server_put32": frac, "goal_over_server": goal_srv})

    md += ["", "### CPU seconds per MiB moved on the device (guest / server)", "",
           "| workload | " + " | ".join(BS3 + S3B) + " |", "|---|" + "---|" * len(BS3 + S3B)]
    for w, (label, _, _, _) in WORKLOADS.items():
        cells = []
        for s in BS3 + S3B:
            r = find(recs, s, w)
            if r is None or not r["bytes"]:
                cells.append("-")
                continue
            m = r["bytes"] / MiB
            sc = r.get("server_cpu_s")
            cells.append(f"{r['guest_cpu_s'] / m:.3f} / " + (f"{sc / m:.3f}" if sc is not None else "-"))
        md.append(f"| {label} | " + " | ".join(cells) + " |")
    md += engine_table(outdir)
    md += ["", "s3backer per workload: " + ", ".join(
        f"{w}: " + " / ".join(fmt(find(recs, s, w), WORKLOADS[w][1]) for s in S3B)
        for w in WORKLOADS) + " (4 KiB / 256 KiB blocks)."]
    fails = [f"{r['system']} {r['workload']}" + (f" ({r['note']})" if r.get("note") else "")
             for r in recs if r["value"] is None and r["system"] != "server"]
    if fails:
        md += ["", "Failed or not measured: " + ", ".join(fails) + "."]
    open(os.path.join(outdir, "bs3-bench.md"), "w").write("\n".join(md) + "\n")
    json.dump({"records": recs, "summary": summary}, open(os.path.join(outdir, "bs3-bench.json"), "w"), indent=1)

    dat = os.path.join(outdir, "bs3-bench.dat")
    with open(dat, "w") as f:
        for s in summary:
            f.write(f"\"{s['workload']}\" {s['bs3_over_s3backer'] or 0:.3f} {s['goal_over_s3backer'] or 0}\n")
    gp = os.path.join(outdir, "bs3-bench.gp")
    png = os.path.join(outdir, "bs3-bench.png")
    open(gp, "w").write("\n".join([
        "set terminal pngcairo noenhanced size 1000,500 font 'sans,10'",
        f"set output '{png}'",
        "set title 'BS3 / s3backer (times better; goal as a line); same guest boot'",
        "set style data histograms", "set style fill solid 0.8", "set boxwidth 0.8",
        "set logscale y", "set yrange [0.1:*]", "set grid ytics", "set xtics rotate by -20",
        f"plot '{dat}' using 2:xtic(1) title 'BS3 / s3backer', '' using 0:($3 > 0 ? $3 : 1/0) "
        "with points pt 7 ps 1.5 title 'goal'", ""]))
    if shutil.which("gnuplot"):
        subprocess.run(["gnuplot", gp], check=False)
    print("\n".join(md))


if __name__ == "__main__":
    main()
