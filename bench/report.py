#!/usr/bin/python3
"""bench/report.py - turn BUSE benchmark runs into results.json, Markdown
and a chart.

  report.py collect DIR
      (in the guest, from bench/guest-bench.sh; the host can rerun it)
      read DIR/raw/ (fio JSON per run, manifest.tsv, ...) and DIR/host.json
      (written by bench/run) and write DIR/results.json.

  report.py render RESULTS.json [--md FILE] [--dat FILE] [--gp FILE]
                                [--png FILE] [--note TEXT]...
      print the Markdown report (and write it to --md), and write the chart
      data and the gnuplot script that draws --png (bench/run runs gnuplot).

Standard library only: it runs with the guest's /usr/bin/python3.
"""

import argparse
import datetime
import json
import os
import platform
import sys

SCHEMA = 1
REFERENCE = "null_blk"

# Goals (docs/performance.md): (system, workload, metric, compared with
# (system, or (system, workload)), factor, "min" or "max").  Round 1 set the
# first block; issue 13 ("performance, round 2") the rest.
FOUR_K = ("randread-4k-qd32", "randwrite-4k-qd32")
LARGE = ("read-1m-qd8", "write-1m-qd8")
EVERY = FOUR_K + LARGE + ("randread-4k-qd1",)


def _head(wl):
    """The headline metric of a workload, with its goal direction."""
    if wl.endswith("qd1") or "-qd1-" in wl:
        return "lat_mean_us", "max"
    return ("iops" if "-4k-" in wl else "mib_s"), "min"


def _same_as(system, other, factor, workloads):
    """system at least factor × other on each workload's headline metric."""
    out = []
    for wl in workloads:
        key, kind = _head(wl)
        out.append((system, wl, key, other, factor if kind == "min" else 1 / factor, kind))
    return out


GOALS = [
    ("buse-null", "randread-4k-qd32", "iops", "null_blk", 0.30, "min"),
    ("buse-null", "randread-4k-qd32", "iops", "nbd-null", 3.0, "min"),
    ("buse-null", "randwrite-4k-qd32", "iops", "null_blk", 0.30, "min"),
    ("buse-null", "randwrite-4k-qd32", "iops", "nbd-null", 3.0, "min"),
    ("buse-null", "write-1m-qd8", "mib_s", "null_blk", 0.40, "min"),
    ("buse-null", "write-1m-qd8", "mib_s", "nbd-null", 7.0, "min"),
    # Round 2.
    ("buse-null", "read-1m-qd8", "mib_s", "null_blk", 0.60, "min"),
    ("buse-null", "write-1m-qd8", "mib_s", "null_blk", 0.60, "min"),
    ("buse-null", "randread-4k-qd1", "lat_mean_us", "null_blk", 8.0, "max"),
    ("buse-null-pollcpu", "randread-4k-qd1-cpu0", "lat_mean_us", "null_blk", 4.0, "max"),
] + _same_as("buse-ram", "buse-null", 0.8, EVERY) \
  + _same_as("buse-null-wb", "buse-null", 1.0, EVERY) \
  + _same_as("buse-ram-wb", "buse-ram", 1.0, EVERY) \
  + _same_as("buse-file-brd", "loop-brd", 0.8, FOUR_K + LARGE) \
  + [
    # Issue 9: retaining writes for 200 ms (a log sized for it) costs at
    # most 10% against the same driver doing the same persisting work in
    # its callback and releasing at once.
    ("buse-testdrv-retain-log128m", "randwrite-4k-qd32", "iops", "buse-testdrv-wb-sync", 0.9, "min"),
    ("buse-testdrv-retain-log128m", "write-1m-qd8", "mib_s", "buse-testdrv-wb-sync", 0.9, "min"),
]

METRICS = [
    # key, heading, higher is better
    ("iops", "IOPS", True),
    ("mib_s", "MiB/s", True),
    ("lat_mean_us", "mean lat (µs)", False),
    ("lat_p99_us", "p99 lat (µs)", False),
]


# --- collect -----------------------------------------------------------------
def read_tsv(path):
    rows = []
    if not os.path.exists(path):
        return rows
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if line:
                rows.append(line.split("\t"))
    return rows


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def mem_total_mib():
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) // 1024
    except OSError:
        pass
    return None


