#include "processor/sim/sim_store.h"

#include <cstring>

namespace remora {
namespace {

constexpr std::size_t kWords = kPageSize / sizeof(std::uint64_t);

std::uint64_t Tag(const PageKey& key) {
  return PageKeyHash{}(key) | 1;  // never 0, so a pattern never reads as the zero page
}

}  // namespace

void EncodeSimPage(const PageKey& key, std::uint64_t version, void* dst) {
  if (version == 0) {
    std::memset(dst, 0, kPageSize);
    return;
  }
  std::uint64_t words[kWords];
  const std::uint64_t tag = Tag(key);
  for (std::size_t i = 0; i < kWords; i += 2) {
    words[i] = tag;
    words[i + 1] = version ^ (i * 0x9e3779b97f4a7c15ULL);  // differs per word: catches shifts
  }
  std::memcpy(dst, words, kPageSize);
}

bool DecodeSimPage(const PageKey& key, const void* src, std::uint64_t* version) {
  std::uint64_t words[kWords];
  std::memcpy(words, src, kPageSize);
  if (words[0] == 0) {
    for (std::uint64_t w : words)
      if (w != 0) return false;
    *version = 0;
    return true;
  }
  const std::uint64_t tag = Tag(key);
  const std::uint64_t v = words[1];
  for (std::size_t i = 0; i < kWords; i += 2) {
    if (words[i] != tag || words[i + 1] != (v ^ (i * 0x9e3779b97f4a7c15ULL))) return false;
  }
  *version = v;
  return true;
}

Status SimStore::WriteBack(std::span<const Rmap> owners, const void* data) {
  std::lock_guard lk(mu_);
  ++writes_;
  for (const Rmap& owner : owners) {
    std::uint64_t version;
    if (!DecodeSimPage(owner, data, &version)) {
      ++corrupt_;
      continue;
    }
    versions_[owner] = version;
  }
  return Status::Ok();
}

bool SimStore::Read(const PageKey& key, std::uint64_t* version) const {
  std::lock_guard lk(mu_);
  auto it = versions_.find(key);
  if (it == versions_.end()) return false;
  *version = it->second;
  return true;
}

std::uint64_t SimStore::writes() const {
  std::lock_guard lk(mu_);
  return writes_;
}

std::uint64_t SimStore::corrupt() const {
  std::lock_guard lk(mu_);
  return corrupt_;
}

}  // namespace remora
