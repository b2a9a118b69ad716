#!/usr/bin/env bash
# /metrics end to end: a real memory node and a real processor manager, each
# with --metrics-listen 127.0.0.1:0, scraped with curl while a real program
# runs under the manager; every scrape must pass `promtool check metrics`,
# the counters must move between scrapes taken while the program runs, and
# the program's output must equal its native run's. Then `remora run
# --metrics-listen` (the embedded manager) the same way, and the endpoint's
# refusals (other paths, other methods, a bad address).
#
#   metrics_test.sh REMORA_BIN MEM_STRESS_BIN
set -euo pipefail
REMORA=$1
PROG=$2
for tool in curl promtool; do
  command -v "$tool" >/dev/null || { echo "FAIL: $tool not installed (scripts/install-deps.sh)"; exit 1; }
done

tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; for f in "$tmp"/*.err; do echo "--- $f" >&2; tail -n 20 "$f" >&2; done; exit 1; }

# The URL a daemon logs on stderr ("... metrics on http://HOST:PORT/metrics").
wait_url() {
  local log=$1 url=""
  for _ in $(seq 1 300); do
    url=$(grep -o 'http://[^ ]*/metrics' "$log" | head -n 1 || true)
    [[ -n $url ]] && { echo "$url"; return 0; }
    sleep 0.1
  done
  fail "no metrics URL in $log"
}

# Scrapes $1 into $2 and checks it with promtool (lint included).
scrape() {
  curl -fsS --max-time 10 "$1" -o "$2" || fail "curl $1"
  local lint
  if ! lint=$(promtool check metrics <"$2" 2>&1); then
    fail "promtool check metrics on $1: $lint"
  fi
}

# The value of sample $2 in scrape $1 (0 if absent).
value() { awk -v n="$2" '$1 == n { v = $2 } END { print v + 0 }' "$1"; }

native=$("$PROG" 48 2 2)

# --- a memory node and a processor manager, both exporting ---------------
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$tmp/secret"
chmod 600 "$tmp/secret"
# The memory node takes it from its configuration file (as under systemd),
# the processor manager from the command line.
cat >"$tmp/memnode.toml" <<EOF
[memory_node]
listen = "127.0.0.1:0"
capacity = "512M"
secret_file = "$tmp/secret"
metrics_listen = "127.0.0.1:0"
EOF
"$REMORA" memory-node --config "$tmp/memnode.toml" >"$tmp/memnode.out" 2>"$tmp/memnode.err" &
pids+=($!)
for _ in $(seq 1 300); do grep -q ready "$tmp/memnode.out" && break; sleep 0.1; done
tcp=$(sed -n 's/.*ready tcp=\([^ ]*\).*/\1/p' "$tmp/memnode.out")
[[ -n $tcp ]] || fail "memory node not ready"
mn_url=$(wait_url "$tmp/memnode.err")

"$REMORA" processor --pcache 4M --ways 8 --memory-node "$tcp" --transport tcp \
  --secret-file "$tmp/secret" --socket "$tmp/proc.sock" --metrics-listen 127.0.0.1:0 \
  >"$tmp/proc.out" 2>"$tmp/proc.err" &
pids+=($!)
for _ in $(seq 1 300); do grep -q ready "$tmp/proc.out" && break; sleep 0.1; done
grep -q ready "$tmp/proc.out" || fail "processor manager not ready"
pr_url=$(wait_url "$tmp/proc.err")
echo "memory node $tcp, metrics $mn_url; processor metrics $pr_url"

scrape "$pr_url" "$tmp/p0"
scrape "$mn_url" "$tmp/m0"
grep -q '^# TYPE remora_nr_pgfault_total counter$' "$tmp/p0" || fail "no nr_pgfault counter"
grep -q '^# TYPE remora_pcache_lines_used gauge$' "$tmp/p0" || fail "no pcache_lines_used gauge"
grep -q '^# TYPE remora_memnode_pages_used gauge$' "$tmp/m0" || fail "no memnode_pages_used gauge"

# A real program (48 MiB written and verified three times by two threads)
# through a 4 MiB pcache; scrape both daemons while it runs.
"$REMORA" run --processor "$tmp/proc.sock" --quiet -- "$PROG" 48 2 2 >"$tmp/run.out" \
  2>"$tmp/run.err" &
