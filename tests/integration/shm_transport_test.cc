// The shared-memory transport against a real `remora memory-node` process:
// reads of stored pages must be one-sided (served from the shared region
// without any message), everything the index cannot answer must fall back to
// the memory node with the same results as TCP, and one-sided readers in this
// process must never see a torn page while another connection rewrites it.
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
constexpr std::uint64_t kPages = 256;

std::vector<std::uint64_t> WordPage(std::uint64_t w) {
  return std::vector<std::uint64_t>(kPageSize / 8, w);
}

class ShmTransportTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { node_ = new MemoryNodeProcess(); }
  static void TearDownTestSuite() {
    delete node_;
    node_ = nullptr;
  }
  void SetUp() override {
    ASSERT_TRUE(node_->started());
    t_ = Connect(1, &stats_);
    ASSERT_TRUE(t_);
  }
  std::unique_ptr<Transport> Connect(NodeId node, StatsRegistry* stats) {
    TransportOptions o;
    o.kind = TransportKind::kShm;
    o.address = node_->shm_path();
    o.secret = node_->secret();
    o.node_id = node;
    o.stats = stats;
    Status st;
    auto t = ConnectTransport(o, &st);
    EXPECT_TRUE(t) << st.ToString();
    return t;
  }
  Asid NewSpace(Transport* t, NodeId node = 1) {
    static std::atomic<std::uint32_t> next{1};
    Asid a = MakeAsid(node, next.fetch_add(1));
    EXPECT_TRUE(t->CreateSpace(a).ok());
    EXPECT_TRUE(t->RegisterRange(a, kBase, kPages * kPageSize).ok());
    return a;
  }
  std::int64_t Stat(const char* name) { return stats_.Snapshot().Counter(name); }

  static MemoryNodeProcess* node_;
  StatsRegistry stats_;
  std::unique_ptr<Transport> t_;
};

MemoryNodeProcess* ShmTransportTest::node_ = nullptr;

TEST_F(ShmTransportTest, StoredPagesAreReadWithoutMessages) {
  Asid a = NewSpace(t_.get());
  for (std::uint64_t i = 0; i < 100; ++i)
    ASSERT_TRUE(t_->WritePage(a, kBase + i * kPageSize, WordPage(i + 1).data()).ok());
  const std::int64_t requests_before = Stat("shm_requests");
  std::vector<std::uint64_t> buf(kPageSize / 8);
  for (std::uint64_t i = 0; i < 100; ++i) {
    bool present = false;
    ASSERT_TRUE(t_->ReadPage(a, kBase + i * kPageSize, buf.data(), &present).ok());
    EXPECT_TRUE(present);
    EXPECT_EQ(buf, WordPage(i + 1));
  }
  EXPECT_EQ(Stat("shm_requests"), requests_before);  // not one message
  EXPECT_EQ(Stat("shm_reads_onesided"), 100);
  EXPECT_EQ(Stat("shm_read_fallbacks"), 0);
  EXPECT_GE(stats_.Snapshot().histograms["shm_read_ns"].count, 100u);
  ASSERT_TRUE(t_->DestroySpace(a).ok());
}

TEST_F(ShmTransportTest, ReadsSeeEveryAcknowledgedWrite) {
  Asid a = NewSpace(t_.get());
  std::vector<std::uint64_t> buf(kPageSize / 8);
  for (std::uint64_t v = 1; v <= 50; ++v) {
    ASSERT_TRUE(t_->WritePage(a, kBase, WordPage(v).data()).ok());
    ASSERT_TRUE(t_->ReadPage(a, kBase, buf.data()).ok());
    ASSERT_EQ(buf, WordPage(v));
  }
  // Fork: the child's pages are readable one-sided and stay isolated.
  Asid child = MakeAsid(1, 900000 + static_cast<std::uint32_t>(a & 0xffff));
  ASSERT_TRUE(t_->ForkSpace(a, child).ok());
  ASSERT_TRUE(t_->ReadPage(child, kBase, buf.data()).ok());
  EXPECT_EQ(buf, WordPage(50));
  ASSERT_TRUE(t_->WritePage(child, kBase, WordPage(77).data()).ok());
  ASSERT_TRUE(t_->ReadPage(a, kBase, buf.data()).ok());
  EXPECT_EQ(buf, WordPage(50));
  ASSERT_TRUE(t_->ReadPage(child, kBase, buf.data()).ok());
  EXPECT_EQ(buf, WordPage(77));
  EXPECT_EQ(Stat("shm_read_fallbacks"), 0);
  // Discarded pages read as absent zeros (through the memory node).
  ASSERT_TRUE(t_->DiscardRange(a, kBase, kPageSize).ok());
  bool present = true;
  ASSERT_TRUE(t_->ReadPage(a, kBase, buf.data(), &present).ok());
  EXPECT_FALSE(present);
  EXPECT_EQ(buf, WordPage(0));
  EXPECT_EQ(Stat("shm_read_fallbacks"), 1);
  ASSERT_TRUE(t_->DestroySpace(child).ok());
  ASSERT_TRUE(t_->DestroySpace(a).ok());
}

