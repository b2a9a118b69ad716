#include "memory-node/page_store.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <map>
#include <random>
#include <set>
#include <thread>
#include <vector>

#include "net/shm/shm_page_reader.h"
#include "remora/stats.h"

namespace remora {
namespace {

constexpr Asid kA = MakeAsid(1, 1);
constexpr Asid kB = MakeAsid(1, 2);
constexpr Asid kC = MakeAsid(1, 3);
constexpr std::uint64_t kBase = 0x7f0000000000ULL;

std::vector<char> Page(char fill) { return std::vector<char>(kPageSize, fill); }

// A page whose every 8-byte word is `word`.
std::vector<std::uint64_t> WordPage(std::uint64_t word) {
  return std::vector<std::uint64_t>(kPageSize / 8, word);
}

class PageStoreTest : public ::testing::Test {
 protected:
  void Make(std::uint64_t capacity_pages) {
    Status st;
    store_ = PageStore::Create({capacity_pages, 7}, &stats_, &st);
    ASSERT_TRUE(st.ok()) << st.ToString();
    ASSERT_NE(store_, nullptr);
  }
  void SetUp() override { Make(256); }

  // Creates `asid` with [kBase, kBase + pages * 4K) registered.
  void Space(Asid asid, std::uint64_t pages = 64) {
    ASSERT_TRUE(store_->CreateSpace(asid).ok());
    ASSERT_TRUE(store_->RegisterRange(asid, kBase, pages * kPageSize).ok());
  }
  Status Write(Asid asid, std::uint64_t page, char fill) {
    auto p = Page(fill);
    return store_->WritePage(asid, kBase + page * kPageSize, p.data());
  }
  // Fill byte of the page, or 0 if absent (and then checks it is all zero).
  char Read(Asid asid, std::uint64_t page, bool* present = nullptr) {
    std::vector<char> buf(kPageSize, 'x');
    bool p = true;
    Status st = store_->ReadPage(asid, kBase + page * kPageSize, buf.data(), &p);
    EXPECT_TRUE(st.ok()) << st.ToString();
    if (present) *present = p;
    for (char c : buf) EXPECT_EQ(c, buf[0]);
    if (!p) {
      EXPECT_EQ(buf[0], 0);
    }
    return buf[0];
  }
  std::uint64_t Used() { return store_->Info().used_pages; }
  std::int64_t Stat(const char* name) { return stats_.Snapshot().Counter(name); }

