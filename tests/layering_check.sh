#!/usr/bin/env bash
# The layering check: which folders may include which. Each folder's
# README.md states its rules in words; this keeps them true. Linking alone
# cannot: a header-only include (an inline function, a struct layout, a
# system call wrapper) crosses a boundary without any library to link.
#
#   tests/layering_check.sh [ROOT]   check the tree at ROOT (default: this one)
#   tests/layering_check.sh --self-test
#                                    check that every rule fires on a small
#                                    tree of violations, and only there
#
# The rules (a file in the folder on the left may not include):
#   processor/shim/     any project header but processor/shim/ and processor/abi/
#   processor/abi/      any project header but processor/abi/ and remora/types.h
#   processor/pcache/   processor/{runtime,sim,abi,shim}/, net/, memory-node/,
#                       managers/, cli/, remora/transport.h, and the system-call
#                       headers <unistd.h> <fcntl.h> <poll.h> <syscall.h>
#                       <sys/...> <linux/...> <asm/...>
#   processor/runtime/  processor/{sim,shim}/, memory-node/, cli/
#   processor/sim/      processor/runtime/, net/
#   net/                processor/, memory-node/, managers/, cli/
#   memory-node/        processor/, managers/, cli/
#   managers/           processor/, memory-node/, cli/
#   stats/              any project header but stats/, common/, include/
#   metrics/            any project header but metrics/, stats/, common/, include/
#   common/             any project header but common/, include/
#   include/            any project header but include/
# cli/ is the top and may include anything; tests/ and bench/ are not checked.
#
# Every #include line of every source file in those folders is resolved to a
# path in the tree ("remora/x.h" is include/remora/x.h; a name that starts
# with no top-level folder is relative to the including file; <...> names
# outside the tree are system headers) and checked against the rules of the
# file's folder. Each violation is printed as FILE:LINE: rule: include line,
# and the exit status is then 1.
set -euo pipefail

