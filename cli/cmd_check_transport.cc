// `remora check-transport`: proves that a memory node serves pages correctly
// over a chosen transport — the check to run after booting a cluster, and
// the workload of the emulated-cluster test (tests/cluster/qemu-rdma.sh).
//
// It creates an address space, then several threads each write and read back
// their own pages, single and batched, with contents that depend on the page
// and the round, and compare every byte; never-written pages must read as
// zeros and absent; a fork must keep parent and child apart in both
// directions; destroying the space must return the node's pages. With
// --duration-s it keeps going for that long, which is how a memory node that
// dies mid-run is tested: the run must end with a transport error within the
// timeout, never hang and never see a wrong (e.g. zero) page.
//
// Exit status: 0 all checks passed; 1 a transport or memory-node error (the
// message says which and how long after the last good request); 3 data that
// differs from what was written; 2 bad usage.
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

#include "cli/command.h"
#include "net/auth.h"
#include "remora/stats.h"
#include "remora/transport.h"

namespace remora::cli {
namespace {

struct Args {
  std::string transport = "rdma", address, secret_file, device;
  std::uint32_t node_id = 1;
  int threads = 4, pages = 512, rounds = 3, batch = 16, timeout_ms = 5000, qps = 4;
  int gid_index = -1;
  double duration_s = 0;
  bool stats = false;
};

constexpr std::uint64_t kBase = 0x7f0000000000ull;

// Byte i of page `uva` in round `round`: a mix no stale or zero page matches.
void Fill(char* p, Asid asid, std::uint64_t uva, std::uint64_t round) {
  std::uint64_t x = asid * 0x9e3779b97f4a7c15ull ^ uva ^ (round << 48) ^ 0x5bd1e995u;
  for (std::size_t i = 0; i < kPageSize; i += 8) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    std::memcpy(p + i, &x, 8);
  }
}

struct Failure {
  std::mutex mu;
  int exit_code = 0;
  std::string what;
  void Set(int code, std::string msg) {
    std::lock_guard<std::mutex> l(mu);
    if (exit_code == 0) {
      exit_code = code;
      what = std::move(msg);
    }
  }
  bool failed() {
    std::lock_guard<std::mutex> l(mu);
    return exit_code != 0;
  }
};

std::uint64_t NowMs() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                        std::chrono::steady_clock::now().time_since_epoch())
                                        .count());
}

class Checker {
 public:
  Checker(const Args& a, Transport* t, Asid asid) : a_(a), t_(t), asid_(asid) {}

  std::atomic<std::uint64_t> last_ok_ms{NowMs()};
  std::atomic<std::uint64_t> pages_checked{0};
  Failure fail;

  bool Ok(const Status& st, const char* what) {
    if (st.ok()) {
      last_ok_ms = NowMs();
      return true;
    }
    fail.Set(1, std::string(what) + ": " + st.ToString() + " (" +
                    std::to_string(NowMs() - last_ok_ms.load()) +
                    " ms after the last successful request)");
    return false;
  }

