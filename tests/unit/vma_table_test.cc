// VmaTable: the manager's record of a program's managed ranges.
#include "processor/runtime/vma_table.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

namespace remora {
namespace {

constexpr std::uint64_t P = 4096;

Vma Anon(std::uint64_t start, std::uint64_t end) { return Vma{start, end, nullptr, 0}; }

TEST(VmaTable, FindsTheRangeHoldingAnAddress) {
  VmaTable t;
  t.Insert(Anon(10 * P, 20 * P));
  t.Insert(Anon(30 * P, 40 * P));
  EXPECT_FALSE(t.Find(9 * P));
  EXPECT_EQ(t.Find(10 * P)->start, 10 * P);
  EXPECT_EQ(t.Find(20 * P - 1)->end, 20 * P);
  EXPECT_FALSE(t.Find(20 * P));
  EXPECT_EQ(t.Find(35 * P)->start, 30 * P);
  EXPECT_FALSE(t.Find(40 * P));
}

TEST(VmaTable, RemovingAHoleSplitsAndReturnsExactlyTheRemovedPieces) {
  VmaTable t;
  t.Insert(Anon(10 * P, 20 * P));
  t.Insert(Anon(30 * P, 40 * P));
  auto removed = t.Remove(15 * P, 35 * P);
  ASSERT_EQ(removed.size(), 2u);
  EXPECT_EQ(removed[0].start, 15 * P);
  EXPECT_EQ(removed[0].end, 20 * P);
  EXPECT_EQ(removed[1].start, 30 * P);
  EXPECT_EQ(removed[1].end, 35 * P);
  EXPECT_EQ(t.size(), 2u);
  EXPECT_EQ(t.Find(14 * P)->end, 15 * P);
  EXPECT_FALSE(t.Find(15 * P));
  EXPECT_FALSE(t.Find(34 * P));
  EXPECT_EQ(t.Find(35 * P)->start, 35 * P);

  removed = t.Remove(12 * P, 13 * P);  // a hole in the middle
  ASSERT_EQ(removed.size(), 1u);
  EXPECT_EQ(t.size(), 3u);
  EXPECT_TRUE(t.Find(11 * P));
  EXPECT_FALSE(t.Find(12 * P));
  EXPECT_TRUE(t.Find(13 * P));
  EXPECT_TRUE(t.Remove(100 * P, 200 * P).empty());
}

TEST(VmaTable, FileOffsetsFollowSplits) {
  VmaTable t;
  int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  auto file = std::make_shared<FileBacking>(fd);
  t.Insert(Vma{100 * P, 110 * P, file, 8 * P});
  EXPECT_EQ(t.Find(103 * P)->FileOffsetOf(103 * P), 11 * P);
  t.Remove(100 * P, 104 * P);
  auto v = t.Find(104 * P);
  ASSERT_TRUE(v);
  EXPECT_EQ(v->file_offset, 12 * P);
  EXPECT_EQ(v->FileOffsetOf(105 * P), 13 * P);
  EXPECT_EQ(file.use_count(), 3);  // ours, the table's piece, and v
}

TEST(VmaTable, InsertReplacesWhatItOverlaps) {
  VmaTable t;
  t.Insert(Anon(0, 10 * P));
  t.Insert(Anon(5 * P, 15 * P));  // MAP_FIXED over the tail
  EXPECT_EQ(t.size(), 2u);
  EXPECT_EQ(t.Find(4 * P)->end, 5 * P);
  EXPECT_EQ(t.Find(5 * P)->end, 15 * P);
  auto overlapping = t.Overlapping(3 * P, 7 * P);
  ASSERT_EQ(overlapping.size(), 2u);
  EXPECT_EQ(overlapping[0].start, 3 * P);
  EXPECT_EQ(overlapping[1].end, 7 * P);
}

}  // namespace
}  // namespace remora
