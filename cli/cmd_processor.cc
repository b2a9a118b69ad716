// remora processor: the node-wide processor manager as a daemon. Programs
// started with `remora run --processor SOCKET` (or with the shim and
// REMORA_PROCESSOR_SOCKET set) attach to it.
#include <signal.h>
#include <sys/stat.h>

#include <cstdio>

#include "cli/command.h"
#include "cli/live_stats.h"
#include "cli/processor_setup.h"
#include "cli/processor_socket.h"

namespace remora::cli {
namespace {

struct ProcessorCmdArgs {
  ProcessorArgs proc;
  std::string socket;
  LiveStatsArgs live;
};

int RunProcessor(CLI::App* sub, ProcessorCmdArgs& a) {
  Status st = ApplyProcessorConfig(sub, &a.proc);
  if (!st.ok()) {
    std::fprintf(stderr, "remora processor: %s\n", st.ToString().c_str());
    return 2;
  }
  if (a.socket.empty()) {
    st = DefaultProcessorSocket(&a.socket);
    if (!st.ok()) {
      std::fprintf(stderr, "remora processor: %s\n", st.ToString().c_str());
      return 1;
    }
  }
  // Block the signals we wait for before any thread starts.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);

  std::unique_ptr<ProcessorStack> stack;
  st = StartProcessorStack(a.proc, a.socket, &stack);
  if (!st.ok()) {
    std::fprintf(stderr, "remora processor: %s\n", st.ToString().c_str());
    return 1;
  }
  std::printf("remora processor ready socket=%s\n", a.socket.c_str());
  std::fflush(stdout);
  std::fprintf(stderr, "remora processor: %s\n", stack->description.c_str());
  std::unique_ptr<LiveStats> live;
  if (a.live.enabled()) {
    st = LiveStats::Start(
        a.live,
        [m = stack->manager.get()](StatsSnapshot* s) {
          *s = m->Snapshot();
          return true;
        },
        &live);
    if (!st.ok()) {
      std::fprintf(stderr, "remora processor: %s\n", st.ToString().c_str());
      return 2;
    }
  }
  int sig = 0;
  sigwait(&set, &sig);
  std::fprintf(stderr, "remora processor: signal %d, shutting down (%zu programs attached)\n", sig,
               stack->manager->sessions());
  if (live) {
    live->Stop();
    live->Finish(stack->manager->Snapshot());
  }
  live.reset();  // its snapshots read the manager
  stack.reset();
  return 0;
}

CommandRegistration reg("processor", [](CLI::App& app) {
  auto a = std::make_shared<ProcessorCmdArgs>();
  auto* sub = app.add_subcommand(
      "processor", "Run the processor manager: the pcache serving every program on this node");
  sub->add_option(
      "--socket", a->socket,
      "unix socket programs attach to (default: $XDG_RUNTIME_DIR/remora-processor.sock, "
      "/run/remora/processor.sock for root)");
  sub->add_option("--socket-group", a->proc.socket_group,
                  "let this group's members attach programs (socket 0660, directory 0750); "
                  "default: only this user (0600)");
  AddProcessorOptions(sub, &a->proc);
  AddLiveStatsOptions(sub, &a->live, "no progress lines on stderr");
  AddLogLevelOption(sub);
  sub->callback([a, sub] { SetExitCode(RunProcessor(sub, *a)); });
});

}  // namespace
}  // namespace remora::cli
