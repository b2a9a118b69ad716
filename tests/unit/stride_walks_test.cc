// StrideWalks (processor/runtime/stride_walks.h): a column walk whose
// misses skip rows is found from its exact fault addresses, survives the
// jump to the next column, is kept apart per thread, and random or
// sequential misses are not taken for one.
#include "processor/runtime/stride_walks.h"

#include <gtest/gtest.h>

#include <random>

#include "remora/types.h"

namespace remora {
namespace {

// A row-major N x N matrix of doubles at kBase: a column walk steps one
// row (N * 8 bytes) at a time. N = 800 as in the Phoenix-shaped matmul:
// 6400 bytes, one and a half pages.
constexpr std::uint64_t kBase = 0x7f0000000000;
constexpr std::int64_t kRow = 800 * 8;

std::uint64_t Cell(std::uint64_t row, std::uint64_t column) {
  return kBase + row * kRow + column * 8;
}

TEST(StrideWalks, ColumnWalkWithGapsIsConfirmedOnItsFourthMiss) {
  StrideWalks w;
  // Misses at rows 3, 9, 10, 30 of column 5: gaps of 6, 1 and 20 rows.
  EXPECT_EQ(w.OnMiss(1, Cell(3, 5)), 0);
  EXPECT_EQ(w.OnMiss(1, Cell(9, 5)), 0);   // a candidate: 6 rows
  EXPECT_EQ(w.OnMiss(1, Cell(10, 5)), 0);  // refined to one row, once
  EXPECT_EQ(w.OnMiss(1, Cell(30, 5)), kRow);
  EXPECT_EQ(w.OnMiss(1, Cell(31, 5)), kRow);
}

TEST(StrideWalks, NextColumnKeepsTheStride) {
  StrideWalks w;
  for (std::uint64_t r : {0, 4, 5, 13, 20, 27}) w.OnMiss(7, Cell(r, 0));
  ASSERT_EQ(w.OnMiss(7, Cell(40, 0)), kRow);
  // The walk down column 2 starts from the top: not a whole number of rows
  // from the last miss, so not followed, but a strong stride only loses
  // strength, and the column's next miss is followed.
  EXPECT_EQ(w.OnMiss(7, Cell(2, 2)), 0);
  EXPECT_EQ(w.OnMiss(7, Cell(11, 2)), kRow);
}

TEST(StrideWalks, MissOffTheWalkIsNotFollowed) {
  StrideWalks w;
  for (std::uint64_t r : {0, 4, 5, 13, 20, 27}) w.OnMiss(7, Cell(r, 0));
  ASSERT_EQ(w.OnMiss(7, Cell(40, 0)), kRow);
  // A store to another array between two misses of the walk.
  EXPECT_EQ(w.OnMiss(7, kBase + (std::uint64_t{64} << 20) + 8), 0);
  EXPECT_EQ(w.OnMiss(7, Cell(45, 0)), 0);
  EXPECT_EQ(w.OnMiss(7, Cell(52, 0)), kRow);
}

TEST(StrideWalks, StrideEndsWhenMissesStopFittingIt) {
  StrideWalks w;
  for (std::uint64_t r : {0, 4, 5, 13, 20, 27, 30, 41}) w.OnMiss(3, Cell(r, 0));
  ASSERT_EQ(w.OnMiss(3, Cell(50, 0)), kRow);
  // Misses far apart and unrelated: none is followed, and the stride
  // weakens until it is dropped.
  std::uint64_t a = kBase + (std::uint64_t{1} << 30);
  int followed = 0;
  for (int i = 0; i < 20; ++i) {
    a += 12345 * 8 + 3 * i;
    if (w.OnMiss(3, a) != 0) ++followed;
  }
  EXPECT_EQ(followed, 0);
  // Two more misses a row apart no longer make a confirmed walk.
  EXPECT_EQ(w.OnMiss(3, a + kRow), 0);
  EXPECT_EQ(w.OnMiss(3, a + 2 * kRow), 0);
}

TEST(StrideWalks, DescendingWalk) {
  StrideWalks w;
  for (std::uint64_t r : {700, 690, 689, 650}) w.OnMiss(2, Cell(r, 9));
  EXPECT_EQ(w.OnMiss(2, Cell(640, 9)), -kRow);
}

TEST(StrideWalks, ThreadsAreKeptApart) {
  StrideWalks w;
  // Two threads walk neighbouring columns, their misses interleaved: each
  // sees its own walk (interleaved, their distances are off by 8 bytes).
  const std::uint64_t rows[] = {1, 5, 6, 17, 18, 40, 52};
  std::int64_t last0 = 0, last1 = 0;
  for (std::uint64_t r : rows) {
    last0 = w.OnMiss(100, Cell(r, 10));
    last1 = w.OnMiss(101, Cell(r + 3, 11));
  }
  EXPECT_EQ(last0, kRow);
  EXPECT_EQ(last1, kRow);
}

TEST(StrideWalks, StridesOfAPageOrLessAreNotWalks) {
  StrideWalks w;
  std::int64_t got = 0;
  for (std::uint64_t i = 0; i < 64; ++i) got |= w.OnMiss(5, kBase + i * kPageSize);  // sequential
  for (std::uint64_t i = 0; i < 64; ++i) got |= w.OnMiss(6, kBase + i * 2048 + 16);  // half pages
  EXPECT_EQ(got, 0);
}

TEST(StrideWalks, RandomMissesAreAlmostNeverAWalk) {
  StrideWalks w;
  std::mt19937_64 rng(42);
  int exact = 0, aligned = 0;
  constexpr int kMisses = 100000;
  // 8-byte-aligned addresses in 256 MiB.
  for (int i = 0; i < kMisses; ++i)
    if (w.OnMiss(9, kBase + (rng() % (std::uint64_t{256} << 20)) / 8 * 8) != 0) ++exact;
  // Page-aligned ones (a program touching whole pages): distances are all
  // multiples of a page, so chance fits are likelier.
  for (int i = 0; i < kMisses; ++i)
    if (w.OnMiss(10, kBase + (rng() % 65536) * kPageSize) != 0) ++aligned;
  EXPECT_EQ(exact, 0);
  EXPECT_LT(aligned, kMisses / 1000);
}

TEST(StrideWalks, LeastRecentThreadGivesWay) {
  StrideWalks w;
  for (std::uint64_t r : {0, 4, 5, 13, 20}) w.OnMiss(1, Cell(r, 0));
  ASSERT_EQ(w.OnMiss(1, Cell(27, 0)), kRow);
  // kThreads other threads miss once each: thread 1's walk is forgotten.
  for (int t = 0; t < StrideWalks::kThreads; ++t) w.OnMiss(1000 + t, Cell(0, 0));
  EXPECT_EQ(w.OnMiss(1, Cell(30, 0)), 0);
}

}  // namespace
}  // namespace remora
