// Real programs under `remora run --cluster` with three real memory-node
// processes on this machine, each output compared byte for byte with a
// native run, under a pcache small enough to evict:
//
//   - a program whose memory exceeds any single node's capacity (tcp, shm);
//   - two replicas, one node SIGKILLed mid-run: same output, the node's
//     regions re-replicated;
//   - two replicas, one node SIGSTOPped for 5 s: the program waits it out;
//   - one replica, one node SIGKILLed: a clear error, no wrong output;
//   - fork_tree's 15 processes across the nodes;
//   - one `--memory-node` (no cluster file) whose connection is cut three
//     times mid-run: reconnected, the node's pages kept.
//
// After every run each node's pages are back at zero (its baseline), and
// `remora stats --cluster` reads every node.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "cuttable_relay.h"
#include "harness.h"
#include "run_util.h"

namespace remora::testing {
namespace {

using namespace std::chrono_literals;

class RunClusterTest : public RunDirTest {
 protected:
  void StartNodes(const std::string& capacity, int n = 3) {
    for (int i = 0; i < n; ++i) {
      MemoryNodeProcessOptions o;
      o.capacity = capacity;
      o.secret = "run-cluster-secret-of-memory-node-number-" + std::to_string(i);
      o.extra_args = {"--log-level", "warn", "--node-id", std::to_string(i + 1)};
      nodes_.push_back(std::make_unique<MemoryNodeProcess>(o));
      ASSERT_TRUE(nodes_.back()->started());
    }
  }

  // The cluster description of the three nodes.
  std::string WriteCluster(const std::string& transport, int replicas,
                           const std::string& region = "4M") {
    const std::string path = dir_ + "/cluster-" + transport + ".toml";
    std::ofstream f(path);
    f << "[policy]\nregion_size = \"" << region << "\"\nreplicas = " << replicas
      << "\nstall_deadline_ms = 30000\nreconnect_deadline_ms = 1000\n";
    for (std::size_t i = 0; i < nodes_.size(); ++i) {
      f << "\n[[memory_node]]\nid = " << i + 1 << "\naddress = \""
        << (transport == "shm" ? nodes_[i]->shm_path() : nodes_[i]->tcp_address())
        << "\"\ntransport = \"" << transport << "\"\nsecret_file = \"" << nodes_[i]->secret_file()
        << "\"\n";
    }
    return path;
  }

  std::uint64_t UsedPages(std::size_t i) {
    auto t = nodes_[i]->Connect(TransportKind::kTcp, 1);
    MemoryNodeInfo info;
    EXPECT_TRUE(t && t->Info(&info).ok());
    return info.used_pages;
  }

  void ExpectNodesEmpty() {
    for (std::size_t i = 0; i < nodes_.size(); ++i) {
      if (!nodes_[i]->Alive()) continue;
      EXPECT_EQ(UsedPages(i), 0u) << "memory node " << i + 1 << " kept pages after the run";
    }
  }

  Result Native(const std::vector<std::string>& argv, const std::string& tag) {
    Result native = RunProgram(argv, dir_, tag + "-native");
    EXPECT_TRUE(native.Ok()) << native.Describe();
    EXPECT_FALSE(native.out.empty());
    return native;
  }

  // `remora run OPTIONS --stats-json F -- argv`; `during`, if given, runs
  // while the program does (after checking it has not finished yet).
  Result Under(const std::vector<std::string>& options, const std::vector<std::string>& argv,
               const std::string& tag, const std::function<void(pid_t)>& during = {}) {
    std::vector<std::string> cmd = {RemoraBinary(), "run"};
    cmd.insert(cmd.end(), options.begin(), options.end());
    cmd.insert(cmd.end(), {"--stats-json", dir_ + "/" + tag + ".json", "--"});
    cmd.insert(cmd.end(), argv.begin(), argv.end());
    const auto started = Clock::now();
    Spawned s = Spawn(cmd, dir_, tag + "-remora");
    if (during) during(s.pid);
    Result r = Wait(s, std::chrono::seconds(400), started);
    std::fprintf(stderr, "%s under remora run --cluster: %.2f s\n", tag.c_str(), r.seconds);
    return r;
  }

  Stats StatsOf(const std::string& tag) { return Stats(dir_ + "/" + tag + ".json"); }

