// RefaultShadow: remembers the last N evicted pages.
#include "processor/pcache/refault_shadow.h"

#include <gtest/gtest.h>

namespace remora {
namespace {

PageKey K(std::uint64_t i) { return {1, i * kPageSize}; }

TEST(RefaultShadow, ARefaultWithinCapacityIsSeenOnce) {
  RefaultShadow s(4);
  s.Evicted(K(1));
  s.Evicted(K(2));
  EXPECT_TRUE(s.Refault(K(1)));
  EXPECT_FALSE(s.Refault(K(1)));  // forgotten once reported
  EXPECT_FALSE(s.Refault(K(3)));
  EXPECT_TRUE(s.Refault(K(2)));
}

TEST(RefaultShadow, OnlyTheLastCapacityEvictionsAreRemembered) {
  RefaultShadow s(4);
  for (int i = 0; i < 10; ++i) s.Evicted(K(i));
  for (int i = 0; i < 6; ++i) EXPECT_FALSE(s.Refault(K(i))) << i;
  for (int i = 6; i < 10; ++i) EXPECT_TRUE(s.Refault(K(i))) << i;
  EXPECT_EQ(s.size(), 0u);
}

TEST(RefaultShadow, AReEvictedPageCountsFromItsLatestEviction) {
  RefaultShadow s(3);
  s.Evicted(K(1));
  s.Evicted(K(2));
  s.Evicted(K(1));  // again: the ring slot of the first eviction must not forget it
  s.Evicted(K(3));
  // The last three evictions are 2, 1 (again) and 3: all remembered, and
  // the ring slot of page 1's first eviction did not make it forget page 1.
  EXPECT_TRUE(s.Refault(K(1)));
  EXPECT_TRUE(s.Refault(K(2)));
  EXPECT_TRUE(s.Refault(K(3)));
  s.Evicted(K(4));
  s.Evicted(K(5));
  s.Evicted(K(6));
  s.Evicted(K(7));
  EXPECT_FALSE(s.Refault(K(4)));  // pushed out by 5, 6, 7
  EXPECT_LE(s.size(), 3u);
}

TEST(RefaultShadow, RemembersWhetherThePageWasDirty) {
  RefaultShadow s(4);
  s.Evicted(K(1), {.dirty = true});
  s.Evicted(K(2), {.dirty = false});
  s.Evicted(K(3), {.dirty = true});
  s.Evicted(K(3), {.dirty = false});  // evicted again, clean this time: the latest counts
  ShadowEntry e;
  EXPECT_TRUE(s.Refault(K(1), &e));
  EXPECT_TRUE(e.dirty);
  EXPECT_TRUE(s.Refault(K(2), &e));
  EXPECT_FALSE(e.dirty);
  EXPECT_TRUE(s.Refault(K(3), &e));
  EXPECT_FALSE(e.dirty);
  // The flag does not disturb forgetting: four more evictions push all out.
  s.Evicted(K(4), {.dirty = true});
  for (int i = 5; i < 9; ++i) s.Evicted(K(i), {.dirty = true});
  EXPECT_FALSE(s.Refault(K(4)));
  EXPECT_TRUE(s.Refault(K(8), &e));
  EXPECT_TRUE(e.dirty);
}

// The reserve flag and the set's eviction number come back as given, for
// the latest eviction of the page.
TEST(RefaultShadow, RemembersTheReserveAndTheSetEviction) {
  RefaultShadow s(4);
  s.Evicted(K(1), {.dirty = false, .reserve = true, .set_eviction = 7});
  s.Evicted(K(2), {.dirty = true, .reserve = false, .set_eviction = 0xffffffffu});
  s.Evicted(K(1), {.dirty = true, .reserve = false, .set_eviction = 9});
  ShadowEntry e;
  ASSERT_TRUE(s.Refault(K(1), &e));
  EXPECT_TRUE(e.dirty);
  EXPECT_FALSE(e.reserve);
  EXPECT_EQ(e.set_eviction, 9u);
  ASSERT_TRUE(s.Refault(K(2), &e));
  EXPECT_TRUE(e.dirty);
  EXPECT_FALSE(e.reserve);
  EXPECT_EQ(e.set_eviction, 0xffffffffu);
  s.Evicted(K(3), {.reserve = true, .set_eviction = 1});
  ASSERT_TRUE(s.Refault(K(3), &e));
  EXPECT_FALSE(e.dirty);
  EXPECT_TRUE(e.reserve);
  EXPECT_EQ(e.set_eviction, 1u);
}

TEST(RefaultShadow, AddressSpacesAreDistinct) {
  RefaultShadow s(8);
  s.Evicted({1, kPageSize});
  EXPECT_FALSE(s.Refault({2, kPageSize}));
  EXPECT_TRUE(s.Refault({1, kPageSize}));
}

// The table is lossy only where a bucket overflows: at the runtime's size,
// nearly every page of the last `capacity` evictions is still remembered,
// and none of those before.
TEST(RefaultShadow, ALargeShadowForgetsAlmostNothingItShouldRemember) {
  constexpr int kCapacity = 20000;
  RefaultShadow s(kCapacity);
  for (int i = 0; i < 3 * kCapacity; ++i) s.Evicted(K(static_cast<std::uint64_t>(i)));
  int remembered = 0;
  for (int i = 2 * kCapacity; i < 3 * kCapacity; ++i)
    remembered += s.Refault(K(static_cast<std::uint64_t>(i))) ? 1 : 0;
  EXPECT_GE(remembered, kCapacity * 99 / 100);
  for (int i = 0; i < 2 * kCapacity; ++i)
    EXPECT_FALSE(s.Refault(K(static_cast<std::uint64_t>(i)))) << i;
  EXPECT_EQ(s.size(), 0u);
}

}  // namespace
}  // namespace remora
