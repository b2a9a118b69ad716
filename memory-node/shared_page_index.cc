#include "memory-node/shared_page_index.h"

#include <algorithm>
#include <atomic>
#include <cassert>
#include <vector>

#include "memory-node/memfd.h"

namespace remora {

namespace {

std::uint64_t RoundUpPow2(std::uint64_t n) {
  std::uint64_t p = 1;
  while (p < n) p <<= 1;
  return p;
}

// Occupied (live + tombstone) entries allowed in a table of n entries.
constexpr std::uint64_t MaxOccupied(std::uint64_t n) { return n / 4 * 3; }

}  // namespace

std::unique_ptr<SharedPageIndex> SharedPageIndex::Create(std::uint64_t initial_entries,
                                                         std::uint64_t max_entries,
                                                         Status* status) {
  max_entries = RoundUpPow2(std::max<std::uint64_t>(max_entries, 64));
  initial_entries =
      std::min(RoundUpPow2(std::max<std::uint64_t>(initial_entries, 64)), max_entries);
  SharedFile file;
  *status = CreateSharedFile("remora-page-index", shm::IndexBytes(max_entries), &file);
  if (!status->ok()) return nullptr;
  // The index is only ever written through the mapping made above, so it is
  // sealed at once: no client can reopen it writable and corrupt the header
  // or the table the node itself probes.
  *status = SealSharedFile(file);
  if (!status->ok()) {
    DestroySharedFile(&file);
    return nullptr;
  }
  std::unique_ptr<SharedPageIndex> idx(new SharedPageIndex);
  idx->fd_ = file.fd;
  idx->ro_fd_ = file.ro_fd;
  idx->base_ = file.base;
  idx->max_entries_ = max_entries;
  idx->header_ = reinterpret_cast<shm::IndexHeader*>(file.base);
  idx->entries_ = reinterpret_cast<shm::IndexEntry*>(file.base + shm::kIndexHeaderBytes);
  // The file is fresh, hence zero: every entry is empty and seq is 0 (even).
  idx->header_->version = shm::kLayoutVersion;
  idx->header_->max_entries = max_entries;
  shm::StoreRelaxed(&idx->header_->mask, initial_entries - 1);
  shm::StoreRelease(&idx->header_->magic, shm::kIndexMagic);
  return idx;
}

SharedPageIndex::~SharedPageIndex() {
  SharedFile f{fd_, ro_fd_, base_, file_bytes()};
  DestroySharedFile(&f);
}

void SharedPageIndex::Begin() {
  assert(!in_section_);
  in_section_ = true;
  const std::uint64_t s = shm::LoadRelaxed(&header_->seq);
  assert((s & 1) == 0);
  shm::StoreRelaxed(&header_->seq, s + 1);
  // Orders the odd seq before every mutation below: a reader that observes
  // any of them re-reads seq after its acquire fence and sees it moved.
  std::atomic_thread_fence(std::memory_order_release);
}

void SharedPageIndex::End() {
  assert(in_section_);
  // Tombstones lengthen every miss's probe; clear them while still inside
  // the section rather than waiting for the 3/4 rule to force it.
  if (header_->tombstones > table_entries() / 4) Rebuild(table_entries());
  const std::uint64_t s = shm::LoadRelaxed(&header_->seq);
  // Publishes the mutations (and the page data written before Begin).
  shm::StoreRelease(&header_->seq, s + 1);
  in_section_ = false;
}

std::int64_t SharedPageIndex::Probe(Asid asid, std::uint64_t uva, std::int64_t* first_free) const {
  const std::uint64_t mask = header_->mask;
  const std::uint64_t want = uva | shm::kTagLive;
  std::uint64_t i = shm::IndexHash(asid, uva) & mask;
  if (first_free) *first_free = -1;
  for (std::uint64_t n = 0; n <= mask; ++n, i = (i + 1) & mask) {
    const shm::IndexEntry& e = entries_[i];
    const std::uint64_t tag = e.tag;
    if (tag == shm::kTagEmpty) {
      if (first_free && *first_free < 0) *first_free = static_cast<std::int64_t>(i);
      return -1;
    }
    if (tag == want && e.asid == asid) return static_cast<std::int64_t>(i);
    if ((tag & shm::kTagStateMask) == shm::kTagTombstone && first_free && *first_free < 0)
      *first_free = static_cast<std::int64_t>(i);
  }
  assert(false && "the 3/4 rule guarantees an empty entry");
  return -1;
}

std::int64_t SharedPageIndex::Find(Asid asid, std::uint64_t uva) const {
  std::int64_t i = Probe(asid, uva, nullptr);
  return i < 0 ? -1 : static_cast<std::int64_t>(entries_[i].slot);
}

bool SharedPageIndex::Put(Asid asid, std::uint64_t uva, std::uint64_t slot) {
  assert(in_section_);
  assert(PageAligned(uva));
  std::int64_t free_at;
  std::int64_t i = Probe(asid, uva, &free_at);
  if (i >= 0) {
    shm::StoreRelaxed(&entries_[i].slot, slot);
    return true;
  }
  assert(free_at >= 0 && "the 3/4 rule guarantees an empty entry");
  const bool reuse_tombstone =
      (shm::LoadRelaxed(&entries_[free_at].tag) & shm::kTagStateMask) == shm::kTagTombstone;
  if (!reuse_tombstone && header_->live + header_->tombstones + 1 > MaxOccupied(table_entries())) {
    if (!MakeRoomForInsert()) return false;
    Probe(asid, uva, &free_at);  // entries moved
    assert(free_at >= 0);
  }
  shm::IndexEntry& e = entries_[free_at];
  if ((e.tag & shm::kTagStateMask) == shm::kTagTombstone) --header_->tombstones;
  shm::StoreRelaxed(&e.asid, asid);
  shm::StoreRelaxed(&e.slot, slot);
  shm::StoreRelaxed(&e.tag, uva | shm::kTagLive);
  ++header_->live;
  return true;
}

void SharedPageIndex::Erase(Asid asid, std::uint64_t uva) {
  assert(in_section_);
  std::int64_t i = Probe(asid, uva, nullptr);
  if (i < 0) return;
  // The key stays so that entries after it in the probe chain stay reachable.
  shm::StoreRelaxed(&entries_[i].tag, uva | shm::kTagTombstone);
  --header_->live;
  ++header_->tombstones;
}

bool SharedPageIndex::MakeRoomForInsert() {
  const std::uint64_t size = table_entries();
  const std::uint64_t live = header_->live;
  if (live + 1 > size / 2 && size < max_entries_) {
    std::uint64_t target = size;
    while (live + 1 > target / 2 && target < max_entries_) target <<= 1;
    Rebuild(target);
  } else if (header_->tombstones >= size / 16 || (size < max_entries_ && header_->tombstones)) {
    // At the maximum size a rebuild that would reclaim only a few entries
    // would run again a few inserts later; index less instead.
    Rebuild(size);
  }
  return header_->live + header_->tombstones + 1 <= MaxOccupied(table_entries());
}

void SharedPageIndex::Rebuild(std::uint64_t entries) {
  assert(in_section_);
  assert(entries >= table_entries() && entries <= max_entries_);
  std::vector<shm::IndexEntry> keep;
  keep.reserve(header_->live);
  const std::uint64_t old_size = table_entries();
  for (std::uint64_t i = 0; i < old_size; ++i) {
    const shm::IndexEntry& e = entries_[i];
    if ((e.tag & shm::kTagStateMask) == shm::kTagLive) keep.push_back(e);
  }
  assert(keep.size() == header_->live);
  // Atomic stores, not memset: readers may be probing right now (they will
  // retry, but their loads must not race with non-atomic stores).
  for (std::uint64_t i = 0; i < entries; ++i) shm::StoreRelaxed(&entries_[i].tag, shm::kTagEmpty);
  shm::StoreRelaxed(&header_->mask, entries - 1);
  const std::uint64_t mask = entries - 1;
  for (const shm::IndexEntry& k : keep) {
    const std::uint64_t uva = k.tag & ~shm::kTagStateMask;
    std::uint64_t i = shm::IndexHash(k.asid, uva) & mask;
    while (entries_[i].tag != shm::kTagEmpty) i = (i + 1) & mask;
    shm::StoreRelaxed(&entries_[i].asid, k.asid);
    shm::StoreRelaxed(&entries_[i].slot, k.slot);
    shm::StoreRelaxed(&entries_[i].tag, k.tag);
  }
  header_->tombstones = 0;
  ++header_->rebuilds;
}

}  // namespace remora
