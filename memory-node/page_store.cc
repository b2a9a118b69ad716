// PageStore implementation: address spaces (page tables, ranges) over a
// reference-counted slot pool, mirrored into the shared page index.
//
// Every operation runs under one mutex. Most hold it for work of fixed size
// (one 4 KiB memcpy per page). The long ones — fork, destroy, discard and
// unregister, whose work grows with a page table — hold it for one chunk of
// kSectionBatch entries at a time and let waiting callers in between chunks
// (Relax). The spaces such an operation works on are busy meanwhile: any other
// operation naming one waits until it is done, so no caller sees half a fork
// or half a destroy, and a destroyed space's id is reusable only once its last
// index entry is gone. A caller that must never wait (the memory node's event
// loop) keeps requests on busy spaces away from the store
// (server.h, "Long operations"). Processors reading through the shared index
// never take the mutex.
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
#include <initializer_list>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "memory-node/address_space.h"
#include "memory-node/memnode_stats.h"
#include "memory-node/page_store.h"
#include "memory-node/shared_page_index.h"
#include "memory-node/slot_pool.h"
#include "memory-node/space_errors.h"
#include "net/shm/shm_format.h"
#include "remora/protocol.h"
#include "remora/stats.h"

namespace remora {

namespace {

using Slot = SlotPool::Slot;

// Index mutations per write section when a whole space is forked or freed:
// keeps each odd window short so concurrent readers make progress.
constexpr std::size_t kSectionBatch = 1024;

// The pages of one processor node: its own page region and shared index, so
// that a shared-memory client of that node can be given exactly these files
// and nothing of another node's memory. Slots never cross views: a fork and
// a shared write name address spaces of one node only.
struct NodeView {
  std::unique_ptr<SlotPool> pool;
  std::unique_ptr<SharedPageIndex> index;
  std::uint64_t spaces = 0;  // address spaces of this node
  std::uint64_t pins = 0;    // shared-memory attachments (AttachShm)
};

class PageStoreImpl final : public PageStore {
 public:
  PageStoreImpl(const Options& opts, StatsRegistry* stats) : opts_(opts) {
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
    m_.meta_pages->Sub(reported_meta_);
  }

  Status CreateSpace(Asid asid) override {
    auto l = Lock();
    WaitIdle(l, asid);
    if (spaces_.count(asid)) return SpaceExists(asid);
    REMORA_RETURN_IF_ERROR(ChargeMeta(kSpaceBytes));
    NodeView* v = nullptr;
    REMORA_RETURN_IF_ERROR(GetView(AsidNode(asid), &v));
    spaces_.emplace(asid, std::make_unique<AddressSpace>());
    meta_bytes_ += kSpaceBytes;
    ++v->spaces;
    SyncGauges();
    return Status::Ok();
  }

  Status DestroySpace(Asid asid) override {
    auto l = Lock();
    WaitIdle(l, asid);
    auto it = spaces_.find(asid);
    if (it == spaces_.end()) return NoSuchSpace(asid);
    DestroyLocked(l, it);
    SyncGauges();
    return Status::Ok();
  }

  std::uint64_t DestroyNodeSpaces(NodeId node) override {
    auto l = Lock();
    std::vector<Asid> victims;
    for (const auto& [asid, as] : spaces_)
      if (AsidNode(asid) == node) victims.push_back(asid);
    std::uint64_t n = 0;
    for (Asid asid : victims) {
      WaitIdle(l, asid);  // it may have gone meanwhile
      auto it = spaces_.find(asid);
      if (it == spaces_.end()) continue;
      DestroyLocked(l, it);
      ++n;
    }
    SyncGauges();
    return n;
  }

  std::uint64_t NodeSpaces(NodeId node) const override {
    auto l = Lock();
    auto it = views_.find(node);
    return it == views_.end() ? 0 : it->second->spaces;
  }

