#!/usr/bin/env python3
"""What replication costs a program: the same programs at the same pcache
under `remora run` against a pool of three memory nodes with one, two (and
optionally three) replicas of every page.

    bench/run_replica_bench.py [--build DIR] [--pct P] [--rounds R]
                               [--pins same,none] [--replicas 1,2] [--quick]

Three `remora memory-node` processes on this machine (TCP on loopback, 1 GiB
each). Each program runs natively once for its output and working set (peak
RssAnon plus its MAP_PRIVATE inputs, as bench/run_phoenix_bench.py measures
it); then, per pin mode (same: everything, the memory nodes included, on
CPU 0; none: as the kernel places it), R rounds in which every replication
factor runs once, interleaved, at a pcache of P% of the working set. Every
run's output must equal the native one. Reported: median wall time per
factor, and each factor's time against one replica's from the same rounds.

On one machine the replicas' memory nodes share the program's CPUs: a
replicated write-back is two nodes' worth of receiving and storing on the
same two vCPUs, which a cluster spreads over its nodes' own CPUs. Pinned,
everything shares one CPU, so this is an upper bound on the cost.
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from benchlib import geometry, load_average, median, pin_prefix, run  # noqa: E402


def log(s):
    print(s, file=sys.stderr, flush=True)


class Nodes:
    """Three memory-node daemons on loopback TCP."""

    def __init__(self, remora, tmp, count=3, capacity="1G"):
        self.procs, self.addrs = [], []
        self.secret = os.path.join(tmp, "secret")
        with open(self.secret, "w") as f:
            f.write(os.urandom(24).hex() + "\n")
        os.chmod(self.secret, 0o600)
        for k in range(1, count + 1):
            out = open(os.path.join(tmp, f"node{k}.out"), "w+")
            p = subprocess.Popen([remora, "memory-node", "--listen", "127.0.0.1:0", "--capacity",
                                  capacity, "--secret-file", self.secret, "--node-id", str(k)],
                                 stdout=out, stderr=subprocess.DEVNULL)
            self.procs.append(p)
            for _ in range(300):
                out.seek(0)
                text = out.read()
                if "ready tcp=" in text:
                    self.addrs.append(text.split("ready tcp=")[1].split()[0])
                    break
                time.sleep(0.1)
            else:
                self.close()
                raise SystemExit(f"memory node {k} did not start")

    def close(self):
        for p in self.procs:
            p.terminate()
        for p in self.procs:
            p.wait()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default=os.path.join(os.path.dirname(__file__), "..", "build"))
    ap.add_argument("--pct", type=int, default=25)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--pins", default="same,none")
    ap.add_argument("--replicas", default="1,2")
    ap.add_argument("--quick", action="store_true", help="small inputs (a smoke run)")
    ap.add_argument("--only", default="", help="comma-separated programs to run (default: all)")
    args = ap.parse_args()
    b = os.path.abspath(args.build)
    remora = os.path.join(b, "remora")
    progs = os.path.join(b, "tests", "programs")
    factors = [int(r) for r in args.replicas.split(",")]
    tmp = tempfile.mkdtemp(prefix="remora-replica-bench-")

    def p(name):
        return os.path.join(tmp, name)

    q = args.quick
    run([os.path.join(progs, "gentext"), p("text-mr.txt"), "2M" if q else "16M", "7", "5000"])
    run([os.path.join(progs, "phoenix_gen"), "points", p("points.bin"),
         "100000" if q else "1000000", "8", "9"])
    run([os.path.join(progs, "phoenix_gen"), "imatrix", p("m.bin"), "64" if q else "384", "16384",
         "4"])
    programs = [
        ("wordcount_mr", [os.path.join(progs, "wordcount_mr"), p("text-mr.txt"), "2"]),
        ("kmeans", [os.path.join(progs, "kmeans"), p("points.bin"), "8", "12", "4" if q else "6",
                    "2"]),
        ("pca", [os.path.join(progs, "pca"), p("m.bin"), "64" if q else "384", "16384", "2"]),
    ]
    if args.only:
        wanted = args.only.split(",")
        unknown = set(wanted) - {name for name, _ in programs}
        if unknown:
            raise SystemExit(f"unknown program(s): {', '.join(sorted(unknown))}")
        programs = [(name, argv) for name, argv in programs if name in wanted]
    nodes = Nodes(remora, tmp)
    log(f"memory nodes {', '.join(nodes.addrs)}; load average {load_average()}")
    rows = []
    try:
        for name, argv in programs:
            first = run(argv, inputs_under=tmp)
            ws = max(first.inputs_kb, first.rss) * 1024
            cap, ways = geometry(ws * args.pct / 100, round_up=False)
            log(f"{name}: working set {ws / (1 << 20):.1f} MiB, pcache {cap / (1 << 20):.2f} MiB "
                f"({ways} ways), native {first.wall:.2f} s")
            for pin in args.pins.split(","):
                prefix = pin_prefix(pin)
                times = {r: [] for r in factors}
                for _ in range(args.rounds):
                    for r in factors:
                        cmd = prefix + [remora, "run", "--quiet", "--pcache", str(cap), "--ways",
                                        str(ways), "--transport", "tcp", "--secret-file",
                                        nodes.secret, "--replicas", str(r)]
                        for a in nodes.addrs:
                            cmd += ["--memory-node", a]
                        res = run(cmd + ["--"] + argv, check=False)
                        if res.rc != 0 or res.out != first.out:
                            raise SystemExit(f"{name} r={r}: exit {res.rc} or output differs: "
                                             f"{res.err[-300:]}")
                        times[r].append(res.wall)
                base = median(times[factors[0]])
                row = {"program": name, "pin": pin,
                       "seconds": {r: median(times[r]) for r in factors}}
                rows.append(row)
                log(f"  pin {pin}: " + ", ".join(
                    f"r={r} {row['seconds'][r]:.2f} s ({row['seconds'][r] / base:.2f}x)"
                    for r in factors) + "; every round: " + "; ".join(
                    f"r={r} " + " ".join(f"{t:.2f}" for t in times[r]) for r in factors))
    finally:
        nodes.close()
    print(f"| program | pin | " + " | ".join(f"{r} replica{'s' if r > 1 else ''}" for r in factors)
          + " |")
    print("|---|---|" + "---:|" * len(factors))
    for row in rows:
        base = row["seconds"][factors[0]]
        print(f"| {row['program']} | {row['pin']} | " + " | ".join(
            f"{row['seconds'][r]:.2f} s ({row['seconds'][r] / base:.2f}×)" for r in factors) + " |")
    log(f"load average {load_average()}")


if __name__ == "__main__":
    main()
