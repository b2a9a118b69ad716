// remora run: runs an unmodified program with its memory on a memory node.
//
// The program is started with the shim and a real allocator preloaded and
// attaches to a processor manager: the one given with --processor, or one
// embedded in this process (with a local memory node on shared memory, or
// --memory-node). After the program exits and its address space is torn
// down, the counters are printed (stderr) and optionally written as JSON.
// The exit status is the program's (128 + signal if a signal ended it).
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string_view>
#include <thread>

#include "cli/command.h"
#include "cli/live_stats.h"
#include "cli/local_memory_node.h"
#include "cli/processor_setup.h"
#include "cli/processor_socket.h"
#include "common/log.h"
#include "common/size.h"
#include "processor/abi/runtime_protocol.h"

extern char** environ;

namespace remora::cli {
namespace {

struct RunArgs {
  ProcessorArgs proc;
  std::string processor;  // socket of a running manager; empty: embed one
  std::string stats_json;
  LiveStatsArgs live;  // --stats-interval, --timeline, --quiet
  std::vector<std::string> command;
};

std::string ShimPath() {
  const std::string self = SelfExecutable();
  const std::string dir = self.substr(0, self.rfind('/'));
  for (const std::string& p :
       {dir + "/libremora_shim.so", dir + "/../lib/remora/libremora_shim.so"}) {
    if (::access(p.c_str(), R_OK) == 0) return p;
  }
  return "";
}

pid_t g_child = -1;
void Forward(int sig) {
  if (g_child > 0) ::kill(g_child, sig);
}

// Starts the program with the shim and the allocator preloaded; returns its
// pid, or -1 with the reason printed. posix_spawn (a vfork and an exec), not
// fork: copying this process's page tables — the manager, its pcache
// metadata, the embedded memory node — cost every run milliseconds, and the
// child of a threaded process must not allocate (setenv) before its exec.
pid_t Launch(const std::vector<std::string>& command, const std::string& shim,
             const std::string& socket) {
  std::string preload = shim + ":" + REMORA_ALLOCATOR_LIB;
  if (const char* old = std::getenv("LD_PRELOAD"); old && *old) preload += std::string(":") + old;
  const std::string socket_var = std::string(rt::kSocketEnv) + "=";
  std::vector<std::string> env_storage;
  for (char** e = environ; *e; ++e) {
    const std::string_view v(*e);
    if (v.rfind("LD_PRELOAD=", 0) != 0 && v.rfind(socket_var, 0) != 0) env_storage.emplace_back(v);
  }
  env_storage.push_back("LD_PRELOAD=" + preload);
  env_storage.push_back(socket_var + socket);
  std::vector<char*> envp, argv;
  for (auto& e : env_storage) envp.push_back(e.data());
  envp.push_back(nullptr);
  for (const auto& s : command) argv.push_back(const_cast<char*>(s.c_str()));
  argv.push_back(nullptr);
  pid_t pid = -1;
  const int rc = ::posix_spawnp(&pid, argv[0], nullptr, nullptr, argv.data(), envp.data());
  if (rc != 0) {
    std::fprintf(stderr, "remora run: cannot execute %s: %s\n", argv[0], std::strerror(rc));
    return -1;
  }
  return pid;
}

int WaitProgram(pid_t pid) {
  struct sigaction sa {};
  sa.sa_handler = Forward;
  g_child = pid;
  for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGQUIT}) ::sigaction(sig, &sa, nullptr);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return 1;
  }
  g_child = -1;
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 1;
}

