// Helpers for the pipeline integration tests: start runs through the CLI and
// wait for their states through the API.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>

#include "harness.h"

namespace berth::testing {

inline std::string StartRun(const Daemon& d, const std::string& dir, const std::string& yaml,
                            std::vector<std::string> params = {}) {
  static int n = 0;
  std::string file = dir + "/pipeline-" + std::to_string(++n) + ".yaml";
  WriteFile(file, yaml);
  std::vector<std::string> args = {"pipeline", "run", "-f", file};
  for (const auto& p : params) args.insert(args.end(), {"-p", p});
  CommandResult r = d.Cli(args);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return Trim(r.out);
}

inline nlohmann::json GetRun(const Daemon& d, const std::string& id) {
  return d.Get("/api/v1/pipelines/runs/" + id);
}

inline nlohmann::json WaitRunEnd(const Daemon& d, const std::string& id,
                                 std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
  nlohmann::json run;
  WaitFor(
      [&] {
        run = GetRun(d, id);
        std::string s = run.is_object() ? run.value("state", "") : "";
        return s == "Succeeded" || s == "Failed" || s == "Cancelled";
      },
      timeout);
  return run;
}

inline nlohmann::json Node(const nlohmann::json& run, const std::string& name) {
  if (run.is_object())
    for (const auto& n : run["nodes"])
      if (n["name"] == name) return n;
  return nlohmann::json::object();
}

// Whether berth-shim has recorded the end of job `job_id`'s task: the
// status.json in its run directory (written even while berthd is down).
inline bool TaskStatusWritten(const Daemon& d, int64_t job_id) {
  std::error_code ec;
  std::filesystem::directory_iterator it(d.data_dir() + "/runs", ec);
  if (ec) return false;
  for (const auto& e : it)
    if (e.path().filename().string().rfind("job-" + std::to_string(job_id) + ".", 0) == 0 &&
        std::filesystem::exists(e.path() / "status.json", ec))
      return true;
  return false;
}

// A berthd with 4 declared GPUs and a scratch directory, for pipeline tests.
class PipelineDaemonTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(d_.Start()) << ReadFile(d_.data_dir() + "/berthd.log"); }
  Daemon d_{{"--gpus", "4"}};
  TempDir work_;
};

}  // namespace berth::testing
