// The messages between the shim (inside every program) and the processor
// manager, over unix SOCK_SEQPACKET sockets (one message per datagram, file
// descriptors passed with SCM_RIGHTS).
//
// A program opens two connections:
//
//   control  program threads -> manager, request/reply, one at a time
//            (the shim serialises them). Hello carries the program's uffd;
//            Map/Unmap/Discard keep the manager's view of the program's
//            registered memory in step with mmap/munmap/madvise. A Map of a
//            private file mapping carries the file's descriptor. Fork is
//            ForkPrepare (+ the child's two connections, socketpair ends the
//            program made) before the fork system call and ForkDone (the
//            child's pid) after it; see docs/runtime.md.
//   child    the forked child's control connection: the manager first
//            sends ForkWelcome (Reply + the child's uffd, which the fork
//            event gave the manager), then it is an ordinary control
//            connection.
//   agent    manager -> shim agent thread: Zap batches (drop these pages) and
//            Fatal (stop the program); agent -> manager: ZapAck.
//
// `remora stats --processor SOCK` opens a third kind: one Stats request,
// answered with the snapshot as JSON text.
//
// Both sides run on one machine from one build, so structs go as they are;
// the magic and version catch a stray or stale peer.
//
// Who the peer is comes from the kernel, never from these messages: the
// manager takes SO_PEERCRED (and a pidfd) on every connection, and the shim
// checks that the manager runs as root or as the program's own user
// (docs/security.md). `pid` in a request is informational only.
#pragma once

#include <cstdint>

#include "remora/types.h"

namespace remora::rt {

constexpr std::uint32_t kMagic = 0x52454d31;  // "REM1"
constexpr std::uint32_t kVersion = 3;

enum class Op : std::uint32_t {
  kHello = 1,       // control connection; + uffd. Reply: session id, asid.
  kAgentHello = 2,  // agent connection for session `session`.
  kMap = 3,         // [start, start+len) registered; + file fd if kMapFile.
  kUnmap = 4,       // about to munmap [start, start+len): drop its pages.
  kDiscard = 5,     // about to MADV_DONTNEED [start, start+len).
  kStats = 6,       // snapshot request (reply: Reply + JSON text).
  kZap = 7,         // manager -> agent
  kZapAck = 8,      // agent -> manager
  kFatal = 9,       // manager -> agent: the program cannot go on.
  kReply = 10,
  kForkPrepare = 11,  // + child control end, child agent end; `tid` forks
  kForkDone = 12,     // the fork returned `child_pid` (<= 0: it failed)
  kForkWelcome = 13,  // manager -> child: Reply with session/asid + uffd
};

enum MapFlags : std::uint32_t {
  kMapFile = 1,  // a converted MAP_PRIVATE file mapping; fd attached
};

struct Request {
  std::uint32_t magic = kMagic;
  std::uint32_t version = kVersion;
  Op op = Op::kHello;
  std::uint32_t flags = 0;
  std::int32_t pid = 0;
  std::int32_t tid = 0;        // ForkPrepare: the forking thread
  std::int64_t child_pid = 0;  // ForkDone
  std::uint64_t session = 0;
  std::uint64_t start = 0;
  std::uint64_t len = 0;
  std::uint64_t file_offset = 0;
  std::uint64_t uffd_features = 0;  // Hello: what UFFDIO_API granted
  // Hello: the program's own descriptor number of the uffd it passes (the
  // manager checks the program really holds that uffd).
  std::int32_t own_fd = -1;
  std::uint32_t reserved = 0;
};

enum ReplyFlags : std::uint32_t {
  // ForkPrepare: nothing is registered, so the kernel sends no FORK event;
  // the child attaches as a new program.
  kReplyFreshChild = 1,
};

struct Reply {
  std::uint32_t magic = kMagic;
  Op op = Op::kReply;
  std::int32_t code = 0;       // remora::Code
  std::uint32_t text_len = 0;  // bytes of text following (Stats, errors)
  std::uint64_t session = 0;
  std::uint64_t asid = 0;
  std::uint32_t flags = 0;  // ReplyFlags
  std::uint32_t reserved = 0;
};

// Zap: pages to drop with MADV_DONTNEED. Sequence numbers increase per
// session (from 1); one ZapAck{seq} acknowledges every zap up to seq. The
// agent's first message is ZapAck{0}: it runs, and may be waited for.
constexpr std::uint32_t kZapBatchMax = 64;
struct ZapMessage {
  std::uint32_t magic = kMagic;
  Op op = Op::kZap;
  std::uint32_t count = 0;
  std::uint32_t reserved = 0;
  std::uint64_t seq = 0;  // sequence number of the last page in the batch
  std::uint64_t uvas[kZapBatchMax];
};

struct ZapAck {
  std::uint32_t magic = kMagic;
  Op op = Op::kZapAck;
  std::uint64_t seq = 0;
};

// Fatal: the agent prints `text` and ends the program with kFatalExitCode.
struct FatalMessage {
  std::uint32_t magic = kMagic;
  Op op = Op::kFatal;
  char text[480] = {};
};

// Exit status of a program stopped by Remora (manager gone, memory node
// unreachable): EX_SOFTWARE from sysexits.h.
constexpr int kFatalExitCode = 70;

// Environment variable naming the manager's socket in a program's
// environment; its absence leaves the shim inactive.
constexpr const char* kSocketEnv = "REMORA_PROCESSOR_SOCKET";

}  // namespace remora::rt
