// berth: the command-line client of berthd. Each group of commands lives in
// its own file (commands.h) and registers here.
#include <signal.h>

#include <CLI/CLI.hpp>
#include <iostream>

#include "cli/commands.h"
#include "common/text.h"

#ifndef BERTH_VERSION
#define BERTH_VERSION "0.0.0"
#endif

namespace berth::cli {

int Report(const Status& st) {
  std::cerr << "berth: error: " << EscapeForTerminal(st.message()) << "\n";
  if (st.code() == StatusCode::kUnavailable) return kExitNoServer;
  if (st.code() == StatusCode::kInvalidArgument || st.code() == StatusCode::kUnschedulable)
    return kExitUsage;
  return kExitError;
}

namespace {

int Main(int argc, char** argv) {
  CLI::App app{"berth: run jobs on a shared pool of GPUs (client of berthd)", "berth"};
  app.require_subcommand(1);
  std::string server_flag;
  app.add_option(
      "--server", server_flag,
      "berthd URL (default: $BERTH_SERVER, else the daemon recorded in $BERTH_DATA_DIR, /run/berth "
      "or ~/.local/share/berth, else http://127.0.0.1:7420)");
  app.set_version_flag("--version", BERTH_VERSION);

  // The order of the groups is the order of --help: up / down, the job commands, events and
  // gpus, then sim, pipelines and training.
  std::vector<Command> commands;
  for (auto group :
       {AddDaemonCommands, AddJobCommands, AddClusterCommands, AddSimCommands, AddPipelineCommands,
        AddTrainCommands, AddTokenCommands, AddExperimentCommands}) {
    auto added = group(app);
    commands.insert(commands.end(), added.begin(), added.end());
  }

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : kExitUsage;
  }
  for (const Command& c : commands)
    if (c.app->parsed()) return c.run();
  return 0;
}

}  // namespace
}  // namespace berth::cli

int main(int argc, char** argv) {
  signal(SIGPIPE, SIG_IGN);
  return berth::cli::Main(argc, argv);
}