def fio_metrics(path):
    """The figures of one fio run (group_reporting: one job entry)."""
    with open(path) as f:
        d = json.load(f)
    j = d["jobs"][0]
    rd, wr = j["read"], j["write"]
    main = rd if rd["total_ios"] >= wr["total_ios"] else wr
    lat = main["lat_ns"]
    pct = lat.get("percentile", {})

    def p(key):
        v = pct.get(key)
        return v / 1e3 if v is not None else None

    return {
        "iops": rd["iops"] + wr["iops"],
        "mib_s": (rd["bw_bytes"] + wr["bw_bytes"]) / 2**20,
        "lat_mean_us": lat["mean"] / 1e3,
        "lat_p50_us": p("50.000000"),
        "lat_p99_us": p("99.000000"),
        "lat_p999_us": p("99.900000"),
        "lat_max_us": lat["max"] / 1e3,
        "clat_mean_us": main["clat_ns"]["mean"] / 1e3,
        "slat_mean_us": main["slat_ns"]["mean"] / 1e3,
        "fio_usr_cpu_pct": j.get("usr_cpu"),
        "fio_sys_cpu_pct": j.get("sys_cpu"),
        "fio_ctx": j.get("ctx"),
        "fio_error": j.get("error", 0),
        "fio_version": d.get("fio version"),
    }


def collect(outdir):
    raw = os.path.join(outdir, "raw")
    cfg = {k: v for k, v in (r[:2] for r in read_tsv(os.path.join(raw, "config.tsv")) if len(r) >= 2)}
    nproc = int(cfg.get("nproc", os.cpu_count() or 1))
    hz = os.sysconf("SC_CLK_TCK")

    def rows(name):
        p = os.path.join(raw, name)
        if not os.path.exists(p):
            return []
        with open(p) as f:
            return [line.rstrip("\n").split("|") for line in f if line.strip()]

    systems = []
    status = {r[0]: r for r in read_tsv(os.path.join(raw, "system-status.tsv"))}
    for r in rows("systems.txt"):
        name, kind, args, store, label = (r + [""] * 5)[:5]
        s = {"name": name, "kind": kind, "args": args,
             "prefilled": store == "1", "label": label}
        st = status.get(name)
        if st is None:
            s["status"] = "not run"
        else:
            s["status"] = st[1]
            if st[1] != "ok" and len(st) > 2 and st[2]:
                try:
                    with open(os.path.join(raw, st[2])) as f:
                        s["error"] = f.read()[-2000:]
                except OSError:
                    pass
        info = os.path.join(raw, name + ".info.json")
        if os.path.exists(info):
            try:
                with open(info) as f:
                    s["buse_info"] = json.load(f)
            except (OSError, ValueError):
                pass
        systems.append(s)

    workloads = []
    for r in rows("workloads.txt"):
        name, rw, bs, qd, jobs, label = (r + [""] * 6)[:6]
        workloads.append({"name": name, "rw": rw, "bs": bs, "iodepth": int(qd),
                          "jobs": jobs, "label": label})

    results, scaling = [], []
    for r in read_tsv(os.path.join(raw, "manifest.tsv")):
        r = (r + [""] * 14)[:14]
        (kind, system, workload, asked, queues, jobs, st, fjson, busy, total,
         sticks, elapsed, sys_cs, srv_cs) = r
        e = {"system": system, "workload": workload,
             "queues_requested": int(asked) if asked.isdigit() else None,
             "queues": int(queues) if queues.isdigit() else None,
             "jobs": int(jobs) if jobs.isdigit() else None,
             "status": "ok" if st == "ok" else st}
        if st == "ok":
            try:
                e.update(fio_metrics(os.path.join(raw, fjson)))
            except (OSError, ValueError, KeyError, IndexError) as ex:
                e["status"] = "unreadable fio output: %s" % ex
        elif fjson:
            errf = os.path.join(raw, fjson[:-len(".json")] + ".err")
            if os.path.exists(errf):
                with open(errf) as f:
                    e["error"] = f.read()[-2000:]
        try:
            busy, total, el = int(busy), int(total), float(elapsed)
            if total > 0:
                e["cpu_busy_pct"] = 100.0 * busy / total
                if e.get("iops"):
                    e["cpu_us_per_io"] = busy / total * nproc * 1e6 / e["iops"]
            if el > 0 and int(sticks) > 0:
                e["server_cpu_pct"] = 100.0 * int(sticks) / hz / el
        except ValueError:
            pass
        # Context switches per I/O, over the whole fio run (I/Os estimated
        # as IOPS x (ramp + runtime)).
        try:
            ios = e.get("iops", 0) * (int(cfg.get("runtime", 0)) + int(cfg.get("ramp", 0)))
            if ios > 0:
                e["ctxsw_per_io"] = int(sys_cs) / ios
                if int(srv_cs) > 0:
                    e["server_ctxsw_per_io"] = int(srv_cs) / ios
        except ValueError:
            pass
        (scaling if kind == "scaling" else results).append(e)

    # The guest's own description; else (collect rerun on the host) this
    # machine's, which is then not the guest.
    mach = {k: v for k, v in (r[:2] for r in read_tsv(os.path.join(raw, "machine.tsv")) if len(r) >= 2)}
    guest = {
        "nproc": int(mach["nproc"]) if "nproc" in mach else nproc,
        "kernel": mach.get("kernel") or platform.release(),
        "cpu_model": mach.get("cpu_model") or cpu_model(),
        "mem_mib": int(mach["mem_mib"]) if "mem_mib" in mach else mem_total_mib(),
    }

    host = {}
    hp = os.path.join(outdir, "host.json")
    if os.path.exists(hp):
        with open(hp) as f:
            host = json.load(f)

    perf = {}
    pdir = os.path.join(outdir, "perf")
    if os.path.isdir(pdir):
        perf = {"files": sorted(os.listdir(pdir))}

    out = {
        "schema": SCHEMA,
        "generated": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": {
            "guest": dict(guest, accel=host.get("accel", "tcg")),
            "host": host.get("host", {}),
        },
        "build": host.get("build", {}),
        "config": {
            "runtime_s": int(cfg.get("runtime", 0) or 0),
            "ramp_s": int(cfg.get("ramp", 0) or 0),
            "size": cfg.get("size"),
            "queues": int(cfg.get("queues", nproc) or nproc),
            "fio": cfg.get("fio"),
            "nbdkit": cfg.get("nbdkit"),
            "started": cfg.get("started"),
            "finished": cfg.get("finished"),
            "command": host.get("command"),
            "fio_common": "--ioengine=io_uring --direct=1 --time_based --ramp_time --runtime "
                          "--norandommap --randrepeat=0 --lat_percentiles=1 --group_reporting; "
                          "jobs>1: --cpus_allowed=0-(N-1) --cpus_allowed_policy=split",
        },
        "reference": REFERENCE,
        "systems": systems,
        "workloads": workloads,
        "results": results,
        "scaling": scaling,
        "perf": perf,
    }
    path = os.path.join(outdir, "results.json")
    with open(path + ".tmp", "w") as f:
        json.dump(out, f, indent=1, sort_keys=False)
        f.write("\n")
    os.replace(path + ".tmp", path)
    return 0