  // One thread's pages: [first, first + n).
  void Thread(int t, std::uint64_t deadline_ms) {
    const std::uint64_t first = kBase + std::uint64_t(t) * a_.pages * kPageSize;
    const std::size_t b = static_cast<std::size_t>(a_.batch);
    std::vector<char> buf(b * kPageSize), want(kPageSize);
    std::vector<std::uint64_t> uvas(b);
    std::unique_ptr<bool[]> present(new bool[b]);
    // Never written: zeros, absent.
    for (int i = 0; i < a_.pages && !fail.failed(); i += a_.batch) {
      const std::size_t n = std::min<std::size_t>(b, a_.pages - i);
      for (std::size_t j = 0; j < n; ++j) uvas[j] = first + (i + j) * kPageSize;
      if (!Ok(t_->ReadPages(asid_, {uvas.data(), n}, buf.data(), present.get()), "read absent"))
        return;
      for (std::size_t j = 0; j < n; ++j)
        if (present[j] ||
            std::any_of(buf.begin() + j * kPageSize, buf.begin() + (j + 1) * kPageSize,
                        [](char c) { return c != 0; }))
          return fail.Set(3, "a never-written page is not an absent zero page");
    }
    for (std::uint64_t round = 1; !fail.failed(); ++round) {
      if (deadline_ms ? NowMs() >= deadline_ms : round > std::uint64_t(a_.rounds)) break;
      // Write: batches on even rounds, single pages on odd ones.
      for (int i = 0; i < a_.pages && !fail.failed(); i += a_.batch) {
        const std::size_t n = std::min<std::size_t>(b, a_.pages - i);
        for (std::size_t j = 0; j < n; ++j) {
          uvas[j] = first + (i + j) * kPageSize;
          Fill(buf.data() + j * kPageSize, asid_, uvas[j], round);
        }
        if (round % 2 == 0) {
          if (!Ok(t_->WritePages(asid_, {uvas.data(), n}, buf.data()), "write pages")) return;
        } else {
          for (std::size_t j = 0; j < n; ++j)
            if (!Ok(t_->WritePage(asid_, uvas[j], buf.data() + j * kPageSize), "write page"))
              return;
        }
      }
      // Read back every byte, batched on odd rounds.
      for (int i = 0; i < a_.pages && !fail.failed(); i += a_.batch) {
        const std::size_t n = std::min<std::size_t>(b, a_.pages - i);
        for (std::size_t j = 0; j < n; ++j) uvas[j] = first + (i + j) * kPageSize;
        if (round % 2 == 1) {
          if (!Ok(t_->ReadPages(asid_, {uvas.data(), n}, buf.data(), present.get()), "read pages"))
            return;
        } else {
          for (std::size_t j = 0; j < n; ++j)
            if (!Ok(t_->ReadPage(asid_, uvas[j], buf.data() + j * kPageSize, &present[j]),
                    "read page"))
              return;
        }
        for (std::size_t j = 0; j < n; ++j) {
          Fill(want.data(), asid_, uvas[j], round);
          if (!present[j] || std::memcmp(want.data(), buf.data() + j * kPageSize, kPageSize))
            return fail.Set(3, "page " + std::to_string(uvas[j]) + " of thread " +
                                   std::to_string(t) + " differs from what round " +
                                   std::to_string(round) + " wrote");
        }
        pages_checked += n;
      }
    }
  }

  // Parent and child after a fork see their own writes only.
  void ForkCheck(Asid child) {
    std::vector<char> page(kPageSize), want(kPageSize);
    const std::uint64_t uva = kBase;
    if (!Ok(t_->WritePage(asid_, uva, (Fill(page.data(), asid_, uva, 1000), page.data())),
            "write before fork") ||
        !Ok(t_->ForkSpace(asid_, child), "fork") ||
        !Ok(t_->WritePage(asid_, uva, (Fill(page.data(), asid_, uva, 1001), page.data())),
            "parent write after fork") ||
        !Ok(t_->ReadPage(child, uva, page.data()), "child read"))
      return;
    Fill(want.data(), asid_, uva, 1000);
    if (page != want) return fail.Set(3, "the child sees its parent's write after fork");
    if (!Ok(t_->WritePage(child, uva, (Fill(page.data(), child, uva, 1002), page.data())),
            "child write") ||
        !Ok(t_->ReadPage(asid_, uva, page.data()), "parent read"))
      return;
    Fill(want.data(), asid_, uva, 1001);
    if (page != want) return fail.Set(3, "the parent sees its child's write after fork");
    if (!Ok(t_->ReadPage(child, uva, page.data()), "child read back")) return;
    Fill(want.data(), child, uva, 1002);
    if (page != want) return fail.Set(3, "the child lost its own write after fork");
    (void)Ok(t_->DestroySpace(child), "destroy child");
  }

 private:
  const Args& a_;
  Transport* t_;
  const Asid asid_;
};

