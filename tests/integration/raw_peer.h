// RawPeer: a hand-driven protocol peer for tests that must send what no
// well-behaved client would (bad magic, lies about lengths, cut-off messages)
// and watch exactly how the memory node reacts.
#pragma once

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <string>

#include "net/auth.h"
#include "net/socket_util.h"
#include "net/wire.h"

namespace remora::testing {

class RawPeer {
 public:
  enum class Result { kMessage, kClosed, kTimeout };

  static std::unique_ptr<RawPeer> Tcp(const std::string& address) {
    int fd = -1;
    if (!net::ConnectTcp(address, 2000, &fd).ok()) return nullptr;
    return std::unique_ptr<RawPeer>(new RawPeer(fd));
  }
  static std::unique_ptr<RawPeer> Unix(const std::string& path) {
    int fd = -1;
    if (!net::ConnectUnix(path, 2000, &fd).ok()) return nullptr;
    return std::unique_ptr<RawPeer>(new RawPeer(fd));
  }
  ~RawPeer() { close(fd_); }

  // Reads the server's greeting; false if it was not a proper kHello.
  bool ReadHello() {
    wire::Header h;
    std::string p;
    if (Read(&h, &p) != Result::kMessage) return false;
    if (h.type != static_cast<std::uint16_t>(wire::MsgType::kHello) || p.size() != 32) return false;
    std::memcpy(server_nonce_.data(), p.data(), 32);
    return true;
  }

  // Full handshake; returns the status the server put in its auth reply
  // (or kDisconnected if it did not reply).
  Code Authenticate(const std::string& secret, NodeId node_id) {
    if (!ReadHello()) return Code::kDisconnected;
    auth::Mac proof = auth::ClientProof(secret, server_nonce_);
    std::string payload(reinterpret_cast<const char*>(proof.data()), proof.size());
    payload.append(32, 'n');
    Send(wire::MakeRequest(wire::MsgType::kAuth, 1, 0, node_id, 0, 64), payload);
    wire::Header h;
    std::string p;
    if (Read(&h, &p) != Result::kMessage) return Code::kDisconnected;
    return static_cast<Code>(h.status);
  }

  bool SendBytes(const void* data, std::size_t len) {
    return net::WriteFull(fd_, data, len, net::DeadlineAfterMs(2000)).ok();
  }
  // Sends `h` exactly as given (payload_len is not corrected) and `payload`.
  bool Send(const wire::Header& h, const std::string& payload = "") {
    std::uint8_t b[wire::kHeaderSize];
    wire::EncodeHeader(h, b);
    std::string all(reinterpret_cast<char*>(b), sizeof b);
    all += payload;
    return SendBytes(all.data(), all.size());
  }

  Result Read(wire::Header* h, std::string* payload, int timeout_ms = 3000) {
    std::uint8_t b[wire::kHeaderSize];
    std::uint64_t deadline = net::DeadlineAfterMs(timeout_ms);
    Status st = net::ReadFull(fd_, b, sizeof b, deadline);
    if (!st.ok()) return st.code() == Code::kTimeout ? Result::kTimeout : Result::kClosed;
    *h = wire::DecodeHeader(b);
    payload->resize(h->payload_len);
    st = net::ReadFull(fd_, payload->data(), payload->size(), deadline);
    if (!st.ok()) return st.code() == Code::kTimeout ? Result::kTimeout : Result::kClosed;
    return Result::kMessage;
  }

  // The status of the next reply, or kDisconnected if the connection ended.
  Code ReplyCode(std::string* text = nullptr) {
    wire::Header h;
    std::string p;
    if (Read(&h, &p) != Result::kMessage) return Code::kDisconnected;
    if (text) *text = p;
    return static_cast<Code>(h.status);
  }

  // True if the server closes the connection within timeout_ms (any data it
  // still sends first is skipped).
  bool WaitClosed(int timeout_ms = 3000) {
    std::uint64_t deadline = net::DeadlineAfterMs(timeout_ms);
    char buf[4096];
    for (;;) {
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, net::MsUntil(deadline)) <= 0) return false;
      ssize_t n = recv(fd_, buf, sizeof buf, 0);
      if (n == 0) return true;
      if (n < 0 && errno != EAGAIN && errno != EINTR) return true;  // reset
    }
  }

  int fd() const { return fd_; }

 private:
  explicit RawPeer(int fd) : fd_(fd) {}
  int fd_;
  auth::Nonce server_nonce_{};
};

}  // namespace remora::testing
