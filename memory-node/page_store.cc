// PageStore implementation: address spaces (page tables, ranges) over a
// reference-counted slot pool, mirrored into the shared page index.
//
// Every operation runs under one mutex; the only work done while holding it
// that scales with data is one 4 KiB memcpy per page (and, for destroy/fork,
// one pass over the space's page table). Processors reading through the
// shared index never take the mutex.
//
// The write path is the heart of it (WriteLocked): page data always goes to a
// fresh slot, the mappings are switched in one write section of the index,
// and only then are the old slots released. That single path gives
//  * copy-on-write after fork (the old slot stays for the other sharers),
//  * torn-free one-sided reads (a visible slot is never overwritten), and
//  * "nothing changed" on out-of-memory (the capacity check precedes any
//    change).
// Overwriting a page held by one address space frees the old slot in the same
// operation, so it needs no net capacity; the pool has one spare slot so that
// such a write also works when the store is exactly full.
//
// Returning freed memory to the kernel (punching holes) is slow and is done by
// a reclaimer thread that holds the mutex only to take and give back batches
// of free slots, never while it punches (slot_pool.h).
#include <algorithm>
#include <atomic>
#include <cassert>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "memory-node/address_space.h"
#include "memory-node/memnode_stats.h"
#include "memory-node/page_store.h"
#include "memory-node/shared_page_index.h"
#include "memory-node/slot_pool.h"
#include "memory-node/space_errors.h"
#include "net/shm/shm_format.h"
#include "remora/stats.h"

namespace remora {

namespace {

using Slot = SlotPool::Slot;

// Index mutations per write section when a whole space is forked or freed:
// keeps each odd window short so concurrent readers make progress.
constexpr std::size_t kSectionBatch = 1024;

class PageStoreImpl final : public PageStore {
 public:
  PageStoreImpl(const Options& opts, StatsRegistry* stats, std::unique_ptr<SlotPool> pool,
                std::unique_ptr<SharedPageIndex> index)
      : opts_(opts), pool_(std::move(pool)), index_(std::move(index)) {
    if (!stats) {
      own_stats_ = std::make_unique<StatsRegistry>();
      stats = own_stats_.get();
    }
    m_.Register(stats);
    reclaimer_ = std::thread([this] { ReclaimLoop(); });
  }

  ~PageStoreImpl() override {
    {
      std::lock_guard<std::mutex> l(mu_);
      stopping_ = true;
    }
    reclaim_cv_.notify_one();
    reclaimer_.join();
    // The gauges may outlive the store in a shared registry.
    m_.pages_used->Sub(reported_used_);
    m_.spaces->Sub(reported_spaces_);
    m_.index_live->Sub(reported_index_);
    m_.backed_free->Sub(reported_backed_free_);
  }

  Status CreateSpace(Asid asid) override {
    std::lock_guard<std::mutex> l(mu_);
    if (spaces_.count(asid)) return SpaceExists(asid);
    spaces_.emplace(asid, std::make_unique<AddressSpace>());
    SyncGauges();
    return Status::Ok();
  }

  Status DestroySpace(Asid asid) override {
    std::lock_guard<std::mutex> l(mu_);
    auto it = spaces_.find(asid);
    if (it == spaces_.end()) return NoSuchSpace(asid);
    std::vector<std::pair<std::uint64_t, Slot>> pages(it->second->pages.begin(),
                                                      it->second->pages.end());
    spaces_.erase(it);
    UnmapAndRelease(asid, pages);
    SyncGauges();
    return Status::Ok();
  }

  Status ForkSpace(Asid parent, Asid child) override {
    std::lock_guard<std::mutex> l(mu_);
    auto pit = spaces_.find(parent);
    if (pit == spaces_.end()) return NoSuchSpace(parent);
    if (spaces_.count(child)) return SpaceExists(child);
    auto copy = std::make_unique<AddressSpace>(*pit->second);
    for (const auto& [uva, slot] : copy->pages) pool_->Ref(slot);
    // Index the child's mappings; nothing is freed, so batching is only for
    // the readers' sake.
    std::size_t n = 0;
    index_->Begin();
    for (const auto& [uva, slot] : copy->pages) {
      if (!index_->Put(child, uva, slot)) m_.index_overflow->Inc();
      if (++n % kSectionBatch == 0) {
        index_->End();
        index_->Begin();
      }
    }
    index_->End();
    spaces_.emplace(child, std::move(copy));
    m_.forks->Inc();
    SyncGauges();
    return Status::Ok();
  }

