// cluster_bench: what the memory-node pool costs and how fast it recovers,
// with three real memory-node processes on this machine (TCP).
//
//   cluster_bench [PAGES]      default 16384 (64 MiB)
//
//  1. write-back cost: PAGES pages written back in batches of 16 (the
//     victim cache's flush size) with 1, 2 and 3 replicas; the ratio to one
//     replica is what replication adds to every dirty eviction;
//  2. failover: two replicas, one node SIGKILLed; the time to the next
//     completed read of a page whose first replica was that node (what the
//     next fault waits) and to the next completed write-back to a region it
//     held (which waits for the reconnect deadline, 1 s, to give it up);
//  3. re-replication: the time until every region has two replicas again,
//     in pages and MiB per second.
//
// Timings on a shared machine are noisy: compare the ratios of one run.
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#include "cli/local_memory_node.h"
#include "managers/cluster_transport.h"
#include "remora/stats.h"

namespace remora {
namespace {

using Clock = std::chrono::steady_clock;
constexpr std::uint64_t kBase = 0x10000000;

double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

struct Pool {
  std::vector<std::unique_ptr<LocalMemoryNode>> nodes;
  bool Start() {
    for (int i = 0; i < 3; ++i) {
      LocalMemoryNodeOptions o;
      o.remora_binary = REMORA_BIN;
      o.capacity = "1G";
      o.extra_args = {"--log-level", "error", "--node-id", std::to_string(i + 1)};
      Status st;
      nodes.push_back(LocalMemoryNode::Start(o, &st));
      if (!nodes.back()) {
        std::fprintf(stderr, "memory node: %s\n", st.ToString().c_str());
        return false;
      }
    }
    return true;
  }
  std::unique_ptr<ClusterTransport> Connect(int replicas, StatsRegistry* stats) {
    ClusterOptions o;
    for (std::size_t i = 0; i < nodes.size(); ++i) {
      ClusterNodeSpec s;
      s.id = static_cast<NodeId>(i + 1);
      s.address = nodes[i]->tcp_address();
      o.config.nodes.push_back(s);
      o.secrets.push_back(nodes[i]->ClientOptions(TransportKind::kTcp).secret);
    }
    o.config.policy.replicas = replicas;
    o.config.policy.region_bytes = 4 << 20;
    o.timeout_ms = 10000;
    o.stats = stats;
    std::unique_ptr<ClusterTransport> c;
    Status st = ClusterTransport::Connect(o, &c);
    if (!st.ok()) std::fprintf(stderr, "cluster: %s\n", st.ToString().c_str());
    return c;
  }
};

bool WriteAll(Transport* t, Asid asid, std::uint64_t pages, char tag) {
  std::vector<char> buf(16 * kPageSize, tag);
  std::vector<std::uint64_t> uvas(16);
  for (std::uint64_t p = 0; p < pages; p += 16) {
    for (std::uint64_t k = 0; k < 16; ++k) uvas[k] = kBase + (p + k) * kPageSize;
    Status st = t->WritePages(asid, uvas, buf.data());
    if (!st.ok()) {
      std::fprintf(stderr, "write: %s\n", st.ToString().c_str());
      return false;
    }
  }
  return true;
}

int Main(int argc, char** argv) {
  const std::uint64_t pages = argc > 1 ? std::strtoull(argv[1], nullptr, 0) / 16 * 16 : 16384;
  Pool pool;
  if (!pool.Start()) return 1;

  // 1. Write-back cost by replication factor: five rounds, the factors
  // interleaved in each, so load on the machine hits them alike; medians.
  std::printf("write-back of %llu pages (batches of 16) over 3 memory nodes (tcp), 5 rounds\n",
              static_cast<unsigned long long>(pages));
  std::vector<std::unique_ptr<StatsRegistry>> registries;
  std::vector<std::unique_ptr<ClusterTransport>> clusters;
  for (int r = 1; r <= 3; ++r) {
    registries.push_back(std::make_unique<StatsRegistry>());
    clusters.push_back(pool.Connect(r, registries.back().get()));
    if (!clusters.back()) return 1;
    const Asid asid = MakeAsid(1, static_cast<std::uint32_t>(r));
    Transport* c = clusters.back().get();
    if (!c->CreateSpace(asid).ok() || !c->RegisterRange(asid, kBase, pages * kPageSize).ok())
      return 1;
    if (!WriteAll(c, asid, pages, 'w')) return 1;  // placement and first copies
  }
  std::vector<std::vector<double>> secs(3);
  for (int round = 0; round < 5; ++round) {
    for (int r = 1; r <= 3; ++r) {
      const auto t0 = Clock::now();
      if (!WriteAll(clusters[r - 1].get(), MakeAsid(1, static_cast<std::uint32_t>(r)), pages,
                    static_cast<char>('a' + round)))
        return 1;
      secs[r - 1].push_back(Seconds(t0, Clock::now()));
    }
  }
  double base = 0;
  for (int r = 1; r <= 3; ++r) {
    auto v = secs[r - 1];
    std::sort(v.begin(), v.end());
    const double s = v[v.size() / 2];
    if (r == 1) base = s;
    std::printf("  replicas %d: median %.3f s, %.1f us/page, %.2fx of one replica\n", r, s,
                s * 1e6 / static_cast<double>(pages), s / base);
    (void)clusters[r - 1]->DestroySpace(MakeAsid(1, static_cast<std::uint32_t>(r)));
  }
  clusters.clear();

  // 2. Failover and 3. re-replication.
  StatsRegistry stats;
  auto c = pool.Connect(2, &stats);
  if (!c) return 1;
  const Asid asid = MakeAsid(1, 9);
  if (!c->CreateSpace(asid).ok() || !c->RegisterRange(asid, kBase, pages * kPageSize).ok())
    return 1;
  if (!WriteAll(c.get(), asid, pages, 'y')) return 1;
  std::vector<char> page(kPageSize);
  ::kill(pool.nodes[1]->pid(), SIGKILL);
  const auto death = Clock::now();
  // Reads spread over the replicas by address: of the first 64 pages some
  // start at the dead node.
  double first_read = -1, worst_read = 0;
  for (std::uint64_t p = 0; p < 64; ++p) {
    const auto t0 = Clock::now();
    Status st = c->ReadPage(asid, kBase + p * kPageSize, page.data());
    if (!st.ok() || page[0] != 'y') {
      std::fprintf(stderr, "read after the kill: %s\n", st.ToString().c_str());
      return 1;
    }
    if (first_read < 0) first_read = Seconds(death, Clock::now());
    worst_read = std::max(worst_read, Seconds(t0, Clock::now()));
  }
  if (!WriteAll(c.get(), asid, 16 * 64, 'z')) return 1;  // 4 MiB: regions on the dead node too
  const double write_wait = Seconds(death, Clock::now());
  const auto r0 = Clock::now();
  while (c->RepairsPending() > 0 && Seconds(r0, Clock::now()) < 120)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  const double repair = Seconds(death, Clock::now());
  const auto snap = stats.Snapshot();
  const double copied = static_cast<double>(snap.counters.at("cluster_rereplicated_pages"));
  const auto& h = snap.histograms.at("cluster_rereplicate_ns");
  std::printf("node SIGKILLed, replicas 2:\n");
  std::printf("  first read served %.1f ms after the death; slowest of 64 reads %.1f ms\n",
              first_read * 1e3, worst_read * 1e3);
  std::printf("  first write-backs done %.0f ms after the death (reconnect deadline 1000 ms)\n",
              write_wait * 1e3);
  std::printf(
      "  re-replicated %lld regions, %.0f pages in %.2f s after the death: %.0f pages/s (%.1f "
      "MiB/s while copying: %.1f ms per region)\n",
      static_cast<long long>(snap.counters.at("cluster_rereplicated_regions")), copied, repair,
      copied / std::max(repair, 1e-9),
      copied * 4096 / 1048576.0 / (static_cast<double>(h.sum) / 1e9), h.Mean() / 1e6);
  std::printf("  read failovers %lld, nodes lost %lld\n",
              static_cast<long long>(snap.counters.at("cluster_read_failovers")),
              static_cast<long long>(snap.counters.at("cluster_nodes_lost")));
  (void)c->DestroySpace(asid);
  return 0;
}

}  // namespace
}  // namespace remora

int main(int argc, char** argv) { return remora::Main(argc, argv); }
