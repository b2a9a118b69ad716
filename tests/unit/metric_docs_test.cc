// The metric tables and docs/stats.md agree: every metric a table declares is
// documented there with its kind and unit, every metric documented there is
// declared, each name once; and registering a table creates exactly what it
// declares.
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include "cli/demo_paged_region.h"
#include "managers/cluster_stats.h"
#include "memory-node/memnode_stats.h"
#include "net/transport_stats.h"
#include "processor/pcache/pcache_stats.h"
#include "processor/runtime/runtime_stats.h"
#include "remora/metric_table.h"
#include "remora/stats.h"

namespace remora {
namespace {

// One metric as users see it: a per-instance table's entry once per
// instance ("tcp_requests", "shm_requests"), a family's by its pattern
// ("memnode_req_<type>").
struct Declared {
  std::string name;
  MetricSpec spec;
  std::string table;
};

template <class T>
void AddTable(const char* table, std::vector<Declared>* out) {
  for (const MetricSpec& s : T::kSpecs) {
    if constexpr (requires { T::kInstances; }) {
      for (std::string_view instance : T::kInstances)
        out->push_back({ExpandMetricText(s.name, s.placeholder(), instance), s, table});
    } else {
      out->push_back({std::string(s.name), s, table});
    }
  }
}

// Every table of every subsystem. A new table goes here too.
std::vector<Declared> AllDeclared() {
  std::vector<Declared> d;
  AddTable<PcacheCounters>("pcache", &d);
  AddTable<VictimCounters>("victim cache", &d);
  AddTable<RuntimeCounters>("runtime", &d);
  AddTable<PagedRegionMetrics>("demo paged region", &d);
  AddTable<StreamClientMetrics>("stream client", &d);
  AddTable<StreamServerMetrics>("stream server", &d);
  AddTable<ShmTransportMetrics>("shm transport", &d);
  AddTable<RdmaTransportMetrics>("rdma transport", &d);
  AddTable<PageStoreMetrics>("page store", &d);
  AddTable<MemoryNodeServiceMetrics>("memory node service", &d);
  AddTable<RdmaServiceMetrics>("memory node rdma service", &d);
  AddTable<ClusterMetrics>("cluster", &d);
  AddTable<ClusterNodeMetrics>("cluster node", &d);
  return d;
}

struct Documented {
  std::string kind, unit, meaning;
  int line = 0;
};

// Cells of a markdown table row; "\|" inside a cell is not a separator.
std::vector<std::string> Cells(const std::string& row) {
  std::vector<std::string> cells;
  std::string cur;
  for (std::size_t i = 1; i < row.size(); ++i) {
    if (row[i] == '\\' && i + 1 < row.size() && row[i + 1] == '|') {
      cur += '|';
      ++i;
    } else if (row[i] == '|') {
      cells.push_back(cur);
      cur.clear();
    } else {
      cur += row[i];
    }
  }
  for (auto& c : cells) {
    c.erase(0, c.find_first_not_of(' '));
    c.erase(c.find_last_not_of(' ') + 1);
  }
  return cells;
}

// The metric rows of docs/stats.md: `| `name`[, `name`...] | kind | unit |
// meaning |`. Documenting a name twice is an error too (two meanings).
std::map<std::string, Documented> ReadDocs(std::vector<std::string>* errors) {
  const std::string path = std::string(REMORA_SOURCE_DIR) + "/docs/stats.md";
  std::ifstream f(path);
  EXPECT_TRUE(f.good()) << "cannot read " << path;
  static const std::regex kNames(R"(^`[^`]+`(, `[^`]+`)*$)");
  static const std::regex kName(R"(`([^`]+)`)");
  std::map<std::string, Documented> docs;
  std::string line;
  for (int n = 1; std::getline(f, line); ++n) {
    if (line.empty() || line[0] != '|') continue;
    const auto cells = Cells(line);
    if (cells.empty() || !std::regex_match(cells[0], kNames)) continue;
    if (cells.size() != 4) {
      errors->push_back("docs/stats.md:" + std::to_string(n) +
                        ": a metric row needs name, kind, unit, meaning");
      continue;
    }
    for (std::sregex_iterator it(cells[0].begin(), cells[0].end(), kName), end; it != end; ++it) {
      const std::string name = (*it)[1];
      auto [at, fresh] = docs.emplace(name, Documented{cells[1], cells[2], cells[3], n});
      if (!fresh) {
        errors->push_back("docs/stats.md:" + std::to_string(n) + ": " + name +
                          " documented again (first at line " + std::to_string(at->second.line) +
                          ")");
      }
    }
  }
  return docs;
}

TEST(MetricTables, EachNameIsDeclaredOnceWithHelpAndUnit) {
  std::map<std::string, std::string> seen;
  for (const Declared& d : AllDeclared()) {
    auto [at, fresh] = seen.emplace(d.name, d.table);
    EXPECT_TRUE(fresh) << d.name << " is declared by the " << at->second << " table and the "
                       << d.table << " table";
    EXPECT_FALSE(d.spec.help.empty()) << d.name << " (" << d.table << ") has no help text";
    EXPECT_FALSE(d.spec.unit.empty()) << d.name << " (" << d.table << ") has no unit";
  }
}

TEST(MetricDocs, EveryDeclaredMetricIsDocumentedWithItsKindAndUnit) {
  std::vector<std::string> errors;
  const auto docs = ReadDocs(&errors);
  for (const std::string& e : errors) ADD_FAILURE() << e;
  for (const Declared& d : AllDeclared()) {
    auto it = docs.find(d.name);
    if (it == docs.end()) {
      ADD_FAILURE() << d.name << " (" << d.table << " table) is not documented in docs/stats.md";
      continue;
    }
    EXPECT_EQ(it->second.kind, MetricKindName(d.spec.kind))
        << d.name << ": docs/stats.md line " << it->second.line;
    EXPECT_EQ(it->second.unit, d.spec.unit) << d.name << ": docs/stats.md line " << it->second.line;
    EXPECT_FALSE(it->second.meaning.empty()) << d.name;
  }
}

TEST(MetricDocs, EveryDocumentedMetricIsDeclared) {
  std::vector<std::string> errors;
  const auto docs = ReadDocs(&errors);
  EXPECT_GT(docs.size(), 50u) << "docs/stats.md: metric rows not recognized";
  std::set<std::string> declared;
  for (const Declared& d : AllDeclared()) declared.insert(d.name);
  for (const auto& [name, doc] : docs) {
    EXPECT_TRUE(declared.count(name))
        << name << " (docs/stats.md line " << doc.line << ") is declared in no metric table";
  }
}

// The handles come from the table: registering it creates what it declares,
// with its help text, and nothing else.
template <class T>
void ExpectRegisters(std::string_view instance = {}) {
  StatsRegistry r;
  if constexpr (std::is_constructible_v<T, StatsRegistry*>) {
    T t(&r);
  } else {
    T t;
    t.Register(&r, instance);
  }
  const StatsSnapshot s = r.Snapshot();
  std::size_t singles = 0;
  for (const MetricSpec& spec : T::kSpecs) {
    const std::string name = ExpandMetricText(spec.name, spec.placeholder(), instance);
    if (instance.empty() && !spec.placeholder().empty()) continue;  // a family: on demand
    ++singles;
    SCOPED_TRACE(name);
    switch (spec.kind) {
      case MetricKind::kCounter:
      case MetricKind::kGauge:
        ASSERT_TRUE(s.counters.count(name));
        EXPECT_EQ(s.is_gauge.at(name), spec.kind == MetricKind::kGauge);
        break;
      case MetricKind::kHistogram:
        ASSERT_TRUE(s.histograms.count(name));
        EXPECT_EQ(s.histograms.at(name).unit, spec.unit);
        break;
    }
    EXPECT_EQ(s.help.at(name), spec.help);
  }
  EXPECT_EQ(s.help.size(), singles);
}

TEST(MetricTables, RegisterCreatesWhatTheTableDeclares) {
  ExpectRegisters<PcacheCounters>();
  ExpectRegisters<VictimCounters>();
  ExpectRegisters<PagedRegionMetrics>();
  ExpectRegisters<StreamClientMetrics>("tcp");
  ExpectRegisters<StreamServerMetrics>("memnode");
  ExpectRegisters<ShmTransportMetrics>();
  ExpectRegisters<RdmaTransportMetrics>();
  ExpectRegisters<PageStoreMetrics>();
  ExpectRegisters<MemoryNodeServiceMetrics>();
  ExpectRegisters<RdmaServiceMetrics>();
}

TEST(MetricTables, RuntimeSharesThePcachesConcurrentEvictionCounter) {
  StatsRegistry r;
  RuntimeCounters runtime(&r);
  PcacheCounters pcache(&r);
  EXPECT_EQ(runtime.pgfault_concurrent_eviction, pcache.fault_concurrent_eviction);
  runtime.pgfault_concurrent_eviction->Inc();
  const StatsSnapshot s = r.Snapshot();
  EXPECT_EQ(s.Counter("nr_pgfault_due_to_concurrent_eviction"), 1);
  EXPECT_EQ(s.help.at("nr_pgfault_due_to_concurrent_eviction"),
            PcacheCounters::Spec(PcacheCounters::Id::fault_concurrent_eviction).help);
  // Everything else the runtime registers is its own table's.
  EXPECT_EQ(s.help.size(), std::size(RuntimeCounters::kSpecs) + std::size(PcacheCounters::kSpecs));
}

TEST(MetricTables, FamiliesFillTheirPlaceholderInNameAndHelp) {
  StatsRegistry r;
  MemoryNodeServiceMetrics m;
  m.Register(&r);
  m.requests.Get("read_page")->Inc();
  const StatsSnapshot s = r.Snapshot();
  EXPECT_EQ(s.Counter("memnode_req_read_page"), 1);
  EXPECT_EQ(s.help.at("memnode_req_read_page"), "read_page requests served");
}

}  // namespace
}  // namespace remora