  StatsRegistry stats_;
  std::unique_ptr<PageStore> store_;
};

TEST_F(PageStoreTest, WriteThenRead) {
  Space(kA);
  ASSERT_TRUE(Write(kA, 3, 'q').ok());
  bool present = false;
  EXPECT_EQ(Read(kA, 3, &present), 'q');
  EXPECT_TRUE(present);
  ASSERT_TRUE(Write(kA, 3, 'r').ok());  // overwrite
  EXPECT_EQ(Read(kA, 3), 'r');
  EXPECT_EQ(Used(), 1u);
  EXPECT_EQ(Stat("memnode_pages_written"), 2);
  EXPECT_EQ(Stat("memnode_pages_used"), 1);
}

TEST_F(PageStoreTest, NeverWrittenPageReadsZeroAndCostsNothing) {
  Space(kA);
  bool present = true;
  EXPECT_EQ(Read(kA, 5, &present), 0);
  EXPECT_FALSE(present);
  EXPECT_EQ(Used(), 0u);
}

TEST_F(PageStoreTest, RangeArgumentsMustBePageAligned) {
  ASSERT_TRUE(store_->CreateSpace(kA).ok());
  EXPECT_EQ(store_->RegisterRange(kA, kBase + 1, kPageSize).code(), Code::kBadRequest);
  EXPECT_EQ(store_->RegisterRange(kA, kBase, 100).code(), Code::kBadRequest);
  EXPECT_EQ(store_->RegisterRange(kA, kBase, 0).code(), Code::kBadRequest);
  EXPECT_EQ(store_->RegisterRange(kA, ~0ULL & kPageMask, 2 * kPageSize).code(), Code::kBadRequest);
  EXPECT_EQ(store_->UnregisterRange(kA, kBase, 3).code(), Code::kBadRequest);
  EXPECT_EQ(store_->DiscardRange(kA, kBase + 7, kPageSize).code(), Code::kBadRequest);
  ASSERT_TRUE(store_->RegisterRange(kA, kBase, kPageSize).ok());
  auto p = Page('a');
  EXPECT_EQ(store_->WritePage(kA, kBase + 8, p.data()).code(), Code::kBadRequest);
  EXPECT_EQ(store_->ReadPage(kA, kBase + 8, p.data(), nullptr).code(), Code::kBadRequest);
}

TEST_F(PageStoreTest, AccessOutsideRegisteredRangesFails) {
  Space(kA, 4);
  EXPECT_EQ(Write(kA, 4, 'x').code(), Code::kNotRegistered);
  EXPECT_EQ(Write(kA, -1, 'x').code(), Code::kNotRegistered);
  std::vector<char> buf(kPageSize);
  EXPECT_EQ(store_->ReadPage(kA, kBase + 4 * kPageSize, buf.data(), nullptr).code(),
            Code::kNotRegistered);
  // Adjacent registrations merge into one usable range.
  ASSERT_TRUE(store_->RegisterRange(kA, kBase + 4 * kPageSize, 4 * kPageSize).ok());
  EXPECT_TRUE(Write(kA, 4, 'x').ok());
  EXPECT_TRUE(Write(kA, 7, 'y').ok());
  EXPECT_EQ(Used(), 2u);
}

TEST_F(PageStoreTest, UnregisterFreesPagesAndForbidsAccess) {
  Space(kA, 8);
  for (int i = 0; i < 8; ++i) ASSERT_TRUE(Write(kA, i, 'a' + i).ok());
  // Punch a hole in the middle: pages 2..4.
  ASSERT_TRUE(store_->UnregisterRange(kA, kBase + 2 * kPageSize, 3 * kPageSize).ok());
  EXPECT_EQ(Used(), 5u);
  EXPECT_EQ(Write(kA, 3, 'z').code(), Code::kNotRegistered);
  EXPECT_EQ(Read(kA, 1), 'b');
  EXPECT_EQ(Read(kA, 5), 'f');
  // Re-registering does not resurrect the old data.
  ASSERT_TRUE(store_->RegisterRange(kA, kBase + 2 * kPageSize, 3 * kPageSize).ok());
  bool present = true;
  EXPECT_EQ(Read(kA, 3, &present), 0);
  EXPECT_FALSE(present);
  // Unregistering something never registered is harmless.
  EXPECT_TRUE(store_->UnregisterRange(kA, kBase + 100 * kPageSize, kPageSize).ok());
}

TEST_F(PageStoreTest, DiscardFreesPagesButKeepsRange) {
  Space(kA, 8);
  for (int i = 0; i < 8; ++i) ASSERT_TRUE(Write(kA, i, 'a' + i).ok());
  ASSERT_TRUE(store_->DiscardRange(kA, kBase, 4 * kPageSize).ok());
  EXPECT_EQ(Used(), 4u);
  bool present = true;
  EXPECT_EQ(Read(kA, 0, &present), 0);
  EXPECT_FALSE(present);
  EXPECT_EQ(Read(kA, 4), 'e');
  EXPECT_TRUE(Write(kA, 0, 'n').ok());
  EXPECT_EQ(Read(kA, 0), 'n');
}

TEST_F(PageStoreTest, SpaceErrors) {
  ASSERT_TRUE(store_->CreateSpace(kA).ok());
  EXPECT_EQ(store_->CreateSpace(kA).code(), Code::kSpaceExists);
  std::vector<char> buf(kPageSize);
  EXPECT_EQ(store_->DestroySpace(kB).code(), Code::kNoSuchSpace);
  EXPECT_EQ(store_->RegisterRange(kB, kBase, kPageSize).code(), Code::kNoSuchSpace);
  EXPECT_EQ(store_->UnregisterRange(kB, kBase, kPageSize).code(), Code::kNoSuchSpace);
  EXPECT_EQ(store_->DiscardRange(kB, kBase, kPageSize).code(), Code::kNoSuchSpace);
  EXPECT_EQ(store_->ReadPage(kB, kBase, buf.data(), nullptr).code(), Code::kNoSuchSpace);
  EXPECT_EQ(store_->WritePage(kB, kBase, buf.data()).code(), Code::kNoSuchSpace);
  EXPECT_EQ(store_->ForkSpace(kB, kC).code(), Code::kNoSuchSpace);
  EXPECT_EQ(store_->ForkSpace(kA, kA).code(), Code::kSpaceExists);
  ASSERT_TRUE(store_->RegisterRange(kA, kBase, kPageSize).ok());
  Asid both[] = {kA, kB};
  EXPECT_EQ(store_->WritePageShared(both, kBase, buf.data()).code(), Code::kNoSuchSpace);
  EXPECT_EQ(store_->Info().used_pages, 0u);
  EXPECT_EQ(store_->WritePageShared({}, kBase, buf.data()).code(), Code::kBadRequest);
  // A destroyed id can be created again, empty.
  ASSERT_TRUE(store_->DestroySpace(kA).ok());
  EXPECT_EQ(store_->Info().nr_spaces, 0u);
  ASSERT_TRUE(store_->CreateSpace(kA).ok());
  EXPECT_EQ(store_->ReadPage(kA, kBase, buf.data(), nullptr).code(), Code::kNotRegistered);
}

TEST_F(PageStoreTest, ForkIsCopyOnWriteInBothDirections) {
  Space(kA, 8);
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(Write(kA, i, 'a' + i).ok());
  ASSERT_TRUE(store_->ForkSpace(kA, kB).ok());
  EXPECT_EQ(Used(), 4u);  // shared, not copied
  for (int i = 0; i < 4; ++i) EXPECT_EQ(Read(kB, i), 'a' + i);
  // The child inherited the ranges.
  EXPECT_EQ(Write(kB, 8, 'x').code(), Code::kNotRegistered);

  ASSERT_TRUE(Write(kB, 0, 'X').ok());  // child writes: parent keeps its page
  EXPECT_EQ(Read(kA, 0), 'a');
  EXPECT_EQ(Read(kB, 0), 'X');
  ASSERT_TRUE(Write(kA, 1, 'Y').ok());  // parent writes: child keeps its page
  EXPECT_EQ(Read(kA, 1), 'Y');
  EXPECT_EQ(Read(kB, 1), 'b');
  EXPECT_EQ(Stat("memnode_cow_breaks"), 2);
  EXPECT_EQ(Used(), 6u);

  // A page only the child has written does not appear in the parent.
  ASSERT_TRUE(Write(kB, 6, 'c').ok());
  bool present = true;
  EXPECT_EQ(Read(kA, 6, &present), 0);
  EXPECT_FALSE(present);
  // Discarding in the child leaves the parent's copy.
  ASSERT_TRUE(store_->DiscardRange(kB, kBase + 2 * kPageSize, kPageSize).ok());
  EXPECT_EQ(Read(kA, 2), 'c');
  EXPECT_EQ(Read(kB, 2), 0);
}

TEST_F(PageStoreTest, WriteByLastSharerIsNotACowBreak) {
  Space(kA, 8);
  ASSERT_TRUE(Write(kA, 0, 'a').ok());
  ASSERT_TRUE(store_->ForkSpace(kA, kB).ok());
  ASSERT_TRUE(store_->DestroySpace(kA).ok());
  EXPECT_EQ(Used(), 1u);  // the child still holds it
  ASSERT_TRUE(Write(kB, 0, 'b').ok());
  EXPECT_EQ(Stat("memnode_cow_breaks"), 0);
  EXPECT_EQ(Used(), 1u);
  EXPECT_EQ(Read(kB, 0), 'b');
}

TEST_F(PageStoreTest, ForkChainsShareUntilWritten) {
  Space(kA, 8);
  ASSERT_TRUE(Write(kA, 0, 'a').ok());
  ASSERT_TRUE(store_->ForkSpace(kA, kB).ok());
  ASSERT_TRUE(store_->ForkSpace(kB, kC).ok());
  EXPECT_EQ(Used(), 1u);
  ASSERT_TRUE(Write(kB, 0, 'b').ok());
  EXPECT_EQ(Read(kA, 0), 'a');
  EXPECT_EQ(Read(kB, 0), 'b');
  EXPECT_EQ(Read(kC, 0), 'a');
  EXPECT_EQ(Used(), 2u);
}

TEST_F(PageStoreTest, SharedWriteStoresOncePerSharers) {
  Space(kA, 8);
  ASSERT_TRUE(Write(kA, 0, 'a').ok());
  ASSERT_TRUE(store_->ForkSpace(kA, kB).ok());
  auto p = Page('s');
  Asid both[] = {kB, kA, kA};  // order and duplicates do not matter
  ASSERT_TRUE(store_->WritePageShared(both, kBase, p.data()).ok());
  EXPECT_EQ(Read(kA, 0), 's');
  EXPECT_EQ(Read(kB, 0), 's');
  EXPECT_EQ(Used(), 1u);  // the old shared slot was freed
  EXPECT_EQ(Stat("memnode_cow_breaks"), 0);
  EXPECT_EQ(Stat("memnode_shared_writes"), 1);
  // Still copy-on-write afterwards.
  ASSERT_TRUE(Write(kB, 0, 'b').ok());
  EXPECT_EQ(Read(kA, 0), 's');
  EXPECT_EQ(Used(), 2u);
  // A shared write to pages the spaces hold separately frees both old ones.
  auto q = Page('t');
  ASSERT_TRUE(store_->WritePageShared(both, kBase, q.data()).ok());
  EXPECT_EQ(Used(), 1u);
  // A shared write of a page not yet stored anywhere.
  ASSERT_TRUE(store_->WritePageShared(both, kBase + kPageSize, q.data()).ok());
  EXPECT_EQ(Read(kA, 1), 't');
  EXPECT_EQ(Read(kB, 1), 't');
  EXPECT_EQ(Used(), 2u);
}

TEST_F(PageStoreTest, SharedWriteWithUnregisteredSpaceChangesNothing) {
  Space(kA, 8);
  ASSERT_TRUE(store_->CreateSpace(kB).ok());  // nothing registered
  ASSERT_TRUE(Write(kA, 0, 'a').ok());
  auto p = Page('s');
  Asid both[] = {kA, kB};
  EXPECT_EQ(store_->WritePageShared(both, kBase, p.data()).code(), Code::kNotRegistered);
  EXPECT_EQ(Read(kA, 0), 'a');
  EXPECT_EQ(Used(), 1u);
}

TEST_F(PageStoreTest, DestroyReturnsEveryPage) {
  Space(kA, 64);
  for (int i = 0; i < 64; ++i) ASSERT_TRUE(Write(kA, i, 'a').ok());
  ASSERT_TRUE(store_->ForkSpace(kA, kB).ok());
  for (int i = 0; i < 32; ++i) ASSERT_TRUE(Write(kB, i, 'b').ok());
  EXPECT_EQ(Used(), 96u);
  ASSERT_TRUE(store_->DestroySpace(kA).ok());
  EXPECT_EQ(Used(), 64u);
  ASSERT_TRUE(store_->DestroySpace(kB).ok());
  EXPECT_EQ(Used(), 0u);
  EXPECT_EQ(Stat("memnode_pages_used"), 0);
  EXPECT_EQ(Stat("memnode_spaces"), 0);
  EXPECT_EQ(Stat("memnode_index_entries"), 0);
  EXPECT_EQ(Stat("memnode_pages_freed"), 96);
}

TEST_F(PageStoreTest, FreedMemoryGoesBackToTheKernelInTheBackground) {
  Make(8192);    // watermarks: ~1/64 of the pool, i.e. ~130 backed free pages
  Space(kC, 1);  // keeps the node's view (else all of it goes at once)
  Space(kA, 4096);
  for (int i = 0; i < 4096; ++i) ASSERT_TRUE(Write(kA, i, 'm').ok());
  ASSERT_TRUE(store_->DestroySpace(kA).ok());  // returns before punching
  // Every freed page ends up either punched or in the bounded backed list
  // (pages in flight to the reclaimer are in neither).
  auto settled = [&] {
    const std::int64_t backed = Stat("memnode_free_backed_pages");
    return backed <= 4096 / 30 && backed + Stat("memnode_pages_punched") == 4096;
  };
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!settled() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_TRUE(settled()) << Stat("memnode_free_backed_pages") << " backed, "
                         << Stat("memnode_pages_punched") << " punched";
  EXPECT_GT(Stat("memnode_pages_punched"), 3900);
  // Punched slots are reused, and read back what was written.
  Space(kB, 4096);
  for (int i = 0; i < 4096; ++i) ASSERT_TRUE(Write(kB, i, 'n').ok());
  for (int i = 0; i < 4096; i += 97) EXPECT_EQ(Read(kB, i), 'n');
}

TEST_F(PageStoreTest, CapacityIsAHardLimitAndRecovers) {
  Make(8);
  Space(kA, 16);
  for (int i = 0; i < 8; ++i) ASSERT_TRUE(Write(kA, i, 'a' + i).ok());
  Status st = Write(kA, 8, 'z');
  EXPECT_EQ(st.code(), Code::kOutOfMemory) << st.ToString();
  EXPECT_NE(st.message().find("capacity 8"), std::string::npos);
  bool present = true;
  EXPECT_EQ(Read(kA, 8, &present), 0);  // nothing changed
  EXPECT_FALSE(present);
  EXPECT_EQ(Used(), 8u);
  // Overwriting a page the space holds alone needs no new capacity.
  ASSERT_TRUE(Write(kA, 0, 'A').ok());
  EXPECT_EQ(Read(kA, 0), 'A');
  // Breaking COW does need a page.
  ASSERT_TRUE(store_->ForkSpace(kA, kB).ok());
  EXPECT_EQ(Write(kB, 1, 'B').code(), Code::kOutOfMemory);
  EXPECT_EQ(Read(kB, 1), 'b');
  EXPECT_EQ(Read(kA, 1), 'b');
  // A shared write by every sharer replaces the shared page in place.
  auto p = Page('S');
  Asid both[] = {kA, kB};
  ASSERT_TRUE(store_->WritePageShared(both, kBase + kPageSize, p.data()).ok());
  EXPECT_EQ(Stat("memnode_oom_errors"), 2);
  // Freeing makes room again.
  ASSERT_TRUE(store_->DestroySpace(kB).ok());
  ASSERT_TRUE(store_->DiscardRange(kA, kBase + 7 * kPageSize, kPageSize).ok());
  ASSERT_TRUE(Write(kA, 8, 'z').ok());
  EXPECT_EQ(Read(kA, 8), 'z');
  EXPECT_EQ(Used(), 8u);
}

TEST_F(PageStoreTest, InfoReportsCapacityAndNode) {
  MemoryNodeInfo info = store_->Info();
  EXPECT_EQ(info.capacity_pages, 256u);
  EXPECT_EQ(info.node_id, 7u);
  EXPECT_EQ(info.used_pages, 0u);
  Space(kA);
  EXPECT_EQ(store_->Info().nr_spaces, 1u);
}

TEST(PageStoreCreateTest, RejectsZeroCapacity) {
  Status st;
  EXPECT_EQ(PageStore::Create({0, 1}, nullptr, &st), nullptr);
  EXPECT_EQ(st.code(), Code::kInvalidArgument);
}

// ---- shared memory view ----

// Attaches as processor node 1 (the node of kA, kB, kC).
std::unique_ptr<ShmPageReader> Attach(PageStore* store, NodeId node = 1) {
  std::vector<int> fds;
  std::string layout;
  Status st = store->AttachShm(node, &fds, &layout);
  EXPECT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(fds.size(), 2u);
  auto r = ShmPageReader::Map(fds[0], fds[1], layout, &st);
  EXPECT_TRUE(st.ok()) << st.ToString();
  return r;
}

TEST_F(PageStoreTest, ShmReaderSeesWrittenPages) {
  Space(kA, 8);
  auto reader = Attach(store_.get());
  ASSERT_NE(reader, nullptr);
  std::vector<char> buf(kPageSize);
  EXPECT_EQ(reader->Read(kA, kBase, buf.data()), ShmPageReader::Result::kAbsent);
  ASSERT_TRUE(Write(kA, 0, 'a').ok());
  ASSERT_EQ(reader->Read(kA, kBase, buf.data()), ShmPageReader::Result::kFound);
  EXPECT_EQ(buf, Page('a'));
  ASSERT_TRUE(Write(kA, 0, 'b').ok());
  ASSERT_EQ(reader->Read(kA, kBase, buf.data()), ShmPageReader::Result::kFound);
  EXPECT_EQ(buf, Page('b'));
  // Fork: the child's pages are visible too, and COW keeps them apart.
  ASSERT_TRUE(store_->ForkSpace(kA, kB).ok());
  ASSERT_EQ(reader->Read(kB, kBase, buf.data()), ShmPageReader::Result::kFound);
  EXPECT_EQ(buf, Page('b'));
  ASSERT_TRUE(Write(kB, 0, 'c').ok());
  ASSERT_EQ(reader->Read(kA, kBase, buf.data()), ShmPageReader::Result::kFound);
  EXPECT_EQ(buf, Page('b'));
  ASSERT_EQ(reader->Read(kB, kBase, buf.data()), ShmPageReader::Result::kFound);
  EXPECT_EQ(buf, Page('c'));
  ASSERT_TRUE(store_->DiscardRange(kA, kBase, kPageSize).ok());
  EXPECT_EQ(reader->Read(kA, kBase, buf.data()), ShmPageReader::Result::kAbsent);
  ASSERT_TRUE(store_->DestroySpace(kB).ok());
  EXPECT_EQ(reader->Read(kB, kBase, buf.data()), ShmPageReader::Result::kAbsent);
}

TEST_F(PageStoreTest, ShmFilesAreReadOnlyForProcessors) {
  Space(kA, 8);
  ASSERT_TRUE(Write(kA, 0, 'a').ok());
  std::vector<int> fds;
  std::string layout;
  ASSERT_TRUE(store_->AttachShm(1, &fds, &layout).ok());
  for (int fd : fds) {
    void* p = mmap(nullptr, kPageSize, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    EXPECT_EQ(p, MAP_FAILED);
    if (p != MAP_FAILED) munmap(p, kPageSize);
    // The attack: a read-only descriptor of a memfd reopened writable through
    // /proc. The open itself succeeds; the seal refuses every way to write.
    std::string self = "/proc/self/fd/" + std::to_string(fd);
    int rw = open(self.c_str(), O_RDWR | O_CLOEXEC);
    if (rw < 0) continue;  // refused even earlier
    p = mmap(nullptr, kPageSize, PROT_READ | PROT_WRITE, MAP_SHARED, rw, 0);
    EXPECT_EQ(p, MAP_FAILED) << "writable mapping of a reopened shm file";
    if (p != MAP_FAILED) munmap(p, kPageSize);
    EXPECT_EQ(errno, EPERM);
    EXPECT_EQ(pwrite(rw, "x", 1, 0), -1) << "write(2) to a reopened shm file";
    EXPECT_EQ(errno, EPERM);
    p = mmap(nullptr, kPageSize, PROT_READ, MAP_SHARED, rw, 0);
    ASSERT_NE(p, MAP_FAILED);
    EXPECT_NE(mprotect(p, kPageSize, PROT_READ | PROT_WRITE), 0);
    munmap(p, kPageSize);
    EXPECT_NE(fcntl(rw, F_ADD_SEALS, F_SEAL_WRITE), 0) << "seals are final";
    close(rw);
  }
  EXPECT_EQ(Read(kA, 0), 'a');
}

// One node's shared-memory view holds none of another node's pages: its
// region is a different file, and its index knows no other node's space.
TEST_F(PageStoreTest, ShmViewsArePerNode) {
  const Asid other = MakeAsid(2, 1);
  Space(kA, 8);
  Space(other, 8);
  ASSERT_TRUE(Write(kA, 0, 'a').ok());
  ASSERT_TRUE(Write(other, 0, 'z').ok());
  std::vector<int> fds1, fds2;
  std::string layout1, layout2;
  ASSERT_TRUE(store_->AttachShm(1, &fds1, &layout1).ok());
  ASSERT_TRUE(store_->AttachShm(2, &fds2, &layout2).ok());
  EXPECT_NE(fds1[0], fds2[0]);
  EXPECT_NE(fds1[1], fds2[1]);
  Status st;
  auto r1 = ShmPageReader::Map(fds1[0], fds1[1], layout1, &st);
  ASSERT_NE(r1, nullptr) << st.ToString();
  std::vector<char> buf(kPageSize);
  EXPECT_EQ(r1->Read(kA, kBase, buf.data()), ShmPageReader::Result::kFound);
  EXPECT_EQ(buf, Page('a'));
  EXPECT_EQ(r1->Read(other, kBase, buf.data()), ShmPageReader::Result::kAbsent);
  // Not even by scanning the raw region: no page of node 2 is in it.
  shm::Layout l;
  ASSERT_TRUE(shm::DecodeLayout(layout1, &l).ok());
  void* region = mmap(nullptr, l.region_bytes, PROT_READ, MAP_SHARED, fds1[0], 0);
  ASSERT_NE(region, MAP_FAILED);
  const std::string zpage(kPageSize, 'z');
  for (std::uint64_t s = 0; s < 16; ++s)
    EXPECT_NE(std::memcmp(static_cast<char*>(region) + s * kPageSize, zpage.data(), kPageSize), 0);
  munmap(region, l.region_bytes);
  // Slots never cross nodes.
  EXPECT_EQ(store_->ForkSpace(kA, MakeAsid(2, 9)).code(), Code::kPermissionDenied);
  const Asid both[] = {kA, other};
  auto page = Page('q');
  EXPECT_EQ(store_->WritePageShared(both, kBase, page.data()).code(), Code::kPermissionDenied);
  store_->DetachShm(1);
  store_->DetachShm(2);
}

// A node's view goes away with its last space and attachment, and all of its
// memory with it; a new space of the node starts a fresh view.
TEST_F(PageStoreTest, EmptyViewIsDropped) {
  Space(kA, 8);
  ASSERT_TRUE(Write(kA, 0, 'a').ok());
  std::vector<int> fds;
  std::string layout;
  ASSERT_TRUE(store_->AttachShm(1, &fds, &layout).ok());
  struct stat before;
  ASSERT_EQ(fstat(fds[0], &before), 0);
  ASSERT_TRUE(store_->DestroySpace(kA).ok());
  struct stat still;
  ASSERT_EQ(fstat(fds[0], &still), 0) << "pinned while attached";
  store_->DetachShm(1);
  Space(kA, 8);
  ASSERT_TRUE(store_->AttachShm(1, &fds, &layout).ok());
  struct stat after;
  ASSERT_EQ(fstat(fds[0], &after), 0);
  EXPECT_NE(before.st_ino, after.st_ino);
  store_->DetachShm(1);
  EXPECT_EQ(store_->DestroyNodeSpaces(1), 1u);
  EXPECT_EQ(store_->Info().nr_spaces, 0u);
}

// Spaces, forks' page tables and ranges are charged to capacity.
TEST_F(PageStoreTest, BookkeepingIsChargedToCapacity) {
  Make(16);
  // 16 pages of bookkeeping (under 17 pages of bytes) = at most 272 spaces.
  int created = 0;
  Status st;
  for (std::uint32_t i = 1; i <= 400 && (st = store_->CreateSpace(MakeAsid(1, i))).ok(); ++i)
    ++created;
  EXPECT_EQ(st.code(), Code::kOutOfMemory);
  EXPECT_LE(created, 272);
  EXPECT_GT(created, 200);
  EXPECT_EQ(store_->DestroyNodeSpaces(1), static_cast<std::uint64_t>(created));
  // Ranges: each interval costs 64 bytes, so about 17 * 64 of them fit.
  ASSERT_TRUE(store_->CreateSpace(kA).ok());
  int ranges = 0;
  for (std::uint64_t i = 0; i < 4096; ++i) {
    if (!store_->RegisterRange(kA, kBase + 2 * i * kPageSize, kPageSize).ok()) break;
    ++ranges;
  }
  EXPECT_LT(ranges, 1100);
  EXPECT_GT(ranges, 900);
}

TEST(ShmLayoutTest, RejectsGarbage) {
  shm::Layout l;
  EXPECT_EQ(shm::DecodeLayout("short", &l).code(), Code::kBadRequest);
  std::string blob(sizeof(shm::Layout), '\0');
  EXPECT_EQ(shm::DecodeLayout(blob, &l).code(), Code::kBadRequest);
}

// ---- random operations against a model: leaks and refcounts ----

// The model gives every write a fresh version id; fork copies ids, so the
// number of distinct live ids is exactly the number of slots the store must
// hold. Every page's content is its id, so reads check the mapping too.
TEST_F(PageStoreTest, RandomOperationsMatchModel) {
  Make(64);
  auto reader = Attach(store_.get());
  std::mt19937_64 rng(42);
  const std::vector<Asid> ids = {kA, kB, kC, MakeAsid(1, 4)};
  std::map<Asid, std::map<std::uint64_t, std::uint64_t>> model;  // asid -> page -> version
  std::uint64_t next_version = 1;
  auto live_versions = [&] {
    std::set<std::uint64_t> v;
    for (auto& [a, pages] : model)
      for (auto& [p, ver] : pages) v.insert(ver);
    return v.size();
  };
  std::vector<std::uint64_t> buf(kPageSize / 8);
  for (int step = 0; step < 20000; ++step) {
    const Asid a = ids[rng() % ids.size()];
    const std::uint64_t page = rng() % 24;
    const std::uint64_t uva = kBase + page * kPageSize;
    const bool exists = model.count(a) > 0;
    switch (rng() % 10) {
      case 0:
        if (!exists) {
          ASSERT_TRUE(store_->CreateSpace(a).ok());
          ASSERT_TRUE(store_->RegisterRange(a, kBase, 24 * kPageSize).ok());
          model[a];
        } else if (rng() % 4 == 0) {
          ASSERT_TRUE(store_->DestroySpace(a).ok());
          model.erase(a);
        }
        break;
      case 1: {
        const Asid child = ids[rng() % ids.size()];
        Status st = store_->ForkSpace(a, child);
        if (!exists) {
          ASSERT_EQ(st.code(), Code::kNoSuchSpace);
        } else if (model.count(child)) {
          ASSERT_EQ(st.code(), Code::kSpaceExists);
        } else {
          ASSERT_TRUE(st.ok()) << st.ToString();
          model[child] = model[a];
        }
        break;
      }
      case 2:
        if (exists) {
          const std::uint64_t n = 1 + rng() % 4;
          const std::uint64_t end = std::min<std::uint64_t>(page + n, 24);
          ASSERT_TRUE(store_->DiscardRange(a, uva, (end - page) * kPageSize).ok());
          for (std::uint64_t p = page; p < end; ++p) model[a].erase(p);
        }
        break;
      case 3: {  // shared write by every space that shares this page's version
        if (!exists || !model[a].count(page)) break;
        std::vector<Asid> sharers;
        for (auto& [b, pages] : model)
          if (pages.count(page) && pages[page] == model[a][page]) sharers.push_back(b);
        auto data = WordPage(next_version);
        // Every holder of the old version is listed, so it is freed: no net
        // page needed, never out of memory.
        Status st = store_->WritePageShared(sharers, uva, data.data());
        ASSERT_TRUE(st.ok()) << st.ToString();
        for (Asid b : sharers) model[b][page] = next_version;
        ++next_version;
        break;
      }
      default: {  // write
        auto data = WordPage(next_version);
        Status st = store_->WritePage(a, uva, data.data());
        if (!exists) {
          ASSERT_EQ(st.code(), Code::kNoSuchSpace);
          break;
        }
        if (st.code() == Code::kOutOfMemory) {
          // Only legitimate if the store is full and the write needs a net
          // new slot: the page is absent or its version is shared.
          // (Bookkeeping is charged too: a page or so here.)
          ASSERT_GE(live_versions() + static_cast<std::size_t>(Stat("memnode_meta_pages")) + 1,
                    64u);
          if (model[a].count(page)) {
            int holders = 0;
            for (auto& [b, pages] : model)
              holders += pages.count(page) && pages[page] == model[a][page];
            ASSERT_GT(holders, 1);
          }
          break;
        }
        ASSERT_TRUE(st.ok()) << st.ToString();
        model[a][page] = next_version++;
        break;
      }
    }
    ASSERT_EQ(store_->Info().used_pages, live_versions()) << "step " << step;
    if (step % 97 == 0) {  // full check, through the store and the index
      for (auto& [b, pages] : model) {
        for (std::uint64_t p = 0; p < 24; ++p) {
          bool present;
          ASSERT_TRUE(store_->ReadPage(b, kBase + p * kPageSize, buf.data(), &present).ok());
          const std::uint64_t want = pages.count(p) ? pages[p] : 0;
          ASSERT_EQ(present, want != 0);
          ASSERT_EQ(buf, WordPage(want));
          auto r = reader->Read(b, kBase + p * kPageSize, buf.data());
          ASSERT_EQ(r, want ? ShmPageReader::Result::kFound : ShmPageReader::Result::kAbsent);
          if (want) {
            ASSERT_EQ(buf, WordPage(want));
          }
        }
      }
    }
  }
  for (auto& [b, pages] : model) ASSERT_TRUE(store_->DestroySpace(b).ok());
  EXPECT_EQ(Used(), 0u);
  EXPECT_EQ(Stat("memnode_index_entries"), 0);
}

// ---- concurrent one-sided readers while pages are rewritten ----

// Pages carry (page number << 32 | version) in every word. Readers going
// through the shared index must only ever see a whole page of one version of
// the right page, never a mix, never zeros for a page that exists, and never
// an older version than one they saw before. A second writer thread churns
// other address spaces (forks, destroys, discards) so that slots are reused,
// tombstones pile up and the index gets rebuilt under the readers.
TEST_F(PageStoreTest, ConcurrentShmReadersNeverSeeTornPages) {
  Make(4096);
  constexpr std::uint64_t kPages = 64;
  Space(kA, kPages);
  auto reader = Attach(store_.get());
  auto word = [](std::uint64_t page, std::uint64_t version) { return page << 32 | version; };
  for (std::uint64_t p = 0; p < kPages; ++p) {
    auto d = WordPage(word(p, 1));
    ASSERT_TRUE(store_->WritePage(kA, kBase + p * kPageSize, d.data()).ok());
  }
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> reads{0}, retries{0}, busy{0}, failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t) {
    threads.emplace_back([&, t] {
      std::vector<std::uint64_t> buf(kPageSize / 8);
      std::vector<std::uint64_t> seen(kPages, 1);
      std::mt19937_64 rng(t);
      std::uint64_t my_retries = 0, n = 0;
      while (!stop.load(std::memory_order_relaxed)) {
        const std::uint64_t p = rng() % kPages;
        auto r = reader->Read(kA, kBase + p * kPageSize, buf.data(), &my_retries);
        ++n;
        if (r == ShmPageReader::Result::kBusy) {
          busy.fetch_add(1);
          continue;
        }
        if (r != ShmPageReader::Result::kFound) {
          failures.fetch_add(1);
          continue;
        }
        const std::uint64_t w = buf[0];
        bool whole = (w >> 32) == p && (w & 0xffffffff) >= seen[p];
        for (std::uint64_t x : buf) whole &= x == w;
        if (!whole) failures.fetch_add(1);
        seen[p] = w & 0xffffffff;
      }
      reads.fetch_add(n);
      retries.fetch_add(my_retries);
    });
  }
  threads.emplace_back([&] {  // churn in other spaces
    std::mt19937_64 rng(99);
    auto d = WordPage(0xdead);
    for (std::uint64_t round = 0; !stop.load(std::memory_order_relaxed); ++round) {
      // Node 1, like kA: only its own view's slots and index are shared
      // with the readers.
      const Asid x = MakeAsid(1, 10 + static_cast<std::uint32_t>(round % 8));
      if (store_->CreateSpace(x).ok()) {
        (void)store_->RegisterRange(x, kBase, 512 * kPageSize);
        for (int i = 0; i < 256; ++i)
          (void)store_->WritePage(x, kBase + (rng() % 512) * kPageSize, d.data());
        (void)store_->ForkSpace(x, x + 100);
        (void)store_->DiscardRange(x, kBase, 128 * kPageSize);
        (void)store_->DestroySpace(x + 100);
      } else {
        (void)store_->DestroySpace(x);
      }
    }
  });
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(1500);
  std::uint64_t version = 2;
  std::mt19937_64 rng(7);
  while (std::chrono::steady_clock::now() < deadline) {
    const std::uint64_t p = rng() % kPages;
    auto d = WordPage(word(p, version++));
    ASSERT_TRUE(store_->WritePage(kA, kBase + p * kPageSize, d.data()).ok());
  }
  stop = true;
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0u);
  EXPECT_GT(reads.load(), 1000u);
  EXPECT_GT(Stat("memnode_index_rebuilds"), 0);
  std::printf("reads %llu, retries %llu, busy %llu, writes %llu, rebuilds %lld\n",
              static_cast<unsigned long long>(reads.load()),
              static_cast<unsigned long long>(retries.load()),
              static_cast<unsigned long long>(busy.load()),
              static_cast<unsigned long long>(version - 2),
              static_cast<long long>(Stat("memnode_index_rebuilds")));
}

}  // namespace
}  // namespace remora
