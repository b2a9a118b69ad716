// SpinBudget: the adaptive poll of the fault threads grows while polling
// finds faults, falls to zero when it does not, restarts only after a
// cool-down that grows with every fruitless restart, and is bounded.
#include "processor/runtime/spin_budget.h"

#include <gtest/gtest.h>

#include <cstdint>

namespace remora {
namespace {

TEST(SpinBudgetTest, StartsAtZero) {
  SpinBudget b;
  EXPECT_EQ(b.budget_ns(), 0u);
}

TEST(SpinBudgetTest, ShortBlockingWaitStartsPolling) {
  SpinBudget b;
  b.AfterBlock(SpinBudget::kMaxNs * 10);  // a long sleep: a poll would not have helped
  EXPECT_EQ(b.budget_ns(), 0u);
  b.AfterBlock(3'000);  // the next fault came within a poll's reach
  EXPECT_EQ(b.budget_ns(), SpinBudget::kMinNs);
}

TEST(SpinBudgetTest, FruitfulPollsGrowUpToTheBound) {
  SpinBudget b;
  b.AfterBlock(1'000);
  std::uint64_t last = b.budget_ns();
  for (int i = 0; i < 64; ++i) {
    b.AfterPoll(true);
    EXPECT_GE(b.budget_ns(), last);
    EXPECT_LE(b.budget_ns(), SpinBudget::kMaxNs);
    last = b.budget_ns();
  }
  EXPECT_EQ(b.budget_ns(), SpinBudget::kMaxNs);
}

TEST(SpinBudgetTest, EmptyPollsShrinkToZero) {
  SpinBudget b;
  b.AfterBlock(1'000);
  for (int i = 0; i < 10; ++i) b.AfterPoll(true);
  ASSERT_EQ(b.budget_ns(), SpinBudget::kMaxNs);
  // An empty poll halves the budget, and no poll happens during the
  // cool-down that follows: the thread blocks at once.
  b.AfterPoll(false);
  EXPECT_EQ(b.budget_ns(), 0u);
  for (std::uint32_t i = 0; i < SpinBudget::kFirstCoolDown; ++i)
    b.AfterBlock(SpinBudget::kMaxNs * 10);
  EXPECT_EQ(b.budget_ns(), SpinBudget::kMaxNs / 2);
  // Empty polls in a row while the program is idle (its waits are long):
  // a few polls, each shorter than the last, then none at all.
  int polls = 0, late_polls = 0;
  std::uint64_t last = SpinBudget::kMaxNs;
  for (int i = 0; i < 5000; ++i) {
    if (b.budget_ns() > 0) {
      EXPECT_LT(b.budget_ns(), last);
      last = b.budget_ns();
      b.AfterPoll(false);
      ++polls;
      if (i > 1000) ++late_polls;
    }
    b.AfterBlock(SpinBudget::kMaxNs * 10);
  }
  EXPECT_LE(polls, 6);
  EXPECT_EQ(late_polls, 0);
}

// A fault thread that shares a CPU with the program polls in vain: the
// program cannot fault while the poll runs. Its faults come quickly once
// it blocks, which restarts polling; the cool-down must make those vain
// polls rare.
TEST(SpinBudgetTest, VainPollsBecomeRare) {
  SpinBudget b;
  int polls = 0;
  const int waits = 20000;
  for (int i = 0; i < waits; ++i) {
    if (b.budget_ns() > 0) {
      b.AfterPoll(false);
      ++polls;
    }
    b.AfterBlock(1'000);
  }
  EXPECT_GT(polls, 0);
  EXPECT_LT(polls, waits / 200) << "polls " << polls;
  // And a fruitful poll resets the cool-down: polling resumes at once.
  while (b.budget_ns() == 0) b.AfterBlock(1'000);
  b.AfterPoll(true);
  EXPECT_GT(b.budget_ns(), 0u);
  b.AfterPoll(true);
  EXPECT_GT(b.budget_ns(), 0u);
}

}  // namespace
}  // namespace remora
