"""Draws a Remora timeline (`remora run --timeline FILE`) as one PNG.

Usage (normally through `remora plot TIMELINE -o run.png`):
    /usr/bin/python3 remora-plot.py TIMELINE.jsonl -o run.png [--title TEXT]

A timeline is JSON lines, one counter snapshot each (docs/stats.md,
"Timelines"): "t" (seconds since the start), "counters" (cumulative),
"gauges", and "histograms" with their summaries and non-empty buckets. The
panels are rates between consecutive snapshots (faults, fills by source,
evictions and write-backs per second), resident lines, the miss latency of
each interval, and the distribution of every miss of the run.

Needs Debian's python3-matplotlib; the pcache itself needs nothing of this.
"""

import argparse
import json
import sys

MISS_LATENCY = "pgfault_service_ns"
FILL_SOURCES = [
    ("nr_pcache_fill_from_memory", "memory node"),
    ("nr_pcache_fill_from_victim", "victim cache"),
    ("nr_pcache_fill_zerofill", "zero-filled"),
    ("nr_pcache_fill_from_file", "file"),
]
WRITEBACKS = ["nr_victim_flush_finished_dirty", "nr_pcache_eviction_writeback_sync"]


def load(path):
    records = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as e:
                sys.exit(f"remora plot: {path}:{n}: not JSON: {e}")
    if len(records) < 2:
        sys.exit(f"remora plot: {path}: {len(records)} snapshot(s); need two or more "
                 "(a run shorter than --stats-interval has only its first and last)")
    for r in records:
        if "t" not in r or "counters" not in r:
            sys.exit(f"remora plot: {path}: a line without \"t\" and \"counters\": "
                     "not a timeline")
    return records


def counter(r, name):
    return r["counters"].get(name, 0)


def rates(records, names):
    """Per-second rate of the sum of `names` over each interval, at its end."""
    ts, vs = [], []
    for a, b in zip(records, records[1:]):
        dt = b["t"] - a["t"]
        if dt <= 0:
            continue
        d = sum(counter(b, n) - counter(a, n) for n in names)
        ts.append(b["t"])
        vs.append(d / dt)
    return ts, vs


def bucket_lower(buckets, i):
    return buckets[i - 1][0] + 1 if i > 0 else 0


def interval_percentiles(records, name, ps):
    """Percentiles of each interval's values, from the bucket differences."""
    ts, out = [], {p: [] for p in ps}
    for a, b in zip(records, records[1:]):
        hb = b.get("histograms", {}).get(name)
        if not hb or "buckets" not in hb:
            continue
        ha = a.get("histograms", {}).get(name, {})
        before = dict((ub, n) for ub, n in ha.get("buckets", []))
        diff = [(ub, n - before.get(ub, 0)) for ub, n in hb["buckets"]]
        diff = [(ub, n) for ub, n in diff if n > 0]
        total = sum(n for _, n in diff)
        if total == 0:
            continue
        ts.append(b["t"])
        for p in ps:
            rank, seen = p / 100 * total, 0
            for ub, n in diff:
                seen += n
                if seen >= rank:
                    out[p].append(ub)
                    break
    return ts, out


def main():
    ap = argparse.ArgumentParser(prog="remora plot", description=__doc__.split("\n")[0])
    ap.add_argument("timeline", help="JSON lines written by --timeline")
    ap.add_argument("-o", "--output", required=True, help="PNG file to write")
    ap.add_argument("--title", help="title above the panels (default: the timeline's name)")
    args = ap.parse_args()

    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import FuncFormatter, NullFormatter
    except ImportError:
        sys.exit("remora plot: matplotlib is missing (Debian: apt-get install python3-matplotlib)")

    # Latencies on log axes read as plain numbers (8, 20, 100), not 8x10^0.
    plain = FuncFormatter(lambda v, _: f"{v:g}")

    records = load(args.timeline)
    fig, axes = plt.subplots(3, 2, figsize=(12, 10))
    fig.suptitle(args.title or args.timeline)

    ax = axes[0][0]
    for names, label in ((["nr_pgfault"], "all faults"), (["nr_pgfault_missing"], "missing"),
                         (["nr_pgfault_wp"], "write-protect")):
        ax.plot(*rates(records, names), label=label)
    ax.set_title("faults per second")
    ax.legend(loc="upper right", fontsize="small")

    ax = axes[0][1]
    for name, label in FILL_SOURCES:
        if any(counter(r, name) for r in records):
            ax.plot(*rates(records, [name]), label=label)
    ax.set_title("fills per second, by source")
    ax.legend(loc="upper right", fontsize="small")

    ax = axes[1][0]
    ax.plot(*rates(records, ["nr_pcache_eviction_succeed"]), label="evictions")
    ax.plot(*rates(records, WRITEBACKS), label="write-backs (dirty)")
    ax.set_title("evictions and write-backs per second")
    ax.legend(loc="upper right", fontsize="small")

    ax = axes[1][1]
    ts = [r["t"] for r in records]
    ax.plot(ts, [r.get("gauges", {}).get("pcache_lines_used", 0) for r in records],
            label="pcache lines used")
    if any(r.get("gauges", {}).get("victim_entries_used", 0) for r in records):
        ax.plot(ts, [r.get("gauges", {}).get("victim_entries_used", 0) for r in records],
                label="victim cache entries")
    ax.set_title("resident lines")
    ax.set_ylim(bottom=0)
    ax.legend(loc="lower right", fontsize="small")

    ax = axes[2][0]
    pts, pcts = interval_percentiles(records, MISS_LATENCY, [50, 90, 99])
    for p in (50, 90, 99):
        ax.plot(pts, [v / 1000 for v in pcts[p]], label=f"p{p}")
    ax.set_title("miss latency per interval (us)")
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(plain)
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.legend(loc="upper right", fontsize="small")

    ax = axes[2][1]
    final = records[-1].get("histograms", {}).get(MISS_LATENCY, {})
    buckets = final.get("buckets", [])
    if buckets:
        total = sum(n for _, n in buckets)
        xs, ys, seen = [], [], 0
        for ub, n in buckets:
            seen += n
            xs.append(ub / 1000)
            ys.append(seen / total)
        ax.step(xs, ys, where="post")
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(plain)
        ax.set_ylim(0, 1.01)
        ax.set_title(f"miss latency, every miss of the run (CDF, {total} misses)")
        ax.set_xlabel("us")
        ax.grid(True, which="both", alpha=0.3)
    else:
        ax.set_title("miss latency: no misses recorded")

    for row in axes[:2]:
        for a in row:
            a.set_xlabel("seconds")
            a.grid(True, alpha=0.3)
    axes[2][0].set_xlabel("seconds")
    axes[2][0].grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(args.output, dpi=90)
    print(f"remora plot: {args.output} ({len(records)} snapshots, "
          f"{records[-1]['t'] - records[0]['t']:.1f} s)")


if __name__ == "__main__":
    main()
