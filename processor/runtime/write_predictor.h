// Whether a read miss should go in writable: a per-process guess that the
// page will be written soon after it is read (read-modify-write).
//
// A clean page is installed write-protected so that its first write is
// seen: a write-protect fault marks the line dirty. When a program writes
// nearly every page it reads (a random read-modify-write, an in-place
// update of a table), that costs two round trips per page: the missing fault
// and the write-protect fault right after it. Installing such a page
// writable and dirty at once saves the second; a wrong guess costs one
// write-back of a page that did not change. The guess never affects
// correctness: a dirty line is written back, and eviction write-protects
// before it copies (processor/runtime/README.md, docs/runtime.md).
//
// The signal: over an epoch of kEpoch clean installs by read misses, how
// many write-protect faults dirtied a private clean line (a COW or a reuse
// after fork is not counted). At least half as many writes as clean
// installs: writes are predicted for the next epoch. Rates, not per-page
// pairs, so a write that comes long after its read still counts.
//
// While writes are predicted, read misses no longer produce clean installs
// and the rate would stop being measured: one read miss in kProbeEvery is
// still installed clean (a probe). Probes are remembered (the last
// kProbeSlots of them) so that a probe's write-protect fault can be counted
// as a confirmed guess: probe writes / probes estimates how often the
// writable installs were right.
//
// Shared by a process's fault threads: relaxed atomics, since a lost
// increment at an epoch's rollover only shifts the estimate a little.
#pragma once

#include <atomic>
#include <cstdint>

namespace remora {

class WritePredictor {
 public:
  static constexpr std::uint32_t kEpoch = 32;       // clean installs per decision
  static constexpr std::uint32_t kProbeEvery = 16;  // read misses per probe while predicting
  static constexpr std::uint32_t kProbeSlots = 64;  // probes remembered

  enum class Install {
    kClean,     // write-protected, as usual (writes not predicted)
    kWritable,  // writable and dirty: writes predicted
    kProbe,     // write-protected though writes are predicted: a probe
  };

  // For the faulting page `uva` of a read miss.
  Install Decide(std::uint64_t uva) {
    if (!predict_.load(std::memory_order_relaxed)) return Install::kClean;
    if (misses_.fetch_add(1, std::memory_order_relaxed) % kProbeEvery != 0)
      return Install::kWritable;
    const std::uint32_t slot = probe_next_.fetch_add(1, std::memory_order_relaxed) % kProbeSlots;
    probes_[slot].store(uva, std::memory_order_relaxed);
    return Install::kProbe;
  }

  // A read miss's page went in write-protected (kClean or kProbe).
  void OnCleanInstall() {
    if (clean_.fetch_add(1, std::memory_order_relaxed) + 1 >= kEpoch) Roll();
  }

  // A write-protect fault dirtied the private clean line of `uva`. Returns
  // true if the page was a probe (the guess was confirmed).
  bool OnWriteAfterRead(std::uint64_t uva) {
    written_.fetch_add(1, std::memory_order_relaxed);
    if (!predict_.load(std::memory_order_relaxed)) return false;
    for (auto& p : probes_) {
      std::uint64_t want = uva;
      if (p.compare_exchange_strong(want, kNoProbe, std::memory_order_relaxed)) return true;
    }
    return false;
  }

  bool predicting() const { return predict_.load(std::memory_order_relaxed); }

 private:
  static constexpr std::uint64_t kNoProbe = 1;  // never a page address

  // Ends an epoch: decides for the next one.
  void Roll() {
    const std::uint32_t c = clean_.exchange(0, std::memory_order_relaxed);
    const std::uint32_t w = written_.exchange(0, std::memory_order_relaxed);
    if (c == 0) return;  // another thread rolled meanwhile
    predict_.store(2 * w >= c, std::memory_order_relaxed);
  }

  std::atomic<bool> predict_{false};
  std::atomic<std::uint32_t> clean_{0};
  std::atomic<std::uint32_t> written_{0};
  std::atomic<std::uint32_t> misses_{0};
  std::atomic<std::uint32_t> probe_next_{0};
  std::atomic<std::uint64_t> probes_[kProbeSlots] = {};
};

}  // namespace remora
