#include "processor/runtime/sequential_streams.h"

#include <algorithm>
#include <cassert>

#include "remora/types.h"

namespace remora {

std::uint32_t SequentialStreams::OnAccess(std::uint64_t page, std::uint32_t max,
                                          std::uint64_t budget, bool* extends) {
  assert(max >= 1);  // a run's window is then at least 1: lone() stays true only for lone accesses
  if (extends != nullptr) *extends = false;
  MutexLock lk(mu_);
  if (++clock_ % kEpoch == 0) AgeLocked();
  auto it = runs_.find(page);
  if (it == runs_.end()) {
    // Alone (so far): a run if the next access is to the page after it.
    // A run that already expects that page (this access fell behind it,
    // say on a page read ahead and evicted before use) keeps it.
    runs_.emplace(page + kPageSize, Run{0, clock_, false, false});
    return 0;
  }
  Run run = it->second;
  runs_.erase(it);
  if (extends != nullptr) *extends = !run.lone();
  // Accesses since this run's last one: other runs interleaved with it,
  // about (round-robin), all wanting their windows at the same time.
  const std::uint64_t sharing = clock_ - run.used;
  if (run.lone()) {
    run.far = sharing > kNear;
    if (run.far) ++far_opened_;
  } else if (run.far && !run.extended) {
    run.extended = true;
    ++far_extended_;
  }
  const std::uint64_t share = budget == 0 ? max : budget / std::max<std::uint64_t>(sharing, 1);
  const auto cap = static_cast<std::uint32_t>(std::clamp<std::uint64_t>(share, 1, max));
  run.window = std::min(run.window == 0 ? kOpeningWindow : run.window * 2, cap);
  run.used = clock_;
  // The caller covers the window and then says how far it got (Advance);
  // until then the run expects the page right after this one.
  Keep(page + kPageSize, run);
  return run.far && !FarRunsTrustedLocked() ? 0 : run.window;
}

void SequentialStreams::Advance(std::uint64_t page, std::uint64_t last) {
  MutexLock lk(mu_);
  if (last <= page) return;
  auto it = runs_.find(page + kPageSize);
  if (it == runs_.end() || it->second.lone()) return;
  const Run run = it->second;
  runs_.erase(it);
  Keep(last + kPageSize, run);
}

void SequentialStreams::Keep(std::uint64_t expect, const Run& run) {
  // Two runs that meet (threads scanning one array) go on as one, with
  // the larger window; a run takes the place of a lone access.
  auto [it, added] = runs_.emplace(expect, run);
  if (added) return;
  Run& there = it->second;
  if (there.lone()) {
    there = run;
    return;
  }
  there.window = std::max(there.window, run.window);
  there.used = run.used;
}

bool SequentialStreams::FarRunsTrustedLocked() const {
  return far_opened_ >= kMinFarSample && far_extended_ * 2 >= far_opened_;
}

std::size_t SequentialStreams::size() {
  MutexLock lk(mu_);
  return runs_.size();
}

void SequentialStreams::AgeLocked() {
  for (auto it = runs_.begin(); it != runs_.end();) {
    if (it->second.used + kEpoch < clock_)
      it = runs_.erase(it);
    else
      ++it;
  }
  // The last epochs count most: a program whose phase changes is judged
  // by what it does now.
  far_opened_ /= 2;
  far_extended_ /= 2;
}

}  // namespace remora
