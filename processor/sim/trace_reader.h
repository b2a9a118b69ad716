// Address traces for `remora sim`: one access per line,
//
//   r|w HEXADDR [ASID]
//
// HEXADDR is a virtual address in hex (0x prefix optional), ASID an address
// space id in decimal or 0x-hex (default 1). Blank lines and '#' comments are
// allowed. A malformed line is an error naming the file and line number.
#pragma once

#include <cstdint>
#include <istream>
#include <string>
#include <string_view>

#include "remora/status.h"
#include "remora/types.h"

namespace remora {

struct TraceRecord {
  bool write = false;
  Asid asid = 1;
  std::uint64_t addr = 0;
};

// Parses one line. *is_access is false for blank and comment-only lines.
// Errors carry no position; TraceReader adds it.
Status ParseTraceLine(std::string_view line, TraceRecord* rec, bool* is_access);

class TraceReader {
 public:
  // `name` is used in error messages ("trace.txt:17: ...").
  TraceReader(std::istream* in, std::string name) : in_(in), name_(std::move(name)) {}

  // Reads the next access; *done is set at the end of the input.
  Status Next(TraceRecord* rec, bool* done);
  std::uint64_t line_number() const { return line_no_; }

 private:
  std::istream* in_;
  std::string name_;
  std::string line_;
  std::uint64_t line_no_ = 0;
};

}  // namespace remora