int Run(const Args& a) {
  TransportOptions o;
  Status st = ParseTransportKind(a.transport, &o.kind);
  if (st.ok() && a.secret_file.empty()) st = {Code::kInvalidArgument, "--secret-file is needed"};
  if (st.ok()) st = auth::LoadSecretFile(a.secret_file, &o.secret);
  if (!st.ok()) {
    std::fprintf(stderr, "remora check-transport: %s\n", st.ToString().c_str());
    return 2;
  }
  StatsRegistry stats;
  o.address = a.address;
  o.node_id = a.node_id;
  o.timeout_ms = a.timeout_ms;
  o.stats = &stats;
  o.rdma_device = a.device;
  o.rdma_gid_index = a.gid_index;
  o.rdma_qps = a.qps;
  const std::uint64_t t0 = NowMs();
  auto t = ConnectTransport(o, &st);
  if (!t) {
    std::fprintf(stderr, "remora check-transport: %s\n", st.ToString().c_str());
    return 1;
  }
  std::printf("check-transport %s: connected to %s\n", t->Name().c_str(), a.address.c_str());
  std::fflush(stdout);
  const Asid asid = MakeAsid(a.node_id, static_cast<std::uint32_t>(getpid()) << 1);
  Checker c(a, t.get(), asid);
  MemoryNodeInfo before;
  if (c.Ok(t->Info(&before), "info") && c.Ok(t->CreateSpace(asid), "create space") &&
      c.Ok(t->RegisterRange(asid, kBase, std::uint64_t(a.threads) * a.pages * kPageSize),
           "register range")) {
    const std::uint64_t deadline =
        a.duration_s > 0 ? NowMs() + static_cast<std::uint64_t>(a.duration_s * 1000) : 0;
    std::vector<std::thread> ths;
    for (int i = 0; i < a.threads; ++i)
      ths.emplace_back([&c, i, deadline] { c.Thread(i, deadline); });
    for (auto& th : ths) th.join();
    if (!c.fail.failed()) c.ForkCheck(asid | 1);
    MemoryNodeInfo after;
    if (!c.fail.failed() && c.Ok(t->DestroySpace(asid), "destroy space") &&
        c.Ok(t->Info(&after), "info") && after.used_pages != before.used_pages)
      c.fail.Set(3, "destroying the space left " +
                        std::to_string(after.used_pages - before.used_pages) + " pages in use");
  }
  StatsSnapshot snap = stats.Snapshot();
  if (a.stats) std::fputs(snap.ToTable().c_str(), stderr);
  const std::string p = t->Name();
  std::printf(
      "check-transport %s: %llu pages verified by %d threads in %llu ms; "
      "%s_read_ops=%llu %s_read_bytes=%llu %s_write_ops=%llu %s_write_bytes=%llu\n",
      p.c_str(), static_cast<unsigned long long>(c.pages_checked.load()), a.threads,
      static_cast<unsigned long long>(NowMs() - t0), p.c_str(),
      static_cast<unsigned long long>(snap.Counter(p + "_read_ops")), p.c_str(),
      static_cast<unsigned long long>(snap.Counter(p + "_read_bytes")), p.c_str(),
      static_cast<unsigned long long>(snap.Counter(p + "_write_ops")), p.c_str(),
      static_cast<unsigned long long>(snap.Counter(p + "_write_bytes")));
  std::fflush(stdout);
  if (c.fail.exit_code != 0) {
    std::fprintf(stderr, "remora check-transport: FAILED: %s\n", c.fail.what.c_str());
    return c.fail.exit_code;
  }
  std::printf("check-transport %s: OK\n", p.c_str());
  return 0;
}

CommandRegistration reg("check-transport", [](CLI::App& app) {
  auto* sub = app.add_subcommand("check-transport",
                                 "Verify page reads/writes against a memory node, byte for byte");
  auto a = std::make_shared<Args>();
  sub->add_option("--transport", a->transport, "tcp, shm or rdma (default rdma)");
  sub->add_option("--address", a->address, "memory node: HOST:PORT (tcp, rdma) or socket (shm)")
      ->required();
  sub->add_option("--secret-file", a->secret_file, "the cluster's shared secret")->required();
  sub->add_option("--node-id", a->node_id, "processor node id to connect as (default 1)");
  sub->add_option("--threads", a->threads, "threads, each with its own pages (default 4)")
      ->check(CLI::Range(1, 64));
  sub->add_option("--pages", a->pages, "pages per thread (default 512)")
      ->check(CLI::Range(1, 1 << 20));
  sub->add_option("--rounds", a->rounds, "write/read-back rounds (default 3)")
      ->check(CLI::Range(1, 1 << 20));
  sub->add_option("--duration-s", a->duration_s, "run rounds for this long instead");
  sub->add_option("--batch", a->batch, "pages per batched request (default 16)")
      ->check(CLI::Range(1, 256));
  sub->add_option("--timeout-ms", a->timeout_ms, "per-request timeout (default 5000)")
      ->check(CLI::Range(1, 3'600'000));
  sub->add_option("--device", a->device, "rdma: local device (default: by route)");
  sub->add_option("--gid-index", a->gid_index, "rdma: local GID index (default: by route)");
  sub->add_option("--qps", a->qps, "rdma: queue pairs (default 4)")->check(CLI::Range(1, 16));
  sub->add_flag("--stats", a->stats, "print the transport's counters to stderr");
  AddLogLevelOption(sub);
  sub->callback([a] { SetExitCode(Run(*a)); });
});

}  // namespace
}  // namespace remora::cli
