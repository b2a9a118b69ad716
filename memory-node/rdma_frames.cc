#include "memory-node/rdma_frames.h"

#include <sys/mman.h>

#include <cassert>
#include <cerrno>
#include <cstring>

namespace remora {

RdmaFrames::RdmaFrames(FrameBudget* budget, FrameRegistrar* registrar)
    : budget_(budget), registrar_(registrar) {}

RdmaFrames::~RdmaFrames() {
  for (Chunk& c : chunks_) {
    registrar_->Deregister(c.handle);
    munmap(c.base, kChunkFrames * kPageSize);
  }
  budget_->Give(in_use_);
}

Status RdmaFrames::AddChunk() {
  if (chunks_.size() >= (std::uint64_t{1} << 32) / kChunkFrames)
    return {Code::kOutOfMemory, "too many frames for one connection"};
  const std::size_t len = kChunkFrames * kPageSize;
  void* p = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED)
    return {Code::kIoError, std::string("cannot map page frames: ") + std::strerror(errno)};
  Chunk c;
  c.base = static_cast<char*>(p);
  Status st = registrar_->Register(c.base, len, &c.rkey, &c.handle);
  if (!st.ok()) {
    munmap(p, len);
    return st;
  }
  const Frame first = static_cast<Frame>(chunks_.size() * kChunkFrames);
  chunks_.push_back(c);
  refs_.resize(refs_.size() + kChunkFrames, 0);
  // Hand out low frames first.
  for (std::uint32_t i = kChunkFrames; i-- > 0;) free_.push_back(first + i);
  return Status::Ok();
}

Status RdmaFrames::Allocate(Frame* f) {
  if (!budget_->TryTake())
    return {Code::kOutOfMemory,
            "memory node full (capacity " + std::to_string(budget_->capacity()) + " pages)"};
  if (free_.empty()) {
    Status st = AddChunk();
    if (!st.ok()) {
      budget_->Give(1);
      return st;
    }
  }
  *f = free_.back();
  free_.pop_back();
  assert(refs_[*f] == 0);
  refs_[*f] = 1;
  ++in_use_;
  // A fresh chunk is zero already; a reused frame still holds an old page.
  std::memset(Data(*f), 0, kPageSize);
  return Status::Ok();
}

void RdmaFrames::Unref(Frame f) {
  assert(refs_[f] > 0);
  if (--refs_[f] != 0) return;
  free_.push_back(f);
  --in_use_;
  budget_->Give(1);
}

}  // namespace remora
