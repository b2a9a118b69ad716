// The RDMA transport on a machine without RDMA devices (like the test
// machines: the verbs path itself runs in tests/cluster/qemu-rdma.sh): every
// way in must fail at once with a message that says why, and a memory node
// must keep serving its other clients.
#include <gtest/gtest.h>
#include <sys/uio.h>
#include <sys/wait.h>

#include <chrono>
#include <filesystem>
#include <fstream>

#include "harness.h"
#include "net/stream_transport.h"
#include "net/wire.h"
#include "remora/transport.h"

namespace remora::testing {
namespace {

bool HasRdmaDevice() {
  return std::filesystem::exists("/sys/class/infiniband") &&
         !std::filesystem::is_empty("/sys/class/infiniband");
}

// A secret file for commands that need one before they get to the point.
std::string SecretFile() {
  const std::string path = ::testing::TempDir() + "/rdma-host-test.secret";
  std::ofstream(path) << "rdma-host-test-secret-rdma-host-test-secret\n";
  std::filesystem::permissions(
      path, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  return path;
}

std::string Shell(const std::string& cmd, int* status) {
  std::string out;
  *status = RunCommand({"/bin/sh", "-c", cmd + " 2>&1"}, &out);
  return out;
}

TEST(RdmaHostTest, MemoryNodeWithoutADeviceRefusesToStartAndSaysWhy) {
  if (HasRdmaDevice()) GTEST_SKIP() << "this machine has an RDMA device";
  int st = 0;
  const std::string out = Shell(RemoraBinary() +
                                    " memory-node --transport rdma --listen 127.0.0.1:0"
                                    " --capacity 16M --secret-file " +
                                    SecretFile(),
                                &st);
  EXPECT_NE(st, 0);
  EXPECT_NE(out.find("no RDMA device"), std::string::npos) << out;
  EXPECT_EQ(out.find("ready"), std::string::npos) << out;
}

TEST(RdmaHostTest, UnknownDeviceIsNamed) {
  if (!HasRdmaDevice()) GTEST_SKIP() << "needs an RDMA device to name a wrong one";
  int st = 0;
  const std::string out = Shell(RemoraBinary() +
                                    " memory-node --transport rdma --device nosuchdev0"
                                    " --listen 127.0.0.1:0 --capacity 16M",
                                &st);
  EXPECT_NE(st, 0);
  EXPECT_NE(out.find("nosuchdev0"), std::string::npos) << out;
}

TEST(RdmaHostTest, BadTransportInConfigIsRefused) {
  const std::string path = ::testing::TempDir() + "/rdma-host-test.toml";
  std::ofstream(path) << "[memory_node]\ntransport = \"carrier-pigeon\"\n";
  int st = 0;
  const std::string out = Shell(RemoraBinary() + " memory-node --config " + path, &st);
  EXPECT_NE(st, 0);
  EXPECT_NE(out.find("memory_node.transport"), std::string::npos) << out;
}

TEST(RdmaHostTest, ConnectingOverRdmaFailsFastWithAReason) {
  MemoryNodeProcess node;
  ASSERT_TRUE(node.started());
  TransportOptions o;
  o.kind = TransportKind::kRdma;
  o.address = node.tcp_address();
  o.secret = node.secret();
  const auto t0 = std::chrono::steady_clock::now();
  Status st;
  auto t = ConnectTransport(o, &st);
  EXPECT_EQ(t, nullptr);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
  // No device here; with one, this plain memory node refuses to attach.
  EXPECT_EQ(st.code(), Code::kUnsupported) << st.ToString();
  EXPECT_NE(st.message().find(node.tcp_address()), std::string::npos) << st.ToString();
  // The node serves TCP clients as before.
  auto tcp = node.Connect(TransportKind::kTcp);
  ASSERT_NE(tcp, nullptr);
  MemoryNodeInfo info;
  EXPECT_TRUE(tcp->Info(&info).ok());
}

TEST(RdmaHostTest, PlainMemoryNodeAnswersRdmaMessagesWithUnsupported) {
  MemoryNodeProcess node;
  ASSERT_TRUE(node.started());
  TransportOptions o;
  o.address = node.tcp_address();
  o.secret = node.secret();
  std::unique_ptr<StreamClient> client;
  ASSERT_TRUE(StreamTransport::Dial(o, false, "test", &client).ok());
  std::string qp(wire::kRdmaQpInfoLen, '\0');
  iovec iov{qp.data(), qp.size()};
  StreamClient::Request r;
  r.type = wire::MsgType::kRdmaAttach;
  r.arg1 = 1;
  r.payload = {&iov, 1};
  Status st = client->Call(r);
  EXPECT_EQ(st.code(), Code::kUnsupported) << st.ToString();
  EXPECT_NE(st.message().find("--transport rdma"), std::string::npos) << st.ToString();
  std::uint8_t uva[8] = {};
  iovec iov2{uva, 8};
  r.type = wire::MsgType::kRdmaMap;
  r.asid = MakeAsid(1, 1);
  r.payload = {&iov2, 1};
  EXPECT_EQ(client->Call(r).code(), Code::kUnsupported);
  // The connection is still in sync and served.
  r = {};
  r.type = wire::MsgType::kPing;
  EXPECT_TRUE(client->Call(r).ok());
}

TEST(RdmaHostTest, CheckTransportPassesOverTcp) {
  MemoryNodeProcess node;
  ASSERT_TRUE(node.started());
  int st = 0;
  const std::string out =
      Shell(RemoraBinary() + " check-transport --transport tcp --address " + node.tcp_address() +
                " --secret-file " + node.secret_file() + " --threads 3 --pages 64 --rounds 2",
            &st);
  EXPECT_EQ(st, 0) << out;
  EXPECT_NE(out.find("check-transport tcp: OK"), std::string::npos) << out;
}

TEST(RdmaHostTest, CheckTransportReportsAnUnreachableNodeAsATransportError) {
  int st = 0;
  const std::string out = Shell(RemoraBinary() +
                                    " check-transport --transport tcp --address 127.0.0.1:1"
                                    " --timeout-ms 500 --secret-file " +
                                    SecretFile(),
                                &st);
  // RunCommand returns a wait status: exit code 1, not 3 (wrong data).
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 1) << st << " " << out;
}

}  // namespace
}  // namespace remora::testing
