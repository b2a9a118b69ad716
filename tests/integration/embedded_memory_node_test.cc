// The embedded default's memory node (cli/embedded_memory_node.h), attacked
// as a local user would: its sockets are reachable on this machine while
// `remora run` lives. The TCP listener asks for the proof of a secret made
// for the run and never written anywhere; the unix socket sits in a
// directory only the user running it can enter. Each test performs the
// attack and checks the node keeps serving its own processor.
#include "cli/embedded_memory_node.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "net/auth.h"
#include "remora/transport.h"
#include "remora/types.h"

namespace remora {
namespace {

constexpr std::uint64_t kBase = 0x10000000;

std::unique_ptr<EmbeddedMemoryNode> StartNode() {
  Status st;
  auto node = EmbeddedMemoryNode::Start(16 << 20, &st);
  EXPECT_TRUE(st.ok()) << st.ToString();
  return node;
}

// The node's own processor writes and reads back a page.
void ExpectServes(const EmbeddedMemoryNode& node, TransportKind kind) {
  TransportOptions o = node.ClientOptions(kind);
  o.incarnation = auth::NewIncarnation();
  Status st;
  auto t = ConnectTransport(o, &st);
  ASSERT_NE(t, nullptr) << st.ToString();
  const Asid asid = MakeAsid(o.node_id, 1);
  ASSERT_TRUE(t->CreateSpace(asid).ok());
  ASSERT_TRUE(t->RegisterRange(asid, kBase, 16 * kPageSize).ok());
  std::vector<char> page(kPageSize, 'r'), back(kPageSize);
  ASSERT_TRUE(t->WritePage(asid, kBase, page.data()).ok());
  ASSERT_TRUE(t->ReadPage(asid, kBase, back.data()).ok());
  EXPECT_EQ(back, page);
  ASSERT_TRUE(t->DestroySpace(asid).ok());
}

// A client that does not hold the run's secret is refused, over TCP and
// over the unix socket alike, and the node goes on serving.
TEST(EmbeddedMemoryNodeTest, AClientWithoutTheRunsSecretIsRefused) {
  auto node = StartNode();
  ASSERT_NE(node, nullptr);
  for (TransportKind kind : {TransportKind::kTcp, TransportKind::kShm}) {
    TransportOptions o = node->ClientOptions(kind);
    ASSERT_TRUE(auth::GenerateSecret(&o.secret).ok());  // a guess: another random secret
    o.timeout_ms = 2000;
    Status st;
    EXPECT_EQ(ConnectTransport(o, &st), nullptr);
    EXPECT_FALSE(st.ok());
  }
  ExpectServes(*node, TransportKind::kTcp);
  ExpectServes(*node, TransportKind::kShm);
}

// Nothing of the node is left on disk for another user to read: its
// directory is 0700 and holds the unix socket only (no secret file), and
// it is gone once the node stops.
TEST(EmbeddedMemoryNodeTest, ItsDirectoryIsPrivateAndHoldsNoSecret) {
  auto node = StartNode();
  ASSERT_NE(node, nullptr);
  const std::string sock = node->ClientOptions(TransportKind::kShm).address;
  const std::filesystem::path dir = std::filesystem::path(sock).parent_path();
  struct stat st {};
  ASSERT_EQ(stat(dir.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  EXPECT_EQ(st.st_uid, geteuid());
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(dir))
    names.push_back(e.path().filename());
  EXPECT_EQ(names, std::vector<std::string>{std::filesystem::path(sock).filename()});
  node.reset();
  EXPECT_FALSE(std::filesystem::exists(dir));
}

// Another user cannot even reach the unix socket (with root, the test
// drops to nobody in a child; as another user it cannot run).
TEST(EmbeddedMemoryNodeTest, AnotherUserCannotReachTheUnixSocket) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to act as another user";
  auto node = StartNode();
  ASSERT_NE(node, nullptr);
  const std::string sock = node->ClientOptions(TransportKind::kShm).address;
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    if (setgid(65534) != 0 || setuid(65534) != 0) _exit(2);
    const int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strncpy(a.sun_path, sock.c_str(), sizeof(a.sun_path) - 1);
    const int r = connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
    _exit(r < 0 && errno == EACCES ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "1: connected or another error; 2: could not drop to nobody";
  ExpectServes(*node, TransportKind::kShm);
}

}  // namespace
}  // namespace remora