  Status ForkSpace(Asid parent, Asid child) override {
    if (AsidNode(parent) != AsidNode(child))
      return {Code::kPermissionDenied, "a fork's child must belong to its parent's node"};
    auto l = Lock();
    WaitIdle(l, parent);
    WaitIdle(l, child);
    auto pit = spaces_.find(parent);
    if (pit == spaces_.end()) return NoSuchSpace(parent);
    if (spaces_.count(child)) return SpaceExists(child);
    const std::uint64_t cost = kSpaceBytes + SpaceMetaBytes(*pit->second);
    REMORA_RETURN_IF_ERROR(ChargeMeta(cost));
    // The child's whole bookkeeping is charged before its first entry exists,
    // so nothing admitted between chunks can take the room it needs.
    meta_bytes_ += cost;
    busy_.insert(parent);
    busy_.insert(child);
    // The parent is busy: its table does not change (so `it` stays valid)
    // and it keeps the view alive.
    const AddressSpace& src = *pit->second;
    NodeView* v = ViewOf(parent);
    auto copy = std::make_unique<AddressSpace>();
    copy->ranges = src.ranges;
    copy->pages.reserve(src.pages.size());
    // One chunk per write section: reference the parent's slots, index the
    // child's mappings. Nothing is freed, so a reader never misses a page.
    for (auto it = src.pages.begin(); it != src.pages.end();) {
      v->index->Begin();
      for (std::size_t n = 0; n < kSectionBatch && it != src.pages.end(); ++n, ++it) {
        copy->pages.emplace(it->first, it->second);
        v->pool->Ref(it->second);
        if (!v->index->Put(child, it->first, it->second)) m_.index_overflow->Inc();
      }
      v->index->End();
      if (it != src.pages.end()) Relax(l);
    }
    spaces_.emplace(child, std::move(copy));
    ++v->spaces;
    m_.forks->Inc();
    SetIdle({parent, child});
    SyncGauges();
    return Status::Ok();
  }

  Status RegisterRange(Asid asid, std::uint64_t start, std::uint64_t len) override {
    REMORA_RETURN_IF_ERROR(CheckRangeArgs(start, len));
    auto l = Lock();
    WaitIdle(l, asid);
    AddressSpace* as = FindSpace(asid);
    if (!as) return NoSuchSpace(asid);
    // Charged as if the range added an interval (it may merge instead).
    REMORA_RETURN_IF_ERROR(ChargeMeta(kRangeBytes));
    const std::uint64_t before = SpaceMetaBytes(*as);
    as->ranges.Add(start, start + len);
    meta_bytes_ += SpaceMetaBytes(*as) - before;
    SyncGauges();
    return Status::Ok();
  }

  // Unregistering or discarding a range that is (partly) not registered is
  // not an error, like munmap and madvise(DONTNEED) of unmapped memory.
  Status UnregisterRange(Asid asid, std::uint64_t start, std::uint64_t len) override {
    REMORA_RETURN_IF_ERROR(CheckRangeArgs(start, len));
    auto l = Lock();
    WaitIdle(l, asid);
    AddressSpace* as = FindSpace(asid);
    if (!as) return NoSuchSpace(asid);
    DropPages(l, asid, as, start, start + len);
    const std::uint64_t before = SpaceMetaBytes(*as);
    as->ranges.Remove(start, start + len);
    // Removing the middle of a range splits it: that interval is charged
    // too, even past capacity (a release must never fail for lack of room).
    meta_bytes_ = meta_bytes_ - before + SpaceMetaBytes(*as);
    SyncGauges();
    return Status::Ok();
  }

  Status DiscardRange(Asid asid, std::uint64_t start, std::uint64_t len) override {
    REMORA_RETURN_IF_ERROR(CheckRangeArgs(start, len));
    auto l = Lock();
    WaitIdle(l, asid);
    AddressSpace* as = FindSpace(asid);
    if (!as) return NoSuchSpace(asid);
    DropPages(l, asid, as, start, start + len);
    SyncGauges();
    return Status::Ok();
  }

