#!/usr/bin/env python3
"""Phoenix-style word count in pure Python: map over chunks, reduce, sort.

    pywordcount.py FILE [--chunk-kb N]

Maps FILE MAP_PRIVATE (mmap ACCESS_COPY, as Phoenix maps its input), lowercases
each chunk in place, counts the words of each chunk in a dict of its own (map),
merges the chunk dicts into one (reduce), then prints the 50 most frequent
words and a digest of every (word, count) pair in sorted order. The output
depends only on the file's contents.

Unlike pywork.py, whose sorts, index and garbage collections walk objects
scattered over the whole heap, this is a streaming job: the input is read
once in order and the per-chunk objects are freed and their memory reused.
"""
import argparse
import hashlib
import mmap
import os


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("file")
    ap.add_argument("--chunk-kb", type=int, default=256)
    args = ap.parse_args()

    fd = os.open(args.file, os.O_RDONLY)
    size = os.fstat(fd).st_size
    mm = mmap.mmap(fd, size, access=mmap.ACCESS_COPY)
    os.close(fd)

    chunk = args.chunk_kb * 1024
    totals = {}
    start = 0
    chunks = 0
    while start < size:
        end = min(size, start + chunk)
        # Chunks end at whitespace, so that no word is split.
        while end < size and mm[end:end + 1] not in (b" ", b"\n"):
            end += 1
        # Lowercase in place (the private mapping takes the writes).
        mm[start:end] = mm[start:end].lower()
        counts = {}
        for w in mm[start:end].split():
            counts[w] = counts.get(w, 0) + 1
        for w, c in counts.items():
            totals[w] = totals.get(w, 0) + c
        chunks += 1
        start = end

    ranked = sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))
    print(f"chunks {chunks} words {sum(totals.values())} distinct {len(totals)}")
    for w, c in ranked[:50]:
        print(f"{w.decode(errors='replace')} {c}")
    h = hashlib.sha256()
    for w, c in sorted(totals.items()):
        h.update(w + b" " + str(c).encode() + b"\n")
    print("digest", h.hexdigest()[:16])
    mm.close()


if __name__ == "__main__":
    main()
