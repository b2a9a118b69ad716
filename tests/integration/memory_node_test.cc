// Functional tests of a real `remora memory-node` process through each client
// transport (TCP, shared memory): page data, batching, concurrency, fork
// isolation, freeing, capacity, shared writes and address-space isolation.
#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <thread>
#include <vector>

#include "harness.h"
#include "remora/stats.h"
#include "remora/transport.h"

namespace remora::testing {
namespace {

constexpr std::uint64_t kBase = 0x7f0000000000ull;
constexpr std::uint64_t kRangeLen = 64ull << 20;  // 16 Ki pages registered per space

// A page whose every 8-byte word names (asid, uva, version): any misplaced,
// stale or torn page is detected byte-exactly.
std::vector<char> Pattern(Asid asid, std::uint64_t uva, std::uint64_t version) {
  std::vector<char> page(kPageSize);
  for (std::size_t i = 0; i < kPageSize / 8; ++i) {
    std::uint64_t w = asid * 0x9e3779b97f4a7c15ull ^ uva ^ (version << 48) ^ (i * 0x10001);
    std::memcpy(page.data() + i * 8, &w, 8);
  }
  return page;
}

bool IsZero(const char* p, std::size_t n = kPageSize) {
  for (std::size_t i = 0; i < n; ++i)
    if (p[i]) return false;
  return true;
}

std::string KindName(const ::testing::TestParamInfo<TransportKind>& info) {
  return info.param == TransportKind::kTcp ? "Tcp" : "Shm";
}

class MemoryNodeTest : public ::testing::TestWithParam<TransportKind> {
 protected:
  static void SetUpTestSuite() { node_ = new MemoryNodeProcess(); }
  static void TearDownTestSuite() {
    delete node_;
    node_ = nullptr;
  }

  void SetUp() override {
    ASSERT_TRUE(node_->started()) << "memory node did not start";
    Status st;
    t_ = node_->Connect(GetParam(), 1, &st);
    ASSERT_TRUE(t_) << st.ToString();
  }

  // A fresh address space of node 1 with [kBase, kBase + kRangeLen) registered.
  Asid NewSpace(Transport* t = nullptr, NodeId node = 1) {
    static std::atomic<std::uint32_t> next{1};
    Asid a = MakeAsid(node, next.fetch_add(1) + (GetParam() == TransportKind::kShm ? 50000 : 0));
    if (!t) t = t_.get();
    EXPECT_TRUE(t->CreateSpace(a).ok());
    EXPECT_TRUE(t->RegisterRange(a, kBase, kRangeLen).ok());
    return a;
  }

  void ExpectPage(Transport* t, Asid a, std::uint64_t uva, const std::vector<char>& want) {
    std::vector<char> got(kPageSize, 'x');
    bool present = false;
    Status st = t->ReadPage(a, uva, got.data(), &present);
    ASSERT_TRUE(st.ok()) << st.ToString();
    EXPECT_TRUE(present);
    EXPECT_EQ(std::memcmp(got.data(), want.data(), kPageSize), 0) << "page " << std::hex << uva;
  }

  std::uint64_t UsedPages() {
    MemoryNodeInfo info;
    EXPECT_TRUE(t_->Info(&info).ok());
    return info.used_pages;
  }

