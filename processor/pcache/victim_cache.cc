#include "processor/pcache/victim_cache.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cassert>
#include <cstring>
#include <limits>

#include "common/thread_name.h"

namespace remora {

Status VictimCache::Create(const VictimCacheOptions& options, std::unique_ptr<VictimCache>* out) {
  if (options.entries < 1) {
    return {Code::kInvalidArgument, "victim cache needs at least one entry"};
  }
  if (options.sink == nullptr) {
    return {Code::kInvalidArgument, "victim cache needs a write-back sink for dirty pages"};
  }
  std::unique_ptr<VictimCache> cache(new VictimCache(options));
  cache->flusher_ = std::thread([c = cache.get()] {
    NameThisThread("remora-victim");
    c->FlushLoop();
  });
  *out = std::move(cache);
  return Status::Ok();
}

VictimCache::VictimCache(const VictimCacheOptions& options)
    : options_(options),
      own_stats_(options.stats ? nullptr : std::make_unique<StatsRegistry>()),
      counters_(options.stats ? options.stats : own_stats_.get()),
      buffer_(new std::byte[std::size_t{options.entries} * kPageSize]),
      entries_(options.entries),
      // A batch never needs more than half the entries, so inserts find
      // room while one is being written.
      batch_target_(
          std::max<std::size_t>(1, std::min<std::size_t>(kFlushBatch, options.entries / 2))) {
  free_.reserve(options.entries);
  // Hand out low indexes first: easier to read in Entries() dumps.
  for (std::uint32_t i = options.entries; i-- > 0;) free_.push_back(i);
}

VictimCache::~VictimCache() {
  {
    MutexLock lk(mu_);
    stop_ = true;
  }
  flush_cv_.notify_all();
  if (flusher_.joinable()) flusher_.join();
  if (abandoned_ > 0) {
    spdlog::error("victim cache: {} dirty page(s) could not be written back at shutdown: {}",
                  abandoned_, last_failure_.ToString());
  }
  // Leave the gauge as if every entry had been freed.
  counters_.entries_used->Sub(static_cast<std::int64_t>(entries_.size() - free_.size()));
}

Status VictimCache::Insert(std::span<const Rmap> owners, bool dirty, const void* data) {
  return Insert(owners, dirty, [data](void* dst) {
    std::memcpy(dst, data, kPageSize);
    return Status::Ok();
  });
}

Status VictimCache::Insert(std::span<const Rmap> owners, bool dirty, const CopyFn& copy) {
  assert(!owners.empty());
  MutexLock lk(mu_);
  const std::uint64_t failures_at_start = failures_;
  bool waited = false;
  std::uint32_t index;
  while (!ReserveLocked(&index)) {
    // Full of dirty data. Waiting is safe while write-backs succeed; once one
    // fails, hand the error to the caller, which keeps its line.
    if (failures_ != failures_at_start) {
      if (waited) --flush_urgent_;
      counters_.insert_failed->Inc();
      return {last_failure_.code(), "victim cache full of dirty pages and write-back failing: " +
                                        last_failure_.message()};
    }
    if (!waited) {
      counters_.insert_wait->Inc();
      waited = true;
      ++flush_urgent_;
    }
    flush_cv_.notify_one();
    changed_.wait(mu_);
  }
  if (waited) --flush_urgent_;
  // The reserved entry is invisible to lookups and to the flush thread, so
  // its data can be written without the lock.
  lk.unlock();
  Status st = copy(Data(index));
  lk.lock();
  if (!st.ok()) {
    FreeLocked(index);
    return st;
  }
  const bool was_empty = dirty_queue_.empty();
  PublishLocked(index, owners, dirty);
  if (dirty) {
    // Wake the flush thread to start gathering a batch, and once it is full.
    if (was_empty) gather_until_ = std::chrono::steady_clock::now() + options_.flush_delay;
    if (was_empty || dirty_queue_.size() >= batch_target_) flush_cv_.notify_one();
  }
  return Status::Ok();
}

bool VictimCache::ReserveLocked(std::uint32_t* index) {
  if (!free_.empty()) {
    *index = free_.back();
    free_.pop_back();
    counters_.entries_used->Add(1);
  } else if (!flushed_queue_.empty()) {
    // FIFO over flushed entries: the oldest clean copy goes.
    *index = flushed_queue_.begin()->second;
    flushed_queue_.erase(flushed_queue_.begin());
    Entry& e = entries_[*index];
    for (const Rmap& owner : e.owners) index_.erase(owner);
    e.owners.clear();
    counters_.eviction_succeed->Inc();
  } else {
    return false;
  }
  entries_[*index].state = VictimState::kReserved;
  return true;
}

void VictimCache::PublishLocked(std::uint32_t index, std::span<const Rmap> owners, bool dirty) {
  Entry& e = entries_[index];
  assert(e.state == VictimState::kReserved);
  for (const Rmap& owner : owners) {
    // The pcache and the victim cache are exclusive, so an owner found in an
    // older entry means that entry's data is stale: the new data wins.
    auto it = index_.find(owner);
    if (it != index_.end()) RemoveOwnerLocked(it->second, owner);
    index_[owner] = index;
  }
  e.owners.assign(owners.begin(), owners.end());
  e.seq = next_seq_++;
  e.redirty = false;
  if (dirty) {
    e.state = VictimState::kHasData;
    dirty_queue_.emplace(e.seq, index);
  } else {
    e.state = VictimState::kFlushed;
    flushed_queue_.emplace(e.seq, index);
  }
  counters_.insert->Inc();
}

bool VictimCache::Take(const PageKey& key, void* dst, bool* dirty) {
  MutexLock lk(mu_);
  auto it = index_.find(key);
  if (it == index_.end()) {
    counters_.miss->Inc();
    return false;
  }
  const std::uint32_t index = it->second;
  const Entry& e = entries_[index];
  std::memcpy(dst, Data(index), kPageSize);
  // A write in flight may still fail: only a flushed copy is known to match
  // the memory node.
  *dirty = e.state != VictimState::kFlushed;
  RemoveOwnerLocked(index, key);
  counters_.hit->Inc();
  return true;
}

bool VictimCache::Contains(const PageKey& key) const {
  MutexLock lk(mu_);
  return index_.count(key) != 0;
}

void VictimCache::RemoveOwnerLocked(std::uint32_t index, const Rmap& owner) {
  Entry& e = entries_[index];
  auto it = std::find(e.owners.begin(), e.owners.end(), owner);
  assert(it != e.owners.end());
  e.owners.erase(it);
  index_.erase(owner);
  ReleaseIfOrphanLocked(index);
}

// An entry nobody owns any more holds nothing worth writing: the page is back
// in the pcache or its address space is gone. An entry being written is freed
// by the flush thread when the write returns.
void VictimCache::ReleaseIfOrphanLocked(std::uint32_t index) {
  const Entry& e = entries_[index];
  if (e.owners.empty() && e.state != VictimState::kWriteback && e.state != VictimState::kReserved) {
    FreeLocked(index);
  }
}

void VictimCache::Unqueue(Entry& e, std::uint32_t index) {
  if (e.state == VictimState::kHasData) dirty_queue_.erase({e.seq, index});
  if (e.state == VictimState::kFlushed) flushed_queue_.erase({e.seq, index});
}

void VictimCache::FreeLocked(std::uint32_t index) {
  Entry& e = entries_[index];
  assert(e.state != VictimState::kFree);
  Unqueue(e, index);
  for (const Rmap& owner : e.owners) {
    auto it = index_.find(owner);
    if (it != index_.end() && it->second == index) index_.erase(it);
  }
  e.owners.clear();
  e.redirty = false;
  e.state = VictimState::kFree;
  free_.push_back(index);
  counters_.entries_used->Sub(1);
  changed_.notify_all();
}

void VictimCache::ShareSpace(Asid parent, Asid child, bool redirty_flushed) {
  MutexLock lk(mu_);
  bool queued = false;
  for (std::uint32_t i = 0; i < entries_.size(); ++i) {
    Entry& e = entries_[i];
    if (e.state == VictimState::kFree || e.state == VictimState::kReserved) continue;
    const std::size_t n = e.owners.size();
    for (std::size_t j = 0; j < n; ++j) {
      if (e.owners[j].asid != parent) continue;
      const Rmap added{child, e.owners[j].uva};
      if (index_.count(added)) continue;
      e.owners.push_back(added);
      index_[added] = i;
      // The write in flight names only the old owners.
      if (e.state == VictimState::kWriteback) e.redirty = true;
      if (e.state == VictimState::kFlushed && redirty_flushed) {
        flushed_queue_.erase({e.seq, i});
        e.state = VictimState::kHasData;
        dirty_queue_.emplace(e.seq, i);
        queued = true;
      }
    }
  }
  if (queued) {
    gather_until_ = std::chrono::steady_clock::now();  // no reason to wait
    flush_cv_.notify_one();
  }
}

std::size_t VictimCache::DropSpace(Asid asid) {
  // Every page of the space: the whole address range.
  return DropRange(asid, 0, std::numeric_limits<std::uint64_t>::max());
}

std::size_t VictimCache::DropRange(Asid asid, std::uint64_t start, std::uint64_t end) {
  MutexLock lk(mu_);
  std::vector<std::pair<std::uint32_t, Rmap>> victims;
  for (;;) {
    // As in Drop: writes in flight for the range finish before it goes.
    victims.clear();
    bool in_flight = false;
    for (const auto& [owner, index] : index_) {
      if (owner.asid != asid || owner.uva < start || owner.uva >= end) continue;
      victims.emplace_back(index, owner);
      in_flight = in_flight || entries_[index].state == VictimState::kWriteback;
    }
    if (!in_flight) break;
    changed_.wait(mu_);
  }
  for (const auto& [index, owner] : victims) RemoveOwnerLocked(index, owner);
  return victims.size();
}

bool VictimCache::Drop(const PageKey& key) {
  MutexLock lk(mu_);
  for (;;) {
    auto it = index_.find(key);
    if (it == index_.end()) return false;
    // A write of this page in flight could land after the caller frees
    // the range on the memory node, and fail there (taking the rest of
    // its batch with it); let it finish first.
    if (entries_[it->second].state == VictimState::kWriteback) {
      changed_.wait(mu_);
      continue;
    }
    RemoveOwnerLocked(it->second, key);
    return true;
  }
}

Status VictimCache::Flush() {
  MutexLock lk(mu_);
  const std::uint64_t failures_at_start = failures_;
  retry_at_ = {};  // a caller asking to flush does not wait out the back-off
  ++flush_urgent_;
  flush_cv_.notify_one();
  changed_.wait(mu_, [&]() REQUIRES(mu_) {
    return (dirty_queue_.empty() && in_writeback_ == 0) || failures_ != failures_at_start;
  });
  --flush_urgent_;
  if (failures_ != failures_at_start) {
    return {last_failure_.code(), "victim flush failed: " + last_failure_.message()};
  }
  return Status::Ok();
}

std::size_t VictimCache::used() const {
  MutexLock lk(mu_);
  return entries_.size() - free_.size();
}

std::size_t VictimCache::dirty() const {
  MutexLock lk(mu_);
  return dirty_queue_.size() + in_writeback_;
}

std::vector<VictimEntryInfo> VictimCache::Entries() const {
  MutexLock lk(mu_);
  std::vector<VictimEntryInfo> out;
  for (const Entry& e : entries_) {
    if (e.state == VictimState::kFree) continue;
    out.push_back({e.state, e.state == VictimState::kHasData || e.state == VictimState::kWriteback,
                   e.owners});
  }
  return out;
}

}  // namespace remora
