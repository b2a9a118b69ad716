#!/usr/bin/env bash
# Checks that every C and C++ source follows .clang-format (Debian 12's
# clang-format 14; other versions format a few constructs differently).
# With --fix, formats the files in place instead.
set -euo pipefail
cd "$(dirname "$0")/.."
fmt=$(command -v clang-format-14 || command -v clang-format || true)
if [ -z "$fmt" ]; then
  echo "check-format: clang-format not found (scripts/install-deps.sh installs it)" >&2
  exit 1
fi
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  mapfile -t files < <(git ls-files '*.cc' '*.h' '*.c')
else
  mapfile -t files < <(find . -path ./build -prune -o -path './build-*' -prune -o \
                            \( -name '*.cc' -o -name '*.h' -o -name '*.c' \) -print | sort)
fi
if [ "${1:-}" = "--fix" ]; then
  "$fmt" -i "${files[@]}"
  exit 0
fi
if ! "$fmt" --dry-run --Werror "${files[@]}" 2>/tmp/check-format.$$; then
  grep -E "error:" /tmp/check-format.$$ | head -n 40 >&2
  rm -f /tmp/check-format.$$
  echo "check-format: files above differ from .clang-format; run scripts/check-format.sh --fix" >&2
  exit 1
fi
rm -f /tmp/check-format.$$
echo "check-format: ${#files[@]} files follow .clang-format"