# --- render ------------------------------------------------------------------
def fmt_num(v, key):
    if v is None:
        return "–"
    if key == "iops":
        return "%.1fk" % (v / 1e3) if v >= 1e3 else "%.0f" % v
    if key == "mib_s":
        return "%.0f" % v if v >= 100 else "%.1f" % v
    # latencies in µs
    if v >= 1000:
        return "%.0f" % v
    return "%.1f" % v if v >= 10 else "%.2f" % v


def fmt_ratio(r):
    if r is None:
        return ""
    return "%.2f×" % r if r < 10 else "%.1f×" % r


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def index(results):
    return {(e["system"], e["workload"]): e for e in results if e.get("status") == "ok"}


def render(res, notes):
    out = []
    w = out.append
    m = res["machine"]
    g, h = m.get("guest", {}), m.get("host", {})
    cfg = res["config"]
    ref = res.get("reference", REFERENCE)
    idx = index(res["results"])
    systems = [s for s in res["systems"]]
    wls = res["workloads"]
    sysnames = [s["name"] for s in systems]

    w("## BUSE benchmark, %s" % (cfg.get("started") or res.get("generated")))
    w("")
    w("Guest: %s vCPU (%s, %s), %s MiB, kernel %s.  Host: %s, %s cores, QEMU %s."
      % (g.get("nproc"), g.get("cpu_model"), "QEMU accel=" + str(g.get("accel")),
         g.get("mem_mib"), g.get("kernel"), h.get("cpu_model", "?"),
         h.get("nproc", "?"), h.get("qemu", "?")))
    b = res.get("build", {})
    if b:
        w("Build: %s%s." % (b.get("commit", "?"), " (uncommitted changes in %s)" % b["dirty"] if b.get("dirty") else ""))
    w("fio %s, io_uring, O_DIRECT, %s s per run after %s s ramp, device size %s, %s hardware queues; "
      "ratios are to %s measured in the same boot."
      % ((cfg.get("fio") or "?").replace("fio-", ""), cfg.get("runtime_s"), cfg.get("ramp_s"),
         cfg.get("size"), cfg.get("queues"), ref))
    w("")

    w("| system | description |")
    w("|---|---|")
    for s in systems:
        st = "" if s.get("status") == "ok" else " **(%s)**" % s.get("status")
        w("| %s | %s%s |" % (s["name"], s.get("label", ""), st))
    w("")

    w("| workload | system | IOPS | MiB/s | mean lat (µs) | p99 lat (µs) |")
    w("|---|---|--:|--:|--:|--:|")
    for wl in wls:
        base = idx.get((ref, wl["name"]))
        for sn in sysnames:
            e = idx.get((sn, wl["name"]))
            cells = []
            if e is None:
                failed = [x for x in res["results"] if x["system"] == sn and x["workload"] == wl["name"]]
                why = failed[0]["status"] if failed else "not run"
                cells = ["(%s)" % why, "", "", ""]
            else:
                for key, _, _ in METRICS:
                    v = e.get(key)
                    r = ratio(v, base.get(key)) if base and sn != ref else None
                    c = fmt_num(v, key)
                    if r is not None:
                        c += " (%s)" % fmt_ratio(r)
                    cells.append(c)
            w("| %s | %s | %s |" % (wl["name"], sn, " | ".join(cells)))
    w("")

    # Summary: the headline figure of each workload, as a ratio.
    head = {}
    for wl in wls:
        if wl["iodepth"] == 1:
            head[wl["name"]] = ("lat_mean_us", "mean lat")
        elif wl["bs"].lower() in ("4k", "512", "1k", "2k", "8k"):
            head[wl["name"]] = ("iops", "IOPS")
        else:
            head[wl["name"]] = ("mib_s", "MiB/s")
    if ref in sysnames:
        w("Headline figure of each workload relative to %s (IOPS for 4k at depth, MiB/s for 1 MiB, "
          "mean latency for iodepth 1: there, lower is better):" % ref)
        w("")
        w("| system | " + " | ".join("%s (%s)" % (wl["name"], head[wl["name"]][1]) for wl in wls) + " |")
        w("|---|" + "--:|" * len(wls))
        for sn in sysnames:
            cells = []
            for wl in wls:
                key = head[wl["name"]][0]
                e, base = idx.get((sn, wl["name"])), idx.get((ref, wl["name"]))
                r = ratio(e.get(key), base.get(key)) if e and base else None
                cells.append(fmt_ratio(r) if r is not None else "–")
            w("| %s | %s |" % (sn, " | ".join(cells)))
        w("")

    # Goals: those whose systems were both in this run.
    goals = [g for g in GOALS if g[0] in sysnames and g[3] in sysnames]
    if goals:
        w("Goals (%s = met):" % "yes")
        w("")
        w("| goal | measured | met |")
        w("|---|--:|:-:|")
        names = dict((k, h) for k, h, _ in METRICS)
        for sysn, wl, key, other, factor, kind in goals:
            e, o = idx.get((sysn, wl)), idx.get((other, wl))
            goal = "%s %s %s %s %s× %s" % (sysn, wl, names[key], "≥" if kind == "min" else "≤",
                                         "%.3g" % factor, other)
            r = ratio(e.get(key), o.get(key)) if e and o else None
            if r is None:
                w("| %s | not measured | – |" % goal)
                continue
            ok = r >= factor if kind == "min" else r <= factor
            w("| %s | %s | %s |" % (goal, fmt_ratio(r), "yes" if ok else "**no**"))
        w("")

    sc = [e for e in res.get("scaling", [])]
    if sc:
        w("Queue scaling: %s, %s, %s fio jobs (one per vCPU) at iodepth 32 each, for every queue count:"
          % (sc[0]["system"], sc[0]["workload"], sc[0].get("jobs")))
        w("")
        w("| queues asked | queues accepted | IOPS | mean lat (µs) | p99 lat (µs) | vs 1 queue "
          "| CPU µs/IO | ctx sw/IO |")
        w("|--:|--:|--:|--:|--:|--:|--:|--:|")
        one = next((e for e in sc if e.get("queues") == 1 and e.get("status") == "ok"), None)
        for e in sc:
            if e.get("status") != "ok":
                w("| %s | %s | (%s) | | | | | |" % (e.get("queues_requested"), e.get("queues"), e.get("status")))
                continue
            r = ratio(e.get("iops"), one.get("iops")) if one else None
            w("| %s | %s | %s | %s | %s | %s | %s | %s |" % (
                e.get("queues_requested") or "?", e.get("queues"), fmt_num(e["iops"], "iops"),
                fmt_num(e.get("lat_mean_us"), "lat"), fmt_num(e.get("lat_p99_us"), "lat"),
                fmt_ratio(r), fmt_num(e.get("cpu_us_per_io"), "lat"),
                "%.2f" % e["ctxsw_per_io"] if e.get("ctxsw_per_io") is not None else "–"))
        w("")

    # CPU cost, for the analysis.
    w("<details><summary>CPU per I/O (all vCPUs busy time / IOPS) and server CPU</summary>")
    w("")
    w("| workload | system | CPU µs per I/O | guest CPU busy | server process CPU (% of one vCPU) "
      "| context switches per I/O | of which server |")
    w("|---|---|--:|--:|--:|--:|--:|")
    for wl in wls:
        for sn in sysnames:
            e = idx.get((sn, wl["name"]))
            if not e:
                continue
            w("| %s | %s | %s | %s | %s | %s | %s |" % (
                wl["name"], sn, fmt_num(e.get("cpu_us_per_io"), "lat"),
                "%.0f%%" % e["cpu_busy_pct"] if e.get("cpu_busy_pct") is not None else "–",
                "%.0f%%" % e["server_cpu_pct"] if e.get("server_cpu_pct") is not None else "–",
                "%.2f" % e["ctxsw_per_io"] if e.get("ctxsw_per_io") is not None else "–",
                "%.2f" % e["server_ctxsw_per_io"] if e.get("server_ctxsw_per_io") is not None else "–"))
    w("")
    w("</details>")
    w("")

    bad = [e for e in res["results"] + sc if e.get("status") != "ok"]
    failed_sys = [s for s in systems if s.get("status") not in ("ok",)]
    if bad or failed_sys or notes:
        w("Notes:")
        w("")
        for s in failed_sys:
            err = (s.get("error") or "").strip().splitlines()
            w("- system %s: %s%s" % (s["name"], s.get("status"), (": " + err[-1]) if err else ""))
        for e in bad:
            err = (e.get("error") or "").strip().splitlines()
            w("- %s / %s: %s%s" % (e["system"], e["workload"], e["status"], (": " + err[-1]) if err else ""))
        for n in notes:
            w("- %s" % n)
        w("")
    return "\n".join(out)