  Status ReadPage(Asid asid, std::uint64_t uva, void* out, bool* present) override {
    auto l = Lock();
    WaitIdle(l, asid);
    AddressSpace* as = nullptr;
    REMORA_RETURN_IF_ERROR(CheckAccess(asid, uva, &as));
    auto it = as->pages.find(uva);
    if (it == as->pages.end()) {
      std::memset(out, 0, kPageSize);
      if (present) *present = false;
      m_.zero_reads->Inc();
    } else {
      std::memcpy(out, ViewOf(asid)->pool->Data(it->second), kPageSize);
      if (present) *present = true;
    }
    m_.pages_read->Inc();
    return Status::Ok();
  }

  Status WritePage(Asid asid, std::uint64_t uva, const void* data) override {
    auto l = Lock();
    WaitIdle(l, asid);
    return WriteLocked(std::span<const Asid>(&asid, 1), uva, data);
  }

  Status WritePageShared(std::span<const Asid> asids, std::uint64_t uva,
                         const void* data) override {
    if (asids.empty()) return {Code::kBadRequest, "shared write names no address space"};
    std::vector<Asid> unique(asids.begin(), asids.end());
    std::sort(unique.begin(), unique.end());
    unique.erase(std::unique(unique.begin(), unique.end()), unique.end());
    for (Asid a : unique)
      if (AsidNode(a) != AsidNode(unique[0]))
        return {Code::kPermissionDenied, "a shared write spans address spaces of several nodes"};
    auto l = Lock();
    idle_cv_.wait(l, [&] {
      return std::none_of(unique.begin(), unique.end(), [&](Asid a) { return busy_.count(a); });
    });
    Status st = WriteLocked(unique, uva, data);
    if (st.ok()) m_.shared_writes->Inc();
    return st;
  }

  MemoryNodeInfo Info() const override {
    auto l = Lock();
    MemoryNodeInfo info;
    info.capacity_pages = opts_.capacity_pages;
    info.used_pages = UsedPages();
    info.nr_spaces = spaces_.size();
    info.node_id = opts_.node_id;
    return info;
  }

  Status AttachShm(NodeId node, std::vector<int>* fds, std::string* layout) override {
    auto l = Lock();
    NodeView* v = nullptr;
    REMORA_RETURN_IF_ERROR(GetView(node, &v));
    Status st = v->pool->SealForSharing();
    if (st.ok() && (v->pool->readonly_fd() < 0 || v->index->readonly_fd() < 0))
      st = {Code::kUnsupported, "this memory node offers no shared memory"};
    if (!st.ok()) {
      MaybeDropView(node);
      return st;
    }
    ++v->pins;
    *fds = {v->pool->readonly_fd(), v->index->readonly_fd()};
    shm::Layout sl{};
    sl.magic = shm::kLayoutMagic;
    sl.version = shm::kLayoutVersion;
    sl.page_size = kPageSize;
    sl.entry_size = sizeof(shm::IndexEntry);
    sl.region_slots = v->pool->nslots();
    sl.region_bytes = v->pool->file_bytes();
    sl.index_header_bytes = shm::kIndexHeaderBytes;
    sl.index_max_entries = v->index->max_entries();
    sl.index_bytes = v->index->file_bytes();
    *layout = shm::EncodeLayout(sl);
    return Status::Ok();
  }

  void DetachShm(NodeId node) override {
    auto l = Lock();
    auto it = views_.find(node);
    if (it == views_.end() || it->second->pins == 0) return;
    --it->second->pins;
    MaybeDropView(node);
    SyncGauges();
  }

 private:
  // What the node's own bookkeeping costs, charged to capacity beside the
  // pages (floor(meta_bytes_ / kPageSize) pages): an address space, one
  // page-table entry (a hash node and its bucket), one registered interval.
  static constexpr std::uint64_t kSpaceBytes = 256;
  static constexpr std::uint64_t kPteBytes = wire::kNodeMetaBytesPerPage;
  static constexpr std::uint64_t kRangeBytes = 64;
  // Processor nodes with pages here at once; each has its own files.
  static constexpr std::size_t kMaxViews = 1024;

