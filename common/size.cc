#include "common/size.h"

#include <cctype>
#include <cmath>
#include <cstdio>
#include <string>

namespace remora {

Status ParseSize(std::string_view text, std::uint64_t* bytes) {
  std::string s(text);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  size_t i = 0;
  while (i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])) || s[i] == '.')) ++i;
  if (i == 0) return {Code::kInvalidArgument, "bad size '" + std::string(text) + "'"};
  double num = 0;
  try {
    num = std::stod(s.substr(0, i));
  } catch (...) {
    return {Code::kInvalidArgument, "bad size '" + std::string(text) + "'"};
  }
  std::string unit = s.substr(i);
  while (!unit.empty() && unit.front() == ' ') unit.erase(0, 1);
  for (auto& c : unit) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  double mult = 1;
  if (unit.empty() || unit == "B")
    mult = 1;
  else if (unit == "K" || unit == "KB" || unit == "KIB")
    mult = 1024.0;
  else if (unit == "M" || unit == "MB" || unit == "MIB")
    mult = 1024.0 * 1024;
  else if (unit == "G" || unit == "GB" || unit == "GIB")
    mult = 1024.0 * 1024 * 1024;
  else if (unit == "T" || unit == "TB" || unit == "TIB")
    mult = 1024.0 * 1024 * 1024 * 1024;
  else
    return {Code::kInvalidArgument, "bad size unit in '" + std::string(text) + "'"};
  double v = num * mult;
  if (!(v >= 0) || v > 1.8e19) return {Code::kInvalidArgument, "size out of range '" + s + "'"};
  *bytes = static_cast<std::uint64_t>(std::llround(v));
  return Status::Ok();
}

std::string FormatSize(std::uint64_t bytes) {
  static const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  if (v == std::floor(v))
    std::snprintf(buf, sizeof buf, "%.0f %s", v, units[u]);
  else
    std::snprintf(buf, sizeof buf, "%.1f %s", v, units[u]);
  return buf;
}

}  // namespace remora
