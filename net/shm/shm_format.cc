#include "net/shm/shm_format.h"

#include <cstring>

namespace remora::shm {

std::string EncodeLayout(const Layout& layout) {
  return std::string(reinterpret_cast<const char*>(&layout), sizeof layout);
}

Status DecodeLayout(std::string_view blob, Layout* layout) {
  if (blob.size() != sizeof(Layout))
    return {Code::kBadRequest, "shm layout has " + std::to_string(blob.size()) +
                                   " bytes, expected " + std::to_string(sizeof(Layout))};
  std::memcpy(layout, blob.data(), sizeof(Layout));
  const Layout& l = *layout;
  if (l.magic != kLayoutMagic) return {Code::kBadRequest, "shm layout: bad magic"};
  if (l.version != kLayoutVersion)
    return {Code::kBadRequest, "shm layout version " + std::to_string(l.version) +
                                   ", this build speaks " + std::to_string(kLayoutVersion)};
  if (l.page_size != kPageSize || l.entry_size != sizeof(IndexEntry))
    return {Code::kBadRequest, "shm layout: page or entry size differs from this build"};
  if (l.region_slots == 0 || l.region_bytes != l.region_slots * kPageSize)
    return {Code::kBadRequest, "shm layout: inconsistent region size"};
  if (l.index_max_entries == 0 || (l.index_max_entries & (l.index_max_entries - 1)) != 0)
    return {Code::kBadRequest, "shm layout: index size is not a power of two"};
  if (l.index_header_bytes != kIndexHeaderBytes || l.index_bytes != IndexBytes(l.index_max_entries))
    return {Code::kBadRequest, "shm layout: inconsistent index size"};
  return Status::Ok();
}

}  // namespace remora::shm
