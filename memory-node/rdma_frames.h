// RdmaFrames: the page frames of one RDMA-attached processor node — memory
// the memory node registered for remote access by that node's queue pairs
// only.
//
// Frames come in chunks of kChunkFrames pages, each chunk its own anonymous
// mapping and its own memory region (rkey). Chunks are added as pages are
// first written, so registration (which pins memory) follows use, not the
// node's capacity; frames freed by the processor are reused by it and all of
// its chunks go with its residence (rdma_service.h).
//
// Every processor node has its own protection domain (rdma_service.h), so an
// rkey handed to one processor is worthless on another's queue pairs: the
// hardware refuses the access. That, not trust in the processor, is the
// isolation.
//
// A node-wide FrameBudget enforces the memory node's capacity across all
// processors. Registration goes through a FrameRegistrar so that the
// bookkeeping can be tested without an RDMA device.
//
// Not thread-safe: one processor's frames are touched only by the memory
// node's event-loop thread (the remote side reads and writes frame contents,
// never this bookkeeping).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "remora/status.h"
#include "remora/types.h"

namespace remora {

// Pages in use across every connection's frames, against the node's capacity.
class FrameBudget {
 public:
  explicit FrameBudget(std::uint64_t capacity_pages) : capacity_(capacity_pages) {}
  bool TryTake() {
    std::uint64_t u = used_.load(std::memory_order_relaxed);
    do {
      if (u >= capacity_) return false;
    } while (!used_.compare_exchange_weak(u, u + 1, std::memory_order_relaxed));
    return true;
  }
  void Give(std::uint64_t n) { used_.fetch_sub(n, std::memory_order_relaxed); }
  std::uint64_t used() const { return used_.load(std::memory_order_relaxed); }
  std::uint64_t capacity() const { return capacity_; }

 private:
  const std::uint64_t capacity_;
  std::atomic<std::uint64_t> used_{0};
};

class FrameRegistrar {
 public:
  virtual ~FrameRegistrar() = default;
  // Registers [base, base+len) for remote read and write; returns its rkey and
  // an opaque handle for Deregister.
  virtual Status Register(char* base, std::size_t len, std::uint32_t* rkey, void** handle) = 0;
  virtual void Deregister(void* handle) = 0;
};

class RdmaFrames {
 public:
  using Frame = std::uint32_t;
  static constexpr std::uint32_t kChunkFrames = 512;  // 2 MiB per memory region

  // `budget` and `registrar` must outlive this.
  RdmaFrames(FrameBudget* budget, FrameRegistrar* registrar);
  ~RdmaFrames();  // deregisters and unmaps every chunk, returns the budget
  RdmaFrames(const RdmaFrames&) = delete;
  RdmaFrames& operator=(const RdmaFrames&) = delete;

  // A frame with reference count 1 and zeroed contents. kOutOfMemory when the
  // node's capacity is used up; kIoError if a new chunk cannot be mapped or
  // registered.
  Status Allocate(Frame* f);
  void Ref(Frame f) { ++refs_[f]; }
  // Drops a reference; the frame is free (and reusable) after the last.
  void Unref(Frame f);
  std::uint32_t refcount(Frame f) const { return refs_[f]; }

  char* Data(Frame f) const { return chunks_[f / kChunkFrames].base + Offset(f); }
  // What a processor puts in its RDMA work request.
  std::uint64_t RemoteAddr(Frame f) const { return reinterpret_cast<std::uint64_t>(Data(f)); }
  std::uint32_t Rkey(Frame f) const { return chunks_[f / kChunkFrames].rkey; }

  std::uint64_t in_use() const { return in_use_; }
  std::size_t chunks() const { return chunks_.size(); }

 private:
  struct Chunk {
    char* base = nullptr;
    std::uint32_t rkey = 0;
    void* handle = nullptr;
  };
  static std::uint64_t Offset(Frame f) { return std::uint64_t{f % kChunkFrames} * kPageSize; }
  Status AddChunk();

  FrameBudget* budget_;
  FrameRegistrar* registrar_;
  std::vector<Chunk> chunks_;
  std::vector<std::uint32_t> refs_;
  std::vector<Frame> free_;  // LIFO: recently freed frames are still warm
  std::uint64_t in_use_ = 0;
};

}  // namespace remora
