#include "processor/sim/belady.h"

#include <limits>
#include <set>
#include <utility>

namespace remora {

void BeladyMin::Add(const PageKey& key) {
  const PageKey page{key.asid, PageDown(key.uva)};
  auto [it, added] = ids_.try_emplace(page, static_cast<std::uint32_t>(ids_.size()));
  refs_.push_back(it->second);
}

std::uint64_t BeladyMin::Misses(std::size_t capacity) const {
  if (capacity == 0) return refs_.size();
  constexpr std::size_t kNever = std::numeric_limits<std::size_t>::max();
  // next[i]: where refs_[i]'s page is referenced next (kNever: not again).
  std::vector<std::size_t> next(refs_.size());
  std::vector<std::size_t> seen(ids_.size(), kNever);
  for (std::size_t i = refs_.size(); i-- > 0;) {
    next[i] = seen[refs_[i]];
    seen[refs_[i]] = i;
  }
  // Resident pages ordered by next use; the last one is the victim. A
  // page's entry is (its next use, id); `due` finds it again.
  std::set<std::pair<std::size_t, std::uint32_t>> resident;
  std::vector<std::size_t> due(ids_.size(), kNever);
  std::vector<bool> in(ids_.size(), false);
  std::uint64_t misses = 0;
  for (std::size_t i = 0; i < refs_.size(); ++i) {
    const std::uint32_t p = refs_[i];
    if (in[p]) {
      resident.erase({due[p], p});
    } else {
      ++misses;
      if (resident.size() == capacity) {
        auto victim = std::prev(resident.end());
        in[victim->second] = false;
        resident.erase(victim);
      }
      in[p] = true;
    }
    due[p] = next[i];
    resident.insert({next[i], p});
  }
  return misses;
}

}  // namespace remora
