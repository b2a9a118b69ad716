#include "processor/sim/trace_reader.h"

#include <cctype>
#include <vector>

namespace remora {
namespace {

constexpr const char* kFormat = "expected 'r|w HEXADDR [ASID]'";

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }

std::vector<std::string_view> Fields(std::string_view line) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && IsSpace(line[i])) ++i;
    std::size_t start = i;
    while (i < line.size() && !IsSpace(line[i])) ++i;
    if (i > start) out.push_back(line.substr(start, i - start));
  }
  return out;
}

bool StripHexPrefix(std::string_view* s) {
  if (s->size() > 2 && (*s)[0] == '0' && ((*s)[1] == 'x' || (*s)[1] == 'X')) {
    s->remove_prefix(2);
    return true;
  }
  return false;
}

// Parses digits of `base` into a 64-bit value, rejecting overflow.
bool ParseNumber(std::string_view s, int base, std::uint64_t* out) {
  if (s.empty()) return false;
  std::uint64_t v = 0;
  for (char c : s) {
    int d;
    if (c >= '0' && c <= '9')
      d = c - '0';
    else if (base == 16 && c >= 'a' && c <= 'f')
      d = c - 'a' + 10;
    else if (base == 16 && c >= 'A' && c <= 'F')
      d = c - 'A' + 10;
    else
      return false;
    if (v > (~std::uint64_t{0} - static_cast<std::uint64_t>(d)) / static_cast<std::uint64_t>(base))
      return false;
    v = v * static_cast<std::uint64_t>(base) + static_cast<std::uint64_t>(d);
  }
  *out = v;
  return true;
}

}  // namespace

Status ParseTraceLine(std::string_view line, TraceRecord* rec, bool* is_access) {
  *is_access = false;
  if (auto hash = line.find('#'); hash != std::string_view::npos) line = line.substr(0, hash);
  const std::vector<std::string_view> f = Fields(line);
  if (f.empty()) return Status::Ok();
  if (f.size() == 1) return {Code::kInvalidArgument, "missing address; " + std::string(kFormat)};
  if (f.size() > 3) return {Code::kInvalidArgument, "too many fields; " + std::string(kFormat)};

  const std::string_view op = f[0];
  if (op == "r" || op == "R")
    rec->write = false;
  else if (op == "w" || op == "W")
    rec->write = true;
  else
    return {Code::kInvalidArgument, "expected 'r' or 'w', got '" + std::string(op) + "'"};

  std::string_view addr = f[1];
  StripHexPrefix(&addr);
  if (!ParseNumber(addr, 16, &rec->addr)) {
    return {Code::kInvalidArgument, "bad hex address '" + std::string(f[1]) + "'"};
  }

  rec->asid = 1;
  if (f.size() == 3) {
    std::string_view asid = f[2];
    const int base = StripHexPrefix(&asid) ? 16 : 10;
    if (!ParseNumber(asid, base, &rec->asid)) {
      return {Code::kInvalidArgument, "bad address space id '" + std::string(f[2]) + "'"};
    }
  }
  *is_access = true;
  return Status::Ok();
}

Status TraceReader::Next(TraceRecord* rec, bool* done) {
  *done = false;
  while (std::getline(*in_, line_)) {
    ++line_no_;
    bool is_access = false;
    Status st = ParseTraceLine(line_, rec, &is_access);
    if (!st.ok()) {
      return {st.code(), name_ + ":" + std::to_string(line_no_) + ": " + st.message()};
    }
    if (is_access) return Status::Ok();
  }
  if (in_->bad()) return {Code::kIoError, name_ + ": read error"};
  *done = true;
  return Status::Ok();
}

}  // namespace remora
