#include "cli/demo_wordcount.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <random>
#include <unordered_map>

namespace remora::cli {
namespace {

using Clock = std::chrono::steady_clock;
double Since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// A vocabulary of pronounceable words and a Zipf(1.0) choice among them, so
// the counts look like text: a few very common words, a long tail.
class TextGenerator {
 public:
  explicit TextGenerator(std::uint64_t seed) : rng_(seed) {
    static const char* syll[] = {"ka", "lo", "mi", "ne", "ru", "sa", "to", "vi",  "ze", "po",
                                 "da", "fe", "gu", "hi", "jo", "be", "ci", "qua", "xe", "wo"};
    std::mt19937_64 vr(seed ^ 0x5eed);
    for (int i = 0; i < 4000; ++i) {
      std::string w;
      int n = 1 + static_cast<int>(vr() % 4);
      for (int k = 0; k < n; ++k) w += syll[vr() % 20];
      words_.push_back(w);
    }
    double sum = 0;
    for (std::size_t i = 0; i < words_.size(); ++i) {
      sum += 1.0 / static_cast<double>(i + 1);
      cdf_.push_back(sum);
    }
    for (auto& c : cdf_) c /= sum;
  }
  const std::string& Next() {
    double u = std::uniform_real_distribution<double>(0, 1)(rng_);
    auto it = std::lower_bound(cdf_.begin(), cdf_.end(), u);
    std::size_t i = std::min<std::size_t>(it - cdf_.begin(), words_.size() - 1);
    return words_[i];
  }
  std::mt19937_64& rng() { return rng_; }

 private:
  std::mt19937_64 rng_;
  std::vector<std::string> words_;
  std::vector<double> cdf_;
};

bool IsWordChar(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

// Counts words of a stream fed in chunks; a word may span chunks.
class WordCounter {
 public:
  void Feed(const char* p, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) {
      char c = p[i];
      if (IsWordChar(c)) {
        cur_ += static_cast<char>(c | 0x20);  // case-insensitive
      } else if (!cur_.empty()) {
        ++counts_[cur_];
        cur_.clear();
      }
    }
  }
  void Finish() {
    if (!cur_.empty()) ++counts_[cur_];
    cur_.clear();
  }
  const std::unordered_map<std::string, std::uint64_t>& counts() const { return counts_; }

 private:
  std::string cur_;
  std::unordered_map<std::string, std::uint64_t> counts_;
};

}  // namespace

Status RunWordCount(PagedRegion* region, std::uint64_t base, std::uint64_t bytes,
                    std::uint64_t seed, WordCountResult* r) {
  std::vector<char> local(bytes, ' ');
  TextGenerator gen(seed);

  // generate: fill the local copy, then stream it into the region a page at a time.
  auto t = Clock::now();
  std::size_t pos = 0;
  while (pos < bytes) {
    const std::string& w = gen.Next();
    std::size_t n = std::min(w.size(), bytes - pos);
    std::memcpy(local.data() + pos, w.data(), n);
    pos += n;
    if (pos < bytes) local[pos++] = (gen.rng()() % 12 == 0) ? '\n' : ' ';
  }
  for (std::uint64_t off = 0; off < bytes; off += kPageSize)
    REMORA_RETURN_IF_ERROR(region->Write(base + off, local.data() + off,
                                         std::min<std::uint64_t>(kPageSize, bytes - off)));
  r->seconds_generate = Since(t);

  // count: through the region, and the same over local memory.
  t = Clock::now();
  WordCounter remote;
  std::vector<char> page(kPageSize);
  for (std::uint64_t off = 0; off < bytes; off += kPageSize) {
    std::size_t n = std::min<std::uint64_t>(kPageSize, bytes - off);
    REMORA_RETURN_IF_ERROR(region->Read(base + off, page.data(), n));
    remote.Feed(page.data(), n);
  }
  remote.Finish();
  r->seconds_count = Since(t);
  WordCounter reference;
  reference.Feed(local.data(), bytes);
  reference.Finish();
  r->counts_match = remote.counts() == reference.counts();
  r->distinct = remote.counts().size();
  for (const auto& [w, c] : remote.counts()) r->words += c;
  std::vector<std::pair<std::string, std::uint64_t>> all(remote.counts().begin(),
                                                         remote.counts().end());
  std::sort(all.begin(), all.end(), [](const auto& a, const auto& b) {
    return a.second != b.second ? a.second > b.second : a.first < b.first;
  });
  all.resize(std::min<std::size_t>(all.size(), 5));
  r->top = std::move(all);

  // update: capitalise the byte at skewed positions. 80% of updates hit the
  // first 10% of the text (hot), the rest anywhere (cold).
  t = Clock::now();
  std::mt19937_64 rng(seed * 7 + 1);
  std::uint64_t nupdates = std::max<std::uint64_t>(1, bytes / 256);
  std::uint64_t hot = std::max<std::uint64_t>(1, bytes / 10);
  for (std::uint64_t i = 0; i < nupdates; ++i) {
    std::uint64_t off = (rng() % 10 < 8) ? rng() % hot : rng() % bytes;
    char c;
    REMORA_RETURN_IF_ERROR(region->Read(base + off, &c, 1));
    if (c != local[off]) return {Code::kInternal, "region and local copy diverged during update"};
    if (c >= 'a' && c <= 'z') {
      c = static_cast<char>(c - 'a' + 'A');
      REMORA_RETURN_IF_ERROR(region->Write(base + off, &c, 1));
      local[off] = c;
    }
  }
  r->updates = nupdates;
  r->seconds_update = Since(t);

  // verify: every byte of the region against the local copy.
  t = Clock::now();
  r->bytes_match = true;
  for (std::uint64_t off = 0; off < bytes; off += kPageSize) {
    std::size_t n = std::min<std::uint64_t>(kPageSize, bytes - off);
    REMORA_RETURN_IF_ERROR(region->Read(base + off, page.data(), n));
    if (std::memcmp(page.data(), local.data() + off, n) != 0) {
      r->bytes_match = false;
      break;
    }
  }
  r->seconds_verify = Since(t);
  return Status::Ok();
}

}  // namespace remora::cli
