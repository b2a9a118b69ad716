// BeladyMin: the optimal miss count, checked on textbook reference strings
// and against an exhaustive search on small random ones.
#include "processor/sim/belady.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <random>
#include <set>
#include <vector>

namespace remora {
namespace {

BeladyMin FromPages(const std::vector<int>& pages) {
  BeladyMin m;
  for (int p : pages) m.Add({1, static_cast<std::uint64_t>(p) * kPageSize + 12});
  return m;
}

// The fewest misses by trying every choice of victim (small inputs only).
std::uint64_t Exhaustive(const std::vector<int>& refs, std::size_t capacity) {
  std::function<std::uint64_t(std::size_t, std::set<int>)> best = [&](std::size_t i,
                                                                      std::set<int> in) {
    if (i == refs.size()) return std::uint64_t{0};
    if (in.count(refs[i])) return best(i + 1, in);
    if (in.size() < capacity) {
      in.insert(refs[i]);
      return 1 + best(i + 1, in);
    }
    std::uint64_t m = ~std::uint64_t{0};
    for (int v : std::set<int>(in)) {
      std::set<int> next = in;
      next.erase(v);
      next.insert(refs[i]);
      m = std::min(m, 1 + best(i + 1, next));
    }
    return m;
  };
  return best(0, {});
}

TEST(BeladyMin, TextbookReferenceString) {
  // Silberschatz et al.: with 3 frames, OPT takes 9 faults (LRU 12, FIFO 15).
  BeladyMin m = FromPages({7, 0, 1, 2, 0, 3, 0, 4, 2, 3, 0, 3, 2, 1, 2, 0, 1, 7, 0, 1});
  EXPECT_EQ(m.references(), 20u);
  EXPECT_EQ(m.distinct(), 6u);
  EXPECT_EQ(m.Misses(3), 9u);
  EXPECT_EQ(m.Misses(6), 6u);  // only cold misses
  EXPECT_EQ(m.Misses(0), 20u);
}

TEST(BeladyMin, AddressesWithinAPageAreOnePageAndSpacesAreDistinct) {
  BeladyMin m;
  m.Add({1, 0x1000});
  m.Add({1, 0x1fff});  // the same page
  m.Add({2, 0x1000});  // another space's page
  m.Add({1, 0x1008});
  EXPECT_EQ(m.distinct(), 2u);
  EXPECT_EQ(m.Misses(1), 3u);
  EXPECT_EQ(m.Misses(2), 2u);
}

TEST(BeladyMin, MatchesAnExhaustiveSearch) {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 40; ++trial) {
    std::vector<int> refs(12);
    for (int& r : refs) r = static_cast<int>(rng() % 5);
    BeladyMin m = FromPages(refs);
    for (std::size_t cap = 1; cap <= 4; ++cap)
      EXPECT_EQ(m.Misses(cap), Exhaustive(refs, cap)) << "trial " << trial << " capacity " << cap;
  }
}

}  // namespace
}  // namespace remora
