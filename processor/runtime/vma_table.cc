#include "processor/runtime/vma_table.h"

#include <unistd.h>

#include <algorithm>

namespace remora {

FileBacking::~FileBacking() { ::close(fd); }

namespace {
// The part of v inside [start, end).
Vma Clip(const Vma& v, std::uint64_t start, std::uint64_t end) {
  Vma c = v;
  c.start = std::max(v.start, start);
  c.end = std::min(v.end, end);
  if (c.file) c.file_offset = v.FileOffsetOf(c.start);
  return c;
}
}  // namespace

void VmaTable::Insert(const Vma& vma) {
  MutexLock lk(mu_);
  RemoveLocked(vma.start, vma.end);
  by_start_[vma.start] = vma;
}

std::vector<Vma> VmaTable::Remove(std::uint64_t start, std::uint64_t end) {
  MutexLock lk(mu_);
  return RemoveLocked(start, end);
}

std::vector<Vma> VmaTable::RemoveLocked(std::uint64_t start, std::uint64_t end) {
  std::vector<Vma> removed;
  auto it = by_start_.upper_bound(start);
  if (it != by_start_.begin()) --it;
  while (it != by_start_.end() && it->second.start < end) {
    Vma v = it->second;
    if (v.end <= start) {
      ++it;
      continue;
    }
    it = by_start_.erase(it);
    removed.push_back(Clip(v, start, end));
    if (v.start < start) by_start_[v.start] = Clip(v, v.start, start);
    if (v.end > end) {
      by_start_[end] = Clip(v, end, v.end);
      break;
    }
  }
  return removed;
}

std::vector<Vma> VmaTable::Overlapping(std::uint64_t start, std::uint64_t end) const {
  MutexLock lk(mu_);
  std::vector<Vma> out;
  auto it = by_start_.upper_bound(start);
  if (it != by_start_.begin()) --it;
  for (; it != by_start_.end() && it->second.start < end; ++it) {
    if (it->second.end > start) out.push_back(Clip(it->second, start, end));
  }
  return out;
}

std::optional<Vma> VmaTable::Find(std::uint64_t uva) const {
  MutexLock lk(mu_);
  auto it = by_start_.upper_bound(uva);
  if (it == by_start_.begin()) return std::nullopt;
  --it;
  if (uva >= it->second.end) return std::nullopt;
  return it->second;
}

std::vector<Vma> VmaTable::All() const {
  MutexLock lk(mu_);
  std::vector<Vma> out;
  for (auto& [s, v] : by_start_) out.push_back(v);
  return out;
}

std::size_t VmaTable::size() const {
  MutexLock lk(mu_);
  return by_start_.size();
}

}  // namespace remora
