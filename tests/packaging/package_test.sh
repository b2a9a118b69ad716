#!/usr/bin/env bash
# The install tree and the Debian package, built from this build tree:
#   - `cmake --install` into a temporary prefix: the layout, and units that
#     name that prefix's binary and configuration;
#   - `cpack -G DEB`: the .deb lists every promised file, declares the
#     libraries the binary links (dpkg-shlibdeps) and what it loads by name,
#     and marks the configuration as conffiles;
#   - `systemd-analyze verify` accepts its units (checked against the
#     extracted tree with --root, so ExecStart= resolves there);
#   - the package extracted with `dpkg-deb -x` runs a real program under
#     `remora run --pcache 48M` from the extracted tree, forcing evictions,
#     with the same output as the native run, and `remora plot` draws the
#     run's timeline from there.
#
#   package_test.sh BUILD_DIR
set -euo pipefail
BUILD=$(cd "$1" && pwd)
PY=/usr/bin/python3  # Debian's, not a wrapper script found first on PATH
for tool in cpack dpkg-deb dpkg-shlibdeps systemd-analyze; do
  command -v "$tool" >/dev/null || { echo "FAIL: $tool not installed"; exit 1; }
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# --- cmake --install into a prefix of its own ----------------------------
prefix=$tmp/prefix
cmake --install "$BUILD" --prefix "$prefix" >"$tmp/install.log" || fail "cmake --install"
for f in bin/remora lib/remora/libremora_shim.so etc/remora/memory-node.toml \
  etc/remora/processor.toml lib/systemd/system/remora-memory-node.service \
  lib/systemd/system/remora-processor.service share/doc/remora/README.md \
  share/doc/remora/docs/cluster.md share/doc/remora/examples/cluster-memory-node.toml; do
  [[ -e $prefix/$f ]] || fail "cmake --install: no $f"
done
grep -qx "ExecStart=$prefix/bin/remora memory-node --config $prefix/etc/remora/memory-node.toml" \
  "$prefix/lib/systemd/system/remora-memory-node.service" ||
  fail "the installed memory-node unit does not name $prefix"
echo "cmake --install: layout and units for $prefix ok"

# --- the .deb -------------------------------------------------------------
(cd "$tmp" && cpack -G DEB --config "$BUILD/CPackConfig.cmake" -B "$tmp/cpack" >"$tmp/cpack.log") ||
  { cat "$tmp/cpack.log"; fail "cpack"; }
deb=$(ls "$tmp"/cpack/remora_*.deb)
echo "built $(basename "$deb") ($(du -k "$deb" | cut -f1) KiB)"
dpkg-deb --contents "$deb" | awk '{ print $6 }' >"$tmp/contents"
for f in ./usr/bin/remora ./usr/lib/remora/libremora_shim.so ./etc/remora/memory-node.toml \
  ./etc/remora/processor.toml ./usr/lib/systemd/system/remora-memory-node.service \
  ./usr/lib/systemd/system/remora-processor.service ./usr/share/doc/remora/README.md \
  ./usr/share/doc/remora/docs/cluster.md ./usr/share/doc/remora/examples/processor.toml \
  ./usr/share/remora/remora-plot.py; do
  grep -qx -- "$f" "$tmp/contents" || fail "dpkg-deb --contents: no $f"
done
depends=$(dpkg-deb -f "$deb" Depends)
echo "Depends: $depends"
for d in libc6 libstdc++6 libibverbs1 libspdlog1.10 libfmt9 libssl3 libtomlplusplus3 \
  libcpp-httplib0.11 libmimalloc2.0 python3-matplotlib; do
  [[ ", $depends" == *", $d"[-\ ,]* || ", $depends," == *", $d,"* ]] || fail "Depends lacks $d"
done
dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./conffiles >"$tmp/conffiles"
grep -qx /etc/remora/memory-node.toml "$tmp/conffiles" || fail "memory-node.toml is no conffile"
grep -qx /etc/remora/processor.toml "$tmp/conffiles" || fail "processor.toml is no conffile"

# --- the units ------------------------------------------------------------
root=$tmp/root
dpkg-deb -x "$deb" "$root"
units=$root/usr/lib/systemd/system
grep -qx "ExecStart=/usr/bin/remora memory-node --config /etc/remora/memory-node.toml" \
  "$units/remora-memory-node.service" || fail "packaged memory-node unit ExecStart"
for u in remora-memory-node.service remora-processor.service; do
  grep -qx "LimitMEMLOCK=infinity" "$units/$u" || fail "$u: no LimitMEMLOCK=infinity"
  grep -qx "Restart=on-failure" "$units/$u" || fail "$u: no Restart=on-failure"
  grep -qx "NoNewPrivileges=yes" "$units/$u" || fail "$u: no NoNewPrivileges=yes"
done
# verify --root resolves ExecStart= and the units' dependencies inside the
# root: give it this system's units (sysinit.target, network-online.target,
# ...) next to the package's, without replacing any of those.
cp -rn /usr/lib/systemd/system/. "$units/"
# It exits 0 on warnings (an unknown key, a bad value): any line naming our
# units fails the test too.
verify() {
  local out
  if ! out=$(systemd-analyze verify "$@" 2>&1) || grep -q "remora-" <<<"$out"; then
    fail "systemd-analyze verify $*: $out"
  fi
}
verify --root="$root" "$units/remora-memory-node.service" "$units/remora-processor.service"
verify "$prefix/lib/systemd/system/remora-memory-node.service" \
  "$prefix/lib/systemd/system/remora-processor.service"
echo "systemd-analyze verify: the packaged units and the cmake --install ones accepted"

# --- the extracted tree runs a program ------------------------------------
# 96 MiB written, hashed and sorted in part by CPython, through a 64 MiB
# pcache (evictions forced); the digest and the sums must match natively.
script='
import hashlib
buf = bytearray(96 << 20)
for i in range(0, len(buf), 4096):
    buf[i:i + 8] = (i * 2654435761 % (1 << 64)).to_bytes(8, "little")
h = hashlib.sha256(buf).hexdigest()
xs = sorted((i * 7919) % 1000003 for i in range(400000))
print(h, sum(xs[::1000]), xs[12345])
'
native=$("$PY" -c "$script")
installed=$("$root/usr/bin/remora" run --pcache 48M --stats-json "$tmp/stats.json" \
  --stats-interval 0.2 --timeline "$tmp/timeline.jsonl" --quiet -- \
  "$PY" -c "$script" 2>"$tmp/run.err") || { cat "$tmp/run.err"; fail "remora run from the package"; }
[[ $installed == "$native" ]] || fail "output under the packaged remora differs: '$installed' vs '$native'"
evicted=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["counters"]["nr_pcache_eviction_succeed"])' "$tmp/stats.json")
echo "packaged remora run --pcache 48M: output equal to native ($native), $evicted lines evicted"
((evicted > 0)) || fail "no eviction under 48M"
"$root/usr/bin/remora" plot "$tmp/timeline.jsonl" -o "$tmp/run.png" >"$tmp/plot.log" 2>&1 ||
  { cat "$tmp/plot.log"; fail "remora plot from the package"; }
[[ $(head -c 8 "$tmp/run.png" | od -An -tx1 | tr -d ' \n') == 89504e470d0a1a0a ]] ||
  fail "remora plot from the package wrote no PNG"
echo "packaged remora plot: $(du -k "$tmp/run.png" | cut -f1) KiB PNG"
echo "PASS"
