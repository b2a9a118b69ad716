// ShmPageReader: reads pages straight out of a memory node's shared region —
// the shared-memory analogue of a one-sided RDMA READ. No message, no lock,
// no thread hand-off: an index lookup and a 4 KiB memcpy.
//
// Reader protocol (the writer's side is in shm_format.h):
//
//   1. s1 = seq (acquire). If odd, the writer is mid-mutation: retry.
//   2. Probe the table from IndexHash(asid, uva) & mask until the key's live
//      entry or an empty entry. Every word is an atomic load; indexes and the
//      slot are bounds-checked because a racing mutation can show garbage.
//   3. If found, memcpy the slot into the caller's buffer.
//   4. Acquire fence, then s2 = seq. If s2 != s1 the lookup or the copy may
//      have raced with a mutation (a replaced mapping, a freed and reused
//      slot, a rebuild): throw the result away and retry from 1.
//
// Why that is enough: the writer never changes the bytes of a slot while an
// index entry names it, and frees a slot only after the write section that
// unlinked it. So a copy that overlapped a change of the slot's bytes also
// overlapped a seq change, which step 4 sees. "Absent" is validated the same
// way: a miss during a concurrent insert is retried, never reported.
//
// Retries are bounded (kMaxAttempts); past that Read returns kBusy and the
// caller asks the memory node over its control channel instead, which is
// always correct. An absent page is also answered by the memory node: only it
// knows whether the address space exists and the address is registered, and
// never-written pages are rarely read (the pcache zero-fills them locally).
//
// Thread-safe and lock-free; the mappings are read-only, so a processor can
// never corrupt the memory node's pages.
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>

#include "net/shm/shm_format.h"
#include "remora/status.h"
#include "remora/types.h"

namespace remora {

class ShmPageReader {
 public:
  static constexpr int kMaxAttempts = 64;

  // Checks `layout` (the kAttachShm payload) against the two files and maps
  // them read-only. The fds are not consumed; the mappings outlive them.
  static std::unique_ptr<ShmPageReader> Map(int region_fd, int index_fd, std::string_view layout,
                                            Status* status);
  ~ShmPageReader();
  ShmPageReader(const ShmPageReader&) = delete;
  ShmPageReader& operator=(const ShmPageReader&) = delete;

  enum class Result {
    kFound,   // `out` holds a complete, current version of the page
    kAbsent,  // the index has no entry for the page (as of a consistent instant)
    kBusy,    // the writer kept changing the index; ask the memory node
  };
  // `retries` (optional) is incremented once per discarded attempt.
  Result Read(Asid asid, std::uint64_t uva, void* out, std::uint64_t* retries = nullptr) const;

  const shm::Layout& layout() const { return layout_; }

 private:
  ShmPageReader() = default;

  shm::Layout layout_{};
  const char* region_ = nullptr;
  const char* index_ = nullptr;
  const shm::IndexHeader* header_ = nullptr;
  const shm::IndexEntry* entries_ = nullptr;
};

}  // namespace remora
