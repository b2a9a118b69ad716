// page_store_bench: the memory node's own costs, without any network — what
// the store adds to each request, and what the shared index costs a
// one-sided reader.
//
//   page_store_bench [--pages N]
//
// Prints per-operation costs (mean over N pages) for: first write of a page,
// overwrite, store read, one-sided read (hot and cold working set), fork and
// destroy of an N-page space, and one-sided reads while a writer rewrites
// pages (retry rate).
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "memory-node/page_store.h"
#include "net/shm/shm_page_reader.h"
#include "remora/stats.h"

namespace remora {
namespace {

constexpr std::uint64_t kBase = 0x7f0000000000ull;

[[noreturn]] void Die(const std::string& m) {
  std::fprintf(stderr, "page_store_bench: %s\n", m.c_str());
  std::exit(1);
}
void Check(const Status& st) {
  if (!st.ok()) Die(st.ToString());
}

template <typename F>
double NsPer(std::uint64_t n, F&& f) {
  const std::uint64_t t0 = MonotonicNs();
  f();
  return static_cast<double>(MonotonicNs() - t0) / static_cast<double>(n);
}

int Main(int argc, char** argv) {
  std::uint64_t pages = 65536;
  for (int i = 1; i < argc; ++i) {
    if (std::string(argv[i]) == "--pages" && i + 1 < argc)
      pages = std::strtoull(argv[++i], 0, 10);
    else
      Die("usage: page_store_bench [--pages N]");
  }
  StatsRegistry stats;
  Status st;
  auto store = PageStore::Create({pages * 3, 1}, &stats, &st);
  if (!store) Die(st.ToString());
  std::vector<int> fds;
  std::string layout;
  Check(store->AttachShm(1, &fds, &layout));
  auto reader = ShmPageReader::Map(fds[0], fds[1], layout, &st);
  if (!reader) Die(st.ToString());

  const Asid a = MakeAsid(1, 1), child = MakeAsid(1, 2);
  Check(store->CreateSpace(a));
  Check(store->RegisterRange(a, kBase, pages * kPageSize));
  std::vector<char> page(kPageSize, 'x'), buf(kPageSize);
  std::vector<std::uint64_t> order(pages);
  for (std::uint64_t i = 0; i < pages; ++i) order[i] = kBase + i * kPageSize;
  std::shuffle(order.begin(), order.end(), std::mt19937_64(1));

  std::printf("page_store_bench: %llu pages (%llu MiB), ns per page\n",
              static_cast<unsigned long long>(pages),
              static_cast<unsigned long long>(pages * kPageSize >> 20));
  auto row = [](const char* what, double ns) { std::printf("  %-46s %10.0f\n", what, ns); };

  row("first write (fresh, untouched slot)", NsPer(pages, [&] {
        for (auto u : order) Check(store->WritePage(a, u, page.data()));
      }));
  row("overwrite (fresh slot, old one freed)", NsPer(pages, [&] {
        for (auto u : order) Check(store->WritePage(a, u, page.data()));
      }));
  row("store ReadPage (mutex + memcpy)", NsPer(pages, [&] {
        for (auto u : order) Check(store->ReadPage(a, u, buf.data(), nullptr));
      }));
  row("one-sided read, random over all pages", NsPer(pages, [&] {
        for (auto u : order)
          if (reader->Read(a, u, buf.data()) != ShmPageReader::Result::kFound) Die("not found");
      }));
  const std::uint64_t hot = std::min<std::uint64_t>(pages, 64);
  row("one-sided read, 64 hot pages", NsPer(pages, [&] {
        for (std::uint64_t i = 0; i < pages; ++i)
          if (reader->Read(a, order[i % hot], buf.data()) != ShmPageReader::Result::kFound)
            Die("not found");
      }));
  row("one-sided lookup of an absent page", NsPer(pages, [&] {
        for (std::uint64_t i = 0; i < pages; ++i)
          if (reader->Read(child, order[i], buf.data()) != ShmPageReader::Result::kAbsent)
            Die("found");
      }));
  row("fork, per page of the parent", NsPer(pages, [&] { Check(store->ForkSpace(a, child)); }));
  row("COW-breaking write by the child", NsPer(pages, [&] {
        for (auto u : order) Check(store->WritePage(child, u, page.data()));
      }));
  row("destroy, per page", NsPer(pages, [&] { Check(store->DestroySpace(child)); }));

  // Readers against a writer that rewrites a small hot set as fast as it can.
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> reads{0}, retries{0}, busy{0};
  std::thread rd([&] {
    std::vector<char> b(kPageSize);
    std::uint64_t n = 0, r = 0, bz = 0;
    for (std::uint64_t i = 0; !stop.load(std::memory_order_relaxed); ++i, ++n)
      bz += reader->Read(a, order[i % hot], b.data(), &r) == ShmPageReader::Result::kBusy;
    reads = n;
    retries = r;
    busy = bz;
  });
  std::uint64_t writes = 0;
  const std::uint64_t t0 = MonotonicNs();
  while (MonotonicNs() - t0 < 500'000'000ull)
    Check(store->WritePage(a, order[writes++ % hot], page.data()));
  stop = true;
  rd.join();
  std::printf(
      "  under a writer at %.0f writes/s: %llu one-sided reads, %.2f%% retried, "
      "%.3f%% fell back\n",
      static_cast<double>(writes) / 0.5, static_cast<unsigned long long>(reads.load()),
      100.0 * static_cast<double>(retries.load()) / static_cast<double>(reads.load()),
      100.0 * static_cast<double>(busy.load()) / static_cast<double>(reads.load()));
  StatsSnapshot s = stats.Snapshot();
  std::printf("  punched %lld pages, %lld index rebuilds\n",
              static_cast<long long>(s.Counter("memnode_pages_punched")),
              static_cast<long long>(s.Counter("memnode_index_rebuilds")));
  return 0;
}

}  // namespace
}  // namespace remora

int main(int argc, char** argv) { return remora::Main(argc, argv); }