# The rules, in one awk program (one process for the whole tree: the check
# runs with the unit tests). Input: grep -n lines "FILE:LINE:#include ...".
# shellcheck disable=SC2016  # awk's $ fields, not the shell's
readonly RULES='
# Top-level folders that hold project headers; anything else in <...>
# is a system or third-party header.
BEGIN {
  split("processor net memory-node managers cli common stats metrics include", r, " ")
  for (i in r) root[r[i]] = 1
}
# "a/b/../c/./d" -> "a/c/d"
function normalize(path,   parts, n, i, out, k) {
  n = split(path, parts, "/")
  k = 0
  for (i = 1; i <= n; i++) {
    if (parts[i] == "." || parts[i] == "") continue
    if (parts[i] == ".." && k > 0) { k--; continue }
    out[++k] = parts[i]
  }
  path = ""
  for (i = 1; i <= k; i++) path = path (i > 1 ? "/" : "") out[i]
  return path
}
# The tree path of an include, or "" for a system header.
function resolve(file, quoted, name,   first, dir) {
  first = name
  sub(/\/.*/, "", first)
  if (first == "remora") return "include/" name
  if (name ~ /\// && first in root) return name
  if (!quoted) return ""
  dir = file
  sub(/[^\/]*$/, "", dir)
  return normalize(dir name)
}
# The folder a tree path belongs to, for messages: processor/runtime/, net/, ...
function area(path) {
  if (path ~ /^processor\/[^\/]+\//) {
    sub(/^processor\//, "", path)
    sub(/\/.*/, "", path)
    return "processor/" path "/"
  }
  sub(/\/.*/, "", path)
  return path "/"
}
# Why `target` (a tree path) or `sys` (a system header) may not be included
# from `file`; "" if it may.
function forbidden(file, target, sys) {
  if (file ~ /^processor\/shim\//) {
    # Preloaded into every program: only the runtime ABI and its own code.
    if (target != "" && target !~ /^processor\/(abi|shim)\//)
      return "processor/shim/ may include only processor/abi/ and processor/shim/"
  } else if (file ~ /^processor\/abi\//) {
    # Shared by the shim and the runtime: self-contained but for the ids.
    if (target != "" && target != "include/remora/types.h" && target !~ /^processor\/abi\//)
      return "processor/abi/ may include only remora/types.h (and system headers)"
  } else if (file ~ /^processor\/pcache\//) {
    if (target ~ /^(processor\/(runtime|sim|abi|shim)|net|memory-node|managers|cli)\//)
      return "processor/pcache/ may not include " area(target)
    if (target == "include/remora/transport.h")
      return "processor/pcache/ knows nothing of transports (remora/transport.h)"
    if (sys ~ /^(unistd\.h|fcntl\.h|poll\.h|syscall\.h|sys\/.*|linux\/.*|asm\/.*)$/)
      return "processor/pcache/ makes no system calls (<" sys ">)"
  } else if (file ~ /^processor\/runtime\//) {
    if (target ~ /^(processor\/(sim|shim)|memory-node|cli)\//)
      return "processor/runtime/ may not include " area(target)
  } else if (file ~ /^processor\/sim\//) {
    if (target ~ /^(processor\/runtime|net)\//)
      return "processor/sim/ may not include " area(target)
  } else if (file ~ /^net\//) {
    if (target ~ /^(processor|memory-node|managers|cli)\//)
      return "net/ may not include " area(target)
  } else if (file ~ /^memory-node\//) {
    if (target ~ /^(processor|managers|cli)\//)
      return "memory-node/ may not include " area(target)
  } else if (file ~ /^managers\//) {
    if (target ~ /^(processor|memory-node|cli)\//)
      return "managers/ may not include " area(target)
  } else if (file ~ /^stats\//) {
    if (target != "" && target !~ /^(stats|common|include)\//)
      return "stats/ may include only stats/, common/ and include/"
  } else if (file ~ /^metrics\//) {
    if (target != "" && target !~ /^(metrics|stats|common|include)\//)
      return "metrics/ may include only metrics/, stats/, common/ and include/"
  } else if (file ~ /^common\//) {
    if (target != "" && target !~ /^(common|include)\//)
      return "common/ may include only common/ and include/"
  } else if (file ~ /^include\//) {
    if (target != "" && target !~ /^include\//)
      return "include/ may include only include/"
  }
  return ""
}
{
  file = $0; sub(/:.*/, "", file)
  rest = substr($0, length(file) + 2)
  line = rest; sub(/:.*/, "", line)
  text = substr(rest, length(line) + 2)
  files[file] = 1
  if (!match(text, /include[ \t]*["<][^">]+[">]/)) next
  inc = substr(text, RSTART, RLENGTH)
  sub(/^include[ \t]*/, "", inc)
  quoted = substr(inc, 1, 1) == "\""
  name = substr(inc, 2, length(inc) - 2)
  target = resolve(file, quoted, name)
  why = forbidden(file, target, target == "" ? name : "")
  if (why != "") { print file ":" line ": " why ": " text; bad++ }
}
END {
  if (bad) { print "layering: " bad " violation(s) (rules: tests/layering_check.sh)"; exit 1 }
  n = 0; for (f in files) n++
  print "layering: " n " files with includes, no violations"
}'

# Checks the tree in the current directory; prints the violations and fails
# if there are any.
check_tree() {
  local -a dirs=()
  for d in processor net memory-node managers common stats metrics include; do
    [[ -d $d ]] && dirs+=("$d")
  done
  { grep -rnE '^[[:space:]]*#[[:space:]]*include' --include='*.h' --include='*.hh' \
      --include='*.hpp' --include='*.c' --include='*.cc' --include='*.cpp' --include='*.inc' \
      "${dirs[@]}" || true; } | LC_ALL=C sort -t: -k1,1 -k2,2n | awk "$RULES"
}

# Builds a tree with one violation per rule next to allowed includes of the
# same files, and checks that exactly the violations are reported.
self_test() {
  local tmp out expected
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' RETURN
  mkdir -p "$tmp"/{processor/{shim,abi,pcache,sim,runtime},net/rdma,memory-node,managers} \
           "$tmp"/{include/remora,common,stats,metrics}
  cat >"$tmp/processor/shim/a.cc" <<'EOF'
#include <sys/mman.h>
#include "processor/abi/uffd.h"
#include "processor/shim/shim.h"
#include "shim.h"
#include "remora/types.h"
EOF
  cat >"$tmp/processor/abi/a.h" <<'EOF'
#include <linux/userfaultfd.h>
#include "remora/types.h"
#include "remora/status.h"
EOF
  cat >"$tmp/processor/pcache/a.cc" <<'EOF'
#include <vector>
#include "processor/pcache/pcache.h"
#include "common/size.h"
#include "remora/stats.h"
#include "remora/transport.h"
#include "processor/runtime/fault.h"
#include "../abi/uffd.h"
#include "net/wire.h"
  #  include <unistd.h>
#include <sys/mman.h>
EOF
  cat >"$tmp/processor/sim/a.cc" <<'EOF'
#include "processor/pcache/pcache.h"
#include "processor/runtime/fault.h"
#include "net/wire.h"
EOF
  cat >"$tmp/net/rdma/a.cc" <<'EOF'
#include <unistd.h>
#include "net/rdma/rdma_verbs.h"
#include "rdma_wire.h"
#include "remora/transport.h"
#include "memory-node/page_store.h"
#include "processor/pcache/pcache.h"
EOF
  cat >"$tmp/memory-node/a.cc" <<'EOF'
#include "net/wire.h"
#include "memory-node/page_store.h"
#include "processor/runtime/fault.h"
EOF
  cat >"$tmp/managers/a.cc" <<'EOF'
#include "net/wire.h"
#include "memory-node/page_store.h"
EOF
  cat >"$tmp/processor/runtime/a.cc" <<'EOF'
#include <sys/mman.h>
#include "processor/abi/uffd.h"
#include "processor/pcache/pcache.h"
#include "net/transports.h"
#include "processor/sim/pcache_sim.h"
#include "memory-node/page_store.h"
EOF
  cat >"$tmp/common/a.cc" <<'EOF'
#include "common/log.h"
#include "remora/status.h"
#include "stats/x.h"
EOF
  cat >"$tmp/stats/a.cc" <<'EOF'
#include "remora/stats.h"
#include "common/log.h"
#include "net/wire.h"
EOF
  cat >"$tmp/metrics/a.cc" <<'EOF'
#include "metrics/prometheus_text.h"
#include "remora/stats.h"
#include "common/log.h"
#include "processor/runtime/processor_manager.h"
EOF
  cat >"$tmp/include/remora/a.h" <<'EOF'
#include "remora/types.h"
#include "types.h"
#include "common/log.h"
EOF
  expected='common/a.cc:3
include/remora/a.h:3
managers/a.cc:2
memory-node/a.cc:3
metrics/a.cc:4
net/rdma/a.cc:5
net/rdma/a.cc:6
processor/abi/a.h:3
processor/pcache/a.cc:10
processor/pcache/a.cc:5
processor/pcache/a.cc:6
processor/pcache/a.cc:7
processor/pcache/a.cc:8
processor/pcache/a.cc:9
processor/runtime/a.cc:5
processor/runtime/a.cc:6
processor/shim/a.cc:5
processor/sim/a.cc:2
processor/sim/a.cc:3
stats/a.cc:3'
  out=$(cd "$tmp" && check_tree) && {
    echo "self-test: the violations tree passed"; return 1
  }
  echo "$out"
  if [[ $(grep -oE '^[a-z/-]+/a\.(cc|h):[0-9]+' <<<"$out" | LC_ALL=C sort) != "$expected" ]]; then
    echo "self-test: expected violations at:"
    echo "$expected"
    return 1
  fi
  echo "self-test: every rule fired where expected"
}

if [[ ${1:-} == --self-test ]]; then
  self_test
else
  cd "${1:-$(dirname "$0")/..}"
  check_tree
fi
