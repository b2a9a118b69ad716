#include "processor/pcache/refault_shadow.h"

namespace remora {

void RefaultShadow::Evicted(const PageKey& key, const ShadowEntry& entry) {
  MutexLock lk(mu_);
  if (ring_.empty()) return;
  const std::uint64_t seq = ++seq_;
  PageKey& slot = ring_[next_];
  if (seq > ring_.size()) {
    // The slot's page was evicted ring_.size() evictions ago: forget it,
    // unless it was evicted again since (then a newer seq stands for it).
    auto it = seq_of_.find(slot);
    if (it != seq_of_.end() && it->second.seq == seq - ring_.size()) seq_of_.erase(it);
  }
  slot = key;
  seq_of_[key] = {seq, entry};
  next_ = (next_ + 1) % ring_.size();
}

bool RefaultShadow::Refault(const PageKey& key, ShadowEntry* entry) {
  MutexLock lk(mu_);
  auto it = seq_of_.find(key);
  if (it == seq_of_.end()) return false;
  if (entry) *entry = it->second.entry;
  seq_of_.erase(it);
  return true;
}

std::size_t RefaultShadow::size() const {
  MutexLock lk(mu_);
  return seq_of_.size();
}

}  // namespace remora
