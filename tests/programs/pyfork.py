#!/usr/bin/env python3
"""Python's ways of starting processes, over a large inherited heap.

    pyfork.py [--mb N] [--workers W] [--chunks C]

1. Builds about N MiB of Python objects (a list of tuples of an int, a str
   and a float) in a module global, then maps a digest function over C
   slices of it with a multiprocessing Pool of W workers started with the
   "fork" method: the workers read the list they inherited (and, since
   reading an object updates its reference count, write to nearly every page
   of it). The parent computes the same digests serially and compares.
2. subprocess: a shell pipeline (`seq 1 200000 | sort -r | md5sum`, C locale)
   whose digest is checked against one computed here, and a `python3 -c`
   child whose output is checked too.

Output depends only on the arguments; the last line is "OK", or "FAILED"
with exit status 1.
"""
import argparse
import hashlib
import multiprocessing
import os
import subprocess
import sys

# One record (tuple of 3, an int, a ~12-char str, a float, a list slot) takes
# about 180 bytes of CPython 3.11's heap.
BYTES_PER_RECORD = 180

DATA = []


def build(n):
    words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel"]
    return [(i, f"{words[i % 8]}-{(i * 2654435761) % (1 << 24):06x}", (i % 1000) / 7.0)
            for i in range(n)]


def digest(bounds):
    lo, hi = bounds
    h = hashlib.sha256()
    total = 0
    for i, name, score in DATA[lo:hi]:
        h.update(name.encode())
        total += i + int(score * 1000)
    return lo, hi, h.hexdigest()[:16], total


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=int, default=24)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--chunks", type=int, default=16)
    ap.add_argument("--timeout", type=float, default=300, help="seconds the pool may take")
    args = ap.parse_args()
    ok = True

    n = args.mb * (1 << 20) // BYTES_PER_RECORD
    DATA.extend(build(n))
    step = (n + args.chunks - 1) // args.chunks
    bounds = [(lo, min(lo + step, n)) for lo in range(0, n, step)]
    ctx = multiprocessing.get_context("fork")
    pool = ctx.Pool(args.workers)
    try:
        # A worker that dies leaves map() waiting for ever: bound the wait.
        parallel = pool.map_async(digest, bounds).get(args.timeout)
    except multiprocessing.TimeoutError:
        print(f"FAILED: the pool did not finish in {args.timeout:g} s")
        pool.terminate()
        return 1
    pool.close()
    pool.join()
    serial = [digest(b) for b in bounds]
    print(f"records {n}, {len(bounds)} slices, {args.workers} workers (fork)")
    for lo, hi, h, total in parallel:
        print(f"slice {lo}-{hi}: {h} {total}")
    same = parallel == serial
    ok &= same
    print(f"pool matches serial: {same}")

    env = dict(os.environ, LC_ALL="C")
    r = subprocess.run(["sh", "-c", "seq 1 200000 | sort -r | md5sum"], capture_output=True, text=True,
                       env=env)
    want = hashlib.md5(("\n".join(sorted((str(i) for i in range(1, 200001)), reverse=True)) + "\n")
                       .encode()).hexdigest()
    got = r.stdout.split()[0] if r.stdout else ""
    ok &= r.returncode == 0 and got == want
    print(f"pipeline: exit {r.returncode}, md5 {got}, expected {want}")

    code = "import hashlib; b = bytes(range(256)) * 40000; print(hashlib.sha256(b).hexdigest()[:16], len(b))"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    want = f"{hashlib.sha256(bytes(range(256)) * 40000).hexdigest()[:16]} {256 * 40000}"
    ok &= r.returncode == 0 and r.stdout.strip() == want
    print(f"python child: exit {r.returncode}, {r.stdout.strip()}, expected {want}")

    print("OK" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
