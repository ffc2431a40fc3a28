// A LocalExecutor on a temporary run root with the berth-shim just built,
// shared by the local executor's tests.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "exec/local_executor.h"
#include "exec/run_files.h"
#include "exec_test_util.h"

namespace berth::exec::testing {

inline constexpr char kShimBinary[] = BERTH_BINARY_DIR "/bin/berth-shim";

class LocalFixture : public ::testing::Test {
 protected:
  LocalExecutorOptions Options() {
    LocalExecutorOptions o;
    o.run_root = tmp_.path() + "/runs";
    o.shim_path = kShimBinary;
    return o;
  }

  std::unique_ptr<LocalExecutor> Make(EventLog& log, LocalExecutorOptions o) {
    auto ex = MakeLocalExecutor(o, clock_, log.Sink());
    EXPECT_TRUE(ex.ok()) << ex.status().ToString();
    return ex.ok() ? std::move(ex).value() : nullptr;
  }
  std::unique_ptr<LocalExecutor> Make(EventLog& log) { return Make(log, Options()); }

  static TaskSpec Shell(JobId job, const std::string& script) {
    TaskSpec s;
    s.key = TaskKey{job, 0, 0};
    s.argv = {"sh", "-c", script};
    s.node = "local";
    return s;
  }

  // The task's whole retained output, read page by page through ReadLog.
  static std::string Output(LocalExecutor& ex, const TaskKey& key) {
    std::string out;
    int64_t offset = 0;
    while (true) {
      auto page = ex.ReadLog(key, offset, 4096);
      if (!page.ok() || page->data.empty()) return out;
      out += page->data;
      offset = page->next;
    }
  }

  static void Touch(const std::string& path) { std::ofstream(path) << "go\n"; }

  // Pids of the berth-shims (alive, not zombies) working on run directory `dir`.
  static std::vector<pid_t> ShimsOf(const std::string& dir) {
    std::vector<pid_t> out;
    const std::string needle = std::string("--run-dir") + '\0' + dir + '\0';
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator("/proc", ec)) {
      const std::string name = e.path().filename().string();
      if (name.find_first_not_of("0123456789") != std::string::npos) continue;
      std::string cmdline = ReadFileOrEmpty(e.path().string() + "/cmdline");
      if (cmdline.find(needle) == std::string::npos) continue;
      auto st = ReadProcStat(std::stoi(name));
      if (st && st->state != 'Z') out.push_back(std::stoi(name));
    }
    return out;
  }

  // Whether `pid` is a live process (not a zombie).
  static bool Alive(pid_t pid) {
    auto st = ReadProcStat(pid);
    return st && st->state != 'Z' && st->state != 'X';
  }

  TempDir tmp_;
  SystemClock clock_;
};

}  // namespace berth::exec::testing
