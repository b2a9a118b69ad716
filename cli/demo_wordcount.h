// The main job's workload: a Phoenix-style word count whose input and an
// update pass live in remote memory behind a small pcache.
//
//   generate  write a deterministic text of `bytes` bytes into the region
//   count     read it back page by page and count words
//   update    capitalise words at skewed random positions (a hot set that
//             the pcache should keep, a tail that it cannot)
//   verify    read the whole region and compare it byte for byte with the
//             same text built in plain local memory
//
// Every result is computed twice — through the region and in local memory —
// and compared, so a page that came back wrong (or zero) fails the run.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cli/demo_paged_region.h"
#include "remora/status.h"

namespace remora::cli {

struct WordCountResult {
  std::uint64_t words = 0;
  std::uint64_t distinct = 0;
  std::vector<std::pair<std::string, std::uint64_t>> top;  // most frequent first
  std::uint64_t updates = 0;
  bool counts_match = false;  // region vs local memory
  bool bytes_match = false;   // final region contents vs local memory
  double seconds_generate = 0, seconds_count = 0, seconds_update = 0, seconds_verify = 0;
};

Status RunWordCount(PagedRegion* region, std::uint64_t base, std::uint64_t bytes,
                    std::uint64_t seed, WordCountResult* result);

}  // namespace remora::cli