  Status RegisterRange(Asid asid, std::uint64_t start, std::uint64_t len) override {
    REMORA_RETURN_IF_ERROR(CheckRangeArgs(start, len));
    std::lock_guard<std::mutex> l(mu_);
    AddressSpace* as = FindSpace(asid);
    if (!as) return NoSuchSpace(asid);
    as->ranges.Add(start, start + len);
    return Status::Ok();
  }

  // Unregistering or discarding a range that is (partly) not registered is
  // not an error, like munmap and madvise(DONTNEED) of unmapped memory.
  Status UnregisterRange(Asid asid, std::uint64_t start, std::uint64_t len) override {
    REMORA_RETURN_IF_ERROR(CheckRangeArgs(start, len));
    std::lock_guard<std::mutex> l(mu_);
    AddressSpace* as = FindSpace(asid);
    if (!as) return NoSuchSpace(asid);
    DropPages(asid, as, start, start + len);
    as->ranges.Remove(start, start + len);
    SyncGauges();
    return Status::Ok();
  }

  Status DiscardRange(Asid asid, std::uint64_t start, std::uint64_t len) override {
    REMORA_RETURN_IF_ERROR(CheckRangeArgs(start, len));
    std::lock_guard<std::mutex> l(mu_);
    AddressSpace* as = FindSpace(asid);
    if (!as) return NoSuchSpace(asid);
    DropPages(asid, as, start, start + len);
    SyncGauges();
    return Status::Ok();
  }

  Status ReadPage(Asid asid, std::uint64_t uva, void* out, bool* present) override {
    std::lock_guard<std::mutex> l(mu_);
    AddressSpace* as = nullptr;
    REMORA_RETURN_IF_ERROR(CheckAccess(asid, uva, &as));
    auto it = as->pages.find(uva);
    if (it == as->pages.end()) {
      std::memset(out, 0, kPageSize);
      if (present) *present = false;
      m_.zero_reads->Inc();
    } else {
      std::memcpy(out, pool_->Data(it->second), kPageSize);
      if (present) *present = true;
    }
    m_.pages_read->Inc();
    return Status::Ok();
  }

  Status WritePage(Asid asid, std::uint64_t uva, const void* data) override {
    std::lock_guard<std::mutex> l(mu_);
    return WriteLocked(std::span<const Asid>(&asid, 1), uva, data);
  }

  Status WritePageShared(std::span<const Asid> asids, std::uint64_t uva,
                         const void* data) override {
    if (asids.empty()) return {Code::kBadRequest, "shared write names no address space"};
    std::vector<Asid> unique(asids.begin(), asids.end());
    std::sort(unique.begin(), unique.end());
    unique.erase(std::unique(unique.begin(), unique.end()), unique.end());
    std::lock_guard<std::mutex> l(mu_);
    Status st = WriteLocked(unique, uva, data);
    if (st.ok()) m_.shared_writes->Inc();
    return st;
  }

  MemoryNodeInfo Info() const override {
    std::lock_guard<std::mutex> l(mu_);
    MemoryNodeInfo info;
    info.capacity_pages = opts_.capacity_pages;
    info.used_pages = pool_->used();
    info.nr_spaces = spaces_.size();
    info.node_id = opts_.node_id;
    return info;
  }

  std::vector<int> ShmFds() const override { return {pool_->readonly_fd(), index_->readonly_fd()}; }

  std::string ShmLayout() const override {
    shm::Layout l{};
    l.magic = shm::kLayoutMagic;
    l.version = shm::kLayoutVersion;
    l.page_size = kPageSize;
    l.entry_size = sizeof(shm::IndexEntry);
    l.region_slots = pool_->nslots();
    l.region_bytes = pool_->file_bytes();
    l.index_header_bytes = shm::kIndexHeaderBytes;
    l.index_max_entries = index_->max_entries();
    l.index_bytes = index_->file_bytes();
    return shm::EncodeLayout(l);
  }

 private:
  AddressSpace* FindSpace(Asid asid) {
    auto it = spaces_.find(asid);
    return it == spaces_.end() ? nullptr : it->second.get();
  }

