// The memory node against attackers (docs/security.md): a shared-memory
// client that reopens its read-only files writable, a holder of one node's
// key that claims another node, a relay without the key, peers that never
// authenticate, peers that never read, a processor that crashes. Each test
// performs the attack, checks that it is refused, and checks that a
// well-behaved client is served byte for byte throughout.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <fstream>
#include <functional>
#include <thread>
#include <vector>

#include "harness.h"
#include "net/auth.h"
#include "net/handshake.h"
#include "net/shm/shm_format.h"
#include "net/socket_util.h"
#include "raw_peer.h"
#include "remora/stats.h"

namespace remora::testing {
namespace {

using wire::MsgType;

constexpr std::uint64_t kBase = 0x600000000000ull;

std::vector<char> Pattern(std::uint64_t seed) {
  std::vector<char> p(kPageSize);
  for (std::size_t i = 0; i < p.size(); ++i) p[i] = static_cast<char>((seed * 131 + i * 7) >> 3);
  return p;
}

std::int64_t RemoteCounter(Transport* t, const std::string& name) {
  std::string json;
  EXPECT_TRUE(t->RemoteStatsJson(&json).ok());
  StatsSnapshot s;
  EXPECT_TRUE(StatsSnapshot::FromJson(json, &s).ok());
  return s.Counter(name);
}

std::uint64_t RssKiB(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stoull(line.substr(6));
  return 0;
}

// A space of `node` with `pages` written pages, via a real transport.
struct GoodClient {
  std::unique_ptr<Transport> t;
  Asid asid;
  std::uint64_t pages;
  GoodClient(const MemoryNodeProcess& node, TransportKind kind, NodeId id, std::uint64_t pages_)
      : asid(MakeAsid(id, 1)), pages(pages_) {
    t = node.Connect(kind, id);
    if (!t) return;
    EXPECT_TRUE(t->CreateSpace(asid).ok());
    EXPECT_TRUE(t->RegisterRange(asid, kBase, pages * kPageSize).ok());
    for (std::uint64_t i = 0; i < pages; ++i)
      EXPECT_TRUE(t->WritePage(asid, kBase + i * kPageSize, Pattern(id * 1000 + i).data()).ok());
  }
  // Every page reads back byte for byte.
  void Check() {
    ASSERT_TRUE(t);
    std::vector<char> buf(kPageSize);
    for (std::uint64_t i = 0; i < pages; ++i) {
      Status st = t->ReadPage(asid, kBase + i * kPageSize, buf.data());
      ASSERT_TRUE(st.ok()) << st.ToString();
      ASSERT_EQ(buf, Pattern(AsidNode(asid) * 1000 + i)) << "page " << i;
    }
  }
};

// ---- shared memory: the page region and index are sealed, and per node ----

// Sends kAttachShm on an authenticated raw peer and receives the reply's
// descriptors and layout.
bool AttachShm(RawPeer* p, std::vector<int>* fds, shm::Layout* layout) {
  if (!p->Send(wire::MakeRequest(MsgType::kAttachShm, 9))) return false;
  std::uint8_t hb[wire::kHeaderSize];
  alignas(cmsghdr) char cbuf[CMSG_SPACE(sizeof(int) * 4)];
  iovec iov{hb, sizeof hb};
  msghdr m{};
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  m.msg_control = cbuf;
  m.msg_controllen = sizeof cbuf;
  pollfd pfd{p->fd(), POLLIN, 0};
  if (poll(&pfd, 1, 3000) != 1) return false;
  const ssize_t got = recvmsg(p->fd(), &m, MSG_CMSG_CLOEXEC);  // the descriptors ride here
  if (got <= 0) return false;
  if (static_cast<std::size_t>(got) < sizeof hb &&
      !net::ReadFull(p->fd(), hb + got, sizeof hb - got, net::DeadlineAfterMs(3000)).ok())
    return false;
  for (cmsghdr* c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
    std::size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    fds->resize(n);
    std::memcpy(fds->data(), CMSG_DATA(c), n * sizeof(int));
  }
  wire::Header h = wire::DecodeHeader(hb);
  std::string rest(h.payload_len + wire::kFrameTagLen, '\0');
  if (!net::ReadFull(p->fd(), rest.data(), rest.size(), net::DeadlineAfterMs(3000)).ok())
    return false;
  EXPECT_EQ(h.status, 0) << rest.substr(0, h.payload_len);
  EXPECT_EQ(fds->size(), 2u);
  Status st = shm::DecodeLayout(rest.substr(0, h.payload_len), layout);
  EXPECT_TRUE(st.ok()) << st.ToString();
  return h.status == 0 && fds->size() == 2 && st.ok();
}

TEST(MemoryNodeSecurityTest, ShmClientCannotWriteOrSeeOtherNodesPages) {
  MemoryNodeProcessOptions o;
  MemoryNodeProcess node(o);
  ASSERT_TRUE(node.started());
  ASSERT_FALSE(node.shm_path().empty());
  GoodClient victim(node, TransportKind::kShm, 1, 16);
  GoodClient other(node, TransportKind::kTcp, 2, 4);

  // The attacker is node 2, attached over the unix socket like any shm client.
  auto p = RawPeer::Unix(node.shm_path());
  ASSERT_TRUE(p);
  ASSERT_EQ(p->Authenticate(node.secret(), 2), Code::kOk);
  std::vector<int> fds;
  shm::Layout layout;
  ASSERT_TRUE(AttachShm(p.get(), &fds, &layout));
  for (int fd : fds) {
    // The attack of the review: reopen the read-only descriptor writable.
    std::string self = "/proc/self/fd/" + std::to_string(fd);
    int rw = open(self.c_str(), O_RDWR | O_CLOEXEC);
    if (rw >= 0) {
      void* w = mmap(nullptr, kPageSize, PROT_READ | PROT_WRITE, MAP_SHARED, rw, 0);
      EXPECT_EQ(w, MAP_FAILED) << "writable mapping of the node's file";
      if (w != MAP_FAILED) {
        std::memset(w, 0x5a, kPageSize);  // would corrupt the header / a page
        munmap(w, kPageSize);
      }
      std::string junk(kPageSize, 'X');
      EXPECT_EQ(pwrite(rw, junk.data(), junk.size(), 0), -1) << "write(2) into the node's file";
      EXPECT_EQ(fallocate(rw, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, kPageSize), -1);
      close(rw);
    }
    void* r = mmap(nullptr, kPageSize, PROT_READ, MAP_SHARED, fd, 0);
    ASSERT_NE(r, MAP_FAILED);
    EXPECT_NE(mprotect(r, kPageSize, PROT_READ | PROT_WRITE), 0);
    munmap(r, kPageSize);
  }
  // Node 2's view holds none of node 1's pages: scan its whole used region.
  void* region = mmap(nullptr, layout.region_bytes, PROT_READ, MAP_SHARED, fds[0], 0);
  ASSERT_NE(region, MAP_FAILED);
  int own = 0, foreign = 0;
  for (std::uint64_t s = 0; s < 64; ++s) {
    const char* slot = static_cast<const char*>(region) + s * kPageSize;
    for (std::uint64_t i = 0; i < 16; ++i)
      foreign += std::memcmp(slot, Pattern(1000 + i).data(), kPageSize) == 0;
    for (std::uint64_t i = 0; i < 4; ++i)
      own += std::memcmp(slot, Pattern(2000 + i).data(), kPageSize) == 0;
  }
  munmap(region, layout.region_bytes);
  EXPECT_EQ(foreign, 0) << "node 2's shared view shows node 1's pages";
  EXPECT_EQ(own, 4);
  for (int fd : fds) close(fd);
  ASSERT_TRUE(node.Alive());
  victim.Check();
  other.Check();
}

// ---- identity: node ids are bound into the handshake ----

TEST(MemoryNodeSecurityTest, NodeIdSpoofIsRefused) {
  MemoryNodeProcess node;
  ASSERT_TRUE(node.started());
  GoodClient victim(node, TransportKind::kTcp, 1, 8);
  // Node 2 is given its own key only, as a processor should be.
  const std::string key2 = auth::EncodeNodeKey(2, auth::DeriveNodeKey(node.secret(), 2));
  Status st;
  auto as2 = node.Connect(TransportKind::kTcp, 2, &st, key2);
  ASSERT_TRUE(as2) << st.ToString();
  // The spoof: node 2's key, node 1's id. The client refuses to even try...
  auto spoof = node.Connect(TransportKind::kTcp, 1, &st, key2);
  EXPECT_FALSE(spoof);
  EXPECT_EQ(st.code(), Code::kAuthFailed);
  // ...and the node refuses a raw peer that does: its proof is made with
  // node 2's key, which is not node 1's.
  auto p = RawPeer::Tcp(node.tcp_address());
  ASSERT_TRUE(p);
  ASSERT_TRUE(p->ReadHello());
  auth::Transcript t;
  t.processor_node = 1;
  t.memory_node = 0;
  auth::Mac proof = auth::ClientProof(auth::DeriveNodeKey(node.secret(), 2), t);
  std::string payload(reinterpret_cast<const char*>(proof.data()), proof.size());
  payload.append(32, '\0');
  ASSERT_TRUE(p->Send(wire::MakeRequest(MsgType::kAuth, 1, 0, 1, 0, 64), payload));
  EXPECT_EQ(p->ReplyCode(), Code::kAuthFailed);
  EXPECT_TRUE(p->WaitClosed());
  // As itself, node 2 reaches nothing of node 1.
  std::vector<char> buf(kPageSize);
  EXPECT_EQ(as2->ReadPage(victim.asid, kBase, buf.data()).code(), Code::kPermissionDenied);
  EXPECT_EQ(as2->DestroySpace(victim.asid).code(), Code::kPermissionDenied);
  victim.Check();
}

// Accepts a connection on `lfd`, a non-blocking listening socket (ListenTcp):
// waits for one first, or an accept before the client connects fails with
// EAGAIN and strands it. -1 once `stop` is set.
int AcceptWhenReady(int lfd, const std::atomic<bool>& stop) {
  pollfd l{lfd, POLLIN, 0};
  while (!stop && poll(&l, 1, 100) <= 0) {
  }
  return stop ? -1 : accept(lfd, nullptr, nullptr);
}

// A TCP relay between a client and the node that may rewrite or inject
// bytes. It holds no key.
class Relay {
 public:
  // `to_node(bytes_so_far, chunk)` may edit what the client sent; `inject`
  // runs once the handshake is through and returns bytes to slip in.
  Relay(std::string upstream, std::function<void(std::string&)> edit_auth,
        std::function<std::string()> inject)
      : upstream_(std::move(upstream)),
        edit_auth_(std::move(edit_auth)),
        inject_(std::move(inject)) {
    EXPECT_TRUE(net::ListenTcp("127.0.0.1:0", &lfd_, &address_).ok());
    thread_ = std::thread([this] { Serve(); });
  }
  ~Relay() {
    stop_ = true;
    shutdown(lfd_, SHUT_RDWR);
    thread_.join();
    close(lfd_);
  }
  const std::string& address() const { return address_; }

