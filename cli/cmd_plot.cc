// remora plot: draws a timeline written by `remora run --timeline` as a PNG.
//
// The drawing is a Python script using Debian's matplotlib
// (tools/remora-plot.py). It is found next to the binary (the build tree
// gets a copy at configure time) or in ../share/remora/ (installed), and run
// with the system's /usr/bin/python3, the interpreter Debian's
// python3-matplotlib belongs to (a python3 first in PATH may be another).
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "cli/command.h"
#include "cli/local_memory_node.h"

namespace remora::cli {
namespace {

constexpr const char* kPython = "/usr/bin/python3";
constexpr const char* kScript = "remora-plot.py";

struct PlotArgs {
  std::string timeline, output, title;
};

std::string FindScript() {
  const std::string self = SelfExecutable();
  const std::string dir = self.substr(0, self.rfind('/'));
  for (const std::string& p :
       {dir + "/" + kScript, dir + "/../share/remora/" + std::string(kScript)}) {
    if (::access(p.c_str(), R_OK) == 0) return p;
  }
  return "";
}

int RunPlot(const PlotArgs& a) {
  const std::string script = FindScript();
  if (script.empty()) {
    std::fprintf(stderr, "remora plot: %s not found next to %s or in ../share/remora/\n", kScript,
                 SelfExecutable().c_str());
    return 2;
  }
  if (::access(kPython, X_OK) != 0) {
    std::fprintf(stderr, "remora plot: %s not found (Debian: apt-get install python3-matplotlib)\n",
                 kPython);
    return 2;
  }
  std::vector<std::string> argv = {kPython, script, a.timeline, "-o", a.output};
  if (!a.title.empty()) argv.insert(argv.end(), {"--title", a.title});
  std::vector<char*> cargv;
  for (auto& s : argv) cargv.push_back(s.data());
  cargv.push_back(nullptr);
  ::execv(kPython, cargv.data());
  std::fprintf(stderr, "remora plot: cannot execute %s: %s\n", kPython, std::strerror(errno));
  return 1;
}

CommandRegistration reg("plot", [](CLI::App& app) {
  auto a = std::make_shared<PlotArgs>();
  auto* sub = app.add_subcommand(
      "plot",
      "Draw a timeline (remora run --timeline) as a PNG: faults, fills, evictions, "
      "resident lines, miss latency");
  sub->add_option("timeline", a->timeline, "JSON lines written by --timeline")
      ->required()
      ->check(CLI::ExistingFile);
  sub->add_option("-o,--output", a->output, "PNG file to write")->required();
  sub->add_option("--title", a->title, "title above the panels (default: the timeline's name)");
  sub->footer(
      "Example: remora run --pcache 48M --timeline run.jsonl -- ./prog && "
      "remora plot run.jsonl -o run.png");
  sub->callback([a] { SetExitCode(RunPlot(*a)); });
});

}  // namespace
}  // namespace remora::cli
