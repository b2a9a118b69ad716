#!/bin/bash
# Runs inside a guest of the emulated cluster (chroot into the host's root,
# read-only): the verbs transport tests of one role. Every check prints
# "GUEST PASS name" or "GUEST FAIL name"; qemu-rdma.sh counts them.
#
#   guest-tests.sh single BUILD_DIR IP -        memory node + processor here
#   guest-tests.sh mem    BUILD_DIR IP PEER_IP  memory node for the other guest
#   guest-tests.sh proc   BUILD_DIR IP PEER_IP  processor against the other guest
set -u
ROLE=$1 BUILD=$2 IP=$3 PEER=$4
REMORA=$BUILD/remora
SECRET=$BUILD/cluster-cache/secret
PORT=7400
TIMEOUT_MS=3000
KILL_PORT=7401
SRC_DIR=$(cd "$(dirname "$0")/../.." && pwd)
export HOME=/tmp

pass() { echo "GUEST PASS $1"; }
fail() { echo "GUEST FAIL $1${2:+: $2}"; }

start_node() {  # memory node on $1, log in /tmp/memnode.log
  "$REMORA" memory-node --transport rdma --device rxe0 --listen "$1:$PORT" --capacity 256M \
    --secret-file "$SECRET" --node-id 7 >/tmp/memnode.out 2>/tmp/memnode.log &
  NODE_PID=$!
  for _ in $(seq 600); do
    grep -q "ready" /tmp/memnode.out 2>/dev/null && break
    kill -0 $NODE_PID 2>/dev/null || break
    sleep 0.1
  done
  if grep -q "rdma=rxe0" /tmp/memnode.out 2>/dev/null; then
    pass memory-node-serves-rdma
  else
    fail memory-node-serves-rdma "$(tail -3 /tmp/memnode.log)"
    return 1
  fi
}

# ---- end to end: real programs under `remora run --transport rdma` ----
PROGS=$BUILD/tests/programs
PYTHON=/usr/bin/python3
e2e_available() {
  "$REMORA" run --help >/dev/null 2>&1 && [ -x "$PROGS/wordcount" ] && [ -x "$PROGS/gentext" ] &&
    [ -f "$BUILD/libremora_shim.so" ] && [ -x "$PYTHON" ]
}

# Runs a program natively (measuring its peak RSS), then under remora run
# with a pcache of at most a quarter of that over RDMA; the outputs must be
# identical, pages must have come back from the memory node, and the
# transport must have moved pages both ways.
e2e() {  # name, memory node
  local name=$1 node=$2 cmd rss pc out share
  case $name in
    wordcount)
      [ -f /tmp/input.txt ] || "$PROGS/gentext" /tmp/input.txt 1M 7 >/dev/null
      cmd=("$PROGS/wordcount" /tmp/input.txt 4)
      share=4 ;;
    pywork)
      # Python's RSS counts the interpreter's file-backed pages, which stay
      # local: a sixth of it keeps the pcache near a quarter of the memory
      # that actually goes remote (and emulation time reasonable).
      cmd=("$PYTHON" "$SRC_DIR/tests/programs/pywork.py" --mb 1)
      share=6 ;;
  esac
  rss=$("$PYTHON" -c 'import resource, subprocess, sys
r = subprocess.run(sys.argv[1:], stdout=open("/tmp/native.out", "w"))
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss if r.returncode == 0 else -1)' "${cmd[@]}")
  if [ "${rss:--1}" -le 0 ]; then fail "e2e-$name" "native run failed"; return; fi
  pc=1
  while [ $(( pc * 2 * 1024 * share )) -le "$rss" ]; do pc=$(( pc * 2 )); done
  echo "guest: $name native max RSS ${rss} KiB, pcache ${pc} MiB"
  if ! timeout 240 "$REMORA" run --memory-node "$node:$PORT" --transport rdma --secret-file "$SECRET" \
        --pcache "${pc}M" --ways 8 --victim 32 --stats-json /tmp/$name.json --quiet -- "${cmd[@]}" \
        >/tmp/remote.out 2>/tmp/remote.err; then
    fail "e2e-$name" "remora run failed: $(tail -2 /tmp/remote.err)"; return
  fi
  if ! cmp -s /tmp/native.out /tmp/remote.out; then
    fail "e2e-$name" "output differs from the native run"; return
  fi
  out=$("$PYTHON" -c 'import json, sys
d = json.load(open(sys.argv[1])); c = d.get("counters", d)
def g(k): return int(c.get(k, 0)) if not isinstance(c.get(k), dict) else int(c[k].get("value", 0))
print(g("rdma_read_ops"), g("rdma_read_bytes"), g("rdma_write_ops"), g("rdma_write_bytes"), g("nr_pcache_fill_from_memory"))' /tmp/$name.json 2>&1)
  echo "guest: $name under remora run over RDMA: rdma_read_ops rdma_read_bytes rdma_write_ops rdma_write_bytes nr_pcache_fill_from_memory = $out"
  set -- $out
  if [ "${1:-0}" -gt 0 ] && [ "${3:-0}" -gt 0 ] && [ "${5:-0}" -gt 0 ]; then
    pass "e2e-$name-rdma-output-identical"
  else
    fail "e2e-$name-rdma-output-identical" "no RDMA READ/WRITE counted ($out)"
  fi
}

