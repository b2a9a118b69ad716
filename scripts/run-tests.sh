#!/usr/bin/env bash
# Installs dependencies, checks the formatting (.clang-format), builds, checks
# the locking with clang's thread-safety analysis (a second build, see
# check-thread-safety.sh), and runs the whole test suite with ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/check-format.sh
bash scripts/build.sh
bash scripts/check-thread-safety.sh
cd "${BUILD_DIR:-build}"
ctest --output-on-failure -j "${JOBS:-2}" --timeout 900