run_pid=$!
pids+=($run_pid)
i=0
while kill -0 "$run_pid" 2>/dev/null; do
  i=$((i + 1))
  scrape "$pr_url" "$tmp/p$i"
  scrape "$mn_url" "$tmp/m$i"
  sleep 0.3
done
wait "$run_pid" || fail "remora run exited with $?"
[[ $(cat "$tmp/run.out") == "$native" ]] || fail "output differs from the native run"
# Scrapes 1..i-1 were certainly taken while the program ran (the last one
# may have raced its exit).
((i >= 3)) || fail "the program ended before two scrapes could be taken during it ($i)"
f1=$(value "$tmp/p1" remora_nr_pgfault_total)
f2=$(value "$tmp/p$((i - 1))" remora_nr_pgfault_total)
w1=$(value "$tmp/m1" remora_memnode_pages_written_total)
w2=$(value "$tmp/m$((i - 1))" remora_memnode_pages_written_total)
echo "during the run ($i scrapes): nr_pgfault $f1 -> $f2, memnode_pages_written $w1 -> $w2"
((f2 > f1)) || fail "nr_pgfault did not move between scrapes during the run"
((w2 > w1)) || fail "memnode_pages_written did not move between scrapes during the run"
scrape "$pr_url" "$tmp/pend"
ev=$(value "$tmp/pend" remora_nr_pcache_eviction_succeed_total)
cnt=$(value "$tmp/pend" remora_pgfault_service_seconds_count)
inf=$(awk '$1 == "remora_pgfault_service_seconds_bucket{le=\"+Inf\"}" { print $2 }' "$tmp/pend")
echo "after the run: evictions $ev, fault service histogram count $cnt (+Inf bucket $inf)"
((ev > 0)) || fail "no eviction: the pcache did not force any"
((cnt > 0)) && [[ $cnt == "$inf" ]] || fail "histogram _count $cnt and +Inf bucket $inf"

# --- refusals -----------------------------------------------------------
base=${pr_url%/metrics}
[[ $(curl -s -o /dev/null -w '%{http_code}' "$base/") == 404 ]] || fail "GET / is not 404"
[[ $(curl -s -o /dev/null -w '%{http_code}' -d x=1 "$pr_url") == 405 ]] || fail "POST is not 405"
head -c 4096 /dev/zero >"$tmp/body"
[[ $(curl -s -o /dev/null -w '%{http_code}' --data-binary @"$tmp/body" "$pr_url") == 413 ]] ||
  fail "a 4 KiB request body was not refused with 413"
if timeout 30 "$REMORA" memory-node --listen 127.0.0.1:0 --secret-file "$tmp/secret" \
  --metrics-listen "${base#http://}" >/dev/null 2>"$tmp/busy.err"; then
  fail "a memory node started on a metrics port already in use"
fi
grep -q "metrics-listen" "$tmp/busy.err" || fail "no error naming --metrics-listen"

# --- remora run's embedded manager --------------------------------------
"$REMORA" run --pcache 4M --metrics-listen 127.0.0.1:0 --quiet -- "$PROG" 48 2 2 \
  >"$tmp/emb.out" 2>"$tmp/emb.err" &
emb_pid=$!
pids+=($emb_pid)
emb_url=$(wait_url "$tmp/emb.err")
j=0
while kill -0 "$emb_pid" 2>/dev/null; do
  # The server goes away with the manager once the program is done.
  curl -fsS --max-time 10 "$emb_url" -o "$tmp/e$((j + 1))" 2>/dev/null || break
  j=$((j + 1))
  promtool check metrics <"$tmp/e$j" >/dev/null 2>&1 || fail "promtool on the embedded manager"
  sleep 0.3
done
wait "$emb_pid" || fail "embedded remora run exited with $?"
[[ $(cat "$tmp/emb.out") == "$native" ]] || fail "embedded run: output differs from native"
((j >= 2)) || fail "embedded run: fewer than two scrapes ($j)"
e1=$(value "$tmp/e1" remora_nr_pgfault_total)
e2=$(value "$tmp/e$j" remora_nr_pgfault_total)
echo "embedded manager ($j scrapes): nr_pgfault $e1 -> $e2"
((e2 > e1)) || fail "embedded run: nr_pgfault did not move"
echo "PASS"