void PrintSummary(const StatsSnapshot& s, const std::string& description, int status) {
  auto c = [&](const char* name) { return static_cast<long long>(s.Counter(name)); };
  std::fprintf(stderr, "remora: program exited with status %d; %s\n", status, description.c_str());
  std::fprintf(stderr,
               "  faults        nr_pgfault %lld (missing %lld, wp %lld), concurrent eviction %lld\n"
               "  fills         memory %lld, victim %lld, zero %lld, file %lld\n"
               "  evictions     triggered %lld, succeed %lld (to victim %lld, clean dropped %lld), "
               "eagain %lld, failure %lld\n"
               "  victim cache  hit %lld, insert %lld, flush dirty %lld/%lld, evicted %lld\n"
               "  zaps          %lld pages, backpressure waits %lld\n"
               "  stays local   unmanaged anonymous memory %lld KiB at most (sampled)\n"
               "  after exit    pcache lines %lld, victim entries %lld, memory-node pages %lld\n",
               c("nr_pgfault"), c("nr_pgfault_missing"), c("nr_pgfault_wp"),
               c("nr_pgfault_due_to_concurrent_eviction"), c("nr_pcache_fill_from_memory"),
               c("nr_pcache_fill_from_victim"), c("nr_pcache_fill_zerofill"),
               c("nr_pcache_fill_from_file"), c("nr_pcache_eviction_triggered"),
               c("nr_pcache_eviction_succeed"), c("nr_pcache_eviction_to_victim"),
               c("nr_pcache_eviction_clean_dropped"), c("nr_pcache_eviction_eagain"),
               c("nr_pcache_eviction_failure"), c("nr_victim_hit"), c("nr_victim_insert"),
               c("nr_victim_flush_finished_dirty"), c("nr_victim_flush_submitted_dirty"),
               c("nr_victim_eviction_succeed"), c("nr_zap_pages"), c("nr_zap_throttle_wait"),
               c("unmanaged_anon_peak_bytes") / 1024, c("pcache_lines_used"),
               c("victim_entries_used"), c("memory_node_used_pages"));
  auto h = s.histograms.find("pgfault_service_ns");
  if (h != s.histograms.end() && h->second.count > 0) {
    std::fprintf(stderr, "  miss service  p50 %.1f us, p99 %.1f us\n",
                 h->second.Percentile(50) / 1000.0, h->second.Percentile(99) / 1000.0);
  }
}

// Counters as a difference between two snapshots of a shared manager
// (gauges and histograms as they are at the end).
StatsSnapshot Delta(const StatsSnapshot& before, StatsSnapshot after) {
  for (auto& [name, v] : after.counters) {
    auto g = after.is_gauge.find(name);
    if (g != after.is_gauge.end() && g->second) continue;
    v -= before.Counter(name);
  }
  return after;
}

