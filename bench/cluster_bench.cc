// cluster_bench: what the memory-node pool costs and how fast it recovers,
// with three real memory-node processes on this machine (TCP).
//
//   cluster_bench [PAGES]      default 16384 (64 MiB)
//
//  1. write-back cost: PAGES pages written back in batches of 16 (the
//     victim cache's flush size) with 1, 2 and 3 replicas; the ratio to one
//     replica is what replication adds to every dirty eviction;
//  2. failover: two replicas, one node SIGKILLed, then in every region a
//     fault's work (a dirty eviction of 16 pages and a fill of 4): the time
//     from the death to the first such fault completed, and to the first
//     that had to fail over from the dead node (a write-back completes on
//     the surviving replica and a read goes to it, without waiting for the
//     node to be given up);
//  3. re-replication: the time until the node is given up (the reconnect
//     deadline, 1 s) and every region has two replicas again, in pages and
//     MiB per second.
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
  // A fault's work in every region, right after the kill: a dirty
  // eviction (one batch of 16 write-backs) and a fill (reads of four
  // consecutive pages: reads start at different replicas by address, so
  // some start at the dead node). Regions with a replica on the dead node
  // must complete on the other one; the first such "fault" to complete
  // after the death is what a program waits.
  const std::uint64_t region_pages = (4 << 20) / kPageSize;
  const std::uint64_t regions = std::max<std::uint64_t>(1, pages / region_pages);
  std::vector<char> buf(16 * kPageSize, 'z'), page(kPageSize);
  std::vector<std::uint64_t> uvas(16);
  auto failovers = [&] {
    const auto snap = stats.Snapshot();
    return snap.counters.at("cluster_read_failovers") + snap.counters.at("cluster_write_failovers");
  };
  ::kill(pool.nodes[1]->pid(), SIGKILL);
  const auto death = Clock::now();
  double first_fault = -1, first_failover = -1, worst_fault = 0, worst_write = 0, worst_read = 0;
  for (std::uint64_t r = 0; r < regions; ++r) {
    const std::uint64_t first_page = r * region_pages;
    const auto t0 = Clock::now();
    for (std::uint64_t k = 0; k < 16; ++k) uvas[k] = kBase + (first_page + 16 + k) * kPageSize;
    Status st = c->WritePages(asid, uvas, buf.data());
    if (!st.ok()) {
      std::fprintf(stderr, "write after the kill: %s\n", st.ToString().c_str());
      return 1;
    }
    const auto t1 = Clock::now();
    for (std::uint64_t k = 0; k < 4; ++k) {
      st = c->ReadPage(asid, kBase + (first_page + k) * kPageSize, page.data());
      if (!st.ok() || page[0] != 'y') {
        std::fprintf(stderr, "read after the kill: %s\n", st.ToString().c_str());
        return 1;
      }
    }
    const auto t2 = Clock::now();
    worst_write = std::max(worst_write, Seconds(t0, t1));
    worst_read = std::max(worst_read, Seconds(t1, t2));
    worst_fault = std::max(worst_fault, Seconds(t0, t2));
    if (first_fault < 0) first_fault = Seconds(death, t2);
    if (first_failover < 0 && failovers() > 0) first_failover = Seconds(death, t2);
  }
  const std::uint64_t failed_over = failovers();
  // Re-replication: until the node is given up (the reconnect deadline)
  // and every region has two copies again.
  auto lost = [&] { return stats.Snapshot().counters.at("cluster_nodes_lost"); };
  const auto r0 = Clock::now();
  while ((lost() == 0 || c->RepairsPending() > 0) && Seconds(r0, Clock::now()) < 120)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  const double repair = Seconds(death, Clock::now());
  const auto snap = stats.Snapshot();
  const double copied = static_cast<double>(snap.counters.at("cluster_rereplicated_pages"));
  const auto& h = snap.histograms.at("cluster_rereplicate_ns");
  std::printf("node SIGKILLed, replicas 2, %llu regions of 4 MiB:\n",
              static_cast<unsigned long long>(regions));
  std::printf(
      "  death -> next completed fault (16 write-backs + 4 reads in one region): %.1f ms; -> first "
      "such fault that failed over from the dead node: %.1f ms (%llu failovers)\n",
      first_fault * 1e3, first_failover * 1e3, static_cast<unsigned long long>(failed_over));
  std::printf(
      "  slowest fault %.1f ms (write-backs %.1f ms, reads %.1f ms); reconnect deadline 1000 ms\n",
      worst_fault * 1e3, worst_write * 1e3, worst_read * 1e3);
  std::printf(
      "  re-replicated %lld regions, %.0f pages in %.2f s after the death: %.0f pages/s (%.1f "
      "MiB/s while copying: %.1f ms per region)\n",
      static_cast<long long>(snap.counters.at("cluster_rereplicated_regions")), copied, repair,
      copied / std::max(repair, 1e-9),
      copied * 4096 / 1048576.0 / (static_cast<double>(h.sum) / 1e9), h.Mean() / 1e6);
  std::printf("  read failovers %lld, write failovers %lld, nodes lost %lld\n",
              static_cast<long long>(snap.counters.at("cluster_read_failovers")),
              static_cast<long long>(snap.counters.at("cluster_write_failovers")),
              static_cast<long long>(snap.counters.at("cluster_nodes_lost")));
  (void)c->DestroySpace(asid);
  return 0;
}

}  // namespace
}  // namespace remora

int main(int argc, char** argv) { return remora::Main(argc, argv); }