  // Takes the mutex as a caller that a long operation lets in between its
  // chunks (Relax).
  std::unique_lock<std::mutex> Lock() const {
    contenders_.fetch_add(1, std::memory_order_relaxed);
    std::unique_lock<std::mutex> l(mu_);
    contenders_.fetch_sub(1, std::memory_order_relaxed);
    return l;
  }
  // Between two chunks of a long operation: lets every caller waiting for
  // the mutex have it first. A plain unlock-lock would mostly take it back
  // at once (a mutex is not fair), and the waiters would wait for the whole
  // operation after all.
  void Relax(std::unique_lock<std::mutex>& l) {
    l.unlock();
    while (contenders_.load(std::memory_order_relaxed) > 0) std::this_thread::yield();
    l.lock();
  }
  // Waits (the mutex released meanwhile) until no long operation works on
  // `asid`.
  void WaitIdle(std::unique_lock<std::mutex>& l, Asid asid) {
    idle_cv_.wait(l, [&] { return busy_.count(asid) == 0; });
  }
  void SetIdle(std::initializer_list<Asid> asids) {
    for (Asid a : asids) busy_.erase(a);
    idle_cv_.notify_all();
  }

  static std::uint64_t SpaceMetaBytes(const AddressSpace& as) {
    return as.pages.size() * kPteBytes + as.ranges.count() * kRangeBytes;
  }

  std::uint64_t UsedPages() const {
    std::uint64_t used = 0;
    for (const auto& [node, v] : views_) used += v->pool->used();
    return used;
  }
  std::uint64_t MetaPages() const { return meta_bytes_ / kPageSize; }

  // kOutOfMemory unless `extra_bytes` more bookkeeping fits beside the pages.
  Status ChargeMeta(std::uint64_t extra_bytes) {
    if (UsedPages() + (meta_bytes_ + extra_bytes) / kPageSize <= opts_.capacity_pages)
      return Status::Ok();
    m_.oom->Inc();
    return {Code::kOutOfMemory, "memory node full (capacity " +
                                    std::to_string(opts_.capacity_pages) +
                                    " pages, including address-space bookkeeping)"};
  }

  // The view of `node`, created on first use.
  Status GetView(NodeId node, NodeView** out) {
    auto it = views_.find(node);
    if (it != views_.end()) {
      *out = it->second.get();
      return Status::Ok();
    }
    if (views_.size() >= kMaxViews)
      return {Code::kOutOfMemory, "memory node serves too many processor nodes"};
    auto v = std::make_shared<NodeView>();
    Status st;
    // One spare slot beyond capacity (an overwrite allocates before it
    // frees), and room for a batch of free slots in flight to the reclaimer.
    SlotPool::Options po;
    po.nslots = opts_.capacity_pages + 1 + SlotPool::kPunchBatch;
    v->pool = SlotPool::Create(po, &st);
    if (!v->pool) return st;
    // The table starts at 2x capacity (at most 64 Ki entries, 1.5 MiB) and
    // may grow to 8x capacity: mappings outnumber slots once forks share them.
    const std::uint64_t initial = std::min<std::uint64_t>(NextPow2(2 * po.nslots), 1 << 16);
    const std::uint64_t max = std::max<std::uint64_t>(NextPow2(8 * po.nslots), 1024);
    v->index = SharedPageIndex::Create(initial, max, &st);
    if (!v->index) return st;
    *out = v.get();
    views_.emplace(node, std::move(v));
    return Status::Ok();
  }

  NodeView* ViewOf(Asid asid) {
    auto it = views_.find(AsidNode(asid));
    assert(it != views_.end() && "a live space has a view");
    return it->second.get();
  }

