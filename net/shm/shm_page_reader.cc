#include "net/shm/shm_page_reader.h"

#include <sys/mman.h>
#include <sys/stat.h>

#include <atomic>
#include <cerrno>
#include <cstring>

namespace remora {

namespace {

inline void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
}

// The copy may race with the memory node reusing the slot; the sequence check
// after it decides whether the bytes are used. Kept out of the thread
// sanitizer's view because that race is the protocol, not a bug.
__attribute__((no_sanitize("thread"), noinline)) void RacyCopyPage(void* dst, const void* src) {
  std::memcpy(dst, src, kPageSize);
}

Status CheckSize(int fd, std::uint64_t want, const char* what) {
  struct stat st;
  if (fstat(fd, &st) != 0)
    return {Code::kIoError, std::string("fstat of shm ") + what + ": " + std::strerror(errno)};
  if (static_cast<std::uint64_t>(st.st_size) < want)
    return {Code::kBadRequest, std::string("shm ") + what + " file is smaller than its layout"};
  return Status::Ok();
}

}  // namespace

std::unique_ptr<ShmPageReader> ShmPageReader::Map(int region_fd, int index_fd,
                                                  std::string_view layout, Status* status) {
  std::unique_ptr<ShmPageReader> r(new ShmPageReader);
  *status = shm::DecodeLayout(layout, &r->layout_);
  if (!status->ok()) return nullptr;
  const shm::Layout& l = r->layout_;
  *status = CheckSize(region_fd, l.region_bytes, "region");
  if (!status->ok()) return nullptr;
  *status = CheckSize(index_fd, l.index_bytes, "index");
  if (!status->ok()) return nullptr;

  void* region = mmap(nullptr, l.region_bytes, PROT_READ, MAP_SHARED, region_fd, 0);
  if (region == MAP_FAILED) {
    *status = {Code::kIoError, std::string("mmap of shm region: ") + std::strerror(errno)};
    return nullptr;
  }
  r->region_ = static_cast<const char*>(region);
  void* index = mmap(nullptr, l.index_bytes, PROT_READ, MAP_SHARED, index_fd, 0);
  if (index == MAP_FAILED) {
    *status = {Code::kIoError, std::string("mmap of shm index: ") + std::strerror(errno)};
    return nullptr;  // the destructor unmaps the region
  }
  r->index_ = static_cast<const char*>(index);
  r->header_ = reinterpret_cast<const shm::IndexHeader*>(r->index_);
  r->entries_ = reinterpret_cast<const shm::IndexEntry*>(r->index_ + shm::kIndexHeaderBytes);
  if (shm::LoadRelaxed(&r->header_->magic) != shm::kIndexMagic ||
      shm::LoadRelaxed(&r->header_->max_entries) != l.index_max_entries) {
    *status = {Code::kBadRequest, "shm index header does not match its layout"};
    return nullptr;
  }
  *status = Status::Ok();
  return r;
}

ShmPageReader::~ShmPageReader() {
  if (region_) munmap(const_cast<char*>(region_), layout_.region_bytes);
  if (index_) munmap(const_cast<char*>(index_), layout_.index_bytes);
}

ShmPageReader::Result ShmPageReader::Read(Asid asid, std::uint64_t uva, void* out,
                                          std::uint64_t* retries) const {
  const std::uint64_t want_tag = uva | shm::kTagLive;
  const std::uint64_t max_mask = layout_.index_max_entries - 1;
  const std::uint64_t hash = shm::IndexHash(asid, uva);
  for (int attempt = 0; attempt < kMaxAttempts; ++attempt) {
    if (attempt > 0) {
      if (retries) ++*retries;
      CpuRelax();
    }
    const std::uint64_t s1 = shm::LoadAcquire(&header_->seq);
    if (s1 & 1) continue;  // writer inside a section
    // A torn mask can only come with a seq change; clamp it so the probe
    // stays inside the mapping until the check below rejects the attempt.
    const std::uint64_t mask = shm::LoadRelaxed(&header_->mask) & max_mask;
    std::uint64_t i = hash & mask;
    bool found = false, consistent = false;
    for (std::uint64_t n = 0; n <= mask; ++n, i = (i + 1) & mask) {
      const shm::IndexEntry& e = entries_[i];
      const std::uint64_t tag = shm::LoadRelaxed(&e.tag);
      if (tag == shm::kTagEmpty) {
        consistent = true;
        break;
      }
      if (tag == want_tag && shm::LoadRelaxed(&e.asid) == asid) {
        const std::uint64_t slot = shm::LoadRelaxed(&e.slot);
        if (slot >= layout_.region_slots) break;  // torn: retry
        RacyCopyPage(out, region_ + slot * kPageSize);
        found = consistent = true;
        break;
      }
    }
    // A probe that ran off the table or hit a bad slot saw a mutation.
    if (!consistent) continue;
    std::atomic_thread_fence(std::memory_order_acquire);
    if (shm::LoadRelaxed(&header_->seq) != s1) continue;
    return found ? Result::kFound : Result::kAbsent;
  }
  return Result::kBusy;
}

}  // namespace remora
