#include "managers/region_map.h"

#include <algorithm>

namespace remora {

int Region::in_sync() const {
  int n = 0;
  for (const auto& r : replicas) n += r.in_sync ? 1 : 0;
  return n;
}

bool Region::HasReplica(NodeIndex n) const {
  for (const auto& r : replicas)
    if (r.node == n) return true;
  return false;
}

RegionMap::RegionMap(std::uint64_t region_bytes) : region_bytes_(region_bytes) {}

bool RegionMap::AddSpace(Asid asid) { return spaces_.emplace(asid, Space{}).second; }

std::vector<NodeIndex> RegionMap::RemoveSpace(Asid asid) {
  spaces_.erase(asid);
  std::vector<NodeIndex> nodes = NodesOf(asid);
  for (NodeIndex n : nodes) hosted_[n].erase(asid);
  return nodes;
}

bool RegionMap::ForkSpace(Asid parent, Asid child, std::vector<NodeIndex>* nodes) {
  auto p = spaces_.find(parent);
  if (p == spaces_.end() || spaces_.count(child)) return false;
  Space copy = p->second;
  spaces_.emplace(child, std::move(copy));
  *nodes = NodesOf(parent);
  for (NodeIndex n : *nodes) hosted_[n].insert(child);
  return true;
}

std::vector<NodeIndex> RegionMap::NodesOf(Asid asid) const {
  std::vector<NodeIndex> nodes;
  for (const auto& [n, set] : hosted_)
    if (set.count(asid)) nodes.push_back(n);
  return nodes;
}

bool RegionMap::IsHosted(NodeIndex node, Asid asid) const {
  auto it = hosted_.find(node);
  return it != hosted_.end() && it->second.count(asid) > 0;
}

bool RegionMap::AnyHosted(NodeIndex node, Asid* asid) const {
  auto it = hosted_.find(node);
  if (it == hosted_.end() || it->second.empty()) return false;
  *asid = *it->second.begin();
  return true;
}

const Region* RegionMap::Find(Asid asid, std::uint64_t index) const {
  auto s = spaces_.find(asid);
  if (s == spaces_.end()) return nullptr;
  auto r = s->second.find(index);
  return r == s->second.end() ? nullptr : &r->second;
}

Region* RegionMap::FindMutable(const RegionKey& key) {
  auto s = spaces_.find(key.asid);
  if (s == spaces_.end()) return nullptr;
  auto r = s->second.find(key.index);
  return r == s->second.end() ? nullptr : &r->second;
}

void RegionMap::Place(Asid asid, std::uint64_t index, const std::vector<NodeIndex>& nodes) {
  auto s = spaces_.find(asid);
  if (s == spaces_.end()) return;
  Region& region = s->second[index];
  if (!region.replicas.empty() || region.lost) return;
  region.written.assign((region_pages() + 63) / 64, 0);
  for (NodeIndex n : nodes) region.replicas.push_back({n, true});
}

void RegionMap::AddReplica(const RegionKey& key, NodeIndex node) {
  Region* region = FindMutable(key);
  if (region == nullptr || region->HasReplica(node)) return;
  region->replicas.push_back({node, false});
}

void RegionMap::SetInSync(const RegionKey& key, NodeIndex node) {
  Region* region = FindMutable(key);
  if (region == nullptr) return;
  for (auto& r : region->replicas)
    if (r.node == node) r.in_sync = true;
}

void RegionMap::DropReplica(const RegionKey& key, NodeIndex node) {
  Region* region = FindMutable(key);
  if (region == nullptr) return;
  auto& v = region->replicas;
  for (auto it = v.begin(); it != v.end(); ++it) {
    if (it->node != node) continue;
    v.erase(it);
    break;
  }
}

std::vector<RegionKey> RegionMap::RemoveNode(NodeIndex node, std::vector<Asid>* spaces) {
  std::vector<RegionKey> affected;
  for (auto& [asid, space] : spaces_) {
    for (auto& [index, region] : space) {
      auto& v = region.replicas;
      auto it = std::find_if(v.begin(), v.end(), [&](const Replica& r) { return r.node == node; });
      if (it == v.end()) continue;
      v.erase(it);
      if (region.in_sync() == 0) {
        region.lost = true;
        region.lost_on = node;
      }
      affected.push_back({asid, index});
    }
  }
  if (spaces) {
    spaces->clear();
    if (auto it = hosted_.find(node); it != hosted_.end())
      spaces->assign(it->second.begin(), it->second.end());
  }
  hosted_.erase(node);
  return affected;
}

void RegionMap::MarkWritten(Asid asid, std::uint64_t uva) {
  Region* region = FindMutable({asid, IndexOf(uva)});
  if (region == nullptr || region->written.empty()) return;
  const std::uint64_t page = (uva - StartOf(IndexOf(uva))) / kPageSize;
  region->written[page / 64] |= std::uint64_t{1} << (page % 64);
}

void RegionMap::ClearWritten(Asid asid, std::uint64_t start, std::uint64_t len) {
  auto s = spaces_.find(asid);
  if (s == spaces_.end() || len == 0) return;
  const std::uint64_t end = start + len;
  for (auto it = s->second.lower_bound(IndexOf(start));
       it != s->second.end() && StartOf(it->first) < end; ++it) {
    Region& region = it->second;
    if (region.written.empty()) continue;
    const std::uint64_t base = StartOf(it->first);
    const std::uint64_t lo = std::max(start, base), hi = std::min(end, base + region_bytes_);
    for (std::uint64_t a = lo & kPageMask; a < hi; a += kPageSize) {
      const std::uint64_t page = (a - base) / kPageSize;
      region.written[page / 64] &= ~(std::uint64_t{1} << (page % 64));
    }
  }
}

std::vector<std::uint64_t> RegionMap::WrittenPages(const RegionKey& key) const {
  std::vector<std::uint64_t> out;
  const Region* region = Find(key.asid, key.index);
  if (region == nullptr) return out;
  const std::uint64_t base = StartOf(key.index);
  for (std::size_t w = 0; w < region->written.size(); ++w) {
    std::uint64_t bits = region->written[w];
    while (bits) {
      const int b = __builtin_ctzll(bits);
      bits &= bits - 1;
      out.push_back(base + (w * 64 + static_cast<std::uint64_t>(b)) * kPageSize);
    }
  }
  return out;
}

std::uint64_t RegionMap::regions_on(NodeIndex node) const {
  std::uint64_t n = 0;
  for (const auto& [asid, space] : spaces_)
    for (const auto& [index, region] : space) n += region.HasReplica(node) ? 1 : 0;
  return n;
}

std::uint64_t RegionMap::regions() const {
  std::uint64_t n = 0;
  for (const auto& [asid, space] : spaces_) n += space.size();
  return n;
}

std::uint64_t RegionMap::degraded(int replicas) const {
  std::uint64_t n = 0;
  for (const auto& [asid, space] : spaces_)
    for (const auto& [index, region] : space) n += region.in_sync() < replicas ? 1 : 0;
  return n;
}

std::vector<RegionKey> RegionMap::DegradedKeys(int replicas) const {
  std::vector<RegionKey> out;
  for (const auto& [asid, space] : spaces_)
    for (const auto& [index, region] : space)
      if (!region.lost && region.in_sync() < replicas) out.push_back({asid, index});
  return out;
}

std::uint64_t RegionMap::lost() const {
  std::uint64_t n = 0;
  for (const auto& [asid, space] : spaces_)
    for (const auto& [index, region] : space) n += region.lost ? 1 : 0;
  return n;
}

}  // namespace remora
