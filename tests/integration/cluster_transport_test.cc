// The cluster transport against three real `remora memory-node` processes:
// a pool larger than any node, two replicas of every page surviving a node's
// SIGKILL (re-replicated until every page is on two live nodes again, which
// is checked by asking each node directly), a stall that is waited out, the
// only copy lost with one replica (an error, never zeros), and fork across
// nodes. Every node's pages return to zero once the spaces are destroyed.
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <map>
#include <memory>
#include <thread>
#include <utility>
#include <vector>

#include "cuttable_relay.h"
#include "harness.h"
#include "managers/cluster_transport.h"
#include "net/socket_util.h"
#include "remora/stats.h"

namespace remora::testing {
namespace {

using namespace std::chrono_literals;

constexpr std::uint64_t kBase = 0x10000000;

// A page's expected content: its address, the space and a version in every word.
void Fill(char* page, Asid asid, std::uint64_t uva, std::uint64_t version) {
  auto* w = reinterpret_cast<std::uint64_t*>(page);
  for (std::size_t i = 0; i < kPageSize / 8; ++i)
    w[i] = (uva + i * 8) ^ (asid << 40) ^ (version << 56) ^ 0x9e3779b97f4a7c15ull;
}

class ClusterTransportTest : public ::testing::Test {
 protected:
  void StartNodes(const std::string& capacity, int n = 3) {
    for (int i = 0; i < n; ++i) {
      MemoryNodeProcessOptions o;
      o.capacity = capacity;
      o.secret = "cluster-secret-of-memory-node-number-" + std::to_string(i);  // its own
      o.extra_args = {"--log-level", "warn", "--node-id", std::to_string(i + 1)};
      nodes_.push_back(std::make_unique<MemoryNodeProcess>(o));
      ASSERT_TRUE(nodes_.back()->started());
    }
  }

  std::unique_ptr<ClusterTransport> Connect(TransportKind kind, int replicas,
                                            std::uint64_t region = 1 << 20, int timeout_ms = 2000,
                                            int stall_deadline_ms = 30000,
                                            int reconnect_deadline_ms = 500) {
    ClusterOptions o;
    for (std::size_t i = 0; i < nodes_.size(); ++i) {
      ClusterNodeSpec s;
      s.id = static_cast<NodeId>(i + 1);
      s.kind = kind;
      s.address = kind == TransportKind::kShm ? nodes_[i]->shm_path() : nodes_[i]->tcp_address();
      if (via_.count(i)) s.address = via_[i];
      o.config.nodes.push_back(s);
      o.secrets.push_back(nodes_[i]->secret());
    }
    o.config.policy.replicas = replicas;
    o.config.policy.region_bytes = region;
    o.config.policy.stall_deadline_ms = stall_deadline_ms;
    o.config.policy.reconnect_deadline_ms = reconnect_deadline_ms;
    o.timeout_ms = timeout_ms;
    o.stats = &stats_;
    std::unique_ptr<ClusterTransport> c;
    Status st = ClusterTransport::Connect(o, &c);
    EXPECT_TRUE(st.ok()) << st.ToString();
    return c;
  }

  // A direct connection to node i (not through the cluster).
  std::unique_ptr<Transport> Direct(std::size_t i) {
    return nodes_[i]->Connect(TransportKind::kTcp, 1);
  }

  std::uint64_t UsedPages(std::size_t i) {
    auto t = Direct(i);
    MemoryNodeInfo info;
    EXPECT_TRUE(t && t->Info(&info).ok());
    return info.used_pages;
  }

  std::int64_t Counter(const std::string& name) {
    auto snap = stats_.Snapshot();
    auto it = snap.counters.find(name);
    EXPECT_NE(it, snap.counters.end()) << name;
    return it == snap.counters.end() ? -1 : it->second;
  }

  // A space with 64 MiB registered and its first `pages` pages written
  // (version 1).
  void NewSpaceWithPages(Transport* t, Asid asid, std::uint64_t pages) {
    ASSERT_TRUE(t->CreateSpace(asid).ok());
    ASSERT_TRUE(t->RegisterRange(asid, kBase, 64ull << 20).ok());
    WritePages(t, asid, pages, 1);
  }