  // A view with no spaces and no attached client holds nothing anyone can
  // reach: dropping it gives all of its memory back, sealed or not.
  void MaybeDropView(NodeId node) {
    auto it = views_.find(node);
    if (it == views_.end() || it->second->spaces || it->second->pins) return;
    dropped_punched_ += it->second->pool->punched_total();
    dropped_rebuilds_ += it->second->index->rebuilds();
    views_.erase(it);  // the reclaimer may still hold it while punching
  }

  // Unmaps and frees the space's pages a chunk at a time, the space busy
  // meanwhile (out of spaces_, its id not yet reusable). Its bookkeeping
  // stays charged until the entries it pays for are gone.
  void DestroyLocked(std::unique_lock<std::mutex>& l,
                     std::unordered_map<Asid, std::unique_ptr<AddressSpace>>::iterator it) {
    const Asid asid = it->first;
    std::unique_ptr<AddressSpace> as = std::move(it->second);
    spaces_.erase(it);
    busy_.insert(asid);
    NodeView* v = ViewOf(asid);  // v->spaces still counts this space
    std::vector<std::pair<std::uint64_t, Slot>> batch;
    for (auto pit = as->pages.begin(); pit != as->pages.end();) {
      batch.clear();
      // Erased as they go, so that no single step frees the whole table.
      while (batch.size() < kSectionBatch && pit != as->pages.end()) {
        batch.push_back(*pit);
        pit = as->pages.erase(pit);
      }
      UnmapAndRelease(v, asid, batch);
      meta_bytes_ -= batch.size() * kPteBytes;
      if (pit != as->pages.end()) Relax(l);
    }
    meta_bytes_ -= kSpaceBytes + as->ranges.count() * kRangeBytes;
    --v->spaces;
    MaybeDropView(AsidNode(asid));
    SetIdle({asid});
  }

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

  // `asids` sorted, unique and of one node. See the file comment for why
  // every write goes to a fresh slot.
  Status WriteLocked(std::span<const Asid> asids, std::uint64_t uva, const void* data) {
    std::vector<AddressSpace*> spaces(asids.size());
    std::vector<std::int64_t> old(asids.size(), -1);
    std::uint64_t new_ptes = 0;
    for (std::size_t i = 0; i < asids.size(); ++i) {
      REMORA_RETURN_IF_ERROR(CheckAccess(asids[i], uva, &spaces[i]));
      auto it = spaces[i]->pages.find(uva);
      if (it != spaces[i]->pages.end())
        old[i] = it->second;
      else
        ++new_ptes;
    }
    NodeView* v = ViewOf(asids[0]);
    SlotPool* pool = v->pool.get();
    // Old slots referenced by nobody but the writers are freed by this write;
    // the others are copy-on-write breaks. Capacity counts the net change.
    std::int64_t freed = 0;
    bool cow_break = false;
    for (std::size_t i = 0; i < old.size(); ++i) {
      if (old[i] < 0 || std::find(old.begin(), old.begin() + i, old[i]) != old.begin() + i)
        continue;  // absent, or already counted
      const auto holders = std::count(old.begin(), old.end(), old[i]);
      if (pool->refcount(static_cast<Slot>(old[i])) == static_cast<std::uint32_t>(holders))
        ++freed;
      else
        cow_break = true;
    }
    const std::uint64_t meta_after = meta_bytes_ + new_ptes * kPteBytes;
    if (static_cast<std::int64_t>(UsedPages() + meta_after / kPageSize) + 1 - freed >
        static_cast<std::int64_t>(opts_.capacity_pages)) {
      m_.oom->Inc();
      return {Code::kOutOfMemory,
              "memory node full (capacity " + std::to_string(opts_.capacity_pages) + " pages)"};
    }
    Slot slot;
    [[maybe_unused]] bool ok = pool->Allocate(&slot);
    assert(ok && "capacity check leaves a slot (the pool has one spare)");
    // The slot may have been freed by an earlier write section and still be
    // under a stale reader's memcpy: order that section's seq update before
    // these bytes so such a reader's seq re-check fails.
    std::atomic_thread_fence(std::memory_order_release);
    std::memcpy(pool->Data(slot), data, kPageSize);
    for (std::size_t i = 1; i < asids.size(); ++i) pool->Ref(slot);

    v->index->Begin();
    for (std::size_t i = 0; i < asids.size(); ++i) {
      if (!v->index->Put(asids[i], uva, slot)) m_.index_overflow->Inc();
      spaces[i]->pages[uva] = slot;
    }
    v->index->End();
    meta_bytes_ = meta_after;
    // Only now may old slots be freed and reused (shm_format.h rule 2).
    for (std::int64_t s : old)
      if (s >= 0) Release(v, static_cast<Slot>(s));
    if (cow_break) m_.cow_breaks->Inc();
    m_.pages_written->Inc();
    SyncGauges();
    return Status::Ok();
  }