  std::vector<std::unique_ptr<MemoryNodeProcess>> nodes_;
};

std::vector<std::string> MemStress(const char* mib, const char* passes) {
  return {REMORA_MEM_STRESS, mib, "2", passes};
}

// 96 MiB of mem_stress through a 16 MiB pcache over three 48 MiB nodes: the
// 80 MiB or so written back fit no single node.
TEST_F(RunClusterTest, ProgramBiggerThanAnyNode) {
  StartNodes("48M");
  ASSERT_FALSE(HasFailure());
  const auto argv = MemStress("96", "2");
  Result native = Native(argv, "mem_stress");
  for (const std::string transport : {"tcp", "shm"}) {
    SCOPED_TRACE(transport);
    const std::string cluster = WriteCluster(transport, 1);
    // The pool's pages in use, sampled while the program runs.
    std::uint64_t peak = 0;
    Result r =
        Under({"--cluster", cluster, "--pcache", "16M"}, argv, "big-" + transport, [&](pid_t pid) {
          while (!ProcessGone(pid)) {
            std::uint64_t total = 0;
            for (std::size_t i = 0; i < nodes_.size(); ++i) total += UsedPages(i);
            peak = std::max(peak, total);
            std::this_thread::sleep_for(100ms);
          }
        });
    ASSERT_TRUE(r.Ok()) << r.Describe();
    EXPECT_GT(peak, (48u << 20) / 4096) << "the pool never held more than one node could";
    EXPECT_EQ(r.out, native.out);
    Stats s = StatsOf("big-" + transport);
    SCOPED_TRACE(Tail(s.text(), 5000));
    EXPECT_GT(s["nr_pcache_eviction_succeed"], 0);
    EXPECT_EQ(s["cluster_placement_failures"], 0);
    int used = 0;
    std::int64_t written = 0;
    for (int id = 1; id <= 3; ++id) {
      const std::int64_t w = s["cluster_node" + std::to_string(id) + "_pages_written"];
      used += w > 0 ? 1 : 0;
      written += w;
    }
    EXPECT_GE(used, 2) << "the pages went to one node";
    EXPECT_GT(written, (48 << 20) / 4096) << "more than one node could hold";
    ExpectNodesEmpty();
  }
  // Every node as it reports itself.
  std::string out;
  ASSERT_EQ(RunCommand({RemoraBinary(), "stats", "--cluster", WriteCluster("tcp", 1), "--json",
                        "--processor", dir_ + "/no-such-socket"},
                       &out),
            0)
      << out;
  auto j = nlohmann::json::parse(out);
  ASSERT_EQ(j["nodes"].size(), 3u);
  for (const auto& n : j["nodes"]) {
    EXPECT_TRUE(n["reachable"].get<bool>());
    EXPECT_EQ(n["capacity_pages"].get<std::uint64_t>(), (48u << 20) / 4096);
    EXPECT_EQ(n["used_pages"].get<std::uint64_t>(), 0u);
  }
}

// Two replicas; node 2 SIGKILLed while the program runs.
TEST_F(RunClusterTest, SigkillOfOneNodeWithTwoReplicas) {
  StartNodes("256M");
  ASSERT_FALSE(HasFailure());
  const auto argv = MemStress("96", "4");
  Result native = Native(argv, "mem_stress");
  const std::string cluster = WriteCluster("tcp", 2);
  Result r = Under({"--cluster", cluster, "--pcache", "16M"}, argv, "kill", [&](pid_t pid) {
    std::this_thread::sleep_for(3s);
    ASSERT_FALSE(ProcessGone(pid)) << "the program ended before the node was killed";
    ASSERT_EQ(::kill(nodes_[1]->pid(), SIGKILL), 0);
  });
  ASSERT_TRUE(r.Ok()) << r.Describe();
  EXPECT_EQ(r.out, native.out);
  Stats s = StatsOf("kill");
  SCOPED_TRACE(Tail(s.text(), 5000));
  EXPECT_EQ(s["cluster_nodes_lost"], 1);
  EXPECT_EQ(s["cluster_node2_state"], 2);
  EXPECT_GT(s["cluster_rereplicated_regions"], 0);
  EXPECT_GT(s["cluster_rereplicated_pages"], 0);
  EXPECT_EQ(s["cluster_regions_lost"], 0);
  ExpectNodesEmpty();
}

// Two replicas; node 1 stopped for 5 s while the program runs, requests
// timing out after 2 s: reads fail over, write-backs wait, nothing is lost.
TEST_F(RunClusterTest, SigstopForFiveSecondsIsWaitedOut) {
  StartNodes("256M");
  ASSERT_FALSE(HasFailure());
  const auto argv = MemStress("96", "4");
  Result native = Native(argv, "mem_stress");
  const std::string cluster = WriteCluster("tcp", 2);
  Result r = Under({"--cluster", cluster, "--pcache", "16M", "--timeout-ms", "2000"}, argv, "stop",
                   [&](pid_t pid) {
                     std::this_thread::sleep_for(2s);
                     ASSERT_FALSE(ProcessGone(pid));
                     ASSERT_EQ(::kill(nodes_[0]->pid(), SIGSTOP), 0);
                     std::this_thread::sleep_for(5s);
                     ::kill(nodes_[0]->pid(), SIGCONT);
                   });
  ASSERT_TRUE(r.Ok()) << r.Describe();
  EXPECT_EQ(r.out, native.out);
  Stats s = StatsOf("stop");
  SCOPED_TRACE(Tail(s.text(), 5000));
  EXPECT_EQ(s["cluster_nodes_lost"], 0);
  EXPECT_EQ(s["cluster_node1_state"], 0);
  ExpectNodesEmpty();
}

// One replica: a lost node stops the program with an error that says so,
// and the program prints nothing it did not compute.
TEST_F(RunClusterTest, LostNodeWithOneReplicaIsAClearError) {
  StartNodes("256M");
  ASSERT_FALSE(HasFailure());
  const auto argv = MemStress("96", "4");
  const std::string cluster = WriteCluster("tcp", 1);
  Result r = Under({"--cluster", cluster, "--pcache", "16M"}, argv, "lost", [&](pid_t pid) {
    std::this_thread::sleep_for(3s);
    ASSERT_FALSE(ProcessGone(pid));
    ASSERT_EQ(::kill(nodes_[2]->pid(), SIGKILL), 0);
  });
  EXPECT_FALSE(r.Ok()) << "the program cannot have finished without its pages";
  EXPECT_EQ(r.out.find("OK"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("lost"), std::string::npos) << Tail(r.err);
  nodes_.erase(nodes_.begin() + 2);
  ExpectNodesEmpty();
}

// One --memory-node is a pool of one: a connection cut while both ends live
// on (a reset, a network fault) is re-established with the processor's
// incarnation, the node keeps its pages, and the program finishes with the
// native output. (A single node's transport used to fail every later
// request with "disconnected" and stop the program.)
TEST_F(RunClusterTest, OneMemoryNodeReconnectsAfterItsConnectionIsCut) {
  StartNodes("256M", 1);
  ASSERT_FALSE(HasFailure());
  // Smaller than the others: every request goes through the relay's thread.
  const auto argv = MemStress("32", "2");
  Result native = Native(argv, "mem_stress");
  CuttableRelay relay(nodes_[0]->tcp_address());
  Result r = Under({"--memory-node", relay.address(), "--transport", "tcp", "--secret-file",
                    nodes_[0]->secret_file(), "--pcache", "8M", "--timeout-ms", "2000"},
                   argv, "cut", [&](pid_t pid) {
                     for (int i = 0; i < 3; ++i) {
                       std::this_thread::sleep_for(700ms);
                       ASSERT_FALSE(ProcessGone(pid)) << "finished before cut " << i + 1;
                       relay.Cut();
                     }
                   });
  ASSERT_TRUE(r.Ok()) << r.Describe();
  EXPECT_EQ(r.out, native.out);
  Stats s = StatsOf("cut");
  SCOPED_TRACE(Tail(s.text(), 5000));
  EXPECT_GE(s["cluster_node1_reconnects"], 3);
  EXPECT_EQ(s["cluster_nodes_lost"], 0);
  EXPECT_GE(relay.accepted(), 4);
  ExpectNodesEmpty();
}

// fork_tree: 15 processes over a 48 MiB inherited buffer through an 8 MiB
// pcache, with two replicas: copy-on-write shared on every node.
TEST_F(RunClusterTest, ForkedChildrenAcrossNodes) {
  StartNodes("128M");
  ASSERT_FALSE(HasFailure());
  const std::vector<std::string> argv = {REMORA_FORK_TREE, "48", "3", "2"};
  Result native = Native(argv, "fork_tree");
  const std::string cluster = WriteCluster("tcp", 2);
  Result r = Under({"--cluster", cluster, "--pcache", "8M", "--victim", "32"}, argv, "fork");
  ASSERT_TRUE(r.Ok()) << r.Describe();
  EXPECT_EQ(r.out, native.out);
  Stats s = StatsOf("fork");
  SCOPED_TRACE(Tail(s.text(), 6000));
  EXPECT_EQ(s["nr_fork"], 14);
  EXPECT_GT(s["nr_pcache_eviction_succeed"], 0);
  EXPECT_EQ(s["memory_node_used_pages"], 0);
  for (int id = 1; id <= 3; ++id)
    EXPECT_GT(s["cluster_node" + std::to_string(id) + "_pages_written"], 0) << "node " << id;
  ExpectNodesEmpty();
}

}  // namespace
}  // namespace remora::testing