 private:
  void Serve() {
    int c = AcceptWhenReady(lfd_, stop_);
    if (c < 0) return;
    int u = -1;
    if (!net::ConnectTcp(upstream_, 2000, &u).ok()) return;
    (void)net::SetNonBlocking(c);
    (void)net::SetNonBlocking(u);
    std::string from_client;
    std::size_t auth_len = wire::kHeaderSize + 64;
    bool authed = false;
    char buf[65536];
    while (!stop_) {
      pollfd p[2] = {{c, POLLIN, 0}, {u, POLLIN, 0}};
      if (poll(p, 2, 100) <= 0) continue;
      if (p[0].revents) {
        ssize_t n = recv(c, buf, sizeof buf, 0);
        if (n <= 0) break;
        std::string chunk(buf, n);
        if (from_client.size() < auth_len) {  // the kAuth message
          from_client += chunk;
          if (from_client.size() < auth_len) continue;
          edit_auth_(from_client);
          chunk = from_client;
        }
        (void)net::WriteFull(u, chunk.data(), chunk.size(), net::DeadlineAfterMs(2000));
      }
      if (p[1].revents) {
        ssize_t n = recv(u, buf, sizeof buf, 0);
        if (n <= 0) break;
        (void)net::WriteFull(c, buf, n, net::DeadlineAfterMs(2000));
        // The node's auth reply has gone by once the client sends more.
        if (!authed && from_client.size() >= auth_len) {
          authed = true;
          std::string extra = inject_();
          if (!extra.empty())
            (void)net::WriteFull(u, extra.data(), extra.size(), net::DeadlineAfterMs(2000));
        }
      }
    }
    close(c);
    close(u);
  }

