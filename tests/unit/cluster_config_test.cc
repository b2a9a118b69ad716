// The cluster description: what a valid file gives, and each mistake a
// clear error instead of a silent default.
#include <gtest/gtest.h>

#include "managers/cluster_config.h"

namespace remora {
namespace {

constexpr const char* kThreeNodes = R"(
[policy]
region_size = "4M"
replicas = 2
stall_deadline_ms = 20000
secret_file = "/etc/remora/secret"

[[memory_node]]
id = 1
address = "10.0.0.1:7400"

[[memory_node]]
id = 2
address = "10.0.0.2:7400"
transport = "rdma"
capacity = "64G"

[[memory_node]]
id = 3
address = "/run/remora/memnode.sock"
transport = "shm"
secret_file = "/etc/remora/local-secret"
)";

TEST(ClusterConfig, ParsesNodesAndPolicy) {
  ClusterConfig c;
  Status st = ParseClusterConfig(kThreeNodes, "test.toml", &c);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(c.policy.region_bytes, 4u << 20);
  EXPECT_EQ(c.policy.replicas, 2);
  EXPECT_EQ(c.policy.stall_deadline_ms, 20000);
  EXPECT_EQ(c.policy.reconnect_deadline_ms, 1000) << "default";
  ASSERT_EQ(c.nodes.size(), 3u);
  EXPECT_EQ(c.nodes[0].kind, TransportKind::kTcp);
  EXPECT_EQ(c.nodes[0].secret_file, "/etc/remora/secret") << "the policy's default";
  EXPECT_EQ(c.nodes[1].kind, TransportKind::kRdma);
  EXPECT_EQ(c.nodes[1].capacity, "64G");
  EXPECT_EQ(c.nodes[2].kind, TransportKind::kShm);
  EXPECT_EQ(c.nodes[2].secret_file, "/etc/remora/local-secret");
  ASSERT_NE(c.FindNode(2), nullptr);
  EXPECT_EQ(c.FindNode(2)->address, "10.0.0.2:7400");
  EXPECT_EQ(c.FindNode(4), nullptr);
}

TEST(ClusterConfig, TheExampleFileParses) {
  ClusterConfig c;
  Status st =
      LoadClusterConfig(std::string(REMORA_SOURCE_DIR) + "/configs/cluster.example.toml", &c);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_GE(c.nodes.size(), 3u);
}

void ExpectError(const std::string& text, const std::string& needle) {
  ClusterConfig c;
  Status st = ParseClusterConfig(text, "bad.toml", &c);
  ASSERT_FALSE(st.ok()) << text;
  EXPECT_NE(st.message().find(needle), std::string::npos) << st.message();
}

TEST(ClusterConfig, MistakesAreErrors) {
  const std::string node1 = "[[memory_node]]\nid = 1\naddress = \"a:1\"\n";
  const std::string node2 = "[[memory_node]]\nid = 2\naddress = \"b:1\"\n";
  ExpectError("", "at least one memory node");
  ExpectError(node1 + "colour = 3\n", "unknown key");
  ExpectError("[policy]\nreplicas = 2\n" + node1, "at least 2 memory nodes");
  ExpectError("[policy]\nreplicas = 4\n" + node1, "out of range");
  ExpectError("[policy]\nregion_size = \"3M\"\n" + node1, "power of two");
  ExpectError("[policy]\nregion_size = \"2G\"\n" + node1, "power of two");
  ExpectError("[policy]\nregion_size = \"512K\"\n" + node1, "power of two");
  ExpectError(node1 + node1, "appears twice");
  ExpectError(node1 + "[[memory_node]]\nid = 2\naddress = \"a:1\"\n", "appears twice");
  ExpectError("[[memory_node]]\naddress = \"a:1\"\n", "needs an id");
  ExpectError("[[memory_node]]\nid = 1\n", "needs an address");
  ExpectError(node1 + node2 + "[[memory_node]]\nid = 3\naddress = \"c:1\"\ntransport = \"udp\"\n",
              "unknown transport");
  ExpectError("[memory_nodes]\n", "unknown table");
  ExpectError("[policy\n", "bad.toml");
}

}  // namespace
}  // namespace remora