  Status CheckAccess(Asid asid, std::uint64_t uva, AddressSpace** as) {
    if (!PageAligned(uva)) return {Code::kBadRequest, "page address is not page aligned"};
    *as = FindSpace(asid);
    if (!*as) return NoSuchSpace(asid);
    if (!(*as)->ranges.Contains(uva))
      return {Code::kNotRegistered,
              "address outside every registered range of space " + std::to_string(asid)};
    return Status::Ok();
  }

  // `asids` sorted and unique. See the file comment for why every write goes
  // to a fresh slot.
  Status WriteLocked(std::span<const Asid> asids, std::uint64_t uva, const void* data) {
    std::vector<AddressSpace*> spaces(asids.size());
    std::vector<std::int64_t> old(asids.size(), -1);
    for (std::size_t i = 0; i < asids.size(); ++i) {
      REMORA_RETURN_IF_ERROR(CheckAccess(asids[i], uva, &spaces[i]));
      auto it = spaces[i]->pages.find(uva);
      if (it != spaces[i]->pages.end()) old[i] = it->second;
    }
    // Old slots referenced by nobody but the writers are freed by this write;
    // the others are copy-on-write breaks. Capacity counts the net change.
    std::int64_t freed = 0;
    bool cow_break = false;
    for (std::size_t i = 0; i < old.size(); ++i) {
      if (old[i] < 0 || std::find(old.begin(), old.begin() + i, old[i]) != old.begin() + i)
        continue;  // absent, or already counted
      const auto holders = std::count(old.begin(), old.end(), old[i]);
      if (pool_->refcount(static_cast<Slot>(old[i])) == static_cast<std::uint32_t>(holders))
        ++freed;
      else
        cow_break = true;
    }
    if (static_cast<std::int64_t>(pool_->used()) + 1 - freed >
        static_cast<std::int64_t>(opts_.capacity_pages)) {
      m_.oom->Inc();
      return {Code::kOutOfMemory,
              "memory node full (capacity " + std::to_string(opts_.capacity_pages) + " pages)"};
    }
    Slot slot;
    [[maybe_unused]] bool ok = pool_->Allocate(&slot);
    assert(ok && "capacity check leaves a slot (the pool has one spare)");
    // The slot may have been freed by an earlier write section and still be
    // under a stale reader's memcpy: order that section's seq update before
    // these bytes so such a reader's seq re-check fails.
    std::atomic_thread_fence(std::memory_order_release);
    std::memcpy(pool_->Data(slot), data, kPageSize);
    for (std::size_t i = 1; i < asids.size(); ++i) pool_->Ref(slot);

    index_->Begin();
    for (std::size_t i = 0; i < asids.size(); ++i) {
      if (!index_->Put(asids[i], uva, slot)) m_.index_overflow->Inc();
      spaces[i]->pages[uva] = slot;
    }
    index_->End();
    // Only now may old slots be freed and reused (shm_format.h rule 2).
    for (std::int64_t s : old)
      if (s >= 0) Release(static_cast<Slot>(s));
    if (cow_break) m_.cow_breaks->Inc();
    m_.pages_written->Inc();
    SyncGauges();
    return Status::Ok();
  }

  // Frees the pages of `as` in [start, end).
  void DropPages(Asid asid, AddressSpace* as, std::uint64_t start, std::uint64_t end) {
    std::vector<std::pair<std::uint64_t, Slot>> victims;
    if ((end - start) / kPageSize < as->pages.size()) {
      for (std::uint64_t uva = start; uva < end; uva += kPageSize) {
        auto it = as->pages.find(uva);
        if (it != as->pages.end()) victims.emplace_back(*it);
      }
    } else {
      for (const auto& p : as->pages)
        if (p.first >= start && p.first < end) victims.push_back(p);
    }
    for (const auto& v : victims) as->pages.erase(v.first);
    UnmapAndRelease(asid, victims);
  }

  // Removes the index entries of `pages` of `asid`, then drops their slot
  // references: one write section per batch, each batch released only after
  // its section ended.
  void UnmapAndRelease(Asid asid, const std::vector<std::pair<std::uint64_t, Slot>>& pages) {
    for (std::size_t b = 0; b < pages.size(); b += kSectionBatch) {
      const std::size_t e = std::min(pages.size(), b + kSectionBatch);
      index_->Begin();
      for (std::size_t i = b; i < e; ++i) index_->Erase(asid, pages[i].first);
      index_->End();
      for (std::size_t i = b; i < e; ++i) Release(pages[i].second);
    }
  }

  void Release(Slot s) {
    assert(!index_->in_section());
    if (pool_->Unref(s)) m_.pages_freed->Inc();
  }

