// berth train: submits a TrainingJob document and optionally waits for it,
// streaming worker 0's output (rank 0 usually reports the loss).
#include <cstdlib>
#include <fstream>
#include <memory>
#include <iostream>
#include <sstream>

#include "cli/commands.h"
#include "cli/spec_defaults.h"

namespace berth::cli {
namespace {

struct TrainFlags {
  std::string file;
  bool wait = false;
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
  auto job = api.Post("/api/v1/jobs", WithSpecDefaults(ss.str(), DefaultsForFile(f.file)), "application/yaml");
  if (!job.ok()) return Report(job.status());
  std::string id = (*job)["id"].dump();
  if (!f.wait) {
    std::cout << id << "\n";
    return 0;
  }
  std::cerr << "berth: training job " << id << " submitted\n";
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
  if (state == "Succeeded") return 0;
  std::cerr << "berth: training job " << id << " " << state << ": "
            << (*final_job).value("message", "") << "\n";
  const auto& code = (*final_job)["exitCode"];
  return code.is_number_integer() && code.get<int>() != 0 ? code.get<int>() : kExitError;
}

}  // namespace

std::vector<Command> AddTrainCommands(CLI::App& app) {
  auto flags = std::make_shared<TrainFlags>();
  auto* train = app.add_subcommand("train", "submit a distributed training job (kind: TrainingJob)");
  train->add_option("-f,--file", flags->file, "the TrainingJob file ('-' for standard input)")->required();
  train->add_flag("-w,--wait", flags->wait, "stream worker 0's output and exit with the job's exit code");
  return {{train, [flags, &app] {
             std::string server = "http://127.0.0.1:7420";
             if (const char* s = std::getenv("BERTH_SERVER"); s && *s) server = s;
             CLI::Option* opt = app.get_option_no_throw("--server");
             if (opt && opt->count()) server = opt->as<std::string>();
             return RunTrain(*flags, server);
           }}};
}

}  // namespace berth::cli
