// ClusterTransport's re-replication: a background thread that gives every
// region which lost a replica a new one, until each has `replicas` in-sync
// copies again (or no node has room). A region is copied under topology_mu_
// held exclusively: no write-back can land between reading a page from a
// surviving replica and writing it to the new one, at the price of pausing
// this processor's write-backs for the copy of one region.
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <cstring>
#include <memory>

#include "managers/cluster_transport.h"

namespace remora {

std::vector<RegionKey> ClusterTransport::DegradedRegions() const {
  MutexLock lk(map_mu_);
  return map_.DegradedKeys(policy_.replicas);
}

std::uint64_t ClusterTransport::RepairsPending() const {
  std::uint64_t n = DegradedRegions().size();
  MutexLock lk(repair_mu_);
  return n + static_cast<std::uint64_t>(repairing_);
}

void ClusterTransport::RepairLoop() {
  for (;;) {
    RegionKey key;
    bool have = false;
    {
      MutexLock lk(repair_mu_);
      if (!stop_ && repair_queue_.empty()) repair_cv_.wait_for(repair_mu_, std::chrono::seconds(1));
      if (stop_) return;
      if (!repair_queue_.empty()) {
        key = repair_queue_.front();
        repair_queue_.pop_front();
        ++repairing_;
        have = true;
      }
    }
    if (!have) {
      // Once a second: regions still short of copies (no node had room, or
      // a copy failed) get another try; a node may have come back.
      std::vector<RegionKey> keys = DegradedRegions();
      MutexLock lk(repair_mu_);
      for (const auto& k : keys) repair_queue_.push_back(k);
      continue;
    }
    Repair(key);
    MutexLock lk(repair_mu_);
    --repairing_;
  }
}

void ClusterTransport::Repair(const RegionKey& key) {
  {
    // Cheap check first, without stopping write-backs: is there anything
    // to do, and anywhere to put it?
    MutexLock lk(map_mu_);
    const Region* r = map_.Find(key.asid, key.index);
    if (r == nullptr || r->lost || r->in_sync() >= policy_.replicas) return;
    bool any = false;
    const std::vector<NodeLoad> loads = Loads();
    for (std::size_t i = 0; i < loads.size(); ++i)
      any = any ||
            (!r->HasReplica(i) && loads[i].usable && loads[i].free_pages() >= region_cost_pages_);
    if (!any) return;
  }
  WriterMutexLock topo(topology_mu_);
  MutexLock place(place_mu_);
  View sources;
  NodeIndex target = 0;
  std::uint64_t target_epoch = 0;
  {
    MutexLock lk(map_mu_);
    const Region* r = map_.Find(key.asid, key.index);
    if (r == nullptr || r->lost || r->in_sync() >= policy_.replicas) return;
    std::vector<std::size_t> exclude;
    for (const auto& rep : r->replicas) exclude.push_back(rep.node);
    std::vector<std::size_t> chosen = ChooseNodes(Loads(), region_cost_pages_, 1, exclude, &rng_);
    if (chosen.empty()) return;
    target = chosen[0];
    target_epoch = nodes_[target]->epoch();
    sources = LookLocked(key.asid, key.index, true);
  }
  const std::uint64_t start_ns = MonotonicNs();
  bool gone = false;
  Status st = Host(target, target_epoch, key.asid, key.index, &gone);
  std::uint64_t pages = 0;
  if (st.ok()) nodes_[target]->NotePlaced(region_cost_pages_);
  if (st.ok()) st = CopyRegion(key, sources, target, target_epoch, &pages);
  if (!st.ok()) {
    if (st.code() == Code::kOutOfMemory) nodes_[target]->MarkFull();
    spdlog::warn("cluster: re-replicating [{:#x}, {:#x}) of space {:#x} to {} failed: {}",
                 Start(key.index), Start(key.index + 1), key.asid, nodes_[target]->Describe(),
                 st.ToString());
    return;  // retried by the next scan
  }
  bool again = false;
  {
    MutexLock lk(map_mu_);
    map_.AddReplica(key, target);
    map_.SetInSync(key, target);
    const Region* r = map_.Find(key.asid, key.index);
    again = r != nullptr && !r->lost && r->in_sync() < policy_.replicas;
    UpdateGauges();
  }
  metrics_.rereplicated_regions->Inc();
  metrics_.rereplicated_pages->Add(pages);
  metrics_.rereplicate_ns->Record(MonotonicNs() - start_ns);
  if (again) {
    MutexLock lk(repair_mu_);
    repair_queue_.push_back(key);
  }
}

Status ClusterTransport::CopyRegion(const RegionKey& key, const View& sources, NodeIndex target,
                                    std::uint64_t target_epoch, std::uint64_t* pages) {
  std::vector<std::uint64_t> uvas;
  {
    MutexLock lk(map_mu_);
    uvas = map_.WrittenPages(key);
  }
  constexpr std::size_t kBatch = 256;
  std::vector<char> buf(kBatch * kPageSize);
  std::unique_ptr<bool[]> present(new bool[kBatch]);
  std::vector<std::uint64_t> out_uvas;
  std::vector<char> out(kBatch * kPageSize);
  for (std::size_t i = 0; i < uvas.size(); i += kBatch) {
    const std::span<const std::uint64_t> batch(uvas.data() + i, std::min(kBatch, uvas.size() - i));
    Status read{Code::kDisconnected, "no surviving replica to copy from"};
    for (std::size_t s = 0; s < sources.nodes.size(); ++s) {
      bool gone = false;
      read = nodes_[sources.nodes[s]]->Call(
          sources.epochs[s],
          [&](Transport* t) { return t->ReadPages(key.asid, batch, buf.data(), present.get()); },
          &gone);
      if (read.ok()) {
        nodes_[sources.nodes[s]]->metrics().pages_read->Add(batch.size());
        break;
      }
      if (!gone) return read;
    }
    if (!read.ok()) return read;
    out_uvas.clear();
    for (std::size_t k = 0; k < batch.size(); ++k) {
      if (!present[k]) continue;
      std::memcpy(out.data() + out_uvas.size() * kPageSize, buf.data() + k * kPageSize, kPageSize);
      out_uvas.push_back(batch[k]);
    }
    if (out_uvas.empty()) continue;
    bool gone = false;
    REMORA_RETURN_IF_ERROR(nodes_[target]->Call(
        target_epoch, [&](Transport* t) { return t->WritePages(key.asid, out_uvas, out.data()); },
        &gone));
    nodes_[target]->metrics().pages_written->Add(out_uvas.size());
    *pages += out_uvas.size();
  }
  return Status::Ok();
}

}  // namespace remora
