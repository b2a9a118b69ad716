#!/bin/bash
# Runs inside a guest of the emulated cluster (chroot into the host's root,
# read-only): the verbs transport tests of one role. Every check prints
# "GUEST PASS name" or "GUEST FAIL name"; qemu-rdma.sh counts them.
#
#   guest-tests.sh single BUILD_DIR IP - 0            memory node + processor here
#   guest-tests.sh mem    BUILD_DIR IP PEER_IP N      memory node N of the cluster file
#   guest-tests.sh proc   BUILD_DIR IP1,.. PEER1,.. 0 processor of the three-node cluster
#
# The four-guest cluster: every memory node boots from its entry in the one
# cluster file (BUILD_DIR/cluster-cache/cluster.toml, written by
# qemu-rdma.sh). Memory node guests then wait for orders from the processor
# on KILL_PORT ("kill": SIGKILL the daemon now; "done": stop it and end),
# since only the processor knows when its runs are under way.
set -u
ROLE=$1 BUILD=$2 IP=$3 PEER=$4 NODE=${5:-0}
REMORA=$BUILD/remora
SECRET=$BUILD/cluster-cache/secret
CLUSTER=$BUILD/cluster-cache/cluster.toml
PORT=7400
TIMEOUT_MS=3000
KILL_PORT=7401
SRC_DIR=$(cd "$(dirname "$0")/../.." && pwd)
export HOME=/tmp

pass() { echo "GUEST PASS $1"; }
fail() { echo "GUEST FAIL $1${2:+: $2}"; }

start_node() {  # memory node on $1 (single guest) or node $NODE of the cluster file
  if [ "$ROLE" = mem ]; then
    "$REMORA" memory-node --cluster "$CLUSTER" --node-id "$NODE" >/tmp/memnode.out 2>/tmp/memnode.log &
  else
    "$REMORA" memory-node --transport rdma --device rxe0 --listen "$1:$PORT" --capacity 256M \
      --secret-file "$SECRET" --node-id 7 >/tmp/memnode.out 2>/tmp/memnode.log &
  fi
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

# Memory node guest: serves orders on KILL_PORT until "done" (at most 900 s).
# Prints what it did: "killed" after a SIGKILL of the daemon, "done".
serve_orders() {
  /usr/bin/python3 -c "
import os, signal, socket
pid = $NODE_PID
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('$IP', $KILL_PORT)); s.listen(4); s.settimeout(900)
while True:
    c, _ = s.accept()
    cmd = c.makefile().readline().strip()
    if cmd == 'kill':
        os.kill(pid, signal.SIGKILL)
        print('killed', flush=True)
        c.sendall(b'killed\n')
    elif cmd == 'done':
        print('done', flush=True)
        c.sendall(b'bye\n')
        break
    c.close()
"
}

# Processor: an order to the memory node guest at $1; prints its answer.
order() {  # peer, kill|done
  "$PYTHON" -c 'import socket, sys, time
for _ in range(100):
    try:
        c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=60)
        break
    except OSError:
        time.sleep(0.2)
else:
    sys.exit(0)
c.sendall(sys.argv[3].encode() + b"\n")
print(c.makefile().readline().strip())' "$1" "$KILL_PORT" "$2"
}

json_get() {  # stats json file, metric names...: their values (0 if absent)
  "$PYTHON" -c 'import json, sys
d = json.load(open(sys.argv[1]))
def g(k):
    for sec in ("counters", "gauges"):
        v = d.get(sec, {}).get(k)
        if isinstance(v, dict): v = v.get("value")
        if isinstance(v, int): return v
    return 0
print(" ".join(str(g(k)) for k in sys.argv[2:]))' "$@"
}

# Pages memory node $1 (its id) has in use, from `remora stats --cluster`.
node_used() {
  "$REMORA" stats --cluster "$CLUSTER" --json --timeout-ms 5000 2>/dev/null | "$PYTHON" -c 'import json, sys
for n in json.load(sys.stdin)["nodes"]:
    if n["id"] == int(sys.argv[1]): print(n.get("used_pages", -1))' "$1"
}