def chart(res, dat, gp, png):
    """Three panels: throughput relative to the reference, iodepth-1 latency,
    queue scaling."""
    ref = res.get("reference", REFERENCE)
    idx = index(res["results"])
    sysnames = [s["name"] for s in res["systems"]]
    wls = res["workloads"]
    tput = [wl for wl in wls if wl["iodepth"] > 1]
    lat = [wl for wl in wls if wl["iodepth"] == 1]

    def key_of(wl):
        return "iops" if wl["bs"].lower() in ("4k", "512", "1k", "2k", "8k") else "mib_s"

    lines = ["# block 0: throughput as %% of %s; columns: workload then one per system" % ref]
    lines.append("workload " + " ".join(sysnames))
    for wl in tput:
        base = idx.get((ref, wl["name"]))
        vals = []
        for sn in sysnames:
            e = idx.get((sn, wl["name"]))
            r = ratio(e.get(key_of(wl)), base.get(key_of(wl))) if e and base else None
            vals.append("%.2f" % (100 * r) if r is not None else "NaN")
        lines.append("%s %s" % (wl["name"], " ".join(vals)))
    lines += ["", "", "# block 1: iodepth-1 latency in µs (mean, p99)"]
    lines.append("metric " + " ".join(sysnames))
    for wl in lat:
        for key, label in (("lat_mean_us", "mean"), ("lat_p99_us", "p99")):
            vals = []
            for sn in sysnames:
                e = idx.get((sn, wl["name"]))
                v = e.get(key) if e else None
                vals.append("%.1f" % v if v is not None else "NaN")
            lines.append("%s-%s %s" % (wl["name"].replace("randread-4k-", ""), label, " ".join(vals)))
    lines += ["", "", "# block 2: queue scaling: asked(accepted) kIOPS"]
    for e in res.get("scaling", []):
        if e.get("status") == "ok":
            lines.append("%s(%s) %.2f" % (e.get("queues_requested") or e.get("queues"), e.get("queues"), e["iops"] / 1e3))
    with open(dat, "w") as f:
        f.write("\n".join(lines) + "\n")

    n = len(sysnames)
    cfg = res["config"]
    title = "BUSE benchmark %s — %s vCPU QEMU/%s, %ss + %ss ramp" % (
        (cfg.get("started") or "")[:10], res["machine"]["guest"].get("nproc"),
        res["machine"]["guest"].get("accel"), cfg.get("runtime_s"), cfg.get("ramp_s"))
    has_scaling = any(e.get("status") == "ok" for e in res.get("scaling", []))
    g = []
    g.append("set terminal pngcairo noenhanced size 1500,560 font 'sans,10'")
    g.append("set output '%s'" % png)
    g.append("set multiplot layout 1,%d title \"%s\"" % (3 if has_scaling else 2, title))
    g.append("set style data histogram")
    g.append("set style histogram cluster gap 1")
    g.append("set style fill solid 0.85 border -1")
    g.append("set boxwidth 0.9")
    g.append("set grid ytics")
    g.append("set key below font ',8' maxrows 2")
    g.append("set xtics rotate by -25 font ',8'")
    g.append("set ylabel 'throughput, %% of %s (IOPS for 4k, MiB/s for 1 MiB)'" % ref)
    g.append("set title 'Throughput relative to %s'" % ref)
    g.append("set yrange [0:*]")
    g.append("plot for [i=2:%d] '%s' index 0 using i:xtic(1) title columnheader(i)" % (n + 1, dat))
    g.append("set ylabel 'latency, µs (lower is better)'")
    g.append("set title '4k random read, iodepth 1'")
    g.append("set logscale y")
    g.append("set yrange [*:*]")
    g.append("unset key")
    g.append("plot for [i=2:%d] '%s' index 1 using i:xtic(1) title columnheader(i)" % (n + 1, dat))
    g.append("unset logscale y")
    if has_scaling:
        sc = res["scaling"][0]
        g.append("set yrange [0:*]")
        g.append("set ylabel 'kIOPS'")
        g.append("set xlabel 'queues asked (accepted)'")
        g.append("set title '%s %s by queue count'" % (sc["system"], sc["workload"]))
        nsc = sum(1 for e in res["scaling"] if e.get("status") == "ok")
        g.append("set boxwidth 0.6 absolute")
        g.append("set xrange [-0.6:%g]" % (nsc - 0.4))
        g.append("set xtics norotate")
        g.append("plot '%s' index 2 using 0:2:xtic(1) with boxes notitle lc rgb '#4060c0'" % dat)
    g.append("unset multiplot")
    with open(gp, "w") as f:
        f.write("\n".join(g) + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("collect")
    c.add_argument("dir")
    r = sub.add_parser("render")
    r.add_argument("results")
    r.add_argument("--md")
    r.add_argument("--dat")
    r.add_argument("--gp")
    r.add_argument("--png")
    r.add_argument("--note", action="append", default=[])
    a = ap.parse_args()
    if a.cmd == "collect":
        return collect(a.dir)
    with open(a.results) as f:
        res = json.load(f)
    text = render(res, a.note)
    print(text)
    if a.md:
        with open(a.md, "w") as f:
            f.write(text + "\n")
    if a.dat and a.gp and a.png:
        chart(res, a.dat, a.gp, a.png)
    return 0


if __name__ == "__main__":
    sys.exit(main())
