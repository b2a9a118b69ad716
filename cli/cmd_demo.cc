// remora demo: the main job. Runs a word-count workload whose memory lives on
// a memory node behind a pcache a quarter of its size, checks the results
// against the same computation in local memory, and prints the counters.
#include <cstdio>
#include <fstream>

#include "cli/command.h"
#include "cli/demo_paged_region.h"
#include "cli/demo_wordcount.h"
#include "cli/local_memory_node.h"
#include "cli/processor_setup.h"
#include "common/size.h"
#include "net/auth.h"
#include "remora/stats.h"
#include "remora/transport.h"

namespace remora::cli {
namespace {

struct DemoArgs {
  std::string data = "64M";
  std::string pcache;      // default: a quarter of the data
  std::uint32_t ways = 0;  // 0: chosen from the pcache size
  std::uint32_t victim = 16;
  std::string transport = "shm";
  std::string memory_node;
  std::string secret_file;
  std::string stats_json;
  std::uint64_t seed = 42;
  bool quiet = false;
};

// The largest capacity <= bytes with a power-of-two number of sets.
std::uint64_t RoundToGeometry(std::uint64_t bytes, std::uint32_t ways) {
  std::uint64_t sets = std::max<std::uint64_t>(1, bytes / (kPageSize * ways));
  std::uint64_t p = 1;
  while (p * 2 <= sets) p *= 2;
  return p * kPageSize * ways;
}

int Fail(const std::string& what, const Status& st) {
  std::fprintf(stderr, "remora demo: %s: %s\n", what.c_str(), st.ToString().c_str());
  return 1;
}

int RunDemo(const DemoArgs& a) {
  std::uint64_t data = 0;
  Status st = ParseSize(a.data, &data);
  if (!st.ok()) return Fail("--data", st);
  if (data < kPageSize || data > (std::uint64_t{1} << 40))
    return Fail("--data", {Code::kInvalidArgument, "between one page and 1 TiB"});
  PcacheGeometry geometry;
  if (a.pcache.empty()) {
    // A quarter of the data, rounded down to a valid geometry.
    const std::uint32_t ways = a.ways ? a.ways : PcacheGeometry::kDefaultWays;
    st = PcacheGeometry::FromConfig({RoundToGeometry(data / 4, ways), ways}, &geometry);
  } else {
    st = ChoosePcacheGeometry(a.pcache, a.ways, &geometry);
  }
  if (!st.ok()) return Fail("--pcache", st);

  // The memory node: the one named, or a local one on shared memory.
  std::unique_ptr<LocalMemoryNode> local;
  TransportOptions topt;
  st = ParseTransportKind(a.transport, &topt.kind);
  if (!st.ok()) return Fail("--transport", st);
  if (a.memory_node.empty()) {
    LocalMemoryNodeOptions lo;
    lo.capacity = FormatSize(std::max<std::uint64_t>(2 * data, 64 << 20));
    lo.capacity.erase(std::remove(lo.capacity.begin(), lo.capacity.end(), ' '), lo.capacity.end());
    lo.extra_args = {"--log-level", "warn"};  // its info lines would interleave with ours
    local = LocalMemoryNode::Start(lo, &st);
    if (!local) return Fail("starting the local memory node", st);
    topt = local->ClientOptions(topt.kind);
  } else {
    topt.address = a.memory_node;
    if (a.secret_file.empty())
      return Fail("--memory-node", {Code::kInvalidArgument, "needs --secret-file"});
    st = auth::LoadSecretFile(a.secret_file, &topt.secret);
    if (!st.ok()) return Fail("--secret-file", st);
  }
  StatsRegistry stats;
  topt.stats = &stats;
  auto transport = ConnectTransport(topt, &st);
  if (!transport) return Fail("connecting to the memory node at " + topt.address, st);

  MemoryNodeInfo before;
  st = transport->Info(&before);
  if (!st.ok()) return Fail("memory node info", st);

  PagedRegionOptions ro;
  ro.pcache = geometry.config();
  ro.victim_entries = a.victim;
  ro.transport = transport.get();
  ro.asid = MakeAsid(topt.node_id, static_cast<std::uint32_t>(getpid()));
  ro.base = 0x100000000ull;
  ro.length = data;
  ro.stats = &stats;
  std::unique_ptr<PagedRegion> region;
  st = PagedRegion::Create(ro, &region);
  if (!st.ok()) return Fail("creating the region", st);

  if (!a.quiet)
    std::fprintf(stderr,
                 "remora demo: word count over %s of text in remote memory (%s), pcache %s, "
                 "victim cache %u entries\n",
                 FormatSize(data).c_str(), transport->Name().c_str(), geometry.ToString().c_str(),
                 a.victim);

  WordCountResult r;
  st = RunWordCount(region.get(), ro.base, data, a.seed, &r);
  if (!st.ok()) return Fail("workload", st);

  // Leak check: after release, no pcache line, victim entry or memory-node
  // page of this run may remain.
  std::uint64_t peak_pages = 0;
  MemoryNodeInfo during;
  if (transport->Info(&during).ok()) peak_pages = during.used_pages - before.used_pages;
  st = region->Release();
  if (!st.ok()) return Fail("releasing the region", st);
  std::uint64_t lines_left = region->pcache()->lines_used();
  std::uint64_t victims_left = region->victim() ? region->victim()->used() : 0;
  MemoryNodeInfo after;
  st = transport->Info(&after);
  if (!st.ok()) return Fail("memory node info", st);
  bool no_leak = lines_left == 0 && victims_left == 0 && after.used_pages == before.used_pages;

  auto snap = stats.Snapshot();
  std::printf("words: %llu (%llu distinct); top:", static_cast<unsigned long long>(r.words),
              static_cast<unsigned long long>(r.distinct));
  for (const auto& [w, c] : r.top)
    std::printf(" %s=%llu", w.c_str(), static_cast<unsigned long long>(c));
  std::printf("\n");
  std::printf("counts match local run: %s; %llu updates; final bytes match local run: %s\n",
              r.counts_match ? "yes" : "NO", static_cast<unsigned long long>(r.updates),
              r.bytes_match ? "yes" : "NO");
  std::printf(
      "memory node pages: peak %llu written back, %llu after release; pcache lines "
      "after release: %llu; victim entries: %llu\n",
      static_cast<unsigned long long>(peak_pages),
      static_cast<unsigned long long>(after.used_pages - before.used_pages),
      static_cast<unsigned long long>(lines_left), static_cast<unsigned long long>(victims_left));
  if (!a.quiet) {
    std::fprintf(stderr, "phases: generate %.2fs, count %.2fs, update %.2fs, verify %.2fs\n",
                 r.seconds_generate, r.seconds_count, r.seconds_update, r.seconds_verify);
    std::fprintf(stderr, "counters:\n%s", snap.ToTable().c_str());
  }
  if (!a.stats_json.empty()) {
    std::ofstream f(a.stats_json);
    f << snap.ToJson();
    if (!f) return Fail("writing " + a.stats_json, {Code::kIoError, "write failed"});
  }
  if (!r.counts_match || !r.bytes_match) {
    std::fprintf(stderr, "remora demo: FAILED: results differ from the local run\n");
    return 1;
  }
  if (!no_leak) {
    std::fprintf(stderr, "remora demo: FAILED: pages or lines left after release\n");
    return 1;
  }
  return 0;
}

CommandRegistration reg("demo", [](CLI::App& app) {
  auto a = std::make_shared<DemoArgs>();
  auto* sub = app.add_subcommand(
      "demo", "Run a word count with its memory on a memory node behind a small pcache");
  sub->add_option("--data", a->data, "size of the text (working set)")->capture_default_str();
  sub->add_option("--pcache", a->pcache,
                  "pcache capacity: any size from 64K (default: a quarter of --data)");
  sub->add_option("--ways", a->ways,
                  "pcache associativity, 1..64 (default: chosen from --pcache, 8 when it fits)")
      ->check(CLI::Range(1, 64));
  sub->add_option("--victim", a->victim, "victim cache entries")
      ->check(CLI::Range(0, 4096))
      ->capture_default_str();
  sub->add_option("--transport", a->transport, "shm | tcp")
      ->check(CLI::IsMember({"shm", "tcp"}))
      ->capture_default_str();
  sub->add_option("--memory-node", a->memory_node,
                  "use this memory node (HOST:PORT, or the unix socket for shm) instead of "
                  "starting one");
  sub->add_option("--secret-file", a->secret_file, "shared secret of --memory-node")
      ->check(CLI::ExistingFile);
  sub->add_option("--stats-json", a->stats_json, "write the final counters here as JSON");
  sub->add_option("--seed", a->seed, "text generator seed")->capture_default_str();
  sub->add_flag("--quiet", a->quiet, "print only the results");
  AddLogLevelOption(sub);
  sub->callback([a] { SetExitCode(RunDemo(*a)); });
});

}  // namespace
}  // namespace remora::cli