  void WritePages(Transport* t, Asid asid, std::uint64_t pages, std::uint64_t version) {
    std::vector<char> buf(16 * kPageSize);
    for (std::uint64_t p = 0; p < pages; p += 16) {
      std::vector<std::uint64_t> uvas;
      for (std::uint64_t k = p; k < std::min(pages, p + 16); ++k) {
        uvas.push_back(kBase + k * kPageSize);
        Fill(buf.data() + (k - p) * kPageSize, asid, uvas.back(), version);
      }
      Status st = t->WritePages(asid, uvas, buf.data());
      ASSERT_TRUE(st.ok()) << st.ToString();
    }
  }

  void CheckPages(Transport* t, Asid asid, std::uint64_t pages, std::uint64_t version) {
    std::vector<char> got(kPageSize), want(kPageSize);
    for (std::uint64_t p = 0; p < pages; ++p) {
      const std::uint64_t uva = kBase + p * kPageSize;
      bool present = false;
      Status st = t->ReadPage(asid, uva, got.data(), &present);
      ASSERT_TRUE(st.ok()) << st.ToString();
      ASSERT_TRUE(present) << std::hex << uva;
      Fill(want.data(), asid, uva, version);
      ASSERT_EQ(std::memcmp(got.data(), want.data(), kPageSize), 0) << std::hex << uva;
    }
  }

