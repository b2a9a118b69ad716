// Basic vocabulary shared by every part of Remora.
//
// An *address space* is one program's memory as the memory node sees it. Its id
// (Asid) carries the processor node that created it in the high 32 bits, so two
// processor nodes never collide and a memory node can refuse a processor that
// names an address space it does not own.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>

namespace remora {

constexpr std::size_t kPageShift = 12;
constexpr std::size_t kPageSize = std::size_t{1} << kPageShift;
constexpr std::uint64_t kPageMask = ~std::uint64_t{kPageSize - 1};

using Asid = std::uint64_t;
using NodeId = std::uint32_t;

inline constexpr Asid MakeAsid(NodeId node, std::uint32_t local) {
  return (static_cast<Asid>(node) << 32) | local;
}
inline constexpr NodeId AsidNode(Asid asid) { return static_cast<NodeId>(asid >> 32); }

inline constexpr bool PageAligned(std::uint64_t addr) { return (addr & (kPageSize - 1)) == 0; }
inline constexpr std::uint64_t PageDown(std::uint64_t addr) { return addr & kPageMask; }
inline constexpr std::uint64_t PageUp(std::uint64_t addr) {
  return (addr + kPageSize - 1) & kPageMask;
}

// A page of one address space: the unit the pcache, victim cache and memory
// node all speak in. `uva` is always page aligned.
struct PageKey {
  Asid asid = 0;
  std::uint64_t uva = 0;
  friend bool operator==(const PageKey&, const PageKey&) = default;
};

struct PageKeyHash {
  std::size_t operator()(const PageKey& k) const noexcept {
    std::uint64_t h = k.asid * 0x9e3779b97f4a7c15ULL ^ (k.uva >> kPageShift);
    h ^= h >> 29;
    h *= 0xbf58476d1ce4e5b9ULL;
    h ^= h >> 32;
    return static_cast<std::size_t>(h);
  }
};

}  // namespace remora
