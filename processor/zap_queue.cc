#include "processor/zap_queue.h"

#include <sys/socket.h>

#include <cerrno>

#include "processor/runtime_protocol.h"
#include "remora/types.h"

namespace remora {

Status ZapQueue::Zap(std::uint64_t uva) {
  std::lock_guard send_lk(send_mu_);
  rt::ZapMessage m;
  m.count = 1;
  m.uvas[0] = uva;
  {
    std::lock_guard lk(mu_);
    if (closed_) return {Code::kDisconnected, "agent gone"};
    m.seq = ++next_seq_;
    pending_[uva] = m.seq;
  }
  const std::size_t len = offsetof(rt::ZapMessage, uvas) + sizeof(std::uint64_t);
  ssize_t n;
  do n = ::send(fd_, &m, len, MSG_NOSIGNAL); while (n < 0 && errno == EINTR);
  if (n != static_cast<ssize_t>(len)) {
    Close();
    return {Code::kDisconnected, "agent connection closed"};
  }
  return Status::Ok();
}

void ZapQueue::OnAck(std::uint64_t seq) {
  std::lock_guard lk(mu_);
  if (seq <= acked_) return;
  acked_ = seq;
  for (auto it = pending_.begin(); it != pending_.end();) {
    if (it->second <= seq) it = pending_.erase(it); else ++it;
  }
  acked_cv_.notify_all();
}

bool ZapQueue::PendingInLocked(std::uint64_t start, std::uint64_t end) const {
  if (end - start == kPageSize) return pending_.count(start) != 0;
  for (auto& [uva, seq] : pending_) {
    if (uva >= start && uva < end) return true;
  }
  return false;
}

Status ZapQueue::WaitClear(std::uint64_t start, std::uint64_t end,
                           std::chrono::milliseconds timeout) {
  std::unique_lock lk(mu_);
  if (pending_.empty()) return Status::Ok();
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (PendingInLocked(start, end)) {
    if (closed_) return {Code::kDisconnected, "agent gone with zaps pending"};
    if (acked_cv_.wait_until(lk, deadline) == std::cv_status::timeout &&
        PendingInLocked(start, end)) {
      return {Code::kTimeout, "the program's agent did not drop evicted pages in time"};
    }
  }
  return Status::Ok();
}

void ZapQueue::Close() {
  std::lock_guard lk(mu_);
  closed_ = true;
  pending_.clear();
  acked_cv_.notify_all();
}

std::size_t ZapQueue::pending() const {
  std::lock_guard lk(mu_);
  return pending_.size();
}

}  // namespace remora