  // Frees the pages of `as` in [start, end), with their page-table charge:
  // looks at kSectionBatch candidates (addresses of the range, or entries of
  // the table, whichever are fewer) per chunk, the space busy meanwhile.
  void DropPages(std::unique_lock<std::mutex>& l, Asid asid, AddressSpace* as, std::uint64_t start,
                 std::uint64_t end) {
    busy_.insert(asid);
    NodeView* v = ViewOf(asid);
    std::vector<std::pair<std::uint64_t, Slot>> victims;
    auto drop = [&] {
      for (const auto& victim : victims) as->pages.erase(victim.first);
      UnmapAndRelease(v, asid, victims);
      meta_bytes_ -= victims.size() * kPteBytes;
      victims.clear();
    };
    std::size_t looked = 0;
    if ((end - start) / kPageSize < as->pages.size()) {
      for (std::uint64_t uva = start; uva < end; uva += kPageSize) {
        auto it = as->pages.find(uva);
        if (it != as->pages.end()) victims.emplace_back(*it);
        if (++looked % kSectionBatch == 0 && uva + kPageSize < end) {
          drop();
          Relax(l);
        }
      }
    } else {
      // Erasing entries already passed keeps `it` valid.
      for (auto it = as->pages.begin(); it != as->pages.end();) {
        if (it->first >= start && it->first < end) victims.push_back(*it);
        ++it;
        if (++looked % kSectionBatch == 0 && it != as->pages.end()) {
          drop();
          Relax(l);
        }
      }
    }
    drop();
    SetIdle({asid});
  }

  // Removes the index entries of `pages` of `asid`, then drops their slot
  // references: one write section per batch, each batch released only after
  // its section ended.
  void UnmapAndRelease(NodeView* v, Asid asid,
                       const std::vector<std::pair<std::uint64_t, Slot>>& pages) {
    for (std::size_t b = 0; b < pages.size(); b += kSectionBatch) {
      const std::size_t e = std::min(pages.size(), b + kSectionBatch);
      v->index->Begin();
      for (std::size_t i = b; i < e; ++i) v->index->Erase(asid, pages[i].first);
      v->index->End();
      for (std::size_t i = b; i < e; ++i) Release(v, pages[i].second);
    }
  }

  void Release(NodeView* v, Slot s) {
    assert(!v->index->in_section());
    if (v->pool->Unref(s)) m_.pages_freed->Inc();
  }

  // Punches batches of cold free slots while a pool is above its high
  // watermark, without holding the mutex during the system calls. The view
  // is held by a reference meanwhile, so dropping it cannot pull the pool
  // from under the punch.
  void ReclaimLoop() {
    std::unique_lock<std::mutex> l(mu_);
    for (;;) {
      std::shared_ptr<NodeView> v;
      reclaim_cv_.wait(l, [&] {
        if (stopping_) return true;
        for (const auto& [node, view] : views_)
          if (view->pool->NeedsPunch()) v = view;
        return v != nullptr;
      });
      if (stopping_) return;
      SlotPool* pool = v->pool.get();
      for (auto batch = pool->TakePunchBatch(); !batch.empty(); batch = pool->TakePunchBatch()) {
        l.unlock();
        pool->PunchSlots(batch);
        l.lock();
        pool->FinishPunch(batch);
        SyncGauges();
        if (stopping_) return;
      }
    }
  }

