// Command groups of the berth CLI live in their own files and register here:
// each Add*Commands adds its subcommands to the app and returns, for each, the
// function to run when it was the one given. `server` is read at run time
// (after parsing) for the daemon's URL.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <string>
#include <vector>

#include "cli/client.h"

namespace berth::cli {

struct Command {
  CLI::App* app = nullptr;
  std::function<int()> run;
};

// Exit codes shared by every command.
constexpr int kExitError = 1;     // the request failed (the server said no)
constexpr int kExitUsage = 2;     // bad flags or input
constexpr int kExitNoServer = 3;  // berthd could not be reached

// Prints "berth: error: ..." and returns the exit code for `st`.
int Report(const Status& st);

// berth up / berth down: start and stop berthd (daemon_cmd.cc).
std::vector<Command> AddDaemonCommands(CLI::App& app);

// berth run / submit / ps / get / logs / cancel (job_cmd.cc).
std::vector<Command> AddJobCommands(CLI::App& app);

// berth events / berth gpus (cluster_cmd.cc).
std::vector<Command> AddClusterCommands(CLI::App& app);

// berth sim: replays a trace through the scheduler on a virtual clock.
// `berth sim inflation` (inflation_cmd.cc), under `sim`.
Command AddSimInflationCommand(CLI::App* sim);
std::vector<Command> AddSimCommands(CLI::App& app);

// berth pipeline: runs of DAGs of steps and their cron schedules (pipeline_cmd.cc).
std::vector<Command> AddPipelineCommands(CLI::App& app);

// berth train: distributed training jobs (train_cmd.cc).
std::vector<Command> AddTrainCommands(CLI::App& app);

// berth token create / list / revoke: API tokens (token_cmd.cc).
std::vector<Command> AddTokenCommands(CLI::App& app);

// berth exp: hyperparameter-tuning experiments (exp_cmd.cc).
std::vector<Command> AddExperimentCommands(CLI::App& app);

}  // namespace berth::cli
