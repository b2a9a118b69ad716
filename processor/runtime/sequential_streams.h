// Sequential runs of one program's accesses (its misses, or its
// write-protect faults), any number of them interleaved.
//
// A MapReduce shuffle is many runs at once: the radix sort of
// tests/programs/wordcount_mr writes 256 buckets per thread, each bucket a
// run of pages, and its faults alternate between all of them. A handful of
// fixed slots loses every such run before its next page
// faults. Here a run is found by the page it expects next, in a hash table:
// an access costs one lookup however many runs are open.
//
//   an access to the page a run expects extends it: its window doubles
//     (4, 8, ... up to `max` pages);
//   an access to the page after one accessed alone opens a run, with a
//     window of 4 pages;
//   any other access is remembered alone.
//
// Remembering a thousand lone accesses has a price: in a program that
// misses at random, many a miss lands on the page after some earlier one,
// and read-ahead there would be wasted. So a run opened from a lone access
// more than kNear accesses old (a "far" run: what only a big table finds)
// reads ahead only while such runs prove themselves: at least half of the
// far runs opened lately were extended again. The interleaved runs of a
// shuffle nearly all are; a random program's chance pairs seldom are, and
// it never reads ahead more than the old few slots did. A run opened from
// one of the last kNear accesses reads ahead at once, as those slots did.
//
// The windows share the pcache. Pages read ahead for many runs at once
// evict one another before the program reaches them, so with `budget`
// given, a window is at most budget / n, where n is the number of accesses
// since the run's previous one: runs that take turns (the buckets of a
// shuffle) wait n - 1 accesses for theirs, so about n of them want a window
// at the same time. A window is never below one page: a fault then still
// brings its run's next page with it. Counting per run, not the runs open
// overall, keeps a phase's finished runs from shrinking the next phase's
// windows.
//
// Runs and lone accesses not touched for kEpoch accesses are forgotten
// (checked every kEpoch accesses): at most 2 * kEpoch entries. That is the
// most runs followed at once, and what keeps a random program's chance
// pairs rare.

#pragma once

#include <cstdint>
#include <unordered_map>

#include "common/mutex.h"

namespace remora {

class SequentialStreams {
 public:
  static constexpr std::uint64_t kEpoch = 1024;
  static constexpr std::uint32_t kOpeningWindow = 4;
  // A lone access at most this many accesses old opens a run that reads
  // ahead at once.
  static constexpr std::uint64_t kNear = 8;
  // Far runs opened (decayed: halved every epoch) before their record
  // counts.
  static constexpr std::uint64_t kMinFarSample = 16;

  // An access to `page` (page-aligned): the pages after it the caller
  // should cover (0: none), at most `max` (at least 1). `budget` caps the pages all open runs'
  // windows add up to (0: no cap). *extends (if given): the access continued a run that had
  // already read ahead, rather than opening one or being alone.
  std::uint32_t OnAccess(std::uint64_t page, std::uint32_t max, std::uint64_t budget = 0,
                         bool* extends = nullptr) EXCLUDES(mu_);
  // After OnAccess(page) returned a window, the caller covered the pages up
  // to and including `last`: the run's next expected access is the page
  // after it.
  void Advance(std::uint64_t page, std::uint64_t last) EXCLUDES(mu_);

  // Runs and lone accesses remembered (for tests).
  std::size_t size() EXCLUDES(mu_);

 private:
  struct Run {
    std::uint32_t window;  // pages; 0: a lone access (a run's is at least 1)
    std::uint64_t used;    // clock_ at its last access
    bool far;              // opened from a lone access more than kNear old
    bool extended;         // extended at least once since it opened
    bool lone() const { return window == 0; }
  };
  void AgeLocked() REQUIRES(mu_);
  bool FarRunsTrustedLocked() const REQUIRES(mu_);
  // Files `run` under the page it expects next.
  void Keep(std::uint64_t expect, const Run& run) REQUIRES(mu_);

  Mutex mu_;  // a leaf lock
  // Keyed by the page each run (or lone access) expects next.
  std::unordered_map<std::uint64_t, Run> runs_ GUARDED_BY(mu_);
  std::uint64_t clock_ GUARDED_BY(mu_) = 0;  // accesses so far
  // Far runs opened, and those of them extended again (decayed).
  std::uint64_t far_opened_ GUARDED_BY(mu_) = 0;
  std::uint64_t far_extended_ GUARDED_BY(mu_) = 0;
};

}  // namespace remora