int Run(CLI::App* sub, RunArgs& a) {
  // --quiet: nothing on stderr but warnings and errors (and the program's
  // own), unless a log level was asked for.
  if (a.live.quiet && sub->count("--log-level") == 0) SetupLogging("warn");
  Status st = ApplyProcessorConfig(sub, &a.proc);
  if (!st.ok()) {
    std::fprintf(stderr, "remora run: %s\n", st.ToString().c_str());
    return 2;
  }
  if (!a.processor.empty() && !a.proc.metrics_listen.empty()) {
    std::fprintf(stderr,
                 "remora run: --metrics-listen serves an embedded manager; give it to the "
                 "`remora processor` behind %s instead\n",
                 a.processor.c_str());
    return 2;
  }
  const std::string shim = ShimPath();
  if (shim.empty()) {
    std::fprintf(stderr, "remora run: libremora_shim.so not found next to %s\n",
                 SelfExecutable().c_str());
    return 2;
  }

  std::unique_ptr<ProcessorStack> stack;
  std::string socket = a.processor;
  std::string tmpdir;
  StatsSnapshot before;
  if (socket.empty()) {
    char tmpl[] = "/tmp/remora-run-XXXXXX";
    if (!::mkdtemp(tmpl)) {
      std::fprintf(stderr, "remora run: mkdtemp: %s\n", std::strerror(errno));
      return 1;
    }
    tmpdir = tmpl;
    socket = tmpdir + "/processor.sock";
    st = StartProcessorStack(a.proc, socket, &stack);
    if (!st.ok()) {
      ::rmdir(tmpdir.c_str());
      std::fprintf(stderr, "remora run: %s\n", st.ToString().c_str());
      return 1;
    }
    if (stack->metrics)
      std::fprintf(stderr, "remora run: Prometheus metrics on %s\n", stack->metrics->url().c_str());
  } else {
    std::string json;
    st = ProcessorStatsJson(socket, &json);
    if (st.ok()) st = StatsSnapshot::FromJson(json, &before);
    if (!st.ok()) {
      std::fprintf(stderr, "remora run: %s\n", st.ToString().c_str());
      return 1;
    }
  }

  std::unique_ptr<LiveStats> live;
  if (a.live.enabled()) {
    LiveStats::SnapshotFn snap;
    if (stack) {
      snap = [m = stack->manager.get()](StatsSnapshot* s) {
        *s = m->Snapshot();
        return true;
      };
    } else {
      snap = [socket, before](StatsSnapshot* s) {
        std::string json;
        StatsSnapshot now;
        if (!ProcessorStatsJson(socket, &json).ok() || !StatsSnapshot::FromJson(json, &now).ok())
          return false;
        *s = Delta(before, std::move(now));
        return true;
      };
    }
    st = LiveStats::Start(a.live, std::move(snap), &live);
    if (!st.ok()) {
      if (stack) {
        stack.reset();
        ::unlink(socket.c_str());
        ::rmdir(tmpdir.c_str());
      }
      std::fprintf(stderr, "remora run: %s\n", st.ToString().c_str());
      return 2;
    }
  }

  // A program that cannot start exits 127, as a shell reports it; the
  // teardown and the counters below run as for any other exit.
  pid_t pid = Launch(a.command, shim, socket);
  const int status = pid < 0 ? 127 : WaitProgram(pid);

  StatsSnapshot final_snap;
  std::string description;
  if (stack) {
    // The program's teardown (lines, victim entries, memory-node pages)
    // finishes after its exit: wait for it so the counters show the end state.
    if (!stack->manager->WaitIdle(std::chrono::seconds(30)))
      std::fprintf(stderr,
                   "remora run: programs still attached after 30 s (children left running?)\n");
    if (live) live->Stop();
    final_snap = stack->manager->Snapshot();
    description = stack->description;
    if (live) live->Finish(final_snap);
    live.reset();  // its snapshots read the manager
    stack.reset();
    ::unlink(socket.c_str());
    ::rmdir(tmpdir.c_str());
  } else {
    // A shared manager: wait until the programs we added are gone.
    const std::int64_t base = before.Counter("processes_attached");
    if (live) live->Stop();
    std::string json;
    for (int i = 0; i < 300; ++i) {
      StatsSnapshot now;
      if (!ProcessorStatsJson(socket, &json).ok() || !StatsSnapshot::FromJson(json, &now).ok())
        break;
      final_snap = Delta(before, now);
      if (now.Counter("processes_attached") <= base) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    description = "processor manager at " + socket;
    if (final_snap.counters.empty()) {
      std::fprintf(stderr,
                   "remora run: program exited with status %d; no counters: the processor "
                   "manager at %s did not answer\n",
                   status, socket.c_str());
      return status;
    }
    if (live) live->Finish(final_snap);
  }
  if (!a.live.quiet) PrintSummary(final_snap, description, status);
  if (!a.stats_json.empty()) {
    std::ofstream f(a.stats_json);
    f << final_snap.ToJson();
    if (!f) std::fprintf(stderr, "remora run: cannot write %s\n", a.stats_json.c_str());
  }
  return status;
}

CommandRegistration reg("run", [](CLI::App& app) {
  auto a = std::make_shared<RunArgs>();
  auto* sub = app.add_subcommand(
      "run", "Run a program with its memory on a memory node behind a small pcache");
  sub->add_option("--processor", a->processor,
                  "attach to the processor manager on this socket instead of embedding one");
  AddProcessorOptions(sub, &a->proc);
  sub->add_option("--stats-json", a->stats_json, "write the final counters here as JSON");
  AddLiveStatsOptions(sub, &a->live, "no progress lines and no counter summary at exit");
  sub->add_option("command", a->command, "the program and its arguments (after --)")
      ->required()
      ->expected(-1);
  AddLogLevelOption(sub);
  sub->footer(
      "Examples:\n  remora run --pcache 48M -- python3 script.py\n"
      "  remora run --pcache 100M --stats-interval 1 --timeline run.jsonl -- ./prog && "
      "remora plot run.jsonl -o run.png");
  sub->callback([a, sub] { SetExitCode(Run(sub, *a)); });
});

}  // namespace
}  // namespace remora::cli