# A TCP relay on $1 (host:port) to $2 (host:port): every connection through
# it is cut (both sides closed) on SIGUSR1. Prints "cut N" per cut. Run in
# the background, $! is the relay itself (exec), the one to signal.
relay() {
  exec "$PYTHON" -c '
import signal, socket, sys, threading
lh, lp = sys.argv[1].rsplit(":", 1); th, tp = sys.argv[2].rsplit(":", 1)
pairs, mu = [], threading.Lock()
def pipe(a, b):
    try:
        while True:
            d = a.recv(65536)
            if not d: break
            b.sendall(d)
    except OSError:
        pass
    for x in (a, b):
        try: x.shutdown(socket.SHUT_RDWR)
        except OSError: pass
def cut(*_):
    with mu:
        for a, b in pairs:
            for x in (a, b):
                try: x.shutdown(socket.SHUT_RDWR)
                except OSError: pass
        print("cut", len(pairs), flush=True)
        pairs.clear()
signal.signal(signal.SIGUSR1, cut)
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((lh, int(lp))); s.listen(16)
while True:
    c, _ = s.accept()
    try:
        t = socket.create_connection((th, int(tp)), timeout=10)
    except OSError:
        c.close(); continue
    t.settimeout(None)
    for x in (c, t):
        x.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    with mu: pairs.append((c, t))
    for a, b in ((c, t), (t, c)):
        threading.Thread(target=pipe, args=(a, b), daemon=True).start()
' "$1" "$2"
}

# A connection to a memory node that breaks while both ends live, over
# RDMA: the pool reaches node 3 through a relay in this guest, which cuts
# its control connection twice while a program runs with one replica. The
# processor reconnects with its incarnation and node 3 keeps the frames of
# its address spaces (memory-node/rdma_service.h, "residence"): the output
# is the native run's, no node is given up, nothing is re-replicated. (With
# the spaces gone with the connection, node 3 would count as restarted and
# the run would stop with its regions lost.)
cluster_reconnect() {
  local cmd rc used out run_pid relay_pid cuts=0
  local cfg=/tmp/cluster-relay.toml via="${PEERS[2]%.2}.1:7502"
  cmd=("$PROGS/mem_stress" 3 2 2)
  if ! "${cmd[@]}" >/tmp/reconnect-native.out; then fail cluster-reconnect "native run failed"; return; fi
  sed "s/\"${PEERS[2]}:$PORT\"/\"$via\"/" "$CLUSTER" >$cfg
  relay "$via" "${PEERS[2]}:$PORT" >/tmp/relay.out 2>&1 &
  relay_pid=$!
  sleep 1
  timeout 600 "$REMORA" run --cluster $cfg --replicas 1 --timeout-ms 30000 --pcache 1M \
    --ways 8 --victim 32 --stats-json /tmp/reconnect.json --quiet -- "${cmd[@]}" \
    >/tmp/reconnect.out 2>/tmp/reconnect.err &
  run_pid=$!
  for round in 1 2; do
    for _ in $(seq 300); do
      kill -0 $run_pid 2>/dev/null || break
      used=$(node_used 3)
      [ "${used:-0}" -ge $(( 64 * round )) ] 2>/dev/null && break
      sleep 0.5
    done
    kill -0 $run_pid 2>/dev/null || break
    kill -USR1 $relay_pid && cuts=$(( cuts + 1 ))
    echo "guest: reconnect: node 3 holds ${used:-?} pages: cut its connections (cut $cuts)"
    sleep 2
  done
  wait $run_pid
  rc=$?
  kill $relay_pid 2>/dev/null
  grep -E "lost|reconnect|answers again|failed" /tmp/reconnect.err | head -10 | sed 's/^/guest:   /'
  local names="cluster_nodes_lost cluster_node3_reconnects cluster_rereplicated_regions rdma_write_ops"
  out=$(json_get /tmp/reconnect.json $names 2>&1)
  echo "guest: reconnect: exit $rc, $cuts cuts; $names = $out"
  set -- $out
  echo "guest: reconnect: the relay says: $(tr '\n' ' ' </tmp/relay.out)"
  if [ $rc -eq 0 ] && [ $cuts -eq 2 ] && [ -s /tmp/reconnect.out ] &&
     cmp -s /tmp/reconnect-native.out /tmp/reconnect.out; then
    pass cluster-rdma-reconnect-output-identical
  else
    fail cluster-rdma-reconnect-output-identical "exit $rc after $cuts cuts: $(tail -2 /tmp/reconnect.err)"
  fi
  if [ "${1:-1}" -eq 0 ] && [ "${2:-0}" -ge 2 ] && [ "${3:-1}" -eq 0 ] && [ "${4:-0}" -gt 0 ]; then
    pass cluster-rdma-reconnect-keeps-the-nodes-pages
  else
    fail cluster-rdma-reconnect-keeps-the-nodes-pages "nodes_lost reconnects rereplicated rdma_writes = $out"
  fi
}

