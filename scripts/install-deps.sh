#!/usr/bin/env bash
# Installs every Debian 12 package Remora needs to build, test and benchmark.
# Idempotent: when everything is present it prints nothing and touches nothing.
set -euo pipefail

PACKAGES=(
  build-essential cmake pkg-config git
  ccache                  # rebuilds after a change or in a second build tree are quick
  clang                   # scripts/check-thread-safety.sh (-Wthread-safety)
  libclang-rt-14-dev      # libFuzzer and the sanitizer runtimes of the fuzz targets (tests/fuzz)
  clang-format            # scripts/check-format.sh (.clang-format)
  libboost-dev            # Boost.Intrusive (header-only)
  libspdlog-dev libfmt-dev
  libgtest-dev libgmock-dev
  libtomlplusplus-dev     # configuration files
  libcli11-dev            # command-line parsing
  nlohmann-json3-dev      # reading stats snapshots back (remora stats, tests)
  libssl-dev              # HMAC-SHA256 peer authentication (libcrypto)
  libmimalloc-dev         # the allocator preloaded under programs
  libibverbs-dev rdma-core ibverbs-providers
  libcpp-httplib-dev      # --metrics-listen: Prometheus /metrics over HTTP
  python3 python3-matplotlib
  # Tests of /metrics and of the package: scraping, promtool (in Debian's
  # prometheus package, which also brings a Prometheus server; on a machine
  # booted with systemd it is enabled: `systemctl disable --now prometheus`
  # if unwanted), cpack's dpkg-shlibdeps (dpkg-dev), systemd-analyze.
  curl prometheus dpkg-dev systemd
)

# The emulated RDMA cluster (tests/cluster/qemu-rdma.sh) boots guests with
# QEMU; it downloads its kernel and busybox itself. Optional: if QEMU cannot
# be installed, that one test reports it and everything else still runs.
OPTIONAL=(qemu-system-x86)

missing=()
for p in "${PACKAGES[@]}" "${OPTIONAL[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null
required=()
for p in "${missing[@]}"; do
  [[ " ${OPTIONAL[*]} " == *" $p "* ]] || required+=("$p")
done
if [ ${#required[@]} -gt 0 ]; then
  $SUDO apt-get install -y -qq --no-install-recommends "${required[@]}" >/dev/null
fi
if [ ${#required[@]} -ne ${#missing[@]} ]; then
  $SUDO apt-get install -y -qq --no-install-recommends "${OPTIONAL[@]}" >/dev/null ||
    echo "install-deps: could not install ${OPTIONAL[*]} (only tests/cluster needs it)" >&2
fi
