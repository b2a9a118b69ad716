#include "tests/unit/testing/memory_writeback_sink.h"

#include <cstring>

namespace remora {

Status MemoryWritebackSink::WriteBack(std::span<const Rmap> owners, const void* data) {
  std::unique_lock lk(mu_);
  ++blocked_;
  cv_.wait(lk, [&] { return !paused_; });
  --blocked_;
  if (failing_ || fail_next_ > 0) {
    if (fail_next_ > 0) --fail_next_;
    return {Code::kIoError, "in-memory sink: injected write failure"};
  }
  for (const Rmap& owner : owners) {
    Page& p = pages_[owner];
    std::memcpy(p.data.data(), data, kPageSize);
    ++p.writes;
  }
  ++writes_;
  return Status::Ok();
}

bool MemoryWritebackSink::Read(const PageKey& key, void* dst) const {
  std::lock_guard lk(mu_);
  auto it = pages_.find(key);
  if (it == pages_.end()) return false;
  std::memcpy(dst, it->second.data.data(), kPageSize);
  return true;
}

bool MemoryWritebackSink::Contains(const PageKey& key) const {
  std::lock_guard lk(mu_);
  return pages_.count(key) != 0;
}

std::uint64_t MemoryWritebackSink::WritesOf(const PageKey& key) const {
  std::lock_guard lk(mu_);
  auto it = pages_.find(key);
  return it == pages_.end() ? 0 : it->second.writes;
}

std::uint64_t MemoryWritebackSink::writes() const {
  std::lock_guard lk(mu_);
  return writes_;
}

std::size_t MemoryWritebackSink::pages() const {
  std::lock_guard lk(mu_);
  return pages_.size();
}

void MemoryWritebackSink::FailNextWrites(int n) {
  std::lock_guard lk(mu_);
  fail_next_ = n;
}

void MemoryWritebackSink::SetFailing(bool failing) {
  std::lock_guard lk(mu_);
  failing_ = failing;
}

void MemoryWritebackSink::Pause() {
  std::lock_guard lk(mu_);
  paused_ = true;
}

void MemoryWritebackSink::Resume() {
  {
    std::lock_guard lk(mu_);
    paused_ = false;
  }
  cv_.notify_all();
}

int MemoryWritebackSink::blocked_writers() const {
  std::lock_guard lk(mu_);
  return blocked_;
}

}  // namespace remora
