#!/usr/bin/env bash
# Installs dependencies, builds, and runs the main job on the embedded default:
# a memory node on this machine (shared-memory transport), a workload whose
# memory goes through a pcache much smaller than its working set, and the
# counters printed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
exec "${BUILD_DIR:-build}"/remora demo "$@"
