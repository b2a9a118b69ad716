// Subcommands of the `remora` CLI register themselves here, one file each
// (cli/cmd_*.cc), so adding a subcommand never touches main.cc.
//
//   static remora::cli::CommandRegistration reg(
//       "sim", [](CLI::App& app) { auto* sub = app.add_subcommand("sim", "..."); ... });
//
// A subcommand's callback reports its exit status with SetExitCode().
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <string>

namespace remora::cli {

using AddCommandFn = std::function<void(CLI::App&)>;

struct CommandRegistration {
  CommandRegistration(std::string name, AddCommandFn add);
};

void SetExitCode(int code);

// Adds --log-level to a subcommand and applies it before the callback runs.
void AddLogLevelOption(CLI::App* sub);

}  // namespace remora::cli
