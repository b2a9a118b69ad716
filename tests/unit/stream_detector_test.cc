// StreamDetector (processor/runtime/stream_detector.h): sequential runs as
// before, constant strides (whole pages or not), several streams
// interleaved, and what it must not take for a stream.
#include "processor/runtime/stream_detector.h"

#include <gtest/gtest.h>

#include <vector>

#include "remora/types.h"

namespace remora {
namespace {

constexpr std::uint32_t kMax = 32;

std::uint64_t P(std::uint64_t vpn) { return vpn << kPageShift; }

TEST(StreamDetector, SequentialRunOpensAndDoublesItsWindow) {
  StreamDetector d;
  int slot;
  std::int64_t stride;
  EXPECT_EQ(d.OnAccessStrided(P(100), kMax, &slot, &stride), 0u);
  EXPECT_EQ(d.OnAccessStrided(P(101), kMax, &slot, &stride), 4u);
  EXPECT_EQ(d.OnAccessStrided(P(102), kMax, &slot, &stride), 8u);
  // The caller covered up to page 110: the next miss of the run is 111.
  d.Advance(slot, P(110));
  EXPECT_EQ(d.OnAccessStrided(P(111), kMax, &slot, &stride), 16u);
  EXPECT_EQ(d.OnAccessStrided(P(112), kMax, &slot, &stride), 32u);
  EXPECT_EQ(d.OnAccessStrided(P(113), kMax, &slot, &stride), 32u);  // capped at max
  EXPECT_EQ(d.OnAccessStrided(P(114), kMax, &slot, &stride), 32u);
  EXPECT_EQ(stride, static_cast<std::int64_t>(kPageSize));
  EXPECT_EQ(d.Ahead(slot, 1), P(115));
  EXPECT_EQ(d.Ahead(slot, 3), P(117));
}

TEST(StreamDetector, WholePageStrideNeedsConfirmingAccesses) {
  StreamDetector d;
  int slot;
  std::int64_t stride;
  EXPECT_EQ(d.OnAccessStrided(P(1000), kMax, &slot, &stride), 0u);
  EXPECT_EQ(d.OnAccessStrided(P(1005), kMax, &slot, &stride), 0u);  // a candidate
  EXPECT_EQ(d.OnAccessStrided(P(1010), kMax, &slot, &stride), 0u);
  EXPECT_EQ(d.OnAccessStrided(P(1015), kMax, &slot, &stride), 0u);
  EXPECT_EQ(d.OnAccessStrided(P(1020), kMax, &slot, &stride), 4u);  // confirmed
  EXPECT_EQ(stride, static_cast<std::int64_t>(5 * kPageSize));
  EXPECT_EQ(d.Ahead(slot, 1), P(1025));
  EXPECT_EQ(d.Ahead(slot, 4), P(1040));
  d.AdvanceSteps(slot, 4);
  EXPECT_EQ(d.OnAccessStrided(P(1045), kMax, &slot, &stride), 8u);
  // Capped: a strided window never passes kMaxStridedWindow.
  EXPECT_EQ(d.OnAccessStrided(P(1050), kMax, &slot, &stride), 8u);
}

TEST(StreamDetector, DescendingStride) {
  StreamDetector d;
  int slot;
  std::int64_t stride;
  for (std::uint64_t vpn = 5000; vpn > 4988; vpn -= 3)
    EXPECT_EQ(d.OnAccessStrided(P(vpn), kMax, &slot, &stride), 0u);
  EXPECT_EQ(d.OnAccessStrided(P(4988), kMax, &slot, &stride), 4u);
  EXPECT_EQ(stride, -3 * static_cast<std::int64_t>(kPageSize));
  EXPECT_EQ(d.Ahead(slot, 2), P(4982));
}

// The column walk of a naive matrix multiply: B[k][j] for k = 0..N-1, rows
// of N doubles, so 9600 bytes apart for N = 1200: the pages are 2 or 3
// apart. The stream holds through the uneven steps and predicts the pages.
TEST(StreamDetector, FractionalStrideColumnWalk) {
  const std::uint64_t base = 0x7f0000000000 + 40;
  const std::uint64_t row = 1200 * 8;
  StreamDetector d;
  int slot;
  std::int64_t stride = 0;
  std::uint32_t windows = 0, predicted = 0, checked = 0;
  for (std::uint64_t k = 0; k < 1200; ++k) {
    const std::uint64_t page = PageDown(base + k * row);
    if (d.OnAccessStrided(page, kMax, &slot, &stride) == 0) continue;
    ++windows;
    // Every tenth access, compare the next steps' predictions with the
    // truth (no advance: each access then is the next step).
    if (k % 10 == 0 && k + 4 < 1200) {
      for (std::uint32_t i = 1; i <= 4; ++i) {
        ++checked;
        predicted += d.Ahead(slot, i) == PageDown(base + (k + i) * row);
      }
    }
  }
  EXPECT_NEAR(static_cast<double>(stride), static_cast<double>(row), kPageSize);
  EXPECT_GE(windows, 1190u);  // the stream never broke
  EXPECT_GE(predicted, checked * 9 / 10) << predicted << " of " << checked;
}

// Matrix multiply's inner loop: A[i][k] along a row (sequential), B[k][j]
// down a column, interleaved access by access, plus a third array streamed
// (k-means' points). All three are followed at once.
TEST(StreamDetector, InterleavedStreams) {
  const std::uint64_t a = 0x10000000, b = 0x40000000, c = 0x90000000;
  StreamDetector d;
  int slot;
  std::int64_t stride;
  std::uint32_t a_windows = 0, b_windows = 0, c_windows = 0;
  for (std::uint64_t k = 0; k < 300; ++k) {
    a_windows += d.OnAccessStrided(P(a / kPageSize + k), kMax, &slot, &stride) > 0;
    b_windows += d.OnAccessStrided(PageDown(b + k * 9600), kMax, &slot, &stride) > 0;
    c_windows += d.OnAccessStrided(P(c / kPageSize + 2 * k), kMax, &slot, &stride) > 0;
  }
  EXPECT_GE(a_windows, 298u);
  EXPECT_GE(b_windows, 295u);
  EXPECT_GE(c_windows, 295u);
}

TEST(StreamDetector, RandomAccessesAndFarJumpsAreNoStream) {
  StreamDetector d;
  int slot;
  std::int64_t stride;
  // Pages farther apart than kMaxStride never pair.
  const std::uint64_t far = StreamDetector::kMaxStride + kPageSize;
  std::uint32_t windows = 0;
  for (std::uint64_t k = 0; k < 20; ++k)
    windows += d.OnAccessStrided(0x100000000 + k * far, kMax, &slot, &stride);
  EXPECT_EQ(windows, 0u);
  // A pseudo-random walk opens (almost) nothing.
  std::uint64_t x = 12345;
  windows = 0;
  for (int i = 0; i < 1000; ++i) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    windows += d.OnAccessStrided(P((x >> 33) % 100000), kMax, &slot, &stride) > 0;
  }
  EXPECT_LT(windows, 20u);
  // A stream is not retrained by an access that does not fit it.
  StreamDetector s;
  s.OnAccessStrided(P(10), kMax, &slot, &stride);
  s.OnAccessStrided(P(11), kMax, &slot, &stride);
  EXPECT_EQ(s.OnAccessStrided(P(12), kMax, &slot, &stride), 8u);
  s.OnAccessStrided(P(50), kMax, &slot, &stride);
  EXPECT_EQ(s.OnAccessStrided(P(13), kMax, &slot, &stride), 16u);
}

}  // namespace
}  // namespace remora
