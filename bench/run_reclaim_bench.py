#!/usr/bin/env python3
"""The reclaim benchmark: background reclaim against direct reclaim on a
random read-modify-write run, where nearly every miss needs a dirty line
evicted.

    bench/run_reclaim_bench.py [--build DIR] [--region-mb N] [--pcache-mb N]
                               [--ops N] [--rounds R] [--json FILE]

tests/programs/rand_rmw (the end-to-end tests' program) writes every page of
a REGION once, then reads and changes a random page OPS times, under `remora run` with a pcache
of PCACHE (8 ways). Four configurations, interleaved in each of R rounds so
that a change of load on the machine hits all alike:

    reclaim on / off    watermarks 1/2 / --reclaim-low 0
    pinned / unpinned   `taskset -c 0` (program, manager and memory node on
                        one CPU) / free to use every CPU

Each run's checksum must equal the native one. Reported per configuration
(median over the rounds): faults per second (nr_pgfault / wall time of the
whole run), the manager's missing-fault service time p50/p99
(pgfault_service_ns: message read to page installed), and how the evictions
split between the reclaimer and the faults themselves. Pinned, background
reclaim cannot make the work cheaper, only move it to another thread of the
same CPU; the numbers say what it does there.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(argv):
    t0 = time.monotonic()
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tempfile.gettempdir())
    wall = time.monotonic() - t0
    if p.returncode != 0:
        raise SystemExit(f"failed ({p.returncode}): {' '.join(argv)}\n"
                         f"{p.stderr.decode(errors='replace')[-3000:]}")
    return p.stdout, wall


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default=os.path.join(REPO, "build"))
    ap.add_argument("--region-mb", type=int, default=64)
    ap.add_argument("--pcache-mb", type=int, default=16)
    ap.add_argument("--ops", type=int, default=200000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--victim", type=int, default=32, help="victim cache entries")
    ap.add_argument("--json", help="also write the raw results here")
    args = ap.parse_args()

    b = os.path.abspath(args.build)
    remora = os.path.join(b, "remora")
    bench = os.path.join(b, "tests", "programs", "rand_rmw")
    for f in (remora, bench):
        if not os.access(f, os.X_OK):
            raise SystemExit(f"missing {f}: build remora and the programs of tests/programs first")
    prog = [bench, str(args.region_mb), str(args.ops)]
    native, _ = run(prog)
    taskset = shutil.which("taskset")
    configs = [(reclaim, pin) for pin in ("unpinned", "pinned") for reclaim in ("on", "off")]
    samples = {c: [] for c in configs}
    tmp = tempfile.mkdtemp(prefix="remora-reclaim-bench-")
    for rnd in range(args.rounds):
        for reclaim, pin in configs:
            stats_path = os.path.join(tmp, f"stats-{reclaim}-{pin}-{rnd}.json")
            argv = ([taskset, "-c", "0"] if pin == "pinned" else []) + [
                remora, "run", "--pcache", f"{args.pcache_mb}M", "--ways", "8", "--victim",
                str(args.victim), "--quiet", "--stats-json", stats_path]
            # Explicit watermarks: the default for 8 ways is none
            # (processor/runtime/reclaimer.h), which would make "on" "off".
            argv += ["--reclaim-low", "1", "--reclaim-high", "2"] if reclaim == "on" else [
                "--reclaim-low", "0"]
            out, wall = run(argv + ["--"] + prog)
            if out != native:
                raise SystemExit(f"checksum differs from the native run ({reclaim}, {pin}):\n"
                                 f"{out.decode()} vs {native.decode()}")
            with open(stats_path) as f:
                s = json.load(f)
            c, h = s["counters"], s["histograms"]["pgfault_service_ns"]
            samples[(reclaim, pin)].append({
                "wall_s": wall,
                "faults": c["nr_pgfault"],
                "faults_per_s": c["nr_pgfault"] / wall,
                "p50_ns": h["p50"],
                "p99_ns": h["p99"],
                "evicted": c["nr_pcache_eviction_succeed"],
                "background": c.get("nr_reclaim_background_lines", 0),
                "direct": c.get("nr_pcache_direct_reclaim_lines", 0),
                "direct_fills": c.get("nr_pcache_direct_reclaim", 0),
                "batches": c.get("nr_reclaim_batches", 0),
                "wakeups": c.get("nr_reclaim_wakeups", 0),
            })
            print(f"round {rnd + 1}: reclaim {reclaim:3} {pin:8} {wall:6.2f} s "
                  f"{samples[(reclaim, pin)][-1]['faults_per_s']:8.0f} faults/s "
                  f"p50 {h['p50']:7.0f} ns p99 {h['p99']:8.0f} ns", file=sys.stderr)

    print(f"rand_rmw: {args.region_mb} MiB region, {args.ops} random read-modify-writes, "
          f"{args.pcache_mb} MiB pcache (8 ways), victim cache {args.victim}; "
          f"median of {args.rounds} interleaved rounds; {os.cpu_count()} CPUs")
    print()
    print("| reclaim | CPUs | faults/s | fault p50 (µs) | fault p99 (µs) | evictions | "
          "background | direct | direct fills | batches |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    med = lambda c, k: statistics.median(x[k] for x in samples[c])
    for reclaim, pin in configs:
        c = (reclaim, pin)
        print(f"| {reclaim} | {'1 (taskset)' if pin == 'pinned' else 'all'} | "
              f"{med(c, 'faults_per_s'):.0f} | {med(c, 'p50_ns') / 1000:.1f} | "
              f"{med(c, 'p99_ns') / 1000:.1f} | {med(c, 'evicted'):.0f} | "
              f"{med(c, 'background'):.0f} | {med(c, 'direct'):.0f} | "
              f"{med(c, 'direct_fills'):.0f} | {med(c, 'batches'):.0f} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({f"{r}-{p}": v for (r, p), v in samples.items()}, f, indent=1)
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
