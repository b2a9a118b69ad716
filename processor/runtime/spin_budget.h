// How long a fault thread polls its userfaultfd for the next fault before it
// goes to sleep in a blocking wait.
//
// Sleeping costs both sides a wake-up: the faulting thread sleeps in the
// kernel until UFFDIO_COPY wakes it, and the fault thread sleeps in read()
// until the next fault wakes it. When the two run on different CPUs each
// wake-up is a cross-CPU IPI and, on an idle CPU, a trip out of and back
// into the idle state: tens of microseconds a fault. Polling for a few
// microseconds after a fault keeps the fault thread's CPU awake and catches
// the next fault of a program that faults densely with one read.
//
// Polling is a bet: it pays when the next fault comes within the budget,
// and burns a CPU when it does not (an idle program, or a faulting thread
// that needs this very CPU to run). So the budget adapts:
//   - a poll that found a message doubles it (up to kMax);
//   - a poll that found nothing halves it (below kMin: zero) and starts a
//     cool-down: no polling for the next N waits, N doubled by each empty
//     poll in a row (up to kMaxCoolDown) and reset by a fruitful one;
//   - with the budget at zero, a blocking wait that turned out short
//     (under kMax: a poll would have caught it) restarts it at kMin, once the
//     cool-down is over.
// An idle program therefore costs at most one empty poll after its last
// fault. A thread sharing one CPU with the program it serves polls in vain
// (the program cannot run meanwhile): its cool-down grows until it polls
// once every kMaxCoolDown faults.
#pragma once

#include <algorithm>
#include <cstdint>

namespace remora {

class SpinBudget {
 public:
  static constexpr std::uint64_t kMinNs = 2'000;
  static constexpr std::uint64_t kMaxNs = 50'000;
  static constexpr std::uint32_t kFirstCoolDown = 4;
  static constexpr std::uint32_t kMaxCoolDown = 1024;

  // How long to poll now (0: block at once).
  std::uint64_t budget_ns() const { return cool_down_ > 0 ? 0 : budget_ns_; }

  // A poll ended: it found a message, or the budget ran out.
  void AfterPoll(bool found) {
    if (found) {
      budget_ns_ = std::min(kMaxNs, std::max(kMinNs, budget_ns_ * 2));
      next_cool_down_ = kFirstCoolDown;
      cool_down_ = 0;
      return;
    }
    budget_ns_ /= 2;
    if (budget_ns_ < kMinNs) budget_ns_ = 0;
    cool_down_ = next_cool_down_;
    next_cool_down_ = std::min(kMaxCoolDown, next_cool_down_ * 2);
  }

  // A blocking wait ended after waited_ns with a message.
  void AfterBlock(std::uint64_t waited_ns) {
    if (cool_down_ > 0) {
      --cool_down_;
      return;
    }
    if (budget_ns_ == 0 && waited_ns < kMaxNs) budget_ns_ = kMinNs;
  }

 private:
  std::uint64_t budget_ns_ = 0;
  std::uint32_t cool_down_ = 0;
  std::uint32_t next_cool_down_ = kFirstCoolDown;
};

}  // namespace remora
