#!/usr/bin/env bash
# Installs dependencies, builds, and runs the main job on the embedded default:
# a Phoenix-style word count (tests/programs/wordcount: maps its input
# MAP_PRIVATE and rewrites it, hash tables in malloc'd memory, 4 threads) over
# 64 MiB of generated text (5000 distinct words), under `remora run` with a 16 MiB pcache — a quarter
# of the input alone — and a local memory node on shared memory. Its output is
# compared byte for byte with the same program run without Remora, and the
# counters are printed at exit.
#
#   bash scripts/run-demo.sh [SIZE [PCACHE]]      defaults: 64M 16M
set -euo pipefail
cd "$(dirname "$0")/.."
size=${1:-64M}
pcache=${2:-16M}
bash scripts/install-deps.sh
bash scripts/build.sh
b=${BUILD_DIR:-build}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

"$b"/tests/programs/gentext "$work/input.txt" "$size" 7 5000
echo "== word count of $size of text, without Remora"
"$b"/tests/programs/wordcount "$work/input.txt" > "$work/native.txt"
echo "== the same under remora run --pcache $pcache"
"$b"/remora run --pcache "$pcache" --stats-json "$work/stats.json" -- \
  "$b"/tests/programs/wordcount "$work/input.txt" | tee "$work/remora.txt"
if cmp -s "$work/native.txt" "$work/remora.txt"; then
  echo "== output identical to the run without Remora ($(wc -l < "$work/remora.txt") lines)"
else
  echo "== OUTPUT DIFFERS from the run without Remora" >&2
  diff "$work/native.txt" "$work/remora.txt" >&2 || true
  exit 1
fi
