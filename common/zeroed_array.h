// ZeroedArray<T>: a fixed-size array of zero-initialised trivial values
// whose pages cost nothing until first written.
//
// Tables sized by a capacity (a memory node's per-slot reference counts,
// one per page it may ever store) would otherwise be written in full when
// they are built: a 4 GiB node's counts are 4 MiB, a thousand page faults
// before the daemon can answer its first peer, paid again at every start of
// `remora run`. Anonymous memory is already zero; the kernel supplies each
// page on first touch.
#ifndef REMORA_COMMON_ZEROED_ARRAY_H_
#define REMORA_COMMON_ZEROED_ARRAY_H_

#include <sys/mman.h>

#include <cassert>
#include <cstddef>
#include <new>
#include <type_traits>
#include <utility>

namespace remora {

template <typename T>
class ZeroedArray {
  static_assert(std::is_trivially_copyable_v<T> && std::is_trivially_destructible_v<T>,
                "all-zero bytes must be a valid T");

 public:
  ZeroedArray() = default;
  // Throws std::bad_alloc when the kernel refuses the reservation.
  explicit ZeroedArray(std::size_t n) : n_(n) {
    if (n == 0) return;
    void* p = ::mmap(nullptr, bytes(), PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();
    data_ = static_cast<T*>(p);
  }
  ~ZeroedArray() {
    if (data_ != nullptr) ::munmap(data_, bytes());
  }
  ZeroedArray(ZeroedArray&& o) noexcept
      : data_(std::exchange(o.data_, nullptr)), n_(std::exchange(o.n_, 0)) {}
  ZeroedArray& operator=(ZeroedArray&& o) noexcept {
    if (this != &o) {
      this->~ZeroedArray();
      data_ = std::exchange(o.data_, nullptr);
      n_ = std::exchange(o.n_, 0);
    }
    return *this;
  }
  ZeroedArray(const ZeroedArray&) = delete;
  ZeroedArray& operator=(const ZeroedArray&) = delete;

  std::size_t size() const { return n_; }
  T& operator[](std::size_t i) {
    assert(i < n_);
    return data_[i];
  }
  const T& operator[](std::size_t i) const {
    assert(i < n_);
    return data_[i];
  }

 private:
  std::size_t bytes() const { return n_ * sizeof(T); }

  T* data_ = nullptr;
  std::size_t n_ = 0;
};

}  // namespace remora

#endif  // REMORA_COMMON_ZEROED_ARRAY_H_
