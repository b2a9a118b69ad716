#include "memory-node/slot_pool.h"

#include <fcntl.h>
#include <linux/falloc.h>

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <cstring>

#include <spdlog/spdlog.h>

namespace remora {

std::unique_ptr<SlotPool> SlotPool::Create(const Options& opts, Status* status) {
  if (opts.nslots == 0 || opts.nslots > kMaxSlots) {
    *status = {Code::kInvalidArgument,
               "slot pool size must be 1.." + std::to_string(kMaxSlots) + " pages"};
    return nullptr;
  }
  std::unique_ptr<SlotPool> p(new SlotPool);
  *status = CreateSharedFile("remora-pages", opts.nslots * kPageSize, &p->file_);
  if (!status->ok()) return nullptr;
  p->nslots_ = opts.nslots;
  p->high_ = opts.backed_free_high ? opts.backed_free_high
                                   : std::clamp<std::uint64_t>(opts.nslots / 64, 64, 8192);
  p->low_ = opts.backed_free_low ? std::min(opts.backed_free_low, p->high_) : p->high_ / 2;
  return p;
}

SlotPool::~SlotPool() { DestroySharedFile(&file_); }

void SlotPool::assert_valid([[maybe_unused]] Slot s) const { assert(s < nslots_); }

bool SlotPool::Allocate(Slot* s) {
  // Prefer memory that is already there (no page fault), hottest first.
  if (!backed_free_.empty()) {
    *s = backed_free_.back();
    backed_free_.pop_back();
  } else if (!holes_.empty()) {
    *s = holes_.back();
    holes_.pop_back();
  } else if (next_untouched_ < nslots_) {
    *s = static_cast<Slot>(next_untouched_++);
    refs_.push_back(0);
  } else {
    return false;
  }
  assert(refs_[*s] == 0);
  refs_[*s] = 1;
  ++used_;
  return true;
}

void SlotPool::Ref(Slot s) {
  assert_valid(s);
  assert(refs_[s] > 0 && "Ref of a free slot");
  ++refs_[s];
}

Status SlotPool::SealForSharing() {
  if (sealed_) return Status::Ok();
  REMORA_RETURN_IF_ERROR(SealSharedFile(file_));
  sealed_ = true;
  return Status::Ok();
}

bool SlotPool::Unref(Slot s) {
  assert_valid(s);
  assert(refs_[s] > 0 && "Unref of a free slot");
  if (--refs_[s] > 0) return false;
  --used_;
  backed_free_.push_back(s);
  return true;
}

std::vector<SlotPool::Slot> SlotPool::TakePunchBatch() {
  if (backed_free_.size() <= low_) return {};
  const std::size_t n = std::min<std::size_t>(kPunchBatch, backed_free_.size() - low_);
  std::vector<Slot> batch(backed_free_.begin(), backed_free_.begin() + n);
  backed_free_.erase(backed_free_.begin(), backed_free_.begin() + n);
  std::sort(batch.begin(), batch.end());
  in_flight_ += n;
  return batch;
}

void SlotPool::PunchSlots(const std::vector<Slot>& slots) {
  for (std::size_t i = 0; i < slots.size();) {
    std::size_t j = i + 1;
    while (j < slots.size() && slots[j] == slots[j - 1] + 1) ++j;
    const off_t off = static_cast<off_t>(slots[i]) * kPageSize;
    const off_t len = static_cast<off_t>(j - i) * kPageSize;
    if (fallocate(file_.fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, len) != 0) {
      // Not fatal: the slots stay usable, only their memory is not returned.
      spdlog::warn("memory node: punching freed pages failed: {}", std::strerror(errno));
    }
    punch_calls_.fetch_add(1, std::memory_order_relaxed);
    i = j;
  }
}

void SlotPool::FinishPunch(const std::vector<Slot>& slots) {
  assert(in_flight_ >= slots.size());
  in_flight_ -= slots.size();
  punched_total_ += slots.size();
  holes_.insert(holes_.end(), slots.begin(), slots.end());
}

void SlotPool::PunchNow() {
  if (!NeedsPunch()) return;
  for (auto batch = TakePunchBatch(); !batch.empty(); batch = TakePunchBatch()) {
    PunchSlots(batch);
    FinishPunch(batch);
  }
}

}  // namespace remora