  // Gauges are shared by every store of a registry: move them by deltas.
  // Runs at the end of every mutation, so it also checks the invariants that
  // are cheap to check.
  void SyncGauges() {
    std::uint64_t used = 0, live = 0, backed_free = 0, punched = dropped_punched_,
                  rebuilds = dropped_rebuilds_;
    bool needs_punch = false;
    for (const auto& [node, v] : views_) {
      assert(!v->index->in_section());
      used += v->pool->used();
      live += v->index->live();
      backed_free += v->pool->backed_free();
      punched += v->pool->punched_total();
      rebuilds += v->index->rebuilds();
      needs_punch |= v->pool->NeedsPunch();
    }
    assert(used <= opts_.capacity_pages && "capacity is a hard limit");
    if (needs_punch) reclaim_cv_.notify_one();
    auto sync = [](Gauge* g, std::int64_t now, std::int64_t* reported) {
      if (now != *reported) g->Add(now - *reported);
      *reported = now;
    };
    sync(m_.pages_used, static_cast<std::int64_t>(used), &reported_used_);
    sync(m_.spaces, static_cast<std::int64_t>(spaces_.size()), &reported_spaces_);
    sync(m_.index_live, static_cast<std::int64_t>(live), &reported_index_);
    sync(m_.backed_free, static_cast<std::int64_t>(backed_free), &reported_backed_free_);
    sync(m_.meta_pages, static_cast<std::int64_t>(MetaPages()), &reported_meta_);
    if (punched != reported_punched_) {
      m_.punched->Add(punched - reported_punched_);
      reported_punched_ = punched;
    }
    if (rebuilds != reported_rebuilds_) {
      m_.index_rebuilds->Add(rebuilds - reported_rebuilds_);
      reported_rebuilds_ = rebuilds;
    }
  }

  static std::uint64_t NextPow2(std::uint64_t n) {
    std::uint64_t p = 1;
    while (p < n) p <<= 1;
    return p;
  }

  const Options opts_;
  std::unique_ptr<StatsRegistry> own_stats_;
  PageStoreMetrics m_;
  mutable std::mutex mu_;
  mutable std::atomic<int> contenders_{0};  // callers waiting in Lock()
  std::unordered_set<Asid> busy_;           // spaces a long operation works on
  std::condition_variable idle_cv_;         // busy_ lost a member
  std::unordered_map<NodeId, std::shared_ptr<NodeView>> views_;
  std::unordered_map<Asid, std::unique_ptr<AddressSpace>> spaces_;
  std::uint64_t meta_bytes_ = 0;                              // bookkeeping charged to capacity
  std::uint64_t dropped_punched_ = 0, dropped_rebuilds_ = 0;  // of views gone
  std::condition_variable reclaim_cv_;
  bool stopping_ = false;
  std::thread reclaimer_;  // started in the constructor body, joined first
  std::int64_t reported_used_ = 0, reported_spaces_ = 0, reported_index_ = 0,
               reported_backed_free_ = 0, reported_meta_ = 0;
  std::uint64_t reported_punched_ = 0, reported_rebuilds_ = 0;
};

}  // namespace

std::unique_ptr<PageStore> PageStore::Create(const Options& opts, StatsRegistry* stats,
                                             Status* status) {
  if (opts.capacity_pages == 0 ||
      opts.capacity_pages >= SlotPool::kMaxSlots - 1 - SlotPool::kPunchBatch) {
    *status = {Code::kInvalidArgument, "memory node capacity must be 1 page .. 16 TiB"};
    return nullptr;
  }
  *status = Status::Ok();
  return std::make_unique<PageStoreImpl>(opts, stats);
}

}  // namespace remora