  static MemoryNodeProcess* node_;
  std::unique_ptr<Transport> t_;
};

MemoryNodeProcess* MemoryNodeTest::node_ = nullptr;

TEST_P(MemoryNodeTest, WrittenPageReadsBackExactly) {
  Asid a = NewSpace();
  auto page = Pattern(a, kBase + 5 * kPageSize, 1);
  ASSERT_TRUE(t_->WritePage(a, kBase + 5 * kPageSize, page.data()).ok());
  ExpectPage(t_.get(), a, kBase + 5 * kPageSize, page);
  auto v2 = Pattern(a, kBase + 5 * kPageSize, 2);  // overwrite
  ASSERT_TRUE(t_->WritePage(a, kBase + 5 * kPageSize, v2.data()).ok());
  ExpectPage(t_.get(), a, kBase + 5 * kPageSize, v2);
  EXPECT_EQ(t_->Name(), GetParam() == TransportKind::kTcp ? "tcp" : "shm");
}

TEST_P(MemoryNodeTest, NeverWrittenPagesReadZeroAndAbsent) {
  Asid a = NewSpace();
  std::vector<char> buf(kPageSize, 'x');
  bool present = true;
  ASSERT_TRUE(t_->ReadPage(a, kBase, buf.data(), &present).ok());
  EXPECT_FALSE(present);
  EXPECT_TRUE(IsZero(buf.data()));

  auto page = Pattern(a, kBase + kPageSize, 1);
  ASSERT_TRUE(t_->WritePage(a, kBase + kPageSize, page.data()).ok());
  std::vector<std::uint64_t> uvas = {kBase, kBase + kPageSize, kBase + 2 * kPageSize};
  std::vector<char> bufs(3 * kPageSize, 'x');
  bool flags[3] = {true, false, true};
  ASSERT_TRUE(t_->ReadPages(a, uvas, bufs.data(), flags).ok());
  EXPECT_FALSE(flags[0]);
  EXPECT_TRUE(flags[1]);
  EXPECT_FALSE(flags[2]);
  EXPECT_TRUE(IsZero(bufs.data()));
  EXPECT_EQ(std::memcmp(bufs.data() + kPageSize, page.data(), kPageSize), 0);
  EXPECT_TRUE(IsZero(bufs.data() + 2 * kPageSize));
}

TEST_P(MemoryNodeTest, BatchesLargerThanOneMessageRoundTrip) {
  Asid a = NewSpace();
  const std::size_t n = 700;  // three kReadPages/kWritePages messages
  std::vector<std::uint64_t> uvas(n);
  std::vector<char> data(n * kPageSize);
  for (std::size_t i = 0; i < n; ++i) {
    uvas[i] = kBase + (i * 7 % 4096) * kPageSize + (i / 4096) * 4096 * kPageSize;
    auto p = Pattern(a, uvas[i], 3);
    std::memcpy(data.data() + i * kPageSize, p.data(), kPageSize);
  }
  ASSERT_TRUE(t_->WritePages(a, uvas, data.data()).ok());
  std::vector<char> back(n * kPageSize);
  std::unique_ptr<bool[]> present(new bool[n]);
  ASSERT_TRUE(t_->ReadPages(a, uvas, back.data(), present.get()).ok());
  for (std::size_t i = 0; i < n; ++i) EXPECT_TRUE(present[i]) << i;
  EXPECT_EQ(std::memcmp(back.data(), data.data(), data.size()), 0);
  // Single reads see the batched writes too.
  ExpectPage(t_.get(), a, uvas[123], Pattern(a, uvas[123], 3));
}

// The gathered form: pages taken from wherever they are (scattered, in an
// order unlike their addresses), more than one message's worth.
TEST_P(MemoryNodeTest, GatheredWritesStoreEachPageFromWhereItIs) {
  Asid a = NewSpace();
  const std::size_t n = 300;  // two kWritePages messages
  std::vector<std::uint64_t> uvas(n);
  std::vector<std::vector<char>> pages(n);
  std::vector<const void*> where(n);
  for (std::size_t i = 0; i < n; ++i) {
    uvas[i] = kBase + ((n - 1 - i) * 5 % 1024) * kPageSize;
    auto p = Pattern(a, uvas[i], 9);
    pages[i].assign(p.begin(), p.end());
    where[i] = pages[i].data();
  }
  ASSERT_TRUE(t_->WritePagesGather(a, uvas, where).ok());
  for (std::size_t i = 0; i < n; i += 37) ExpectPage(t_.get(), a, uvas[i], Pattern(a, uvas[i], 9));
  ExpectPage(t_.get(), a, uvas[n - 1], Pattern(a, uvas[n - 1], 9));
}

TEST_P(MemoryNodeTest, ManyThreadsShareOneTransport) {
  constexpr int kThreads = 6, kPages = 150;
  std::vector<Asid> spaces;
  for (int t = 0; t < kThreads; ++t) spaces.push_back(NewSpace());
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      Asid a = spaces[t];
      for (int i = 0; i < kPages; ++i) {
        std::uint64_t uva = kBase + static_cast<std::uint64_t>(i) * kPageSize;
        auto p = Pattern(a, uva, 1);
        if (!t_->WritePage(a, uva, p.data()).ok()) ++failures;
      }
      // Batched read of everything, then single reads of a few.
      std::vector<std::uint64_t> uvas(kPages);
      for (int i = 0; i < kPages; ++i) uvas[i] = kBase + static_cast<std::uint64_t>(i) * kPageSize;
      std::vector<char> back(kPages * kPageSize);
      if (!t_->ReadPages(a, uvas, back.data()).ok()) ++failures;
      for (int i = 0; i < kPages; ++i) {
        auto p = Pattern(a, uvas[i], 1);
        if (std::memcmp(back.data() + i * kPageSize, p.data(), kPageSize) != 0) ++failures;
      }
      std::vector<char> one(kPageSize);
      for (int i = 0; i < kPages; i += 7) {
        bool present = false;
        auto p = Pattern(a, uvas[i], 1);
        if (!t_->ReadPage(a, uvas[i], one.data(), &present).ok() || !present ||
            std::memcmp(one.data(), p.data(), kPageSize) != 0)
          ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
}

TEST_P(MemoryNodeTest, SeveralClientsAtOnce) {
  std::vector<std::unique_ptr<Transport>> clients;
  for (int i = 0; i < 4; ++i) {
    Status st;
    clients.push_back(node_->Connect(GetParam(), 1, &st));
    ASSERT_TRUE(clients.back()) << st.ToString();
  }
  Asid a = NewSpace();
  std::vector<std::thread> threads;
  for (int c = 0; c < 4; ++c)
    threads.emplace_back([&, c] {
      for (int i = 0; i < 50; ++i) {
        std::uint64_t uva = kBase + static_cast<std::uint64_t>(c * 1000 + i) * kPageSize;
        auto p = Pattern(a, uva, 9);
        EXPECT_TRUE(clients[c]->WritePage(a, uva, p.data()).ok());
      }
    });
  for (auto& th : threads) th.join();
  // Every client sees what the others wrote.
  for (int c = 0; c < 4; ++c) {
    std::uint64_t uva = kBase + static_cast<std::uint64_t>(((c + 1) % 4) * 1000 + 49) * kPageSize;
    ExpectPage(clients[c].get(), a, uva, Pattern(a, uva, 9));
  }
}

TEST_P(MemoryNodeTest, ForkedSpacesAreCopyOnWriteBothWays) {
  Asid parent = NewSpace();
  const std::uint64_t A = kBase, B = kBase + kPageSize, C = kBase + 2 * kPageSize;
  for (std::uint64_t uva : {A, B, C})
    ASSERT_TRUE(t_->WritePage(parent, uva, Pattern(parent, uva, 1).data()).ok());
  std::uint64_t before_fork = UsedPages();

  Asid child = MakeAsid(1, static_cast<std::uint32_t>(parent) + 100000);
  ASSERT_TRUE(t_->ForkSpace(parent, child).ok());
  EXPECT_EQ(UsedPages(), before_fork) << "fork must share pages, not copy them";

  // Child writes A: the parent keeps its A.
  auto child_a = Pattern(child, A, 2);
  ASSERT_TRUE(t_->WritePage(child, A, child_a.data()).ok());
  ExpectPage(t_.get(), parent, A, Pattern(parent, A, 1));
  ExpectPage(t_.get(), child, A, child_a);
  // Parent writes B: the child keeps the B it inherited.
  auto parent_b = Pattern(parent, B, 3);
  ASSERT_TRUE(t_->WritePage(parent, B, parent_b.data()).ok());
  ExpectPage(t_.get(), child, B, Pattern(parent, B, 1));
  ExpectPage(t_.get(), parent, B, parent_b);
  // C was written by nobody after the fork: shared, identical in both.
  ExpectPage(t_.get(), parent, C, Pattern(parent, C, 1));
  ExpectPage(t_.get(), child, C, Pattern(parent, C, 1));
  EXPECT_EQ(UsedPages(), before_fork + 2);  // one COW copy per side that wrote
  // Never-written pages stay absent in the child too.
  std::vector<char> buf(kPageSize);
  bool present = true;
  ASSERT_TRUE(t_->ReadPage(child, kBase + 10 * kPageSize, buf.data(), &present).ok());
  EXPECT_FALSE(present);

  // Destroying the parent leaves the child whole.
  ASSERT_TRUE(t_->DestroySpace(parent).ok());
  ExpectPage(t_.get(), child, C, Pattern(parent, C, 1));
  ExpectPage(t_.get(), child, B, Pattern(parent, B, 1));
  ASSERT_TRUE(t_->DestroySpace(child).ok());
}

TEST_P(MemoryNodeTest, SharedWriteIsStoredOnceForEverySpace) {
  Asid parent = NewSpace();
  Asid child = MakeAsid(1, static_cast<std::uint32_t>(parent) + 200000);
  ASSERT_TRUE(t_->ForkSpace(parent, child).ok());
  std::uint64_t before = UsedPages();
  auto page = Pattern(parent, kBase, 5);
  Asid both[2] = {parent, child};
  ASSERT_TRUE(t_->WritePageShared(both, kBase, page.data()).ok());
  EXPECT_EQ(UsedPages(), before + 1);
  ExpectPage(t_.get(), parent, kBase, page);
  ExpectPage(t_.get(), child, kBase, page);
  // ...and it is still copy-on-write afterwards.
  auto mine = Pattern(child, kBase, 6);
  ASSERT_TRUE(t_->WritePage(child, kBase, mine.data()).ok());
  ExpectPage(t_.get(), parent, kBase, page);
  ASSERT_TRUE(t_->DestroySpace(parent).ok());
  ASSERT_TRUE(t_->DestroySpace(child).ok());
}

TEST_P(MemoryNodeTest, DestroyReturnsUsedPagesToBaseline) {
  std::uint64_t baseline = UsedPages();
  Asid a = NewSpace();
  std::vector<std::uint64_t> uvas(64);
  std::vector<char> data(64 * kPageSize, 7);
  for (int i = 0; i < 64; ++i) uvas[i] = kBase + static_cast<std::uint64_t>(i) * kPageSize;
  ASSERT_TRUE(t_->WritePages(a, uvas, data.data()).ok());
  EXPECT_EQ(UsedPages(), baseline + 64);
  Asid child = MakeAsid(1, static_cast<std::uint32_t>(a) + 300000);
  ASSERT_TRUE(t_->ForkSpace(a, child).ok());
  ASSERT_TRUE(t_->WritePage(child, kBase, data.data()).ok());
  EXPECT_EQ(UsedPages(), baseline + 65);
  ASSERT_TRUE(t_->DestroySpace(a).ok());
  ASSERT_TRUE(t_->DestroySpace(child).ok());
  EXPECT_EQ(UsedPages(), baseline);
  // The id can be used again, and starts empty.
  ASSERT_TRUE(t_->CreateSpace(a).ok());
  ASSERT_TRUE(t_->RegisterRange(a, kBase, kRangeLen).ok());
  bool present = true;
  ASSERT_TRUE(t_->ReadPage(a, kBase, data.data(), &present).ok());
  EXPECT_FALSE(present);
  ASSERT_TRUE(t_->DestroySpace(a).ok());
}

TEST_P(MemoryNodeTest, DiscardAndUnregisterFreePages) {
  Asid a = NewSpace();
  std::uint64_t base_used = UsedPages();
  std::vector<char> page(kPageSize, 3);
  for (int i = 0; i < 8; ++i)
    ASSERT_TRUE(
        t_->WritePage(a, kBase + static_cast<std::uint64_t>(i) * kPageSize, page.data()).ok());
  ASSERT_TRUE(t_->DiscardRange(a, kBase, 4 * kPageSize).ok());
  EXPECT_EQ(UsedPages(), base_used + 4);
  bool present = true;
  ASSERT_TRUE(t_->ReadPage(a, kBase, page.data(), &present).ok());
  EXPECT_FALSE(present);
  ASSERT_TRUE(t_->UnregisterRange(a, kBase, kRangeLen).ok());
  EXPECT_EQ(UsedPages(), base_used);
  Status st = t_->WritePage(a, kBase, page.data());
  EXPECT_EQ(st.code(), Code::kNotRegistered) << st.ToString();
  ASSERT_TRUE(t_->DestroySpace(a).ok());
}

TEST_P(MemoryNodeTest, ErrorsComeBackAsCodes) {
  std::vector<char> page(kPageSize);
  Asid ghost = MakeAsid(1, 0xfffff0);
  EXPECT_EQ(t_->ReadPage(ghost, kBase, page.data()).code(), Code::kNoSuchSpace);
  EXPECT_EQ(t_->WritePage(ghost, kBase, page.data()).code(), Code::kNoSuchSpace);
  EXPECT_EQ(t_->DestroySpace(ghost).code(), Code::kNoSuchSpace);
  Asid a = NewSpace();
  EXPECT_EQ(t_->CreateSpace(a).code(), Code::kSpaceExists);
  EXPECT_EQ(t_->ReadPage(a, kBase + 12, page.data()).code(), Code::kBadRequest);
  EXPECT_EQ(t_->WritePage(a, kBase + 12, page.data()).code(), Code::kBadRequest);
  EXPECT_EQ(t_->ReadPage(a, 0x1000, page.data()).code(), Code::kNotRegistered);
  ASSERT_TRUE(t_->DestroySpace(a).ok());
}

TEST_P(MemoryNodeTest, ProcessorNodesCannotTouchEachOthersSpaces) {
  Status st;
  auto other = node_->Connect(GetParam(), 2, &st);
  ASSERT_TRUE(other) << st.ToString();
  Asid mine = NewSpace();
  auto page = Pattern(mine, kBase, 1);
  ASSERT_TRUE(t_->WritePage(mine, kBase, page.data()).ok());

  std::vector<char> buf(kPageSize);
  std::uint64_t uvas[1] = {kBase};
  Asid both[2] = {mine, MakeAsid(2, 1)};
  EXPECT_EQ(other->ReadPage(mine, kBase, buf.data()).code(), Code::kPermissionDenied);
  EXPECT_EQ(other->ReadPages(mine, uvas, buf.data()).code(), Code::kPermissionDenied);
  EXPECT_EQ(other->WritePage(mine, kBase, buf.data()).code(), Code::kPermissionDenied);
  EXPECT_EQ(other->WritePages(mine, uvas, buf.data()).code(), Code::kPermissionDenied);
  EXPECT_EQ(other->WritePageShared(both, kBase, buf.data()).code(), Code::kPermissionDenied);
  EXPECT_EQ(other->DestroySpace(mine).code(), Code::kPermissionDenied);
  EXPECT_EQ(other->DiscardRange(mine, kBase, kPageSize).code(), Code::kPermissionDenied);
  EXPECT_EQ(other->ForkSpace(mine, MakeAsid(2, 77)).code(), Code::kPermissionDenied);
  EXPECT_EQ(other->CreateSpace(MakeAsid(1, 0xabcdef)).code(), Code::kPermissionDenied);
  // Node 1 cannot fork into node 2's namespace either.
  EXPECT_EQ(t_->ForkSpace(mine, MakeAsid(2, 78)).code(), Code::kPermissionDenied);
  // Nothing changed.
  ExpectPage(t_.get(), mine, kBase, page);
  // Node 2 has its own spaces.
  Asid theirs = MakeAsid(2, 5);
  ASSERT_TRUE(other->CreateSpace(theirs).ok());
  EXPECT_EQ(t_->ReadPage(theirs, kBase, buf.data()).code(), Code::kPermissionDenied);
  ASSERT_TRUE(other->DestroySpace(theirs).ok());
  ASSERT_TRUE(t_->DestroySpace(mine).ok());
}

TEST_P(MemoryNodeTest, InfoAndRemoteStats) {
  MemoryNodeInfo info;
  ASSERT_TRUE(t_->Info(&info).ok());
  EXPECT_EQ(info.capacity_pages, (64ull << 20) / kPageSize);
  Asid a = NewSpace();
  ASSERT_TRUE(t_->WritePage(a, kBase, Pattern(a, kBase, 1).data()).ok());
  std::string json;
  ASSERT_TRUE(t_->RemoteStatsJson(&json).ok());
  StatsSnapshot snap;
  ASSERT_TRUE(StatsSnapshot::FromJson(json, &snap).ok()) << json;
  EXPECT_GE(snap.Counter("memnode_req_write_page"), 1);
  EXPECT_GE(snap.Counter("memnode_req_create_space"), 1);
  EXPECT_GE(snap.Counter("memnode_connections"), 1);
  EXPECT_GE(snap.Counter("memnode_bytes_in"), 4096);
  ASSERT_TRUE(t_->DestroySpace(a).ok());
}

TEST_P(MemoryNodeTest, ClientCountersWhenStatsAreGiven) {
  StatsRegistry reg;
  TransportOptions o;
  o.kind = GetParam();
  o.address = GetParam() == TransportKind::kShm ? node_->shm_path() : node_->tcp_address();
  o.secret = node_->secret();
  o.stats = &reg;
  Status st;
  auto t = ConnectTransport(o, &st);
  ASSERT_TRUE(t) << st.ToString();
  MemoryNodeInfo info;
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(t->Info(&info).ok());
  StatsSnapshot s = reg.Snapshot();
  std::string p = GetParam() == TransportKind::kShm ? "shm" : "tcp";
  EXPECT_GE(s.Counter(p + "_requests"), 10);
  EXPECT_GE(s.Counter(p + "_bytes_sent"), 10 * 48);
  EXPECT_GE(s.Counter(p + "_bytes_received"), 10 * (48 + 32));
  ASSERT_TRUE(s.histograms.count(p + "_rtt_ns"));
  EXPECT_GE(s.histograms[p + "_rtt_ns"].count, 10u);
}

INSTANTIATE_TEST_SUITE_P(Transports, MemoryNodeTest,
                         ::testing::Values(TransportKind::kTcp, TransportKind::kShm), KindName);

// ---- capacity: a small node of its own ----

class CapacityTest : public ::testing::TestWithParam<TransportKind> {};

TEST_P(CapacityTest, FullNodeRefusesWritesKeepsServingAndRecovers) {
  MemoryNodeProcessOptions po;
  po.capacity = "1M";  // 256 pages
  MemoryNodeProcess node(po);
  ASSERT_TRUE(node.started());
  Status st;
  auto t = node.Connect(GetParam(), 1, &st);
  ASSERT_TRUE(t) << st.ToString();
  Asid a = MakeAsid(1, 1);
  ASSERT_TRUE(t->CreateSpace(a).ok());
  ASSERT_TRUE(t->RegisterRange(a, kBase, kRangeLen).ok());

  std::uint64_t written = 0;
  for (; written < 1000; ++written) {
    std::uint64_t uva = kBase + written * kPageSize;
    st = t->WritePage(a, uva, Pattern(a, uva, 1).data());
    if (!st.ok()) break;
  }
  EXPECT_EQ(st.code(), Code::kOutOfMemory) << st.ToString();
  // The page table is charged too: 48 bytes an entry, 3 pages of 256 here.
  EXPECT_EQ(written, 253u);
  // A batch that does not fit fails the same way.
  std::vector<std::uint64_t> more = {kBase + 2000 * kPageSize, kBase + 2001 * kPageSize};
  std::vector<char> two(2 * kPageSize, 1);
  EXPECT_EQ(t->WritePages(a, more, two.data()).code(), Code::kOutOfMemory);
  // Overwriting a stored page needs no new capacity.
  auto v2 = Pattern(a, kBase, 2);
  st = t->WritePage(a, kBase, v2.data());
  EXPECT_TRUE(st.ok()) << st.ToString();

  // Still serving reads, and other clients.
  std::vector<char> buf(kPageSize);
  bool present = false;
  ASSERT_TRUE(t->ReadPage(a, kBase + 100 * kPageSize, buf.data(), &present).ok());
  EXPECT_TRUE(present);
  EXPECT_EQ(std::memcmp(buf.data(), Pattern(a, kBase + 100 * kPageSize, 1).data(), kPageSize), 0);
  auto other = node.Connect(TransportKind::kTcp, 1, &st);
  ASSERT_TRUE(other) << st.ToString();
  MemoryNodeInfo info;
  ASSERT_TRUE(other->Info(&info).ok());
  EXPECT_EQ(info.used_pages, written);
  EXPECT_EQ(info.capacity_pages, 256u);

  // Freeing space makes writes succeed again.
  ASSERT_TRUE(t->DiscardRange(a, kBase, 10 * kPageSize).ok());
  for (int i = 0; i < 10; ++i) {
    std::uint64_t uva = kBase + (3000 + static_cast<std::uint64_t>(i)) * kPageSize;
    st = t->WritePage(a, uva, Pattern(a, uva, 1).data());
    EXPECT_TRUE(st.ok()) << st.ToString();
  }
  EXPECT_EQ(t->WritePage(a, kBase + 5000 * kPageSize, buf.data()).code(), Code::kOutOfMemory);
  ASSERT_TRUE(t->DestroySpace(a).ok());
  ASSERT_TRUE(other->Info(&info).ok());
  EXPECT_EQ(info.used_pages, 0u);
  EXPECT_TRUE(node.Alive());
}

INSTANTIATE_TEST_SUITE_P(Transports, CapacityTest,
                         ::testing::Values(TransportKind::kTcp, TransportKind::kShm), KindName);

}  // namespace
}  // namespace remora::testing
