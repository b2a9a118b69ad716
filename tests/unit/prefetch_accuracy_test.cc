// PrefetchAccuracy (processor/runtime/prefetch_accuracy.h): pages read ahead
// and then missed are counted wasted, once; an epoch with more than a
// quarter wasted backs strided read-ahead off, for longer each bad epoch in
// a row, and a good epoch ends it.
#include "processor/runtime/prefetch_accuracy.h"

#include <gtest/gtest.h>

#include "remora/types.h"

namespace remora {
namespace {

constexpr std::uint32_t kEpoch = PrefetchAccuracy::kEpoch;

std::uint64_t P(std::uint64_t vpn) { return vpn << kPageShift; }

// One epoch: kEpoch pages read ahead from page base + 1 (page 0 is never
// managed), `wasted` of them missed.
void Epoch(PrefetchAccuracy& a, std::uint64_t base, std::uint32_t wasted) {
  for (std::uint32_t i = 0; i < kEpoch; ++i) a.Issued(P(base + 1 + i));
  for (std::uint32_t i = 0; i < wasted; ++i) ASSERT_TRUE(a.Missed(P(base + 1 + i)));
}

std::uint32_t SkippedWindows(PrefetchAccuracy& a) {
  std::uint32_t skipped = 0;
  while (!a.Allow()) ++skipped;
  return skipped;
}

TEST(PrefetchAccuracy, MissOnAPageReadAheadIsWastedOnce) {
  PrefetchAccuracy a;
  a.Issued(P(10));
  a.Issued(P(20));
  EXPECT_TRUE(a.Missed(P(20)));
  EXPECT_FALSE(a.Missed(P(20)));  // counted once
  EXPECT_FALSE(a.Missed(P(30)));  // never read ahead
  EXPECT_FALSE(a.Missed(0));
  EXPECT_EQ(a.wasted(), 1u);
  // Only the last kRing pages are remembered.
  for (int i = 0; i < PrefetchAccuracy::kRing; ++i) a.Issued(P(1000 + i));
  EXPECT_FALSE(a.Missed(P(10)));
  EXPECT_TRUE(a.Missed(P(1000)));
}

TEST(PrefetchAccuracy, AccurateEpochsNeverBackOff) {
  PrefetchAccuracy a;
  for (int e = 0; e < 10; ++e) {
    EXPECT_TRUE(a.Allow());
    Epoch(a, 1000 * e, kEpoch / 4);  // a quarter wasted: still fine
  }
  EXPECT_TRUE(a.Allow());
}

TEST(PrefetchAccuracy, WastefulEpochsBackOffLongerEachTime) {
  PrefetchAccuracy a;
  EXPECT_TRUE(a.Allow());
  Epoch(a, 0, kEpoch / 2);
  EXPECT_EQ(SkippedWindows(a), kEpoch);  // judged at the next window
  Epoch(a, 1000, kEpoch / 2);
  EXPECT_EQ(SkippedWindows(a), 2 * kEpoch);
  Epoch(a, 2000, kEpoch / 2);
  EXPECT_EQ(SkippedWindows(a), 4 * kEpoch);
  // A good epoch: no back-off, and the next bad one starts short again.
  Epoch(a, 3000, 0);
  EXPECT_EQ(SkippedWindows(a), 0u);
  Epoch(a, 4000, kEpoch);
  EXPECT_EQ(SkippedWindows(a), kEpoch);
  // The back-off is bounded.
  for (int e = 0; e < 20; ++e) {
    Epoch(a, 10000 + 1000 * e, kEpoch);
    EXPECT_LE(SkippedWindows(a), PrefetchAccuracy::kMaxBackoff);
  }
}

}  // namespace
}  // namespace remora