TEST_F(ShmTransportTest, WhatTheIndexCannotAnswerGetsTheMemoryNodesAnswer) {
  Asid a = NewSpace(t_.get());
  std::vector<char> buf(kPageSize, 'x');
  bool present = true;
  ASSERT_TRUE(t_->ReadPage(a, kBase + kPageSize, buf.data(), &present).ok());
  EXPECT_FALSE(present);
  EXPECT_EQ(buf, std::vector<char>(kPageSize, 0));
  EXPECT_EQ(t_->ReadPage(a, kBase + kPages * kPageSize, buf.data()).code(), Code::kNotRegistered);
  EXPECT_EQ(t_->ReadPage(a, kBase + 1, buf.data()).code(), Code::kBadRequest);
  EXPECT_EQ(t_->ReadPage(MakeAsid(1, 4000000), kBase, buf.data()).code(), Code::kNoSuchSpace);
  // Another processor node's space: present in the shared region, but the
  // transport does not read it behind the memory node's ownership check.
  auto other = Connect(2, nullptr);
  ASSERT_TRUE(other);
  Asid theirs = NewSpace(other.get(), 2);
  ASSERT_TRUE(other->WritePage(theirs, kBase, WordPage(5).data()).ok());
  EXPECT_EQ(t_->ReadPage(theirs, kBase, buf.data()).code(), Code::kPermissionDenied);
  EXPECT_EQ(Stat("shm_reads_onesided"), 0);
  ASSERT_TRUE(other->DestroySpace(theirs).ok());
  ASSERT_TRUE(t_->DestroySpace(a).ok());
}

TEST_F(ShmTransportTest, BatchedReadsMixOneSidedAndFallback) {
  Asid a = NewSpace(t_.get());
  std::vector<std::uint64_t> uvas;
  for (std::uint64_t i = 0; i < 40; ++i) {
    uvas.push_back(kBase + i * kPageSize);
    if (i % 4 != 0) {
      ASSERT_TRUE(t_->WritePage(a, uvas.back(), WordPage(1000 + i).data()).ok());
    }
  }
  std::vector<std::uint64_t> out(uvas.size() * kPageSize / 8, 0xff);
  std::unique_ptr<bool[]> present(new bool[uvas.size()]);
  ASSERT_TRUE(t_->ReadPages(a, uvas, out.data(), present.get()).ok());
  for (std::uint64_t i = 0; i < uvas.size(); ++i) {
    EXPECT_EQ(present[i], i % 4 != 0) << i;
    const std::uint64_t want = i % 4 != 0 ? 1000 + i : 0;
    for (std::size_t w = 0; w < kPageSize / 8; ++w) {
      ASSERT_EQ(out[i * kPageSize / 8 + w], want) << "page " << i;
    }
  }
  EXPECT_EQ(Stat("shm_reads_onesided"), 30);
  EXPECT_EQ(Stat("shm_read_fallbacks"), 10);
  ASSERT_TRUE(t_->DestroySpace(a).ok());
}

// Another connection (so another thread of the memory node) rewrites pages
// whose every word is (page << 32 | version); one-sided readers here must
// see whole pages of non-decreasing versions only.
TEST_F(ShmTransportTest, ConcurrentOneSidedReadsNeverTear) {
  Asid a = NewSpace(t_.get());
  constexpr std::uint64_t kHot = 16;
  for (std::uint64_t p = 0; p < kHot; ++p)
    ASSERT_TRUE(t_->WritePage(a, kBase + p * kPageSize, WordPage(p << 32 | 1).data()).ok());
  auto writer_t = Connect(1, nullptr);
  ASSERT_TRUE(writer_t);
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> bad{0}, reads{0};
  std::vector<std::thread> readers;
  for (int r = 0; r < 2; ++r) {
    readers.emplace_back([&, r] {
      std::vector<std::uint64_t> buf(kPageSize / 8);
      std::vector<std::uint64_t> seen(kHot, 1);
      std::uint64_t n = 0, i = r;
      while (!stop.load(std::memory_order_relaxed)) {
        const std::uint64_t p = i++ % kHot;
        if (!t_->ReadPage(a, kBase + p * kPageSize, buf.data()).ok()) {
          bad.fetch_add(1);
          continue;
        }
        ++n;
        const std::uint64_t w = buf[0];
        bool ok = (w >> 32) == p && (w & 0xffffffff) >= seen[p];
        for (std::uint64_t x : buf) ok &= x == w;
        if (!ok) bad.fetch_add(1);
        seen[p] = w & 0xffffffff;
      }
      reads.fetch_add(n);
    });
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(1000);
  std::uint64_t v = 2;
  for (; std::chrono::steady_clock::now() < deadline; ++v) {
    const std::uint64_t p = v % kHot;
    ASSERT_TRUE(writer_t->WritePage(a, kBase + p * kPageSize, WordPage(p << 32 | v).data()).ok());
  }
  stop = true;
  for (auto& th : readers) th.join();
  EXPECT_EQ(bad.load(), 0u);
  EXPECT_GT(reads.load(), 1000u);
  std::printf("one-sided reads %llu (retries %lld, fallbacks %lld) during %llu writes\n",
              static_cast<unsigned long long>(reads.load()),
              static_cast<long long>(Stat("shm_read_retries")),
              static_cast<long long>(Stat("shm_read_fallbacks")),
              static_cast<unsigned long long>(v - 2));
  ASSERT_TRUE(t_->DestroySpace(a).ok());
}

}  // namespace
}  // namespace remora::testing
