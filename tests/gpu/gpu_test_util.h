// Helpers for the gpu tests: a temp dir, the fake NVML driver's config file,
// a child process in its own process group, and a data-driven FakeInventory.
#pragma once

#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "gpu/inventory.h"

namespace berth::gpu::testing {

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "berth-gpu-XXXXXX").string();
    path_ = mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// The fake driver's config file. Write() replaces it atomically (write, then
// rename), so the driver never reads a half-written file.
class FakeNvmlConfig {
 public:
  explicit FakeNvmlConfig(const std::string& dir) : path_(dir + "/fake_nvml.json") {
    setenv("BERTH_FAKE_NVML_CONFIG", path_.c_str(), 1);
  }
  void Write(const nlohmann::json& config) {
    std::string tmp = path_ + ".tmp";
    {
      std::ofstream out(tmp);
      out << config.dump(2);
    }
    std::filesystem::rename(tmp, path_);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

inline std::string FakeNvmlPath() { return BERTH_FAKE_NVML_PATH; }
inline std::string FakeNvmlV1Path() { return BERTH_FAKE_NVML_V1_PATH; }
inline std::string FakeNvmlNoHealthPath() { return BERTH_FAKE_NVML_NOHEALTH_PATH; }

// A device entry for the fake driver's config.
inline nlohmann::json FakeDevice(int index, int util = 0) {
  char uuid[64], bus[32];
  std::snprintf(uuid, sizeof(uuid), "GPU-00000000-1111-2222-3333-%012d", index);
  std::snprintf(bus, sizeof(bus), "00000000:%02X:00.0", 0x10 + index);
  return {{"name", "NVIDIA H100 80GB HBM3"},
          {"uuid", uuid},
          {"pci_bus_id", bus},
          {"memory_total_mib", 81559},
          {"utilization", util},
          {"temperature", 40 + index},
          {"power_mw", 70000 + index * 1000},
          {"sm_clock_mhz", 1980},
          {"processes", nlohmann::json::array()}};
}

// A child process (sleep) leading its own process group, as berth-shim makes
// one per task. Killed and reaped on destruction.
class ChildGroup {
 public:
  ChildGroup() {
    pid_ = fork();
    if (pid_ == 0) {
      setpgid(0, 0);
      execl("/bin/sleep", "sleep", "60", static_cast<char*>(nullptr));
      _exit(127);
    }
    setpgid(pid_, pid_);  // also from the parent, so the group exists when fork returns
  }
  ~ChildGroup() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      int st = 0;
      waitpid(pid_, &st, 0);
    }
  }
  int pid() const { return pid_; }

 private:
  int pid_ = -1;
};

// An Inventory whose samples the test sets directly.
class FakeInventory final : public Inventory {
 public:
  std::string Describe() const override { return "fake"; }
  std::vector<model::NodeInfo> Nodes() const override { return {}; }
  Result<std::vector<GpuSample>> Sample() override {
    std::lock_guard<std::mutex> l(mu_);
    if (!fail_.empty()) return Unavailable(fail_);
    return samples_;
  }
  void Set(std::vector<GpuSample> s) {
    std::lock_guard<std::mutex> l(mu_);
    samples_ = std::move(s);
  }
  void SetUtil(size_t i, std::optional<int> util) {
    std::lock_guard<std::mutex> l(mu_);
    samples_.at(i).util_percent = util;
  }
  void Fail(std::string why) {
    std::lock_guard<std::mutex> l(mu_);
    fail_ = std::move(why);
  }

 private:
  std::mutex mu_;
  std::vector<GpuSample> samples_;
  std::string fail_;
};

inline GpuSample MakeSample(const std::string& node, int index, int util, MiB used = 1000) {
  GpuSample s;
  s.node = node;
  s.index = index;
  s.uuid = "GPU-test-" + std::to_string(index);
  s.model = "Test GPU";
  s.util_percent = util;
  s.memory_total = 81920;
  s.memory_used = used;
  s.memory_free = 81920 - used;
  s.temperature_c = 50;
  s.power_mw = 300000;
  s.sm_clock_mhz = 1980;
  return s;
}

}  // namespace berth::gpu::testing
