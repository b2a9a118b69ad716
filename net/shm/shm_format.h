// The shared-memory format: what a memory node exposes to processors on the
// same machine so that they can read pages without asking it.
//
// Two memfd files, both mapped read-only by processors:
//
//  * the page region: `region_slots` slots of kPageSize bytes; slot s is at
//    offset s * kPageSize. The memory node writes page data into slots.
//  * the page index: one 4 KiB header page (IndexHeader), then a table of
//    `index_max_entries` IndexEntry records of which only the first
//    `mask + 1` are in use. The table is an open-addressing hash table with
//    linear probing, keyed by (asid, uva), mapping to a slot.
//
// Both sides of this format live in this header (the memory node's writer is
// memory-node/shared_page_index.h, the processor's reader net/shm/shm_page_reader.h)
// so they cannot drift apart.
//
// Consistency: one global sequence counter `IndexHeader::seq`. The writer
// makes it odd, mutates the table, makes it even again; a reader samples it
// before and after its lookup and page copy and retries when it moved. The
// full reader protocol is in shm_page_reader.h; the writer's obligations are:
//
//  1. Page data in a slot named by a live index entry is never modified. A
//     new version of a page goes to a fresh slot, and the entry is switched
//     to it inside a write section.
//  2. A slot is freed (and may be reused or have its memory released) only
//     after the write section that removed or replaced the last entry naming
//     it has ended, so the seq moved between any reader's lookup of the old
//     entry and a later change of the slot's bytes.
//  3. The table never fills: at most 3/4 of the used entries are occupied
//     (live or tombstone), so a probe always meets an empty entry.
//
// Every word a reader reads from the index is read with an atomic load; values
// it reads during a concurrent mutation may be garbage, so readers bounds-check
// every index and slot before using it and throw the result away unless the
// sequence counter validates it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "remora/status.h"
#include "remora/types.h"

namespace remora::shm {

constexpr std::uint32_t kLayoutMagic = 0x4D485352;  // "RSHM" little-endian
constexpr std::uint32_t kLayoutVersion = 1;
constexpr std::uint64_t kIndexMagic = 0x58444E494D485352ULL;  // "RSHMINDX"
constexpr std::uint64_t kIndexHeaderBytes = 4096;

// Entry tags: the page-aligned uva with its state in the low bits.
constexpr std::uint64_t kTagEmpty = 0;  // never used since the last rebuild
constexpr std::uint64_t kTagLive = 1;
constexpr std::uint64_t kTagTombstone = 2;
constexpr std::uint64_t kTagStateMask = 3;

struct IndexEntry {
  std::uint64_t tag;  // uva | state, or kTagEmpty
  std::uint64_t asid;
  std::uint64_t slot;
};
static_assert(sizeof(IndexEntry) == 24);

// At offset 0 of the index file. Fields the reader uses sit on their own
// cache lines so the writer's bookkeeping does not bounce them.
struct IndexHeader {
  std::uint64_t magic;
  std::uint64_t version;
  std::uint64_t max_entries;       // power of two; fixed for the file's life
  alignas(64) std::uint64_t seq;   // odd while the writer mutates
  alignas(64) std::uint64_t mask;  // table entries in use - 1 (power of two - 1)
  // Writer's bookkeeping, visible for debugging.
  alignas(64) std::uint64_t live;
  std::uint64_t tombstones;
  std::uint64_t rebuilds;
};
static_assert(sizeof(IndexHeader) <= kIndexHeaderBytes);

// The kAttachShm reply payload: sizes the client checks against the files it
// received before mapping them.
#pragma pack(push, 1)
struct Layout {
  std::uint32_t magic;
  std::uint32_t version;
  std::uint32_t page_size;
  std::uint32_t entry_size;
  std::uint64_t region_slots;
  std::uint64_t region_bytes;
  std::uint64_t index_header_bytes;
  std::uint64_t index_max_entries;
  std::uint64_t index_bytes;
};
#pragma pack(pop)

inline std::uint64_t IndexBytes(std::uint64_t max_entries) {
  return kIndexHeaderBytes + max_entries * sizeof(IndexEntry);
}

std::string EncodeLayout(const Layout& layout);
// Checks magic, version, page and entry size and the internal consistency of
// the sizes; kBadRequest with a readable message otherwise.
Status DecodeLayout(std::string_view blob, Layout* layout);

// Where (asid, uva) starts probing. Both sides must agree; it is part of the
// format (changing it needs a version bump).
inline std::uint64_t IndexHash(Asid asid, std::uint64_t uva) {
  std::uint64_t h = (asid * 0x9e3779b97f4a7c15ULL) ^ (uva >> kPageShift);
  h ^= h >> 31;
  h *= 0xbf58476d1ce4e5b9ULL;
  h ^= h >> 29;
  return h;
}

// Word access to shared memory. The peer is another process, so these are
// the atomic built-ins on plain (lock-free, address-free) 8-byte words.
inline std::uint64_t LoadRelaxed(const std::uint64_t* p) {
  return __atomic_load_n(p, __ATOMIC_RELAXED);
}
inline std::uint64_t LoadAcquire(const std::uint64_t* p) {
  return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}
inline void StoreRelaxed(std::uint64_t* p, std::uint64_t v) {
  __atomic_store_n(p, v, __ATOMIC_RELAXED);
}
inline void StoreRelease(std::uint64_t* p, std::uint64_t v) {
  __atomic_store_n(p, v, __ATOMIC_RELEASE);
}

}  // namespace remora::shm
