#include "processor/pcache/rmap.h"

#include <cassert>

namespace remora {

bool RmapList::Contains(const Rmap& r) const {
  for (std::uint32_t i = 0; i < size_; ++i)
    if (At(i) == r) return true;
  return false;
}

bool RmapList::ContainsSpace(Asid asid) const {
  for (std::uint32_t i = 0; i < size_; ++i)
    if (At(i).asid == asid) return true;
  return false;
}

void RmapList::Add(const Rmap& r) {
  assert(!Contains(r));
  if (size_ < kInline) {
    inline_[size_] = r;
  } else {
    if (!spill_) spill_ = std::make_unique<std::vector<Rmap>>();
    spill_->push_back(r);
  }
  ++size_;
}

// Order is kept so walks are deterministic (eviction unmaps in mapping order).
void RmapList::RemoveAt(std::uint32_t i) {
  assert(i < size_);
  for (std::uint32_t j = i; j + 1 < size_; ++j) At(j) = At(j + 1);
  --size_;
  if (size_ >= kInline) {
    spill_->pop_back();
  } else if (spill_) {
    spill_.reset();  // back to inline storage only: shared lines are rare
  }
}

bool RmapList::Remove(const Rmap& r) {
  for (std::uint32_t i = 0; i < size_; ++i) {
    if (At(i) == r) {
      RemoveAt(i);
      return true;
    }
  }
  return false;
}

std::uint32_t RmapList::RemoveSpace(Asid asid) {
  std::uint32_t removed = 0;
  for (std::uint32_t i = 0; i < size_;) {
    if (At(i).asid == asid) {
      RemoveAt(i);
      ++removed;
    } else {
      ++i;
    }
  }
  return removed;
}

void RmapList::Clear() {
  size_ = 0;
  spill_.reset();
}

void RmapList::CopyTo(std::vector<Rmap>* out) const {
  for (std::uint32_t i = 0; i < size_; ++i) out->push_back(At(i));
}

}  // namespace remora
