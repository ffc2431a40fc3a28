// berth train: submits a TrainingJob document and optionally waits for it,
// streaming worker 0's output (rank 0 usually reports the loss).
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>

#include "cli/commands.h"
#include "cli/discovery.h"
#include "cli/interrupt.h"
#include "cli/spec_defaults.h"

namespace berth::cli {
namespace {

struct TrainFlags {
  std::string file;
  bool wait = false;
  bool detach_on_interrupt = false;
};

int RunTrain(const TrainFlags& f, const std::string& server) {
  std::stringstream ss;
  if (f.file == "-") {
    ss << std::cin.rdbuf();
  } else {
    std::ifstream in(f.file);
    if (!in) return Report(InvalidArgument("-f: cannot read \"" + f.file + "\""));
    ss << in.rdbuf();
  }
  ApiClient api(server);
  auto job = api.Post("/api/v1/jobs", WithSpecDefaults(ss.str(), DefaultsForFile(f.file)),
                      "application/yaml");
  if (!job.ok()) return Report(job.status());
  std::string id = (*job)["id"].dump();
  if (!f.wait) {
    std::cout << id << "\n";
    return 0;
  }
  std::cerr << "berth: training job " << id << " submitted\n";
  WaitInterrupts interrupts(api.url(), id, "training job " + id, f.detach_on_interrupt);
  nlohmann::json end;
  Status st = api.Stream("/api/v1/jobs/" + id + "/logs?follow=true&worker=0",
                         [&](const std::string& event, const std::string& data) {
                           if (event == "end") {
                             end = nlohmann::json::parse(data, nullptr, false);
                             return false;
                           }
                           std::cout << data << "\n" << std::flush;
                           return true;
                         });
  if (!st.ok()) return Report(st);
  auto final_job = api.Get("/api/v1/jobs/" + id);
  if (!final_job.ok()) return Report(final_job.status());
  std::string state = (*final_job).value("state", "");
  if (interrupts.interrupted()) {
    std::cerr << "berth: training job " << id << " " << state << "\n";
    return kExitInterrupted;
  }
  if (state == "Succeeded") return 0;
  std::cerr << "berth: training job " << id << " " << state << ": "
            << (*final_job).value("message", "") << "\n";
  const auto& code = (*final_job)["exitCode"];
  return code.is_number_integer() && code.get<int>() != 0 ? code.get<int>() : kExitError;
}

}  // namespace

std::vector<Command> AddTrainCommands(CLI::App& app) {
  auto flags = std::make_shared<TrainFlags>();
  auto* train =
      app.add_subcommand("train", "submit a distributed training job (kind: TrainingJob)");
  train->add_option("-f,--file", flags->file, "the TrainingJob file ('-' for standard input)")
      ->required();
  train->add_flag(
      "-w,--wait", flags->wait,
      "stream worker 0's output and exit with the job's exit code (Ctrl-C cancels the job)");
  train->add_flag("--detach-on-interrupt", flags->detach_on_interrupt,
                  "with --wait: Ctrl-C stops waiting and leaves the job running");
  return {{train, [flags, &app] { return RunTrain(*flags, ServerUrlOrExit(app)); }}};
}

}  // namespace berth::cli
