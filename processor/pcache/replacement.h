// The pcache's replacement policy: which end of a set's list a fill goes to,
// and whether a "referenced" hint earns a line a second chance.
//
// What the runtime knows about a page is only what faults tell it: the miss
// that fills it, the write-protect fault of its first write, and whether a
// fill is a refault (the page was evicted recently, refault_shadow.h). A hit
// never reaches the manager. Any policy that only reorders on accesses is
// then FIFO by fill time, and FIFO, like LRU, misses on every access of a
// loop that is a little larger than the cache (a column walk, an iteration
// over a data set, an interpreter's heap): each page is evicted just before
// it is used again.
//
// Two insertion policies share each set's list (front = kept longest, back =
// next victim):
//
//   recency   a fill goes to the front; the eviction walk gives a
//             referenced line (a refault, or a hint) a second chance by
//             moving it to the front: CLOCK over fill order. Good when
//             recently faulted pages are the ones used next.
//   bimodal   a fill goes to the back, where it is the next victim, except
//             one fill in kBimodalThrottle, which goes to the front. The
//             lines at the front stay while newer pages churn through the
//             back: a loop larger than the cache keeps a resident subset
//             (the bimodal insertion policy, BIP, of Qureshi et al., ISCA
//             2007) and a scan passes through one line of each set instead
//             of flushing it. A referenced line still gets its second
//             chance: a refault — a page back within a quarter cache's
//             worth of evictions — proves a short reuse distance, while a
//             loop's churning pages come back only after a whole pass,
//             mostly beyond what the shadow remembers. Without it, bimodal
//             sets would evict every page of a recency-friendly program
//             right after its fill, and their leaders' misses (below) would
//             cost 30% on such a program instead of 7%.
//
// Neither wins everywhere, and the runtime cannot see hit rates — but it
// sees misses, and that suffices to choose (set dueling, from the same
// paper): a few leader sets always use recency, as many always use bimodal;
// a saturating counter goes up on every fault's fill of a recency leader and
// down on every fault's fill of a bimodal leader, and the other sets
// (followers) use the policy whose leaders fill less. Switching costs
// nothing: both policies keep the same list, they only insert differently.
//
// What set dueling costs is its leaders: on a program recency serves well,
// the bimodal leaders miss more than they would under recency. So there
// are not many (one set in 16 of each kind, at most 32 of each), and the
// followers switch with hysteresis: to bimodal when the selector is
// kHysteresis above the middle, back to recency kHysteresis below it, so
// that a selector wandering around the middle (both policies alike) leaves
// the followers on recency instead of flipping them back and forth.
//
// The counter is one atomic word, updated without a lock: no global lock on
// the fault path, and a lost race costs one step of the counter. The
// followers' choice is a second atomic word, changed only when the counter
// crosses a threshold.
#pragma once

#include <atomic>
#include <cstdint>
#include <vector>

namespace remora {

enum class Replacement : std::uint8_t {
  kAdaptive,  // set dueling between recency and bimodal (the default)
  kRecency,   // every set: fill at the front, CLOCK second chance (the old policy)
  kBimodal,   // every set: bimodal insertion
};

const char* ReplacementName(Replacement r);

class SetDueling {
 public:
  // One fill in this many goes to the front under bimodal insertion.
  static constexpr std::uint32_t kBimodalThrottle = 32;
  // The policy selector saturates at 0 and kSelectorMax and starts at
  // kSelectorMid; followers use bimodal above it.
  static constexpr int kSelectorMax = 1023;
  static constexpr int kSelectorMid = (kSelectorMax + 1) / 2;
  // Followers turn bimodal above kSelectorMid + kHysteresis and back to
  // recency below kSelectorMid - kHysteresis.
  static constexpr int kHysteresis = 16;
  // One set in kLeaderSpacing leads for each policy, at most kMaxPairs
  // pairs.
  static constexpr std::uint32_t kLeaderSpacing = 16;
  static constexpr std::uint32_t kMaxPairs = 32;

  enum class Role : std::uint8_t { kFollower, kRecencyLeader, kBimodalLeader };

  SetDueling(Replacement mode, std::uint32_t nr_sets);

  Role role(std::uint32_t set) const { return roles_[set]; }
  // Whether `set` inserts bimodally now.
  bool Bimodal(std::uint32_t set) const;
  // A fault allocated a line in `set` (read-ahead fills do not vote): a
  // leader's fill moves the selector towards the other policy. Only
  // kAdaptive keeps a selector: under a fixed policy this does nothing.
  void OnFill(std::uint32_t set);
  int selector() const { return selector_.load(std::memory_order_relaxed); }
  // The followers' policy now.
  bool FollowersBimodal() const { return followers_bimodal_.load(std::memory_order_relaxed); }
  Replacement mode() const { return mode_; }

 private:
  const Replacement mode_;
  std::vector<Role> roles_;
  std::atomic<int> selector_{kSelectorMid};
  std::atomic<bool> followers_bimodal_{false};
};

}  // namespace remora
