// A real memory node inside the fuzzing process, driven by the fuzzing
// thread itself: PageStore, MemoryNodeService and StreamServer on a unix
// socket, but no serving thread (the service's worker for long operations
// still runs; see Wait()). The harness plays client and server in turn
// (send what the socket takes, Pump() the server, read what came back), so an
// input costs no thread hand-off (but for long operations) and never waits
// on a timeout, and "the node answers" is decided exactly: when nothing can
// move any more, whatever has not been answered never will be.
//
// Every input still goes through the bytes-to-effects path of a live node:
// accept, framing, frame tags, handshake, dispatch, reply queues.
#pragma once

#include <cstdint>
#include <string>

#include "net/auth.h"
#include "remora/types.h"

namespace remora {
class PageStore;
class StreamServer;
}  // namespace remora

namespace remora::fuzz {

class InProcessMemnode {
 public:
  static InProcessMemnode& Get();
  static constexpr NodeId kNodeId = 78;  // the memory node's own id

  // An authenticated connection: a non-blocking unix socket that passed the
  // handshake as processor node `node` (checking the node's proof too), and
  // the keys of its later frames. Aborts if a well-behaved client is refused.
  struct Session {
    int fd = -1;
    auth::FrameKeys keys;
  };
  Session Open(NodeId node);
  // A connected non-blocking unix socket that has read the node's hello
  // (into `hello`, if given), before any handshake: for harnesses that play
  // a hostile client from the first byte.
  int Connect(std::uint8_t* hello = nullptr);
  // Reads exactly `len` bytes the node has sent or will send once served,
  // serving it in between; false if it closed or has nothing more to say.
  bool ReadReady(int fd, void* out, std::size_t len);
  // Serves everything that is ready without waiting; true if anything was.
  bool Pump();
  // Nothing is ready: waits for the node's own work to come back (a long
  // operation on its worker thread, server.h) and serves it. False if
  // nothing came within 10 s: the node is wedged.
  bool Wait();
  // Closes `fd` and lets the node see it, so every input starts alike.
  void Close(int fd);

 private:
  InProcessMemnode() = default;
  void Start();
  std::string secret_ = "fuzzing-cluster-secret-0123456789abcdef";
  std::string path_;
  StreamServer* server_ = nullptr;
};

}  // namespace remora::fuzz