# Concurrent page READ/WRITE over RDMA, every byte compared.
check_rw() {  # $1 = memory node address
  local out
  if out=$("$REMORA" check-transport --transport rdma --address "$1:$PORT" --secret-file "$SECRET" \
             --threads 4 --pages 256 --rounds 4 --batch 16 --timeout-ms 10000 --stats 2>/tmp/check.err); then
    echo "$out"
    if echo "$out" | grep -q "rdma_read_ops=[1-9]" && echo "$out" | grep -q "rdma_write_ops=[1-9]"; then
      pass concurrent-read-write-byte-exact
    else
      fail concurrent-read-write-byte-exact "no RDMA READ/WRITE counted: $out"
    fi
  else
    echo "$out"; cat /tmp/check.err
    fail concurrent-read-write-byte-exact "$(tail -1 /tmp/check.err)"
  fi
}

# Processors reach only their own pages: refused mappings, and foreign rkeys
# refused by the device (tests/cluster/rdma_isolation_check.cc).
check_isolation() {
  local out
  out=$("$BUILD/tests/rdma_isolation_check" "$1:$PORT" "$SECRET" rxe0 2>&1)
  echo "$out"
  if echo "$out" | grep -q "isolation: 0 failed"; then
    pass rdma-isolation-between-processors
  else
    fail rdma-isolation-between-processors "$(echo "$out" | grep FAIL | head -2 | tr '\n' ' ')"
  fi
}

# A plain TCP client of the same memory node is still served.
check_others() {
  local out
  if out=$("$REMORA" check-transport --transport tcp --address "$1:$PORT" --secret-file "$SECRET" \
             --threads 2 --pages 64 --rounds 2 2>&1); then
    pass tcp-client-beside-rdma
  else
    fail tcp-client-beside-rdma "$(echo "$out" | tail -1)"
  fi
}

# Waits (at most 60 s) until the background check-transport run is attached.
wait_connected() {
  for _ in $(seq 600); do
    grep -q "connected to" /tmp/kill.out 2>/dev/null && return
    kill -0 $CHECK_PID 2>/dev/null || return
    sleep 0.1
  done
}

# The memory node dies mid-run: the processor must fail with a transport
# error within the timeout, not hang and not accept a wrong page (exit 3).
expect_clean_failure() {  # $1 = rc, $2 = stderr file
  local rc=$1 err=$2 ms
  ms=$(sed -n "s/.*[( ]\([0-9][0-9]*\) ms after the last successful request.*/\1/p" "$err" | head -1)
  if [ "$rc" -eq 1 ] && grep -Eq "disconnected|timeout" "$err" && [ -n "$ms" ] &&
     [ "$ms" -le $((TIMEOUT_MS + 3000)) ]; then
    pass killed-memory-node-clear-error
    echo "guest: error ${ms} ms after the last good request: $(grep FAILED "$err")"
  else
    fail killed-memory-node-clear-error "rc=$rc ms=$ms $(tail -2 "$err")"
  fi
}

case $ROLE in
  single)
    start_node "$IP" || exit 0
    check_rw "$IP"
    check_others "$IP"
    check_isolation "$IP"
    "$REMORA" check-transport --transport rdma --address "$IP:$PORT" --secret-file "$SECRET" \
      --threads 4 --pages 64 --duration-s 300 --timeout-ms $TIMEOUT_MS >/tmp/kill.out 2>/tmp/kill.err &
    CHECK_PID=$!
    wait_connected
    sleep 4
    kill -9 $NODE_PID
    for _ in $(seq $(( (TIMEOUT_MS + 20000) / 100 ))); do
      kill -0 $CHECK_PID 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 $CHECK_PID 2>/dev/null; then
      fail killed-memory-node-clear-error "processor still running long after the kill (hang)"
      kill -9 $CHECK_PID
    else
      wait $CHECK_PID
      expect_clean_failure $? /tmp/kill.err
    fi
    ;;
  mem)
    start_node "$IP" || exit 0
    # The processor guest asks for the kill (connects to KILL_PORT) once its
    # last run is under way; this side cannot know when that is.
    /usr/bin/python3 -c "
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('$IP', $KILL_PORT)); s.listen(1); s.settimeout(900)
s.accept()" 2>/dev/null
    sleep 6
    kill -9 $NODE_PID
    pass memory-node-killed-mid-run
    ;;
  proc)
    for _ in $(seq 1200); do
      (exec 3<>"/dev/tcp/$PEER/$PORT") 2>/dev/null && break
      sleep 0.1
    done
    check_rw "$PEER"
    check_others "$PEER"
    check_isolation "$PEER"
    if e2e_available; then
      e2e wordcount "$PEER"
      e2e pywork "$PEER"
    fi
    "$REMORA" check-transport --transport rdma --address "$PEER:$PORT" --secret-file "$SECRET" \
      --threads 4 --pages 64 --duration-s 300 --timeout-ms $TIMEOUT_MS >/tmp/kill.out 2>/tmp/kill.err &
    CHECK_PID=$!
    wait_connected
    for _ in $(seq 100); do
      (exec 3<>"/dev/tcp/$PEER/$KILL_PORT") 2>/dev/null && break
      sleep 0.2
    done
    wait $CHECK_PID
    expect_clean_failure $? /tmp/kill.err
    ;;
esac
exit 0
