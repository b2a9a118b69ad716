// WritePredictor: read misses go in writable once a process writes what it
// reads, keep being measured by probes, and go back to write-protected
// installs when the writes stop.
#include "processor/runtime/write_predictor.h"

#include <gtest/gtest.h>

#include <cstdint>

namespace remora {
namespace {

using Install = WritePredictor::Install;
constexpr std::uint64_t kPage = 4096;

// One read miss at `uva`, followed by its write if `written`. Returns the
// install decision.
Install Miss(WritePredictor& p, std::uint64_t uva, bool written) {
  const Install d = p.Decide(uva);
  if (d != Install::kWritable) {
    p.OnCleanInstall();
    if (written) p.OnWriteAfterRead(uva);
  }
  return d;
}

TEST(WritePredictorTest, ReadOnlyStaysClean) {
  WritePredictor p;
  for (std::uint64_t i = 0; i < 1000; ++i)
    EXPECT_EQ(Miss(p, (i + 1) * kPage, false), Install::kClean);
  EXPECT_FALSE(p.predicting());
}

TEST(WritePredictorTest, ReadModifyWritePredictsAfterOneEpoch) {
  WritePredictor p;
  int clean = 0, writable = 0, probes = 0;
  for (std::uint64_t i = 0; i < 1600; ++i) {
    switch (Miss(p, (i + 1) * kPage, true)) {
      case Install::kClean:
        ++clean;
        break;
      case Install::kWritable:
        ++writable;
        break;
      case Install::kProbe:
        ++probes;
        break;
    }
  }
  EXPECT_EQ(clean, static_cast<int>(WritePredictor::kEpoch));
  EXPECT_TRUE(p.predicting());
  EXPECT_EQ(probes, (1600 - clean + WritePredictor::kProbeEvery - 1) / WritePredictor::kProbeEvery);
  EXPECT_EQ(writable, 1600 - clean - probes);
}

TEST(WritePredictorTest, ProbeWritesAreRecognisedOnce) {
  WritePredictor p;
  for (std::uint64_t i = 0; i < WritePredictor::kEpoch; ++i) Miss(p, (i + 1) * kPage, true);
  ASSERT_TRUE(p.predicting());
  std::uint64_t probe = 0;
  for (std::uint64_t i = 0; i < WritePredictor::kProbeEvery && probe == 0; ++i) {
    const std::uint64_t uva = (1000 + i) * kPage;
    if (p.Decide(uva) == Install::kProbe) probe = uva;
  }
  ASSERT_NE(probe, 0u);
  EXPECT_FALSE(p.OnWriteAfterRead(probe + kPage));  // not a probe
  EXPECT_TRUE(p.OnWriteAfterRead(probe));
  EXPECT_FALSE(p.OnWriteAfterRead(probe));  // counted once
}

TEST(WritePredictorTest, StopsPredictingWhenWritesStop) {
  WritePredictor p;
  std::uint64_t uva = kPage;
  for (int i = 0; i < 200; ++i) Miss(p, uva += kPage, true);
  ASSERT_TRUE(p.predicting());
  // Now read only: the probes are not written, and within an epoch of
  // probes the predictor turns off.
  int writable = 0;
  for (std::uint32_t i = 0; i < WritePredictor::kEpoch * WritePredictor::kProbeEvery + 1; ++i)
    if (Miss(p, uva += kPage, false) == Install::kWritable) ++writable;
  EXPECT_FALSE(p.predicting());
  EXPECT_LE(writable, static_cast<int>(WritePredictor::kEpoch * WritePredictor::kProbeEvery));
  for (int i = 0; i < 100; ++i) EXPECT_EQ(Miss(p, uva += kPage, false), Install::kClean);
}

// Half the pages read are written: still worth it (a wrong guess costs a
// write-back, a right one saves a fault round trip). A quarter: not.
TEST(WritePredictorTest, Threshold) {
  WritePredictor half, quarter;
  for (std::uint64_t i = 0; i < WritePredictor::kEpoch; ++i) {
    Miss(half, (i + 1) * kPage, i % 2 == 0);
    Miss(quarter, (i + 1) * kPage, i % 4 == 0);
  }
  EXPECT_TRUE(half.predicting());
  EXPECT_FALSE(quarter.predicting());
}

}  // namespace
}  // namespace remora
