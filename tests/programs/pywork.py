#!/usr/bin/env python3
"""A deterministic dict/list/sort-heavy Python workload.

    pywork.py [--mb N] [--seed S] [--rounds R]

Builds about N MiB of Python objects (records as tuples and dicts, strings,
lists), then sorts them several ways, aggregates them in dicts, joins strings,
rewrites part of the data between rounds and prints a digest of every result.
The output depends only on --mb, --seed and --rounds (never on hash
randomization or on addresses): every unordered collection is sorted before it
is printed or hashed.
"""
import argparse
import hashlib
import random
import sys

# Measured with CPython 3.11: one record (a tuple of an int, a float, a str
# of ~12 chars and a small dict) plus its share of the sorted copies, indexes
# and aggregates built below raises peak RSS by about 700 bytes.
BYTES_PER_RECORD = 700

WORDS = [
    "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india",
    "juliet", "kilo", "lima", "mike", "november", "oscar", "papa", "quebec", "romeo",
    "sierra", "tango", "uniform", "victor", "whiskey", "xray", "yankee", "zulu",
]


def sha(obj):
    return hashlib.sha256(repr(obj).encode()).hexdigest()[:16]


def make_records(rng, n):
    records = []
    for i in range(n):
        key = rng.randrange(1 << 30)
        score = round(rng.random() * 1000.0, 3)
        name = rng.choice(WORDS) + "-" + format(rng.randrange(1 << 20), "05x")
        attrs = {"group": rng.randrange(997), "tag": rng.choice(WORDS), "i": i}
        records.append((key, score, name, attrs))
    return records


def run_round(rng, records, rnd, out):
    # Sorts: by key, by (score desc, name), by name length then name.
    by_key = sorted(records, key=lambda r: r[0])
    by_score = sorted(records, key=lambda r: (-r[1], r[2]))
    by_name = sorted(records, key=lambda r: (len(r[2]), r[2], r[0]))
    out.append(f"round {rnd} sort-key {sha([r[0] for r in by_key[::97]])}")
    out.append(f"round {rnd} sort-score {sha([r[2] for r in by_score[:2000]])}")
    out.append(f"round {rnd} sort-name {sha([r[2] for r in by_name[::101]])}")
    del by_key, by_score, by_name

    # Dict aggregations: group -> (count, sum of scores); tag -> set of groups.
    groups = {}
    tags = {}
    for key, score, name, attrs in records:
        g = attrs["group"]
        c, s = groups.get(g, (0, 0.0))
        groups[g] = (c + 1, s + score)
        tags.setdefault(attrs["tag"], set()).add(g % 61)
    agg = sorted((g, c, round(s, 3)) for g, (c, s) in groups.items())
    out.append(f"round {rnd} groups {len(groups)} {sha(agg)}")
    out.append(f"round {rnd} tags {sha(sorted((t, sorted(v)) for t, v in tags.items()))}")

    # An index from name to record, then look-ups of existing and missing names.
    index = {r[2]: r for r in records}
    hits = 0
    total = 0
    for _ in range(len(records) // 4):
        r = records[rng.randrange(len(records))]
        if index.get(r[2]) is not None:
            hits += 1
            total += index[r[2]][0] & 0xFFFF
        if ("missing-" + str(rng.randrange(1000))) in index:
            hits -= 1
    out.append(f"round {rnd} index {len(index)} hits {hits} total {total}")
    del index

    # String joins over a sorted selection.
    joined = ",".join(sorted(r[2] for r in records[rnd::7]))
    out.append(f"round {rnd} join len {len(joined)} {hashlib.sha256(joined.encode()).hexdigest()[:16]}")
    del joined

    # Rewrite about a fifth of the records in place for the next round.
    for _ in range(len(records) // 5):
        i = rng.randrange(len(records))
        key, score, name, attrs = records[i]
        attrs = dict(attrs)
        attrs["group"] = (attrs["group"] * 31 + rnd) % 997
        records[i] = (key ^ rng.randrange(1 << 16), round(score * 0.5 + rnd, 3), name[::-1], attrs)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=int, default=64, help="approximate working set in MiB")
    ap.add_argument("--seed", type=int, default=12345)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    if args.mb <= 0 or args.rounds <= 0:
        ap.error("--mb and --rounds must be positive")

    rng = random.Random(args.seed)
    n = args.mb * (1 << 20) // BYTES_PER_RECORD
    records = make_records(rng, n)
    out = [f"pywork: mb={args.mb} seed={args.seed} rounds={args.rounds} records={n}"]
    for rnd in range(args.rounds):
        run_round(rng, records, rnd, out)
    final = sorted((r[0], r[2]) for r in records)
    out.append(f"final {sha(final[::13])} {sum(r[0] for r in records) % 1000000007}")
    digest = hashlib.sha256("\n".join(out).encode()).hexdigest()
    out.append(f"digest {digest}")
    sys.stdout.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
