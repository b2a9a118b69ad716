// The manager's view of one program's managed memory: the ranges the shim
// registered, and for converted private file mappings, where their data
// comes from until a page is first written back.
//
// Ranges never overlap. Remove() cuts a hole anywhere (partial munmap) and
// returns the pieces that were removed, so the caller can free exactly those
// on the memory node. Thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <vector>

#include "common/mutex.h"

namespace remora {

// An open file a private mapping was made from. The descriptor is the one
// the shim passed with the mapping; it closes when the last range using it
// goes.
struct FileBacking {
  explicit FileBacking(int fd) : fd(fd) {}
  ~FileBacking();
  FileBacking(const FileBacking&) = delete;
  FileBacking& operator=(const FileBacking&) = delete;
  const int fd;
};

struct Vma {
  std::uint64_t start = 0;
  std::uint64_t end = 0;              // exclusive
  std::shared_ptr<FileBacking> file;  // null: anonymous (zero-filled)
  std::uint64_t file_offset = 0;      // file offset of `start`

  // File offset of the page at uva (file-backed ranges only).
  std::uint64_t FileOffsetOf(std::uint64_t uva) const { return file_offset + (uva - start); }
};

class VmaTable {
 public:
  // Adds a range; an overlapping part of an older range is replaced (the
  // kernel replaced that mapping too).
  void Insert(const Vma& vma) EXCLUDES(mu_);
  // Removes [start, end) and returns the removed pieces.
  std::vector<Vma> Remove(std::uint64_t start, std::uint64_t end) EXCLUDES(mu_);
  // The pieces of [start, end) that are managed.
  std::vector<Vma> Overlapping(std::uint64_t start, std::uint64_t end) const EXCLUDES(mu_);
  std::optional<Vma> Find(std::uint64_t uva) const EXCLUDES(mu_);
  std::vector<Vma> All() const EXCLUDES(mu_);
  std::size_t size() const EXCLUDES(mu_);

 private:
  std::vector<Vma> RemoveLocked(std::uint64_t start, std::uint64_t end) REQUIRES(mu_);

  mutable Mutex mu_;  // a leaf lock
  std::map<std::uint64_t, Vma> by_start_ GUARDED_BY(mu_);
};

}  // namespace remora
