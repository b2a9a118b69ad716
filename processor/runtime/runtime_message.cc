#include "processor/runtime/runtime_message.h"

#include <cstring>

#include "remora/types.h"

namespace remora {
namespace {

Status Bad(const char* why) { return {Code::kBadRequest, why}; }

// [start, start+len): non-empty, no wrap-around, within user addresses.
bool RangeOk(std::uint64_t start, std::uint64_t len) {
  return len > 0 && start < kUserAddressLimit && len <= kUserAddressLimit - start;
}

Status DecodeFirst(const rt::Request& r, int nfds) {
  switch (r.op) {
    case rt::Op::kHello:
      if (nfds != 1) return Bad("hello without exactly one userfaultfd");
      if (r.own_fd < 0 || r.own_fd > (1 << 30))
        return Bad("hello without the program's uffd number");
      return Status::Ok();
    case rt::Op::kAgentHello:
      if (nfds != 0) return Bad("agent hello with descriptors");
      if (r.session == 0) return Bad("agent hello without a session");
      return Status::Ok();
    case rt::Op::kStats:
      if (nfds != 0) return Bad("stats request with descriptors");
      return Status::Ok();
    default:
      return Bad("unexpected first message");
  }
}

Status DecodeControl(const rt::Request& r, int nfds) {
  switch (r.op) {
    case rt::Op::kMap:
      if ((r.flags & ~std::uint32_t{rt::kMapFile}) != 0) return Bad("unknown map flags");
      if (!PageAligned(r.start) || !PageAligned(r.len) || !RangeOk(r.start, r.len))
        return Bad("misaligned range");
      if (nfds != ((r.flags & rt::kMapFile) ? 1 : 0))
        return Bad("a map's descriptor does not match its flags");
      if ((r.flags & rt::kMapFile) && !PageAligned(r.file_offset))
        return Bad("misaligned file offset");
      return Status::Ok();
    case rt::Op::kUnmap:
    case rt::Op::kDiscard:
      if (nfds != 0) return Bad("release with descriptors");
      if (!RangeOk(r.start, r.len) || PageUp(r.start + r.len) > kUserAddressLimit)
        return Bad("bad range");
      return Status::Ok();
    case rt::Op::kForkPrepare:
      if (nfds != 2) return Bad("fork without the child's two connections");
      if (r.tid <= 0) return Bad("fork without the forking thread");
      return Status::Ok();
    case rt::Op::kForkDone:
      if (nfds != 0) return Bad("fork done with descriptors");
      if (r.child_pid > 0x3fffffff) return Bad("bad child pid");
      return Status::Ok();
    default:
      return Bad("unexpected request");
  }
}

}  // namespace

Status DecodeRequest(const void* buf, std::size_t len, int nfds, RequestChannel channel,
                     std::uint64_t session, rt::Request* out) {
  if (len != sizeof(rt::Request)) return Bad("malformed request (size)");
  rt::Request r;
  std::memcpy(&r, buf, sizeof(r));
  if (r.magic != rt::kMagic) return Bad("malformed request (magic)");
  if (r.version != rt::kVersion)
    return Bad("protocol version mismatch (shim and manager from different builds)");
  Status st;
  if (channel == RequestChannel::kFirst) {
    st = DecodeFirst(r, nfds);
  } else {
    if (r.session != session) return Bad("request for another session");
    st = DecodeControl(r, nfds);
  }
  if (st.ok()) *out = r;
  return st;
}

}  // namespace remora
