#!/usr/bin/env bash
# Builds the libraries and the CLI with clang and -Wthread-safety -Werror in
# a build directory of its own (build-tsa/ by default), so that a lock taken
# in the wrong place, or guarded data touched without its lock, fails the
# build. The annotations are in common/thread_annotations.h and
# common/mutex.h; the lock order is in docs/runtime.md ("Locking").
# Extra arguments go to cmake's configure step (e.g. a compiler launcher).
# The compiler's output goes to the build directory's build.log.
set -euo pipefail
cd "$(dirname "$0")/.."
# ccache, when present, makes rebuilds and the second (clang) build tree quick;
# CMake takes the launcher from these variables at configure time.
if command -v ccache >/dev/null; then
  export CMAKE_C_COMPILER_LAUNCHER=${CMAKE_C_COMPILER_LAUNCHER:-ccache}
  export CMAKE_CXX_COMPILER_LAUNCHER=${CMAKE_CXX_COMPILER_LAUNCHER:-ccache}
fi
BUILD_DIR=${TSA_BUILD_DIR:-build-tsa}
JOBS=${JOBS:-$(nproc)}
CXX_CLANG=${CLANGXX:-clang++}
C_CLANG=${CLANG:-clang}
if ! command -v "$CXX_CLANG" >/dev/null; then
  echo "check-thread-safety: $CXX_CLANG not found (scripts/install-deps.sh installs clang)" >&2
  exit 1
fi
mkdir -p "$BUILD_DIR"
log="$BUILD_DIR/build.log"
# Every warning fails this build: the thread-safety ones are the point, and
# the others are the same -Wall -Wextra set the gcc build keeps clean. One
# exception: libibverbs' ibv_reg_mr() macro (infiniband/verbs.h) ORs two
# enum types, which clang flags at every call site in C++20.
flags="-Wthread-safety -Werror -Wno-deprecated-enum-enum-conversion"
if ! { cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Debug \
         -DCMAKE_CXX_COMPILER="$CXX_CLANG" -DCMAKE_C_COMPILER="$C_CLANG" \
         -DCMAKE_CXX_FLAGS="$flags" -DCMAKE_C_FLAGS="-Werror" "$@" &&
       cmake --build "$BUILD_DIR" -j "$JOBS" --target remora; } >"$log" 2>&1; then
  grep -E "warning:|error:" "$log" >&2 || tail -n 100 "$log" >&2
  echo "check-thread-safety: the clang build failed (full log: $log)" >&2
  exit 1
fi
echo "check-thread-safety: clean"
