// `remora sim`: replay an address trace through the real pcache and victim
// cache and compare the miss ratio with an exact LRU of the same geometry.
#include <fmt/format.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>

#include "cli/command.h"
#include "cli/processor_setup.h"
#include "common/size.h"
#include "processor/sim/pcache_sim.h"

namespace remora::cli {
namespace {

struct Flags {
  std::string trace, capacity, policy = "runtime", replacement = "adaptive";
  std::uint32_t ways = 0;  // 0: chosen from the capacity
  std::uint32_t victim = 16;
  bool victim_clean = false;
  bool json = false;
  bool stats = false;
  bool opt = false;
};

Replacement EffectiveReplacement(const SimOptions& o) {
  return o.policy == SimPolicy::kLru ? Replacement::kRecency : o.replacement;
}

Status ParseReplacement(const std::string& s, Replacement* r) {
  for (Replacement x : {Replacement::kAdaptive, Replacement::kRecency, Replacement::kBimodal}) {
    if (s == ReplacementName(x)) {
      *r = x;
      return Status::Ok();
    }
  }
  return {Code::kInvalidArgument, "unknown replacement '" + s + "' (adaptive, recency, bimodal)"};
}

std::string ToJson(const SimResult& r, const SimOptions& o, bool with_stats) {
  std::string stats;
  if (with_stats) {
    stats = ", \"stats\": " + r.stats.ToJson();
    while (!stats.empty() && stats.back() == '\n') stats.pop_back();
  }
  return fmt::format(
      "{{\"accesses\": {}, \"reads\": {}, \"writes\": {}, \"hits\": {}, \"misses\": {}, "
      "\"miss_ratio\": {:.6f}, \"lru_misses\": {}, \"lru_miss_ratio\": {:.6f}, "
      "\"evictions\": {}, \"victim_hits\": {}, \"fills_from_memory\": {}, \"fills_zero\": {}, "
      "\"writebacks\": {}, \"data_errors\": {}, \"sets\": {}, \"ways\": {}, "
      "\"capacity_bytes\": {}, \"victim_entries\": {}, \"policy\": \"{}\", "
      "\"replacement\": \"{}\", \"wp_faults\": {}, \"refaults\": {}{}{}}}\n",
      r.accesses, r.reads, r.writes, r.hits, r.misses, r.miss_ratio(), r.lru_misses,
      r.lru_miss_ratio(), r.evictions, r.victim_hits, r.fills_memory, r.fills_zero, r.writebacks,
      r.data_errors, r.sets, r.ways, o.pcache.capacity_bytes, o.victim_entries,
      SimPolicyName(o.policy), ReplacementName(EffectiveReplacement(o)), r.wp_faults, r.refaults,
      r.has_min ? fmt::format(", \"min_misses\": {}, \"min_miss_ratio\": {:.6f}, \"gap\": {:.4f}, "
                              "\"lru_gap\": {:.4f}",
                              r.min_misses, r.min_miss_ratio(), r.gap(), r.lru_gap())
                : std::string(),
      stats);
}

std::string ToTable(const SimResult& r, const SimOptions& o, const std::string& trace,
                    bool with_stats) {
  std::string s;
  auto row = [&s](const char* name, const std::string& value) {
    s += fmt::format("  {:<16}{}\n", name, value);
  };
  s += fmt::format("remora sim: {}\n", trace == "-" ? "<stdin>" : trace);
  PcacheGeometry g;
  if (!PcacheGeometry::FromConfig(o.pcache, &g).ok()) g = PcacheGeometry();
  row("pcache", fmt::format("{}, policy {}, replacement {}", g.ToString(), SimPolicyName(o.policy),
                            ReplacementName(EffectiveReplacement(o))));
  row("victim cache", o.victim_entries ? fmt::format("{} entries{}", o.victim_entries,
                                                     o.victim_clean ? " (clean lines too)" : "")
                                       : std::string("none (synchronous write-back)"));
  row("accesses", fmt::format("{} ({} reads, {} writes)", r.accesses, r.reads, r.writes));
  row("hits", fmt::format("{}", r.hits));
  row("misses", fmt::format("{}   miss ratio {:.4f}", r.misses, r.miss_ratio()));
  row("exact LRU", fmt::format("{}   miss ratio {:.4f}", r.lru_misses, r.lru_miss_ratio()));
  if (r.has_min) {
    row("optimal (MIN)", fmt::format("{}   miss ratio {:.4f}   (Belady, fully associative: no "
                                     "policy misses less)",
                                     r.min_misses, r.min_miss_ratio()));
    row("gap to MIN", fmt::format("pcache {:.2f}x   exact LRU {:.2f}x", r.gap(), r.lru_gap()));
  }
  if (o.policy == SimPolicy::kRuntime) {
    row("seen by runtime", fmt::format("{} misses, {} write-protect faults, {} refaults", r.misses,
                                       r.wp_faults, r.refaults));
  }
  row("evictions", fmt::format("{}", r.evictions));
  row("fills", fmt::format("{} from victim, {} from memory, {} zero-filled", r.victim_hits,
                           r.fills_memory, r.fills_zero));
  row("write-backs", fmt::format("{}", r.writebacks));
  row("data errors", fmt::format("{}", r.data_errors));
  if (with_stats) s += "counters:\n" + r.stats.ToTable();
  return s;
}

Status Run(const Flags& f, std::string* out) {
  SimOptions o;
  PcacheGeometry geometry;
  REMORA_RETURN_IF_ERROR(ChoosePcacheGeometry(f.capacity, f.ways, &geometry));
  o.pcache = geometry.config();
  o.victim_entries = f.victim;
  o.victim_clean = f.victim_clean;
  REMORA_RETURN_IF_ERROR(ParseSimPolicy(f.policy, &o.policy));
  REMORA_RETURN_IF_ERROR(ParseReplacement(f.replacement, &o.replacement));
  o.belady = f.opt;

  std::ifstream file;
  std::istream* in = &std::cin;
  if (f.trace != "-") {
    file.open(f.trace);
    if (!file) return {Code::kInvalidArgument, "cannot open trace '" + f.trace + "'"};
    in = &file;
  }
  TraceReader reader(in, f.trace == "-" ? "<stdin>" : f.trace);
  SimResult r;
  REMORA_RETURN_IF_ERROR(ReplayTrace(&reader, o, &r));
  *out = f.json ? ToJson(r, o, f.stats) : ToTable(r, o, f.trace, f.stats);
  return Status::Ok();
}

CommandRegistration reg("sim", [](CLI::App& app) {
  auto* sub = app.add_subcommand(
      "sim", "Replay an address trace through the pcache and compare with exact LRU");
  auto f = std::make_shared<Flags>();
  sub->add_option("--trace", f->trace, "trace file ('r|w HEXADDR [ASID]' per line), - for stdin")
      ->required();
  sub->add_option("--pcache,--capacity", f->capacity,
                  "pcache size: any size from 64K (e.g. 48M); without --ways the largest "
                  "geometry not above it is used")
      ->required();
  sub->add_option("--ways", f->ways,
                  "associativity, 1..64 (default: chosen from --pcache among 4..32 ways, 8 when "
                  "it fits exactly)");
  sub->add_option("--victim", f->victim,
                  "victim cache entries (default 16; 0: none, write back at eviction)");
  sub->add_option("--policy", f->policy,
                  "what the pcache sees of the accesses. runtime (default): only what faults in "
                  "the runtime (misses, first writes of clean lines, refaults); clock: also a "
                  "referenced hint per hit; lru: every hit moves the line to MRU (with recency "
                  "replacement: exact LRU)");
  sub->add_option("--replacement", f->replacement,
                  "the pcache's replacement: adaptive (default: set dueling between recency "
                  "and bimodal insertion), recency (fill at MRU, CLOCK: the old policy), "
                  "bimodal");
  sub->add_flag("--victim-clean", f->victim_clean, "keep clean evicted lines in the victim cache");
  sub->add_flag("--opt", f->opt,
                "also count the misses of Belady's optimal replacement (fully associative, same "
                "capacity): a lower bound for any policy");
  sub->add_flag("--json", f->json, "print one JSON object");
  sub->add_flag("--stats", f->stats, "also print every pcache and victim cache counter");
  AddLogLevelOption(sub);
  sub->callback([f] {
    std::string out;
    Status st = Run(*f, &out);
    if (!st.ok()) {
      std::fprintf(stderr, "remora sim: %s\n", st.ToString().c_str());
      SetExitCode(st.code() == Code::kInvalidArgument ? 2 : 1);
      return;
    }
    std::fputs(out.c_str(), stdout);
  });
});

}  // namespace
}  // namespace remora::cli
