// The pieces of `remora sim`: trace parsing, the exact-LRU yardstick, the
// simulator's page store, and whole replays through the real pcache.
#include <gtest/gtest.h>

#include <random>
#include <sstream>

#include "processor/sim/lru_reference.h"
#include "processor/sim/pcache_sim.h"
#include "processor/sim/sim_store.h"
#include "processor/sim/trace_reader.h"

namespace remora {
namespace {

TraceRecord Parse(std::string_view line, bool* is_access, Status* st) {
  TraceRecord rec;
  *st = ParseTraceLine(line, &rec, is_access);
  return rec;
}

TEST(PcacheTrace, ParsesAccesses) {
  bool acc;
  Status st;
  TraceRecord r = Parse("r 1000", &acc, &st);
  ASSERT_TRUE(st.ok() && acc);
  EXPECT_FALSE(r.write);
  EXPECT_EQ(r.addr, 0x1000u);
  EXPECT_EQ(r.asid, 1u);
  r = Parse("  w\t0x7FFFf7a10abc   12  ", &acc, &st);
  ASSERT_TRUE(st.ok() && acc);
  EXPECT_TRUE(r.write);
  EXPECT_EQ(r.addr, 0x7ffff7a10abcu);
  EXPECT_EQ(r.asid, 12u);
  r = Parse("W deadbeef 0x10 # trailing comment", &acc, &st);
  ASSERT_TRUE(st.ok() && acc);
  EXPECT_EQ(r.addr, 0xdeadbeefu);
  EXPECT_EQ(r.asid, 16u);
  r = Parse("r ffffffffffffffff\r", &acc, &st);
  ASSERT_TRUE(st.ok() && acc);
  EXPECT_EQ(r.addr, ~0ull);
}

TEST(PcacheTrace, SkipsBlankAndCommentLines) {
  for (const char* line : {"", "   ", "# r 1000", "\t# note", "\r"}) {
    bool acc = true;
    Status st;
    Parse(line, &acc, &st);
    EXPECT_TRUE(st.ok()) << line;
    EXPECT_FALSE(acc) << line;
  }
}

TEST(PcacheTrace, RejectsMalformedLines) {
  struct Case {
    const char* line;
    const char* message;
  } cases[] = {
      {"x 1000", "expected 'r' or 'w', got 'x'"},
      {"read 1000", "expected 'r' or 'w'"},
      {"r", "missing address"},
      {"r zz", "bad hex address 'zz'"},
      {"r 0x", "bad hex address"},
      {"r 1ffffffffffffffff", "bad hex address"},
      {"r 1000 abc", "bad address space id 'abc'"},
      {"r 1000 99999999999999999999", "bad address space id"},
      {"r 1000 1 2", "too many fields"},
      {"1000 r", "expected 'r' or 'w'"},
  };
  for (const Case& c : cases) {
    bool acc;
    Status st;
    Parse(c.line, &acc, &st);
    EXPECT_EQ(st.code(), Code::kInvalidArgument) << c.line;
    EXPECT_NE(st.message().find(c.message), std::string::npos) << c.line << " -> " << st.message();
  }
}

TEST(PcacheTrace, ReaderNamesFileAndLine) {
  std::istringstream in("# header\nr 1000\n\nw 2000 3\nq 3000\nr 4000\n");
  TraceReader reader(&in, "t.trace");
  TraceRecord rec;
  bool done;
  ASSERT_TRUE(reader.Next(&rec, &done).ok());
  EXPECT_EQ(rec.addr, 0x1000u);
  ASSERT_TRUE(reader.Next(&rec, &done).ok());
  EXPECT_EQ(rec.asid, 3u);
  Status st = reader.Next(&rec, &done);
  EXPECT_EQ(st.message(), "t.trace:5: expected 'r' or 'w', got 'q'");
}

TEST(PcacheTrace, ReaderEndsCleanly) {
  std::istringstream in("r 1\nw 2");  // no final newline
  TraceReader reader(&in, "t");
  TraceRecord rec;
  bool done;
  ASSERT_TRUE(reader.Next(&rec, &done).ok() && !done);
  ASSERT_TRUE(reader.Next(&rec, &done).ok() && !done);
  EXPECT_TRUE(rec.write);
  ASSERT_TRUE(reader.Next(&rec, &done).ok());
  EXPECT_TRUE(done);
}

TEST(LruReference, ExactLruPerSet) {
  PcacheGeometry g;
  ASSERT_TRUE(PcacheGeometry::FromConfig({4 * kPageSize, 2}, &g).ok());  // 2 sets x 2 ways
  LruReference lru(g);
  auto P = [](std::uint64_t vpn) { return PageKey{1, vpn << kPageShift}; };
  EXPECT_FALSE(lru.Access(P(0)));  // set 0: 0
  EXPECT_FALSE(lru.Access(P(2)));  // set 0: 2 0
  EXPECT_TRUE(lru.Access(P(0)));   // set 0: 0 2
  EXPECT_FALSE(lru.Access(P(1)));  // set 1 is separate
  EXPECT_FALSE(lru.Access(P(4)));  // set 0: 4 0, evicts 2
  EXPECT_FALSE(lru.Access(P(2)));  // set 0: 2 4, evicts 0
  EXPECT_TRUE(lru.Access(P(4)));
  EXPECT_FALSE(lru.Access(P(0)));
  EXPECT_FALSE(lru.Access(PageKey{2, 4 << kPageShift}));  // other address space
  EXPECT_EQ(lru.hits(), 2u);
  EXPECT_EQ(lru.misses(), 7u);
}

TEST(SimStore, PagesDecodeOnlyWhenWhole) {
  const PageKey k{3, 0x5000};
  std::array<std::byte, kPageSize> page;
  std::uint64_t v;
  EncodeSimPage(k, 0, page.data());
  ASSERT_TRUE(DecodeSimPage(k, page.data(), &v));
  EXPECT_EQ(v, 0u);
  EncodeSimPage(k, 42, page.data());
  ASSERT_TRUE(DecodeSimPage(k, page.data(), &v));
  EXPECT_EQ(v, 42u);
  EXPECT_FALSE(DecodeSimPage({3, 0x6000}, page.data(), &v));  // someone else's page
  page[kPageSize - 1] ^= std::byte{1};
  EXPECT_FALSE(DecodeSimPage(k, page.data(), &v));
}

// A Zipf-like trace over `pages` pages with a given write share.
std::vector<TraceRecord> ZipfTrace(int pages, int accesses, double alpha, unsigned seed) {
  std::mt19937_64 rng(seed);
  std::vector<double> cdf(pages);
  double sum = 0;
  for (int i = 0; i < pages; ++i) cdf[i] = sum += 1.0 / std::pow(i + 1, alpha);
  std::vector<std::uint64_t> where(pages);
  for (int i = 0; i < pages; ++i) where[i] = 0x10000000ull + std::uint64_t(i) * 4096;
  std::shuffle(where.begin(), where.end(), rng);
  std::uniform_real_distribution<double> u(0, sum);
  std::vector<TraceRecord> out;
  for (int i = 0; i < accesses; ++i) {
    int rank = int(std::lower_bound(cdf.begin(), cdf.end(), u(rng)) - cdf.begin());
    out.push_back({rng() % 4 == 0, 1 + rng() % 2, where[rank] + rng() % 4096});
  }
  return out;
}

SimResult Replay(const std::vector<TraceRecord>& trace, const SimOptions& o) {
  std::unique_ptr<PcacheSim> sim;
  EXPECT_TRUE(PcacheSim::Create(o, &sim).ok());
  for (const auto& rec : trace) EXPECT_TRUE(sim->Access(rec).ok());
  SimResult r;
  EXPECT_TRUE(sim->Finish(&r).ok());
  return r;
}

TEST(PcacheSim, LruPolicyMatchesExactLru) {
  auto trace = ZipfTrace(1500, 30000, 0.9, 1);
  for (std::uint32_t ways : {1u, 4u, 16u}) {
    SimOptions o;
    o.pcache = {256 * kPageSize, ways};
    o.policy = SimPolicy::kLru;
    SimResult r = Replay(trace, o);
    EXPECT_EQ(r.misses, r.lru_misses) << ways << " ways";
    EXPECT_EQ(r.data_errors, 0u);
  }
}

TEST(PcacheSim, ClockStaysCloseToLruAndKeepsData) {
  auto trace = ZipfTrace(1500, 30000, 0.9, 2);
  SimOptions o;
  o.pcache = {256 * kPageSize, 8};
  o.policy = SimPolicy::kClock;  // a hint per hit: close to LRU on Zipf
  SimResult r = Replay(trace, o);
  EXPECT_EQ(r.accesses, 30000u);
  EXPECT_EQ(r.hits + r.misses, r.accesses);
  EXPECT_EQ(r.sets, 32u);
  // With a hint per hit the adaptive policy is no worse than LRU (better:
  // the second chances favour pages used more than once).
  EXPECT_LE(r.miss_ratio(), 1.1 * r.lru_miss_ratio());
  EXPECT_EQ(r.data_errors, 0u);
  EXPECT_GT(r.writebacks, 0u);
  EXPECT_GT(r.victim_hits, 0u);
  EXPECT_EQ(r.misses, r.victim_hits + r.fills_memory + r.fills_zero);
  EXPECT_EQ(r.evictions, r.misses - 256);  // every miss after warm-up evicts
}

TEST(PcacheSim, WorksWithoutVictimCacheAndWithCleanVictims) {
  auto trace = ZipfTrace(800, 20000, 1.0, 3);
  SimOptions o;
  o.pcache = {128 * kPageSize, 4};
  // Seen by a runtime, a fill from the victim cache that is still dirty
  // saves the write-protect fault that would move the line: the victim
  // cache may change replacement a little. With a hint per hit, not at all.
  o.policy = SimPolicy::kClock;
  o.victim_entries = 0;
  SimResult none = Replay(trace, o);
  EXPECT_EQ(none.victim_hits, 0u);
  EXPECT_EQ(none.data_errors, 0u);
  o.victim_entries = 32;
  o.victim_clean = true;
  SimResult clean = Replay(trace, o);
  EXPECT_EQ(clean.data_errors, 0u);
  EXPECT_GT(clean.victim_hits, 0u);
  // The victim cache does not change what the pcache holds.
  EXPECT_EQ(none.misses, clean.misses);
}

// Policy runtime sees what the runtime sees: a first write to a clean line
// (a write-protect fault), a refault of a page still in the shadow (which
// comes back dirty if it left dirty, so its next write does not fault), and
// nothing of other hits.
TEST(PcacheSim, RuntimeViewSeesWriteFaultsAndRefaults) {
  SimOptions o;
  // One set of 8 ways; the shadow remembers the last 2 evicted pages (a
  // miss evicts before it looks the page up in the shadow, as in the
  // runtime).
  o.pcache = {8 * kPageSize, 8};
  std::vector<TraceRecord> trace;
  auto r = [&](std::uint64_t vpn) { trace.push_back({false, 1, vpn << kPageShift}); };
  auto w = [&](std::uint64_t vpn) { trace.push_back({true, 1, vpn << kPageShift}); };
  r(1);
  w(1);                                         // write-protect fault: the line was clean
  w(1);                                         // dirty already: invisible
  r(1);                                         // invisible
  for (std::uint64_t p = 2; p <= 9; ++p) r(p);  // page 9 evicts page 1 (dirty)
  r(1);                                         // refault (evicting page 2): installed dirty
  w(1);                                         // no fault
  w(10);                                        // a write miss is installed dirty: no fault either
  w(10);
  SimResult res = Replay(trace, o);
  EXPECT_EQ(res.misses, 11u);
  EXPECT_EQ(res.wp_faults, 1u);
  EXPECT_EQ(res.refaults, 1u);
  EXPECT_EQ(res.data_errors, 0u);
}

TEST(PcacheSim, ReplayStopsAtTheFirstBadLine) {
  std::istringstream in("r 1000\nw 2000\nr nothex\n");
  TraceReader reader(&in, "bad.trace");
  SimOptions o;
  o.pcache = {16 * kPageSize, 4};
  SimResult r;
  Status st = ReplayTrace(&reader, o, &r);
  EXPECT_EQ(st.message(), "bad.trace:3: bad hex address 'nothex'");
}

TEST(PcacheSim, RejectsBadGeometry) {
  std::unique_ptr<PcacheSim> sim;
  SimOptions o;
  o.pcache = {3 * 4 * kPageSize, 4};
  EXPECT_EQ(PcacheSim::Create(o, &sim).code(), Code::kInvalidArgument);
  SimPolicy p;
  EXPECT_FALSE(ParseSimPolicy("fifo", &p).ok());
}

}  // namespace
}  // namespace remora