  StatsRegistry stats_;
  std::vector<std::unique_ptr<MemoryNodeProcess>> nodes_;
  std::map<std::size_t, std::string> via_;  // node index -> a relay's address (tcp)
};

// 20 MiB of pages over three 8 MiB nodes, regions of 1 MiB: no node could
// hold them, the pool does; placement never overfills a node.
TEST_F(ClusterTransportTest, PoolHoldsMoreThanAnyNode) {
  for (TransportKind kind : {TransportKind::kTcp, TransportKind::kShm}) {
    SCOPED_TRACE(kind == TransportKind::kTcp ? "tcp" : "shm");
    nodes_.clear();
    StartNodes("8M");
    auto c = Connect(kind, 1);
    ASSERT_TRUE(c);
    const Asid asid = MakeAsid(1, 1);
    const std::uint64_t pages = (20ull << 20) / kPageSize;
    ASSERT_NO_FATAL_FAILURE(NewSpaceWithPages(c.get(), asid, pages));
    CheckPages(c.get(), asid, pages, 1);
    std::uint64_t total = 0;
    for (std::size_t i = 0; i < 3; ++i) {
      const std::uint64_t used = UsedPages(i);
      EXPECT_LE(used, 2048u) << "node " << i;
      EXPECT_GT(used, 0u) << "node " << i << " got nothing";
      total += used;
    }
    EXPECT_EQ(total, pages);
    // A page never written reads as zeros, in a placed region and outside.
    std::vector<char> buf(kPageSize, 1);
    bool present = true;
    ASSERT_TRUE(c->ReadPage(asid, kBase + (40ull << 20), buf.data(), &present).ok());
    EXPECT_FALSE(present);
    EXPECT_EQ(buf[0], 0);
    // Past the pool's capacity: a clear error, not a silent loss.
    Status st = Status::Ok();
    std::vector<char> page(kPageSize, 7);
    for (std::uint64_t p = pages; p < pages + 2048 && st.ok(); ++p)
      st = c->WritePage(asid, kBase + p * kPageSize, page.data());
    EXPECT_EQ(st.code(), Code::kOutOfMemory) << st.ToString();
    ASSERT_TRUE(c->DestroySpace(asid).ok());
    for (std::size_t i = 0; i < 3; ++i) EXPECT_EQ(UsedPages(i), 0u) << "node " << i;
  }
}

// A connection that breaks while its node lives on (a reset, a network
// fault): the link reconnects, the node knows this processor by its
// incarnation and keeps its spaces, and nothing is lost or copied again —
// with one replica, where a loss would be final.
TEST_F(ClusterTransportTest, ABrokenConnectionResumesWithTheNodesData) {
  StartNodes("64M");
  CuttableRelay relay(nodes_[1]->tcp_address());
  via_[1] = relay.address();
  auto c = Connect(TransportKind::kTcp, 1);
  ASSERT_TRUE(c);
  const Asid asid = MakeAsid(1, 1);
  const std::uint64_t pages = (12ull << 20) / kPageSize;
  ASSERT_NO_FATAL_FAILURE(NewSpaceWithPages(c.get(), asid, pages));
  const std::uint64_t on_node2 = UsedPages(1);
  ASSERT_GT(on_node2, 0u) << "no region was placed behind the relay";
  for (std::uint64_t round = 2; round <= 4; ++round) {
    SCOPED_TRACE(round);
    relay.Cut();
    CheckPages(c.get(), asid, pages, round - 1);  // node 2's pages read after a reconnect
    relay.Cut();
    WritePages(c.get(), asid, pages, round);
    CheckPages(c.get(), asid, pages, round);
  }
  EXPECT_GE(relay.accepted(), 7);
  EXPECT_GE(Counter("cluster_node2_reconnects"), 6);
  EXPECT_EQ(Counter("cluster_nodes_lost"), 0);
  EXPECT_EQ(Counter("cluster_rereplicated_regions"), 0);
  EXPECT_EQ(UsedPages(1), on_node2);
  auto direct = Direct(1);
  ASSERT_TRUE(direct);
  std::string json;
  ASSERT_TRUE(direct->RemoteStatsJson(&json).ok());
  StatsSnapshot snap;
  ASSERT_TRUE(StatsSnapshot::FromJson(json, &snap).ok());
  EXPECT_GE(snap.Counter("memnode_resumes"), 6);
  EXPECT_EQ(snap.Counter("memnode_takeovers"), 0);
  ASSERT_TRUE(c->DestroySpace(asid).ok());
  for (std::size_t i = 0; i < 3; ++i) EXPECT_EQ(UsedPages(i), 0u) << "node " << i;
}

// Two replicas; one node SIGKILLed. Reads and writes go on at once on the
// other replica, and re-replication puts every page on two live nodes again
// — checked node by node.
TEST_F(ClusterTransportTest, SigkillWithTwoReplicasReReplicates) {
  StartNodes("64M");
  auto c = Connect(TransportKind::kTcp, 2);
  ASSERT_TRUE(c);
  const Asid asid = MakeAsid(1, 1);
  const std::uint64_t pages = (12ull << 20) / kPageSize;
  ASSERT_NO_FATAL_FAILURE(NewSpaceWithPages(c.get(), asid, pages));
  std::uint64_t total = 0;
  for (std::size_t i = 0; i < 3; ++i) total += UsedPages(i);
  EXPECT_EQ(total, 2 * pages) << "every page twice";

  ASSERT_EQ(::kill(nodes_[1]->pid(), SIGKILL), 0);
  CheckPages(c.get(), asid, pages, 1);  // reads fail over at once
  WritePages(c.get(), asid, pages / 2, 2);
  // The regions written since have left the dead node already; the others
  // leave it when it is given up (the reconnect deadline).
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while ((Counter("cluster_nodes_lost") == 0 || c->RepairsPending() > 0) &&
         std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(50ms);
  ASSERT_EQ(c->RepairsPending(), 0u);
  EXPECT_EQ(Counter("cluster_nodes_lost"), 1);
  EXPECT_GT(Counter("cluster_rereplicated_regions"), 0);
  EXPECT_GT(Counter("cluster_rereplicated_pages"), 0);
  EXPECT_EQ(Counter("cluster_regions_degraded"), 0);
  EXPECT_EQ(Counter("cluster_node2_state"), 2);

  // Every page on exactly the two survivors, current version, read directly.
  auto a = Direct(0), b = Direct(2);
  ASSERT_TRUE(a && b);
  std::vector<char> got(kPageSize), want(kPageSize);
  for (std::uint64_t p = 0; p < pages; ++p) {
    const std::uint64_t uva = kBase + p * kPageSize;
    Fill(want.data(), asid, uva, p < pages / 2 ? 2 : 1);
    for (Transport* t : {a.get(), b.get()}) {
      bool present = false;
      Status st = t->ReadPage(asid, uva, got.data(), &present);
      ASSERT_TRUE(st.ok()) << st.ToString();
      ASSERT_TRUE(present) << std::hex << uva;
      ASSERT_EQ(std::memcmp(got.data(), want.data(), kPageSize), 0) << std::hex << uva;
    }
  }
  ASSERT_TRUE(c->DestroySpace(asid).ok());
  EXPECT_EQ(UsedPages(0), 0u);
  EXPECT_EQ(UsedPages(2), 0u);
}

// Two replicas, one node SIGKILLed, its reconnect deadline far away (60 s):
// write-backs into its regions do not wait for it to be given up. Each
// completes on the surviving replica, the dead one leaves the region (it
// missed the write), and re-replication gives every region two copies again
// while the dead node is still only "reconnecting".
TEST_F(ClusterTransportTest, WriteBacksDoNotWaitForADeadNode) {
  StartNodes("64M");
  auto c = Connect(TransportKind::kTcp, 2, 1 << 20, 2000, 30000, 60000);
  ASSERT_TRUE(c);
  const Asid asid = MakeAsid(1, 1);
  const std::uint64_t pages = (8ull << 20) / kPageSize;
  ASSERT_NO_FATAL_FAILURE(NewSpaceWithPages(c.get(), asid, pages));
  ASSERT_GT(Counter("cluster_node2_regions"), 0);

  ASSERT_EQ(::kill(nodes_[1]->pid(), SIGKILL), 0);
  const auto t0 = std::chrono::steady_clock::now();
  WritePages(c.get(), asid, pages, 2);
  const auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_LT(took, 30s) << "write-backs waited for the dead node";
  EXPECT_EQ(Counter("cluster_nodes_lost"), 0) << "the node was given up before the writes ended";
  EXPECT_GT(Counter("cluster_write_failovers"), 0);
  EXPECT_EQ(Counter("cluster_node2_regions"), 0) << "every region was written: none keeps node 2";
  CheckPages(c.get(), asid, pages, 2);

  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (c->RepairsPending() > 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(50ms);
  ASSERT_EQ(c->RepairsPending(), 0u);
  EXPECT_EQ(Counter("cluster_regions_degraded"), 0);
  EXPECT_GT(Counter("cluster_rereplicated_regions"), 0);
  EXPECT_EQ(Counter("cluster_nodes_lost"), 0);
  EXPECT_EQ(Counter("cluster_node2_state"), 1);  // still reconnecting

  // Every page current on both survivors, read directly.
  auto a = Direct(0), b = Direct(2);
  ASSERT_TRUE(a && b);
  std::vector<char> got(kPageSize), want(kPageSize);
  for (std::uint64_t p = 0; p < pages; ++p) {
    const std::uint64_t uva = kBase + p * kPageSize;
    Fill(want.data(), asid, uva, 2);
    for (Transport* t : {a.get(), b.get()}) {
      bool present = false;
      Status st = t->ReadPage(asid, uva, got.data(), &present);
      ASSERT_TRUE(st.ok()) << st.ToString();
      ASSERT_TRUE(present) << std::hex << uva;
      ASSERT_EQ(std::memcmp(got.data(), want.data(), kPageSize), 0) << std::hex << uva;
    }
  }
}

// Range changes and fork do not wait for a dead node either; a node that
// missed them and answers again (here: the same process, still holding its
// old pages) is not trusted — it is given up and used as a new node — so no
// node ever holds a page that disagrees with what the program did.
TEST_F(ClusterTransportTest, ChangesSkipADeadNodeThatIsNotTrustedAgain) {
  StartNodes("64M");
  CuttableRelay relay(nodes_[1]->tcp_address());
  via_[1] = relay.address();
  auto c = Connect(TransportKind::kTcp, 2, 1 << 20, 2000, 30000, 60000);
  ASSERT_TRUE(c);
  const Asid asid = MakeAsid(1, 1), child = MakeAsid(1, 2);
  const std::uint64_t pages = (8ull << 20) / kPageSize, half = pages / 2;
  ASSERT_NO_FATAL_FAILURE(NewSpaceWithPages(c.get(), asid, pages));
  ASSERT_GT(Counter("cluster_node2_regions"), 0);

  relay.Refuse();  // node 2 looks dead: its connection breaks, reconnects are refused
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(c->DiscardRange(asid, kBase, half * kPageSize).ok());
  ASSERT_TRUE(c->ForkSpace(asid, child).ok());
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 10s) << "a change waited for the dead node";
  EXPECT_GT(Counter("cluster_changes_skipped_on_dead_nodes"), 0);
  EXPECT_EQ(Counter("cluster_nodes_lost"), 0);

  relay.Reopen();  // the same node process answers again, its old pages intact
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while ((Counter("cluster_nodes_lost") == 0 || c->RepairsPending() > 0) &&
         std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(50ms);
  EXPECT_EQ(Counter("cluster_nodes_lost"), 1) << "node 2 missed changes and was trusted";
  ASSERT_EQ(c->RepairsPending(), 0u);
  EXPECT_EQ(Counter("cluster_regions_degraded"), 0);

  // Through the cluster and on every node directly: discarded pages are
  // zero (absent), the rest as written, in the parent and in the child.
  std::vector<std::unique_ptr<Transport>> direct;
  for (std::size_t i = 0; i < 3; ++i) direct.push_back(Direct(i));
  std::vector<char> got(kPageSize), want(kPageSize);
  for (Asid a : {asid, child}) {
    for (std::uint64_t p = 0; p < pages; ++p) {
      const std::uint64_t uva = kBase + p * kPageSize;
      Fill(want.data(), asid, uva, 1);
      bool present = false;
      ASSERT_TRUE(c->ReadPage(a, uva, got.data(), &present).ok());
      ASSERT_EQ(present, p >= half) << std::hex << a << " " << uva;
      if (present) {
        ASSERT_EQ(std::memcmp(got.data(), want.data(), kPageSize), 0) << std::hex << uva;
      }
      for (std::size_t i = 0; i < 3; ++i) {
        ASSERT_TRUE(direct[i]);
        Status st = direct[i]->ReadPage(a, uva, got.data(), &present);
        if (!st.ok() || !present) continue;  // not placed there
        ASSERT_GE(p, half) << "node " << i + 1 << " holds a discarded page " << std::hex << uva;
        ASSERT_EQ(std::memcmp(got.data(), want.data(), kPageSize), 0)
            << "node " << i + 1 << std::hex << " " << uva;
      }
    }
  }
  direct.clear();
  ASSERT_TRUE(c->DestroySpace(child).ok());
  ASSERT_TRUE(c->DestroySpace(asid).ok());
  for (std::size_t i = 0; i < 3; ++i) EXPECT_EQ(UsedPages(i), 0u) << "node " << i;
}

// A node stopped (SIGSTOP) for 3 s with requests timing out after 1 s:
// reads fail over, writes wait for it, nothing is lost.
TEST_F(ClusterTransportTest, StallIsWaitedOut) {
  StartNodes("64M");
  auto c = Connect(TransportKind::kTcp, 2, 1 << 20, 1000, 30000);
  ASSERT_TRUE(c);
  const Asid asid = MakeAsid(1, 1);
  const std::uint64_t pages = (6ull << 20) / kPageSize;
  ASSERT_NO_FATAL_FAILURE(NewSpaceWithPages(c.get(), asid, pages));
  ASSERT_EQ(::kill(nodes_[0]->pid(), SIGSTOP), 0);
  std::thread resume([&] {
    std::this_thread::sleep_for(3s);
    ::kill(nodes_[0]->pid(), SIGCONT);
  });
  CheckPages(c.get(), asid, pages, 1);
  WritePages(c.get(), asid, pages, 2);
  resume.join();
  CheckPages(c.get(), asid, pages, 2);
  EXPECT_EQ(Counter("cluster_nodes_lost"), 0);
  std::uint64_t total = 0;
  for (std::size_t i = 0; i < 3; ++i) total += UsedPages(i);
  EXPECT_EQ(total, 2 * pages);
  ASSERT_TRUE(c->DestroySpace(asid).ok());
  for (std::size_t i = 0; i < 3; ++i) EXPECT_EQ(UsedPages(i), 0u);
}

// One replica: the pages that were only on the dead node read as an error
// naming the loss, never as zeros; the others still read.
TEST_F(ClusterTransportTest, OnlyCopyLostIsAnErrorNotZeros) {
  StartNodes("64M");
  auto c = Connect(TransportKind::kTcp, 1);
  ASSERT_TRUE(c);
  const Asid asid = MakeAsid(1, 1);
  const std::uint64_t pages = (12ull << 20) / kPageSize;
  ASSERT_NO_FATAL_FAILURE(NewSpaceWithPages(c.get(), asid, pages));
  ASSERT_GT(UsedPages(1), 0u);
  ASSERT_EQ(::kill(nodes_[1]->pid(), SIGKILL), 0);
  int lost = 0, fine = 0;
  std::vector<char> got(kPageSize), want(kPageSize);
  for (std::uint64_t p = 0; p < pages; p += 64) {
    const std::uint64_t uva = kBase + p * kPageSize;
    bool present = false;
    Status st = c->ReadPage(asid, uva, got.data(), &present);
    if (!st.ok()) {
      ++lost;
      EXPECT_NE(st.message().find("lost"), std::string::npos) << st.ToString();
      continue;
    }
    ++fine;
    ASSERT_TRUE(present);
    Fill(want.data(), asid, uva, 1);
    ASSERT_EQ(std::memcmp(got.data(), want.data(), kPageSize), 0);
  }
  EXPECT_GT(lost, 0);
  EXPECT_GT(fine, 0);
  EXPECT_GT(Counter("cluster_regions_lost"), 0);
}

// Fork across nodes: the child shares the parent's pages on every node
// (stored once), each side's writes stay its own, destroy frees everywhere.
TEST_F(ClusterTransportTest, ForkAcrossNodes) {
  StartNodes("64M");
  auto c = Connect(TransportKind::kTcp, 2);
  ASSERT_TRUE(c);
  const Asid parent = MakeAsid(1, 1), child = MakeAsid(1, 2);
  ASSERT_TRUE(c->CreateSpace(parent).ok());
  ASSERT_TRUE(c->RegisterRange(parent, kBase, 64ull << 20).ok());
  const std::uint64_t pages = (8ull << 20) / kPageSize;
  WritePages(c.get(), parent, pages, 1);
  std::uint64_t before = 0;
  for (std::size_t i = 0; i < 3; ++i) before += UsedPages(i);
  ASSERT_TRUE(c->ForkSpace(parent, child).ok());
  std::uint64_t after = 0;
  for (std::size_t i = 0; i < 3; ++i) after += UsedPages(i);
  EXPECT_EQ(after, before) << "fork copies nothing";
  // The child sees the parent's pages (made with the parent's asid).
  std::vector<char> got(kPageSize), want(kPageSize);
  for (std::uint64_t p = 0; p < pages; p += 97) {
    ASSERT_TRUE(c->ReadPage(child, kBase + p * kPageSize, got.data()).ok());
    Fill(want.data(), parent, kBase + p * kPageSize, 1);
    ASSERT_EQ(std::memcmp(got.data(), want.data(), kPageSize), 0);
  }
  WritePages(c.get(), child, pages / 2, 3);
  CheckPages(c.get(), parent, pages, 1);
  CheckPages(c.get(), child, pages / 2, 3);
  // A page shared by both, written once for both.
  std::vector<char> page(kPageSize);
  const std::uint64_t uva = kBase + (pages - 1) * kPageSize;
  Fill(page.data(), parent, uva, 9);
  const Asid both[] = {parent, child};
  ASSERT_TRUE(c->WritePageShared(both, uva, page.data()).ok());
  for (Asid a : both) {
    ASSERT_TRUE(c->ReadPage(a, uva, got.data()).ok());
    EXPECT_EQ(std::memcmp(got.data(), page.data(), kPageSize), 0);
  }
  ASSERT_TRUE(c->DestroySpace(parent).ok());
  CheckPages(c.get(), child, pages / 2, 3);
  ASSERT_TRUE(c->DestroySpace(child).ok());
  for (std::size_t i = 0; i < 3; ++i) EXPECT_EQ(UsedPages(i), 0u) << "node " << i;
}

}  // namespace
}  // namespace remora::testing
