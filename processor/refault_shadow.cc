#include "processor/refault_shadow.h"

namespace remora {

void RefaultShadow::Evicted(const PageKey& key) {
  if (ring_.empty()) return;
  std::lock_guard lk(mu_);
  const std::uint64_t seq = ++seq_;
  PageKey& slot = ring_[next_];
  if (seq > ring_.size()) {
    // The slot's page was evicted ring_.size() evictions ago: forget it,
    // unless it was evicted again since (then a newer seq stands for it).
    auto it = seq_of_.find(slot);
    if (it != seq_of_.end() && it->second == seq - ring_.size()) seq_of_.erase(it);
  }
  slot = key;
  seq_of_[key] = seq;
  next_ = (next_ + 1) % ring_.size();
}

bool RefaultShadow::Refault(const PageKey& key) {
  std::lock_guard lk(mu_);
  return seq_of_.erase(key) != 0;
}

std::size_t RefaultShadow::size() const {
  std::lock_guard lk(mu_);
  return seq_of_.size();
}

}  // namespace remora