# The three-node pool over RDMA with two replicas: a real program under a
# pcache of a third of the memory it writes, memory node 2's daemon
# SIGKILLed while it runs. The output must be the native run's, byte for
# byte, the exit status 0, node 2 given up and its regions re-replicated
# onto nodes 1 and 3 until no region is short of a copy, and the surviving
# nodes back to no pages in use after the program's exit.
cluster_kill() {
  local cmd rss pc rc t0 used out run_pid
  cmd=("$PROGS/mem_stress" 3 2 2)
  rss=$("$PYTHON" -c 'import resource, subprocess, sys
r = subprocess.run(sys.argv[1:], stdout=open("/tmp/cluster-native.out", "w"))
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss if r.returncode == 0 else -1)' "${cmd[@]}")
  if [ "${rss:--1}" -le 0 ]; then fail cluster-r2-kill "native run failed"; return; fi
  # A third of the 3 MiB it writes: most of its RSS is thread stacks and
  # the allocator's, which a quarter of RSS would leave room for.
  pc=1
  echo "guest: cluster: mem_stress native max RSS ${rss} KiB, pcache ${pc} MiB, 3 memory nodes, 2 replicas"
  t0=$(date +%s)
  # A long request timeout: an emulated guest on a loaded host can go
  # silent for seconds, and an RDMA connection that times out loses its
  # spaces (the node would count as restarted).
  timeout 600 "$REMORA" run --cluster "$CLUSTER" --replicas 2 --timeout-ms 30000 --pcache "${pc}M" \
    --ways 8 --victim 32 --stats-json /tmp/cluster.json --quiet -- "${cmd[@]}" \
    >/tmp/cluster.out 2>/tmp/cluster.err &
  run_pid=$!
  # Mid-run: once node 2 holds a couple of hundred of the program's pages
  # (early enough that re-replication ends before the program does).
  for _ in $(seq 300); do
    kill -0 $run_pid 2>/dev/null || break
    used=$(node_used 2)
    [ "${used:-0}" -ge 128 ] 2>/dev/null && break
    sleep 0.5
  done
  echo "guest: cluster: memory node 2 holds ${used:-?} pages after $(( $(date +%s) - t0 )) s: killing its daemon"
  out=$(order "${PEERS[1]}" kill)
  if [ "$out" = killed ] && kill -0 $run_pid 2>/dev/null; then
    pass cluster-node-killed-mid-run
  else
    fail cluster-node-killed-mid-run "order answered '$out'; program still running: $(kill -0 $run_pid 2>/dev/null && echo yes || echo no)"
  fi
  wait $run_pid
  rc=$?
  echo "guest: cluster: remora run exit $rc after $(( $(date +%s) - t0 )) s; last messages:"
  grep -E "lost|reconnect|not answering|answers again|failed" /tmp/cluster.err | head -20 | sed 's/^/guest:   /'
  tail -3 /tmp/cluster.err | sed 's/^/guest:   /'
  if [ $rc -eq 0 ]; then pass cluster-r2-kill-exit-0; else fail cluster-r2-kill-exit-0 "exit $rc: $(tail -2 /tmp/cluster.err)"; fi
  if [ -s /tmp/cluster.out ] && cmp -s /tmp/cluster-native.out /tmp/cluster.out; then
    pass cluster-r2-kill-output-identical
  else
    fail cluster-r2-kill-output-identical "output differs from the native run: $(head -c 200 /tmp/cluster.out)"
  fi
  local names="cluster_nodes_lost cluster_node2_state cluster_rereplicated_regions cluster_rereplicated_pages
    cluster_regions_degraded cluster_regions_lost cluster_read_failovers rdma_read_ops rdma_write_ops
    nr_pcache_fill_from_memory cluster_node1_pages_written cluster_node3_pages_written"
  out=$(json_get /tmp/cluster.json $names 2>&1)
  echo "guest: cluster:" $names
  echo "guest: cluster: = $out"
  set -- $out
  if [ "${1:-0}" -eq 1 ] && [ "${2:-0}" -eq 2 ] && [ "${3:-0}" -gt 0 ] && [ "${4:-0}" -gt 0 ] &&
     [ "${5:-1}" -eq 0 ] && [ "${6:-1}" -eq 0 ]; then
    pass cluster-r2-kill-rereplicated
  else
    fail cluster-r2-kill-rereplicated "nodes_lost node2_state regions pages degraded lost = ${1:-} ${2:-} ${3:-} ${4:-} ${5:-} ${6:-}"
  fi
  if [ "${8:-0}" -gt 0 ] && [ "${9:-0}" -gt 0 ] && [ "${10:-0}" -gt 0 ] && [ "${11:-0}" -gt 0 ] &&
     [ "${12:-0}" -gt 0 ]; then
    pass cluster-r2-kill-evicted-over-rdma
  else
    fail cluster-r2-kill-evicted-over-rdma "no RDMA traffic or no fill from memory ($out)"
  fi
  "$REMORA" stats --cluster "$CLUSTER" --timeout-ms 5000 2>&1 | sed 's/^/guest:   /'
  out="$(node_used 1) $(node_used 3)"
  if [ "$out" = "0 0" ]; then
    pass cluster-survivors-empty-after-exit
  else
    fail cluster-survivors-empty-after-exit "pages in use on nodes 1 and 3: $out"
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
    orders=$(serve_orders)
    if echo "$orders" | grep -q killed; then
      pass "memory-node-$NODE-killed-on-order"
    elif kill -0 $NODE_PID 2>/dev/null; then
      pass "memory-node-$NODE-served-to-the-end"
      kill $NODE_PID
    else
      fail "memory-node-$NODE-served-to-the-end" "the daemon died unasked: $(tail -3 /tmp/memnode.log)"
    fi
    echo "$orders" | grep -q done || fail "memory-node-$NODE-orders" "no 'done' from the processor"
    ;;
  proc)
    read -r -a PEERS <<<"$(echo "$PEER" | tr ',' ' ')"
    for p in "${PEERS[@]}"; do
      for _ in $(seq 1200); do
        (exec 3<>"/dev/tcp/$p/$PORT") 2>/dev/null && break
        sleep 0.1
      done
    done
    # One memory node across a link: the single-node checks against node 1.
    check_rw "${PEERS[0]}"
    check_others "${PEERS[0]}"
    check_isolation "${PEERS[0]}"
    if e2e_available; then
      e2e wordcount "${PEERS[0]}"
      e2e pywork "${PEERS[0]}"
      cluster_reconnect
      cluster_kill
    else
      fail e2e-available "remora run, the shim, tests/programs or python3 missing"
    fi
    # One transport to a node whose daemon dies: node 3, once the pool is done with it.
    "$REMORA" check-transport --transport rdma --address "${PEERS[2]}:$PORT" --secret-file "$SECRET" \
      --threads 4 --pages 64 --duration-s 300 --timeout-ms $TIMEOUT_MS >/tmp/kill.out 2>/tmp/kill.err &
    CHECK_PID=$!
    wait_connected
    sleep 2
    [ "$(order "${PEERS[2]}" kill)" = killed ] || echo "guest: memory node 3 did not confirm the kill"
    wait $CHECK_PID
    expect_clean_failure $? /tmp/kill.err
    for p in "${PEERS[@]}"; do order "$p" done >/dev/null; done
    ;;
esac
exit 0