  std::string upstream_, address_;
  std::function<void(std::string&)> edit_auth_;
  std::function<std::string()> inject_;
  int lfd_ = -1;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

TransportOptions ViaRelay(const MemoryNodeProcess& node, const Relay& r, NodeId id) {
  TransportOptions o;
  o.kind = TransportKind::kTcp;
  o.address = r.address();
  o.secret = node.secret();
  o.node_id = id;
  o.timeout_ms = 3000;
  return o;
}

TEST(MemoryNodeSecurityTest, RelayCannotChangeTheNodeIdOrInjectFrames) {
  MemoryNodeProcess node;
  ASSERT_TRUE(node.started());
  GoodClient victim(node, TransportKind::kTcp, 1, 8);
  Status st;
  {  // Rewrite the claimed node id in flight (the review's node 4242).
    Relay r(
        node.tcp_address(), [](std::string& auth) { auth[24] = 0x92, auth[25] = 0x10; },
        [] { return std::string(); });
    auto t = ConnectTransport(ViaRelay(node, r, 7), &st);
    EXPECT_FALSE(t);
    EXPECT_EQ(st.code(), Code::kAuthFailed) << st.ToString();
  }
  {  // Rewrite the incarnation (kAuth's arg1, header bytes 32..39): a
     // reconnect made to look like a new processor would destroy the
     // node's spaces (a takeover).
    Relay r(
        node.tcp_address(), [](std::string& auth) { auth[32] ^= 0x5a; },
        [] { return std::string(); });
    TransportOptions o = ViaRelay(node, r, 1);
    o.incarnation = auth::NewIncarnation();
    auto t = ConnectTransport(o, &st);
    EXPECT_FALSE(t);
    EXPECT_EQ(st.code(), Code::kAuthFailed) << st.ToString();
  }
  {  // Pass the handshake untouched, then inject a destroy of node 1's space
     // into the authenticated stream (the relay cannot make its tag).
    Relay r(
        node.tcp_address(), [](std::string&) {},
        [&] {
          std::uint8_t h[wire::kHeaderSize];
          wire::EncodeHeader(wire::MakeRequest(MsgType::kDestroySpace, 99, victim.asid), h);
          std::string forged(reinterpret_cast<char*>(h), sizeof h);
          forged.append(wire::kFrameTagLen, '\x42');
          return forged;
        });
    auto t = ConnectTransport(ViaRelay(node, r, 1), &st);
    ASSERT_TRUE(t) << st.ToString();
    MemoryNodeInfo info;
    (void)t->Info(&info);  // lets the injection happen
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    EXPECT_FALSE(t->Info(&info).ok()) << "the node kept a connection with a forged frame";
  }
  EXPECT_GE(RemoteCounter(victim.t.get(), "memnode_integrity_failures"), 1);
  victim.Check();  // the destroy never happened
}

// A fake memory node without the secret: it greets and "accepts" anything.
// Neither a transport nor `remora stats` may take it for the memory node.
TEST(MemoryNodeSecurityTest, ClientsAuthenticateTheMemoryNode) {
  int lfd = -1;
  std::string address;
  ASSERT_TRUE(net::ListenTcp("127.0.0.1:0", &lfd, &address).ok());
  std::atomic<bool> stop{false};
  // Each connection is answered on a thread of its own, with deadlines far
  // beyond the client's: on a loaded machine the client must still meet
  // the fake's forged answer, not its own timeout.
  std::thread fake([&] {
    std::vector<std::thread> answering;
    while (!stop) {
      int c = AcceptWhenReady(lfd, stop);
      if (c < 0) continue;
      answering.emplace_back([c] {
        const std::uint64_t deadline = net::DeadlineAfterMs(20000);
        std::uint8_t hello[wire::kHeaderSize + 32] = {};
        wire::EncodeHeader(wire::MakeRequest(MsgType::kHello, 0, 0, 1, 0, 32), hello);
        (void)net::WriteFull(c, hello, sizeof hello, deadline);
        // Whatever the client sends (a header and its payload), it "accepts".
        std::uint8_t raw[wire::kHeaderSize];
        std::string payload;
        if (net::ReadFull(c, raw, sizeof raw, deadline).ok()) {
          const wire::Header req = wire::DecodeHeader(raw);
          payload.resize(req.payload_len <= 4096 ? req.payload_len : 0);
          if (req.payload_len <= 4096 &&
              net::ReadFull(c, payload.data(), payload.size(), deadline).ok()) {
            wire::Header rep = wire::MakeReply(req, Code::kOk, 32);
            rep.arg0 = 1;
            std::uint8_t out[wire::kHeaderSize + 32] = {};
            wire::EncodeHeader(rep, out);
            (void)net::WriteFull(c, out, sizeof out, deadline);
          }
        }
        close(c);
      });
    }
    for (auto& t : answering) t.join();
  });
  TransportOptions o;
  o.kind = TransportKind::kTcp;
  o.address = address;
  o.secret = "integration-test-secret-0123456789abcdef";
  o.node_id = 1;
  o.timeout_ms = 15000;
  Status st;
  EXPECT_FALSE(ConnectTransport(o, &st));
  EXPECT_EQ(st.code(), Code::kAuthFailed) << st.ToString();

  char dir[] = "/tmp/remora-sec-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  const std::string secret_file = std::string(dir) + "/secret";
  ASSERT_TRUE(auth::WriteSecretFile(secret_file, o.secret).ok());
  std::string out;
  // Its error goes to stderr: through a shell, into `out` as well.
  int rc =
      RunCommand({"/bin/sh", "-c", "exec \"$0\" \"$@\" 2>&1", RemoraBinary(), "stats",
                  "--memory-node", address, "--secret-file", secret_file, "--timeout-ms", "15000"},
                 &out);
  EXPECT_NE(rc, 0) << out;
  EXPECT_NE(out.find("could not prove it holds this node's key"), std::string::npos) << out;
  unlink(secret_file.c_str());
  rmdir(dir);
  stop = true;
  shutdown(lfd, SHUT_RDWR);
  fake.join();
  close(lfd);
}

// ---- a bounded daemon ----

std::string WriteConfig(const std::string& text) {
  char path[] = "/tmp/remora-sec-config-XXXXXX";
  int fd = mkstemp(path);
  EXPECT_GE(fd, 0);
  EXPECT_EQ(write(fd, text.data(), text.size()), static_cast<ssize_t>(text.size()));
  close(fd);
  return path;
}

TEST(MemoryNodeSecurityTest, SilentConnectionsAreLimited) {
  const std::string cfg =
      WriteConfig("[memory_node]\nmax_unauthenticated = 32\nauth_timeout_ms = 60000\n");
  MemoryNodeProcessOptions o;
  o.extra_args = {"--config", cfg};
  MemoryNodeProcess node(o);
  ASSERT_TRUE(node.started());
  GoodClient good(node, TransportKind::kTcp, 1, 8);
  const std::uint64_t rss_before = RssKiB(node.pid());
  std::vector<int> silent;
  for (int i = 0; i < 400; ++i) {
    int fd = -1;
    if (net::ConnectTcp(node.tcp_address(), 1000, &fd).ok()) silent.push_back(fd);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  // The well-behaved client is served, and a new one can still connect: a
  // refused silent peer does not hold its place.
  good.Check();
  for (int i = 0; i < 32; ++i) close(silent[i]);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  GoodClient late(node, TransportKind::kTcp, 2, 2);
  ASSERT_TRUE(late.t);
  late.Check();
  // Of the connections the kernel completed (a full listen backlog may drop
  // one), all but the first 32 were refused.
  ASSERT_GT(silent.size(), 32u);
  EXPECT_GE(RemoteCounter(good.t.get(), "memnode_connections_refused"),
            static_cast<std::int64_t>(silent.size()) - 32);
  EXPECT_LE(RemoteCounter(good.t.get(), "memnode_connections_open"), 32 + 3);
  const std::uint64_t rss_after = RssKiB(node.pid());
  EXPECT_LT(rss_after, rss_before + 16 * 1024) << rss_before << " -> " << rss_after << " KiB";
  for (std::size_t i = 32; i < silent.size(); ++i) close(silent[i]);
  unlink(cfg.c_str());
}

TEST(MemoryNodeSecurityTest, PeersThatNeverReadStayWithinTheReplyBudget) {
  const std::string cfg = WriteConfig("[memory_node]\nreply_budget = \"32M\"\n");
  MemoryNodeProcessOptions o;
  o.capacity = "64M";
  o.extra_args = {"--config", cfg};
  MemoryNodeProcess node(o);
  ASSERT_TRUE(node.started());
  GoodClient good(node, TransportKind::kTcp, 1, 256);
  const std::uint64_t rss_before = RssKiB(node.pid());
  // Six peers of node 3 pipeline 1 MiB reads and never read a reply.
  std::vector<std::unique_ptr<RawPeer>> hogs;
  const Asid hog_space = MakeAsid(3, 1);
  for (int i = 0; i < 6; ++i) {
    auto p = RawPeer::Tcp(node.tcp_address());
    ASSERT_TRUE(p);
    ASSERT_EQ(p->Authenticate(node.secret(), 3), Code::kOk);
    hogs.push_back(std::move(p));
  }
  ASSERT_TRUE(hogs[0]->Send(wire::MakeRequest(MsgType::kCreateSpace, 1, hog_space)));
  ASSERT_TRUE(hogs[0]->Send(
      wire::MakeRequest(MsgType::kRegisterRange, 2, hog_space, kBase, 256 * kPageSize)));
  std::string uvas;
  for (int i = 0; i < 256; ++i) {
    std::uint8_t b[8];
    wire::PutU64(b, kBase + i * kPageSize);
    uvas.append(reinterpret_cast<char*>(b), 8);
  }
  std::atomic<bool> stop{false};
  std::vector<std::thread> senders;
  for (auto& p : hogs) {
    senders.emplace_back([&, raw = p.get()] {
      int one = 1;
      setsockopt(raw->fd(), SOL_SOCKET, SO_RCVBUF, &one,
                 sizeof one);  // read nothing, buffer little
      for (std::uint64_t id = 10; !stop; ++id)
        if (!raw->Send(wire::MakeRequest(MsgType::kReadPages, id, hog_space, 0, 256, uvas.size()),
                       uvas))
          break;  // the node stopped reading us: blocked until the deadline
    });
  }
  std::uint64_t peak = 0;
  for (int i = 0; i < 30; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    peak = std::max(peak, RssKiB(node.pid()));
    if (i % 10 == 9) good.Check();  // served all along
  }
  good.Check();
  std::printf("rss %llu KiB before, peak %llu KiB with 6 non-reading peers\n",
              static_cast<unsigned long long>(rss_before), static_cast<unsigned long long>(peak));
  // 32 MiB of budget, a message in flight per peer, allocator slack.
  EXPECT_LT(peak, rss_before + 80 * 1024);
  EXPECT_GE(RemoteCounter(good.t.get(), "memnode_budget_pauses"), 1);
  stop = true;
  for (auto& p : hogs) shutdown(p->fd(), SHUT_RDWR);
  for (auto& t : senders) t.join();
  unlink(cfg.c_str());
}

// ---- a crashed processor's spaces are reclaimed ----

TEST(MemoryNodeSecurityTest, CrashedProcessorsSpacesAreReclaimed) {
  MemoryNodeProcessOptions o;
  o.extra_args = {"--lease-ms", "1500"};
  MemoryNodeProcess node(o);
  ASSERT_TRUE(node.started());
  GoodClient good(node, TransportKind::kTcp, 1, 4);
  const std::int64_t baseline = RemoteCounter(good.t.get(), "memnode_pages_used");
  auto crash_a_processor = [&] {
    int ready[2];
    EXPECT_EQ(pipe(ready), 0);
    pid_t pid = fork();
    if (pid == 0) {  // a processor of node 5: 2048 pages, then killed
      close(ready[0]);
      GoodClient p(node, TransportKind::kTcp, 5, 2048);
      char ok = p.t ? 1 : 0;
      (void)!write(ready[1], &ok, 1);
      pause();
      _exit(0);
    }
    close(ready[1]);
    char ok = 0;
    EXPECT_EQ(read(ready[0], &ok, 1), 1);
    EXPECT_EQ(ok, 1);
    close(ready[0]);
    EXPECT_EQ(RemoteCounter(good.t.get(), "memnode_pages_used"), baseline + 2048);
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
  };
  // Nobody comes back: the lease expires and the pages go.
  crash_a_processor();
  std::int64_t used = -1;
  for (int i = 0; i < 50 && used != baseline; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    used = RemoteCounter(good.t.get(), "memnode_pages_used");
  }
  EXPECT_EQ(used, baseline);
  EXPECT_EQ(RemoteCounter(good.t.get(), "memnode_lease_expiries"), 1);
  // A new processor with the same node id right away: it takes over (same
  // address space id as before, which used to be "space-exists").
  crash_a_processor();
  GoodClient again(node, TransportKind::kTcp, 5, 16);
  ASSERT_TRUE(again.t);
  again.Check();
  EXPECT_EQ(RemoteCounter(good.t.get(), "memnode_takeovers"), 1);
  EXPECT_EQ(RemoteCounter(good.t.get(), "memnode_pages_used"), baseline + 16);
  good.Check();
}

// A processor whose connection broke comes back with the same incarnation and
// finds its spaces as it left them; an observer (incarnation 0) in between
// takes nothing over; a new processor with the same node id (another
// incarnation) does, as after a crash.
// Frames go untagged only on a unix socket between processes of the node's
// uid or root (net/auth.h, "Local connections"): a shared-memory client of
// this uid does, a TCP client does not, and a client running as another uid
// on the same unix socket is refused the request and tags every frame.
TEST(MemoryNodeSecurityTest, OnlyTrustedLocalPeersSkipFrameTags) {
  MemoryNodeProcess node;
  ASSERT_TRUE(node.started());
  GoodClient tcp(node, TransportKind::kTcp, 1, 4);
  ASSERT_TRUE(tcp.t);
  EXPECT_EQ(RemoteCounter(tcp.t.get(), "memnode_connections_untagged"), 0);
  GoodClient shm(node, TransportKind::kShm, 2, 4);
  ASSERT_TRUE(shm.t);
  shm.Check();  // its pages went through the untagged connection and back
  tcp.Check();
  EXPECT_EQ(RemoteCounter(tcp.t.get(), "memnode_connections_untagged"), 1);

  if (geteuid() != 0) GTEST_SKIP() << "needs root to connect as another uid";
  // Let another uid reach the socket (the node's directory is private).
  const std::string sock = node.shm_path();
  const std::string dir = sock.substr(0, sock.rfind('/'));
  ASSERT_EQ(::chmod(dir.c_str(), 0755), 0);
  ASSERT_EQ(::chmod(sock.c_str(), 0777), 0);
  const std::string secret = node.secret();
  const pid_t child = fork();
  if (child == 0) {
    if (setgid(65534) != 0 || setuid(65534) != 0) _exit(2);
    int fd = -1;
    if (!net::ConnectUnix(sock, 2000, &fd).ok()) _exit(3);
    net::HandshakeResult r;
    if (!net::ClientHandshake(fd, secret, 3, 0, 5000, &r).ok()) _exit(4);
    // Root is a server this client trusts, so it asked; the node refused.
    _exit(r.frame_keys.has_value() ? 0 : 5);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  EXPECT_EQ(RemoteCounter(tcp.t.get(), "memnode_connections_untagged"), 1);
}

// A connection as processor node `id` under `incarnation` (0: an observer).
std::unique_ptr<Transport> ConnectAs(MemoryNodeProcess& node, TransportKind kind, NodeId id,
                                     std::uint64_t incarnation) {
  TransportOptions o = node.ClientOptions(kind, id);
  o.incarnation = incarnation;
  o.timeout_ms = 3000;
  Status st;
  std::unique_ptr<Transport> t = ConnectTransport(o, &st);
  EXPECT_TRUE(t) << st.ToString();
  return t;
}

TEST(MemoryNodeSecurityTest, AReconnectingProcessorKeepsItsSpaces) {
  MemoryNodeProcess node;
  ASSERT_TRUE(node.started());
  GoodClient good(node, TransportKind::kTcp, 1, 4);
  ASSERT_TRUE(good.t);
  constexpr NodeId kNode = 5;
  constexpr std::uint64_t kPages = 64;
  auto connect = [&](TransportKind kind, std::uint64_t incarnation) {
    return ConnectAs(node, kind, kNode, incarnation);
  };
  const Asid asid = MakeAsid(kNode, 1);
  const std::uint64_t first = auth::NewIncarnation();
  {
    std::unique_ptr<Transport> t = connect(TransportKind::kTcp, first);
    ASSERT_TRUE(t);
    ASSERT_TRUE(t->CreateSpace(asid).ok());
    ASSERT_TRUE(t->RegisterRange(asid, kBase, kPages * kPageSize).ok());
    for (std::uint64_t i = 0; i < kPages; ++i)
      ASSERT_TRUE(t->WritePage(asid, kBase + i * kPageSize, Pattern(7000 + i).data()).ok());
  }  // the connection breaks
  const std::int64_t used = RemoteCounter(good.t.get(), "memnode_pages_used");
  {
    std::unique_ptr<Transport> observer = connect(TransportKind::kTcp, 0);
    ASSERT_TRUE(observer);
    MemoryNodeInfo info;
    EXPECT_TRUE(observer->Info(&info).ok());
  }
  EXPECT_EQ(RemoteCounter(good.t.get(), "memnode_pages_used"), used);
  {
    // Back, over the other transport this time: the node knows it by its
    // incarnation, not by its socket.
    std::unique_ptr<Transport> t = connect(TransportKind::kShm, first);
    ASSERT_TRUE(t);
    EXPECT_EQ(t->CreateSpace(asid).code(), Code::kSpaceExists);
    std::vector<char> buf(kPageSize);
    for (std::uint64_t i = 0; i < kPages; ++i) {
      ASSERT_TRUE(t->ReadPage(asid, kBase + i * kPageSize, buf.data()).ok());
      ASSERT_EQ(buf, Pattern(7000 + i)) << "page " << i;
    }
  }
  EXPECT_EQ(RemoteCounter(good.t.get(), "memnode_resumes"), 1);
  EXPECT_EQ(RemoteCounter(good.t.get(), "memnode_takeovers"), 0);
  // Another run of node 5: the old spaces go before it is served.
  std::unique_ptr<Transport> next = connect(TransportKind::kTcp, auth::NewIncarnation());
  ASSERT_TRUE(next);
  EXPECT_TRUE(next->CreateSpace(asid).ok());
  EXPECT_EQ(RemoteCounter(good.t.get(), "memnode_takeovers"), 1);
  EXPECT_EQ(RemoteCounter(good.t.get(), "memnode_pages_used"), used - std::int64_t{kPages});
  good.Check();
}

// A processor that authenticates again under the same incarnation has given
// up its older connection: the node closes it before answering the new
// handshake, so nothing sent on the old one is served after the new one's
// first request. An observer (incarnation 0) supersedes nothing.
TEST(MemoryNodeSecurityTest, AReconnectClosesTheOlderConnectionFirst) {
  constexpr NodeId kNode = 6;
  const std::uint64_t incarnation = auth::NewIncarnation();
  const Asid asid = MakeAsid(kNode, 1);
  MemoryNodeProcess node;
  ASSERT_TRUE(node.started());
  GoodClient good(node, TransportKind::kTcp, 1, 4);
  ASSERT_TRUE(good.t);
  std::unique_ptr<Transport> old_conn = ConnectAs(node, TransportKind::kTcp, kNode, incarnation);
  ASSERT_TRUE(old_conn);
  ASSERT_TRUE(old_conn->CreateSpace(asid).ok());
  ASSERT_TRUE(old_conn->RegisterRange(asid, kBase, 4 * kPageSize).ok());
  ASSERT_TRUE(old_conn->WritePage(asid, kBase, Pattern(1).data()).ok());

  std::unique_ptr<Transport> observer = ConnectAs(node, TransportKind::kTcp, kNode, 0);
  ASSERT_TRUE(observer);
  ASSERT_TRUE(old_conn->WritePage(asid, kBase + kPageSize, Pattern(2).data()).ok())
      << "an observer must not close the processor's connection";

  std::unique_ptr<Transport> fresh = ConnectAs(node, TransportKind::kShm, kNode, incarnation);
  ASSERT_TRUE(fresh);
  EXPECT_EQ(RemoteCounter(good.t.get(), "memnode_connections_superseded"), 1);
  // Whatever the old connection sends now is not served.
  const Status late = old_conn->WritePage(asid, kBase, Pattern(3).data());
  EXPECT_EQ(late.code(), Code::kDisconnected) << late.ToString();
  std::vector<char> buf(kPageSize);
  ASSERT_TRUE(fresh->ReadPage(asid, kBase, buf.data()).ok());
  EXPECT_EQ(buf, Pattern(1));
  ASSERT_TRUE(fresh->ReadPage(asid, kBase + kPageSize, buf.data()).ok());
  EXPECT_EQ(buf, Pattern(2));
  // The spaces were kept (a reconnect, not a takeover).
  EXPECT_EQ(fresh->CreateSpace(asid).code(), Code::kSpaceExists);
  EXPECT_EQ(RemoteCounter(good.t.get(), "memnode_takeovers"), 0);
  ASSERT_TRUE(fresh->DestroySpace(asid).ok());
  good.Check();
}

}  // namespace
}  // namespace remora::testing
