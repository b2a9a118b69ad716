// The simulator's stand-in for page data and for the memory node.
//
// The simulator does not keep 4 KiB per page. A page's content is a function
// of its key and a version number (bumped on every simulated write): version
// 0 is the zero page, version v > 0 is a pattern naming (key, v) in every
// 16 bytes. Data handed through the victim cache and the flush thread is thus
// real 4 KiB data, and decoding it at the next fill proves it arrived whole,
// for the right page and in its latest version.
//
// SimStore is the write-back sink: it decodes every page written to it and
// remembers only its version. Thread-safe (the flush thread writes into it).
#pragma once

#include <cstdint>
#include <mutex>
#include <unordered_map>

#include "processor/pcache/writeback_sink.h"
#include "remora/types.h"

namespace remora {

// Writes the content of (key, version) into dst (kPageSize bytes).
void EncodeSimPage(const PageKey& key, std::uint64_t version, void* dst);
// Recovers the version from a page; false if the page is not a whole, intact
// pattern for `key` (or the zero page).
bool DecodeSimPage(const PageKey& key, const void* src, std::uint64_t* version);

class SimStore : public WritebackSink {
 public:
  Status WriteBack(std::span<const Rmap> owners, const void* data) override;

  // The version stored for key; false if the page was never written back.
  bool Read(const PageKey& key, std::uint64_t* version) const;
  std::uint64_t writes() const;
  // Pages that arrived corrupted or for the wrong key.
  std::uint64_t corrupt() const;

 private:
  mutable std::mutex mu_;
  std::unordered_map<PageKey, std::uint64_t, PageKeyHash> versions_;
  std::uint64_t writes_ = 0;
  std::uint64_t corrupt_ = 0;
};

}  // namespace remora
