#include "remora/status.h"

namespace remora {

std::string_view CodeName(Code c) {
  switch (c) {
    case Code::kOk:
      return "ok";
    case Code::kNoSuchSpace:
      return "no-such-space";
    case Code::kSpaceExists:
      return "space-exists";
    case Code::kOutOfMemory:
      return "out-of-memory";
    case Code::kBadRequest:
      return "bad-request";
    case Code::kNotRegistered:
      return "not-registered";
    case Code::kPermissionDenied:
      return "permission-denied";
    case Code::kAuthFailed:
      return "auth-failed";
    case Code::kTimeout:
      return "timeout";
    case Code::kDisconnected:
      return "disconnected";
    case Code::kIoError:
      return "io-error";
    case Code::kInvalidArgument:
      return "invalid-argument";
    case Code::kUnsupported:
      return "unsupported";
    case Code::kBusy:
      return "busy";
    case Code::kInternal:
      return "internal";
  }
  return "unknown";
}

std::string Status::ToString() const {
  if (ok()) return "ok";
  std::string s(CodeName(code_));
  if (!msg_.empty()) {
    s += ": ";
    s += msg_;
  }
  return s;
}

}  // namespace remora
