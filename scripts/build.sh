#!/usr/bin/env bash
# Configures and builds Remora into build/ (RelWithDebInfo by default).
# Extra arguments go to cmake's configure step, e.g. -DREMORA_SANITIZE=address.
# The compiler's output goes to build/build.log; warnings and errors are shown.
set -euo pipefail
cd "$(dirname "$0")/.."
# ccache, when present, makes rebuilds and the second (clang) build tree quick;
# CMake takes the launcher from these variables at configure time.
if command -v ccache >/dev/null; then
  export CMAKE_C_COMPILER_LAUNCHER=${CMAKE_C_COMPILER_LAUNCHER:-ccache}
  export CMAKE_CXX_COMPILER_LAUNCHER=${CMAKE_CXX_COMPILER_LAUNCHER:-ccache}
fi
BUILD_DIR=${BUILD_DIR:-build}
JOBS=${JOBS:-$(nproc)}
mkdir -p "$BUILD_DIR"
log="$BUILD_DIR/build.log"
if ! { cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE="${BUILD_TYPE:-RelWithDebInfo}" "$@" &&
       cmake --build "$BUILD_DIR" -j "$JOBS"; } >"$log" 2>&1; then
  tail -n 200 "$log" >&2
  echo "build failed (full log: $log)" >&2
  exit 1
fi
grep -E "warning:|error:" "$log" >&2 || true