  // Punches batches of cold free slots while the pool is above its high
  // watermark, without holding the mutex during the system calls.
  void ReclaimLoop() {
    std::unique_lock<std::mutex> l(mu_);
    for (;;) {
      reclaim_cv_.wait(l, [this] { return stopping_ || pool_->NeedsPunch(); });
      if (stopping_) return;
      for (auto batch = pool_->TakePunchBatch(); !batch.empty(); batch = pool_->TakePunchBatch()) {
        l.unlock();
        pool_->PunchSlots(batch);
        l.lock();
        pool_->FinishPunch(batch);
        SyncGauges();
        if (stopping_) return;
      }
    }
  }

  // Gauges are shared by every store of a registry: move them by deltas.
  // Runs at the end of every mutation, so it also checks the invariants that
  // are cheap to check.
  void SyncGauges() {
    assert(pool_->used() <= opts_.capacity_pages && "capacity is a hard limit");
    assert(!index_->in_section());
    if (pool_->NeedsPunch()) reclaim_cv_.notify_one();
    auto sync = [](Gauge* g, std::int64_t now, std::int64_t* reported) {
      if (now != *reported) g->Add(now - *reported);
      *reported = now;
    };
    sync(m_.pages_used, static_cast<std::int64_t>(pool_->used()), &reported_used_);
    sync(m_.spaces, static_cast<std::int64_t>(spaces_.size()), &reported_spaces_);
    sync(m_.index_live, static_cast<std::int64_t>(index_->live()), &reported_index_);
    sync(m_.backed_free, static_cast<std::int64_t>(pool_->backed_free()), &reported_backed_free_);
    if (pool_->punched_total() != reported_punched_) {
      m_.punched->Add(pool_->punched_total() - reported_punched_);
      reported_punched_ = pool_->punched_total();
    }
    if (index_->rebuilds() != reported_rebuilds_) {
      m_.index_rebuilds->Add(index_->rebuilds() - reported_rebuilds_);
      reported_rebuilds_ = index_->rebuilds();
    }
  }

  const Options opts_;
  std::unique_ptr<StatsRegistry> own_stats_;
  PageStoreMetrics m_;
  mutable std::mutex mu_;
  std::unique_ptr<SlotPool> pool_;
  std::unique_ptr<SharedPageIndex> index_;
  std::unordered_map<Asid, std::unique_ptr<AddressSpace>> spaces_;
  std::condition_variable reclaim_cv_;
  bool stopping_ = false;
  std::thread reclaimer_;  // started in the constructor body, joined first
  std::int64_t reported_used_ = 0, reported_spaces_ = 0, reported_index_ = 0,
               reported_backed_free_ = 0;
  std::uint64_t reported_punched_ = 0, reported_rebuilds_ = 0;
};

std::uint64_t NextPow2(std::uint64_t n) {
  std::uint64_t p = 1;
  while (p < n) p <<= 1;
  return p;
}

}  // namespace

std::unique_ptr<PageStore> PageStore::Create(const Options& opts, StatsRegistry* stats,
                                             Status* status) {
  if (opts.capacity_pages == 0 ||
      opts.capacity_pages >= SlotPool::kMaxSlots - 1 - SlotPool::kPunchBatch) {
    *status = {Code::kInvalidArgument, "memory node capacity must be 1 page .. 16 TiB"};
    return nullptr;
  }
  // One spare slot beyond capacity (an overwrite allocates before it frees),
  // and room for a batch of free slots in flight to the reclaimer.
  SlotPool::Options po;
  po.nslots = opts.capacity_pages + 1 + SlotPool::kPunchBatch;
  auto pool = SlotPool::Create(po, status);
  if (!pool) return nullptr;
  // The table starts at 2x capacity (at most 64 Ki entries, 1.5 MiB) and may
  // grow to 8x capacity: mappings outnumber slots once forks share them.
  const std::uint64_t initial = std::min<std::uint64_t>(NextPow2(2 * po.nslots), 1 << 16);
  const std::uint64_t max = std::max<std::uint64_t>(NextPow2(8 * po.nslots), 1024);
  auto index = SharedPageIndex::Create(initial, max, status);
  if (!index) return nullptr;
  *status = Status::Ok();
  return std::make_unique<PageStoreImpl>(opts, stats, std::move(pool), std::move(index));
}

}  // namespace remora
