// remora stats: print a running daemon's counters and histograms.
//
// A memory node (over TCP or its unix socket, authenticated) or a processor
// manager (its unix socket, local to this node). With --watch, a table
// refreshed every --interval seconds with rates per second, as `vmstat 1`.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <functional>
#include <thread>

#include <fmt/format.h>

#include "cli/cluster_status.h"
#include "cli/command.h"
#include "cli/live_stats.h"
#include "cli/processor_socket.h"
#include "net/auth.h"
#include "remora/stats.h"
#include "remora/transport.h"

namespace remora::cli {
namespace {

struct StatsArgs {
  std::string memory_node;
  std::string shm;
  std::string processor;
  std::string secret_file;
  std::string cluster;
  bool json = false;
  bool prometheus = false;
  int timeout_ms = 5000;
  bool watch = false;
  double interval = 1;
  int count = 0;       // tables to print with --watch; 0: until interrupted
  std::string source;  // "processor manager SOCKET", "memory node ADDRESS"
};

// Fetches the daemon's snapshot as JSON text.
using FetchFn = std::function<Status(std::string*)>;

int Watch(const StatsArgs& a, const FetchFn& fetch) {
  const bool tty = ::isatty(STDOUT_FILENO);
  StatsSnapshot prev;
  auto prev_time = std::chrono::steady_clock::now();
  const auto start = prev_time;
  auto next = prev_time;
  for (int n = 0; a.count == 0 || n < a.count; ++n) {
    std::this_thread::sleep_until(next);
    next += std::chrono::duration_cast<std::chrono::steady_clock::duration>(
        std::chrono::duration<double>(a.interval));
    std::string json;
    StatsSnapshot now;
    Status st = fetch(&json);
    if (st.ok()) st = StatsSnapshot::FromJson(json, &now);
    if (!st.ok()) {
      std::fprintf(stderr, "remora stats: %s\n", st.ToString().c_str());
      return 1;
    }
    const auto t = std::chrono::steady_clock::now();
    const double seconds = std::chrono::duration<double>(t - prev_time).count();
    const double since = std::chrono::duration<double>(t - start).count();
    std::string out = tty ? "\033[H\033[2J" : "";  // refresh in place on a terminal
    out += n == 0 ? fmt::format("remora stats: totals ({})\n", a.source)
                  : fmt::format("remora stats: {:.1f} s, last {:.1f} s ({})\n", since, seconds,
                                a.source);
    out += WatchTable(n == 0 ? nullptr : &prev, now, seconds);
    if (!tty) out += "\n";
    std::fputs(out.c_str(), stdout);
    std::fflush(stdout);
    prev = std::move(now);
    prev_time = t;
  }
  return 0;
}

// Prints a snapshot given as JSON text the way the flags ask.
int Print(const StatsArgs& a, const std::string& json) {
  if (a.json) {
    std::fputs(json.c_str(), stdout);
    if (json.empty() || json.back() != '\n') std::fputc('\n', stdout);
    return 0;
  }
  StatsSnapshot snap;
  Status st = StatsSnapshot::FromJson(json, &snap);
  if (!st.ok()) {
    std::fprintf(stderr, "remora stats: %s\n", st.ToString().c_str());
    return 1;
  }
  std::fputs(a.prometheus ? snap.ToPrometheus().c_str() : snap.ToTable().c_str(), stdout);
  return 0;
}

// Prints once, or watches.
int Show(const StatsArgs& a, const FetchFn& fetch) {
  if (a.watch) return Watch(a, fetch);
  std::string json;
  Status st = fetch(&json);
  if (!st.ok()) {
    std::fprintf(stderr, "remora stats: %s\n", st.ToString().c_str());
    return 1;
  }
  return Print(a, json);
}

int RunStats(StatsArgs& a) {
  if (!a.cluster.empty()) {
    std::string processor = a.processor;
    if (processor.empty()) {
      Status st = DefaultProcessorSocket(&processor);
      if (!st.ok()) {
        std::fprintf(stderr, "remora stats: %s\n", st.ToString().c_str());
        return 1;
      }
    }
    return PrintClusterStatus(a.cluster, processor, a.json, a.timeout_ms);
  }
  if (!a.processor.empty()) {
    a.source = "processor manager " + a.processor;
    return Show(a, [&a](std::string* json) { return ProcessorStatsJson(a.processor, json); });
  }
  if (a.secret_file.empty()) {
    std::fprintf(stderr, "remora stats: a memory node needs --secret-file\n");
    return 2;
  }
  TransportOptions o;
  if (!a.shm.empty()) {
    o.kind = TransportKind::kShm;
    o.address = a.shm;
  } else {
    o.kind = TransportKind::kTcp;
    o.address = a.memory_node;
  }
  o.timeout_ms = a.timeout_ms;
  Status st = auth::LoadSecretFile(a.secret_file, &o.secret);
  if (!st.ok()) {
    std::fprintf(stderr, "remora stats: %s\n", st.ToString().c_str());
    return 2;
  }
  auto t = ConnectTransport(o, &st);
  if (!t) {
    std::fprintf(stderr, "remora stats: cannot reach %s: %s\n", o.address.c_str(),
                 st.ToString().c_str());
    return 1;
  }
  a.source = "memory node " + o.address;
  return Show(a, [&t](std::string* json) { return t->RemoteStatsJson(json); });
}

CommandRegistration reg("stats", [](CLI::App& app) {
  auto args = std::make_shared<StatsArgs>();
  auto* sub = app.add_subcommand(
      "stats", "Print a running processor manager's or memory node's counters and histograms");
  auto* pm = sub->add_option("--processor", args->processor,
                             "processor manager socket (default: $REMORA_PROCESSOR_SOCKET, "
                             "/run/remora/processor.sock for root, "
                             "$XDG_RUNTIME_DIR/remora-processor.sock)");
  auto* mn = sub->add_option("--memory-node", args->memory_node, "memory node HOST:PORT (TCP)");
  auto* shm = sub->add_option("--shm", args->shm, "memory node unix socket (shared memory)");
  auto* cl = sub->add_option("--cluster", args->cluster,
                             "every memory node of a cluster description, with the processor "
                             "manager's view of each (--processor, or the default socket)")
                 ->check(CLI::ExistingFile);
  cl->excludes(mn);
  cl->excludes(shm);
  mn->excludes(shm);
  pm->excludes(mn);
  pm->excludes(shm);
  sub->add_option("--secret-file", args->secret_file,
                  "file holding the memory node's shared secret")
      ->check(CLI::ExistingFile);
  auto* j = sub->add_flag("--json", args->json, "print JSON");
  auto* p = sub->add_flag("--prometheus", args->prometheus, "print Prometheus text format");
  j->excludes(p);
  auto* w = sub->add_flag("--watch", args->watch,
                          "refresh a table every --interval seconds, as vmstat does: counters "
                          "with their rate per second, gauges with their change, histograms "
                          "with the interval's percentiles");
  w->excludes(j);
  w->excludes(p);
  sub->add_option("--interval", args->interval, "seconds between --watch tables (default 1)")
      ->check(CLI::Range(0.05, 86400.0));
  sub->add_option("--count", args->count, "stop --watch after this many tables (0: never)")
      ->check(CLI::NonNegativeNumber);
  sub->add_option("--timeout-ms", args->timeout_ms, "request timeout")->check(CLI::PositiveNumber);
  AddLogLevelOption(sub);
  sub->callback([args] {
    if (args->memory_node.empty() && args->shm.empty() && args->processor.empty() &&
        args->cluster.empty()) {
      Status st = DefaultProcessorSocket(&args->processor);
      if (!st.ok()) {
        std::fprintf(stderr, "remora stats: %s\n", st.ToString().c_str());
        SetExitCode(1);
        return;
      }
    }
    SetExitCode(RunStats(*args));
  });
});

}  // namespace
}  // namespace remora::cli
