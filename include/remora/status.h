// Status: the result of every operation that can fail for a reason the caller
// must see (a memory node out of memory, an unknown address space, a lost peer).
// Codes travel on the wire unchanged, so their numeric values are stable.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

namespace remora {

enum class Code : std::int32_t {
  kOk = 0,
  kNoSuchSpace = 1,       // address space unknown to the memory node
  kSpaceExists = 2,       // create of an address space that already exists
  kOutOfMemory = 3,       // memory node capacity exhausted
  kBadRequest = 4,        // malformed message, bad flags, misaligned address
  kNotRegistered = 5,     // address outside every registered range
  kPermissionDenied = 6,  // address space owned by another processor node
  kAuthFailed = 7,        // peer failed the shared-secret challenge
  kTimeout = 8,           // no answer within the configured timeout
  kDisconnected = 9,      // peer closed or connection broke
  kIoError = 10,          // local system call failed
  kInvalidArgument = 11,  // caller passed something unusable (config, CLI)
  kUnsupported = 12,      // operation not offered by this transport / kernel
  kBusy = 13,             // try again (e.g. line locked)
  kInternal = 14,
};

std::string_view CodeName(Code c);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Code code, std::string msg) : code_(code), msg_(std::move(msg)) {}
  static Status Ok() { return {}; }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return msg_; }
  // "out-of-memory: memory node full (capacity 1024 pages)"
  std::string ToString() const;

 private:
  Code code_ = Code::kOk;
  std::string msg_;
};

#define REMORA_RETURN_IF_ERROR(expr) \
  do {                               \
    ::remora::Status _st = (expr);   \
    if (!_st.ok()) return _st;       \
  } while (0)

}  // namespace remora
