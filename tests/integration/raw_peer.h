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
  // (or kDisconnected if it did not reply). `secret` is the cluster secret
  // or the node's key, as for a real client. On success every later frame is
  // tagged and every reply's tag checked, like StreamClient does.
  Code Authenticate(const std::string& secret, NodeId node_id) {
    if (!ReadHello()) return Code::kDisconnected;
    auth::Key key;
    if (!auth::ClientNodeKey(secret, node_id, &key).ok()) return Code::kInvalidArgument;
    auth::Transcript t;
    t.processor_node = node_id;
    t.memory_node = static_cast<NodeId>(hello_arg0_);
    t.server_nonce = server_nonce_;
    t.client_nonce.fill('n');
    auth::Mac proof = auth::ClientProof(key, t);
    std::string payload(reinterpret_cast<const char*>(proof.data()), proof.size());
    payload.append(reinterpret_cast<const char*>(t.client_nonce.data()), t.client_nonce.size());
    Send(wire::MakeRequest(wire::MsgType::kAuth, 1, 0, node_id, 0, 64), payload);
    wire::Header h;
    std::string p;
    if (Read(&h, &p) != Result::kMessage) return Code::kDisconnected;
    if (h.status == 0) {
      auth::Mac expect = auth::ServerProof(key, t);
      if (p.size() != expect.size() ||
          !auth::MacEqual(expect.data(), reinterpret_cast<const std::uint8_t*>(p.data())))
        return Code::kAuthFailed;
      keys_ = auth::DeriveFrameKeys(key, t);
      tagged_ = true;
    }
    return static_cast<Code>(h.status);
  }

  bool SendBytes(const void* data, std::size_t len) {
    return net::WriteFull(fd_, data, len, net::DeadlineAfterMs(2000)).ok();
  }
  // The bytes of one message: `h` exactly as given (payload_len is not
  // corrected) and `payload`, then, once authenticated, the frame's tag (over
  // what is sent). Counts as sent: frames must go out in the order made.
  std::string Frame(const wire::Header& h, const std::string& payload = "") {
    std::uint8_t b[wire::kHeaderSize];
    wire::EncodeHeader(h, b);
    std::string all(reinterpret_cast<char*>(b), sizeof b);
    all += payload;
    if (tagged_) {
      auth::Tag tag =
          auth::FrameTag(keys_.client_to_server, send_seq_++, b, payload.data(), payload.size());
      all.append(reinterpret_cast<const char*>(tag.data()), tag.size());
    }
    return all;
  }
  bool Send(const wire::Header& h, const std::string& payload = "") {
    const std::string all = Frame(h, payload);
    return SendBytes(all.data(), all.size());
  }
  // The frame keys of this connection (a relay would need them and has not).
  const auth::FrameKeys& frame_keys() const { return keys_; }
  std::uint64_t send_seq() const { return send_seq_; }

  Result Read(wire::Header* h, std::string* payload, int timeout_ms = 3000) {
    std::uint8_t b[wire::kHeaderSize];
    std::uint64_t deadline = net::DeadlineAfterMs(timeout_ms);
    Status st = net::ReadFull(fd_, b, sizeof b, deadline);
    if (!st.ok()) return st.code() == Code::kTimeout ? Result::kTimeout : Result::kClosed;
    *h = wire::DecodeHeader(b);
    if (h->type == static_cast<std::uint16_t>(wire::MsgType::kHello)) hello_arg0_ = h->arg0;
    payload->resize(h->payload_len);
    st = net::ReadFull(fd_, payload->data(), payload->size(), deadline);
    if (!st.ok()) return st.code() == Code::kTimeout ? Result::kTimeout : Result::kClosed;
    if (tagged_) {
      std::uint8_t tag[wire::kFrameTagLen];
      st = net::ReadFull(fd_, tag, sizeof tag, deadline);
      if (!st.ok()) return st.code() == Code::kTimeout ? Result::kTimeout : Result::kClosed;
      auth::Tag expect =
          auth::FrameTag(keys_.server_to_client, recv_seq_++, b, payload->data(), payload->size());
      if (!auth::TagEqual(expect.data(), tag)) bad_tags_++;
    }
    return Result::kMessage;
  }
  // Replies whose tag did not verify (must stay 0 with a real memory node).
  int bad_tags() const { return bad_tags_; }

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
  std::uint64_t hello_arg0_ = 0;
  bool tagged_ = false;
  auth::FrameKeys keys_;
  std::uint64_t send_seq_ = 0, recv_seq_ = 0;
  int bad_tags_ = 0;
};

}  // namespace remora::testing
