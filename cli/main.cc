// remora: one command-line tool, one subcommand per role.
#include <spdlog/spdlog.h>

#include <map>
#include <memory>

#include "cli/command.h"
#include "common/log.h"
#include "remora_version.h"  // generated: cmake/remora_version.cmake

namespace remora::cli {
namespace {

std::map<std::string, AddCommandFn>& Registry() {
  static auto* r = new std::map<std::string, AddCommandFn>;
  return *r;
}
int g_exit_code = 0;
std::string g_log_level = "info";

}  // namespace

CommandRegistration::CommandRegistration(std::string name, AddCommandFn add) {
  Registry().emplace(std::move(name), std::move(add));
}

void SetExitCode(int code) { g_exit_code = code; }

void AddLogLevelOption(CLI::App* sub) {
  sub->add_option("--log-level", g_log_level, "trace|debug|info|warn|error|off")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "off"}));
  sub->preparse_callback([](std::size_t) {});
  sub->parse_complete_callback([] { remora::SetupLogging(g_log_level); });
}

}  // namespace remora::cli

int main(int argc, char** argv) {
  CLI::App app{"Remora: run unmodified programs with their memory on memory nodes"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "remora " REMORA_VERSION_STRING);
  remora::SetupLogging("info");
  for (auto& [name, add] : remora::cli::Registry()) add(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  return remora::cli::g_exit_code;
}
