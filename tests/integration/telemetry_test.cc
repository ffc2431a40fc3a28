// berthd with GPUs discovered through NVML, where NVML is the fake driver
// library loaded with dlopen exactly as the real libnvidia-ml.so.1 would be.
// Checks that what the "driver" reports reaches /metrics with the job's
// labels, `berth gpus`, `berth get`, the event log, and a real Prometheus.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "../require_tools.h"
#include "harness.h"

namespace berth::testing {
namespace {

nlohmann::json Device(int index, int util, nlohmann::json processes = nlohmann::json::array()) {
  char uuid[64], bus[32];
  std::snprintf(uuid, sizeof(uuid), "GPU-0000fa4e-0000-0000-0000-%012d", index);
  std::snprintf(bus, sizeof(bus), "00000000:%02X:00.0", 0x10 + index);
  return {{"name", "NVIDIA H100 80GB HBM3"},
          {"uuid", uuid},
          {"pci_bus_id", bus},
          {"memory_total_mib", 81559},
          {"utilization", util},
          {"temperature", 40 + index},
          {"power_mw", 70000},
          {"sm_clock_mhz", 1980},
          {"processes", processes}};
}

// A port nothing listens on right now (bound to 0, read back, closed).
int FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

class FakeGpus {
 public:
  explicit FakeGpus(const TempDir& dir) : path_(dir / "fake_nvml.json") {}
  void Write(const nlohmann::json& devices) {
    WriteFile(path_ + ".tmp", nlohmann::json{{"devices", devices}}.dump());
    std::filesystem::rename(path_ + ".tmp", path_);
  }
  std::vector<std::string> Env() const {
    return {"BERTH_NVML_LIBRARY=" + std::string(BERTH_FAKE_NVML_PATH),
            "BERTH_FAKE_NVML_CONFIG=" + path_};
  }

 private:
  std::string path_;
};

// The value of the first sample of `metric` whose labels contain every `labels` entry.
std::optional<double> Sample(const std::string& text, const std::string& metric,
                             const std::vector<std::string>& labels) {
  std::stringstream ss(text);
  for (std::string line; std::getline(ss, line);) {
    if (line.rfind(metric + "{", 0) != 0) continue;
    bool all = true;
    for (const auto& l : labels) all = all && line.find(l) != std::string::npos;
    if (all) return std::stod(line.substr(line.rfind(' ') + 1));
  }
  return std::nullopt;
}

class Telemetry : public ::testing::Test {
 protected:
  void SetUp() override {
    gpus_.Write({Device(0, 0), Device(1, 0)});
    WriteFile(work_ / "berthd.yaml", "telemetry:\n  interval: 200ms\n  idleAfter: 1s\n");
    daemon_ = std::make_unique<Daemon>(std::vector<std::string>{"--config", work_ / "berthd.yaml"},
                                       gpus_.Env());
    ASSERT_TRUE(daemon_->Start()) << ReadFile(daemon_->data_dir() + "/berthd.log");
  }

  // Starts a 1-GPU job that records its pid and waits for release.
  std::string StartJob() {
    CommandResult r =
        daemon_->Cli({"run", "--gpus", "1", "--name", "trainer", "--", "/bin/sh", "-c",
                      "echo $$ > " + work_.path() + "/pid.$BERTH_JOB_ID; while [ ! -e " +
                          work_.path() + "/release ]; do sleep 0.02; done"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    std::string id = Trim(r.out);
    EXPECT_TRUE(WaitFor([&] { return daemon_->State(id) == "Running"; }));
    EXPECT_TRUE(WaitFor([&] { return !ReadFile(work_ / ("pid." + id)).empty(); }));
    return id;
  }

  void TearDown() override { WriteFile(work_ / "release", ""); }

  TempDir work_;
  FakeGpus gpus_{work_};
  std::unique_ptr<Daemon> daemon_;
};

TEST_F(Telemetry, DiscoveredGpusAndLiveUtilizationReachMetricsWithTheJobsLabels) {
  auto health = daemon_->Get("/healthz");
  EXPECT_EQ(health["gpus"], 2);
  EXPECT_NE(health["inventory"].get<std::string>().find("nvml"), std::string::npos)
      << health.dump();

  std::string id = StartJob();
  auto job = daemon_->Job(id);
  int gpu = job["gpus"][0];
  int pid = std::stoi(ReadFile(work_ / ("pid." + id)));
  nlohmann::json devices = {Device(0, 0), Device(1, 0)};
  devices[gpu] = Device(gpu, 73, {{{"pid", pid}, {"used_memory_mib", 2048}}});
  gpus_.Write(devices);

  std::string metrics;
  ASSERT_TRUE(WaitFor([&] {
    metrics = daemon_->GetText("/metrics");
    auto v = Sample(metrics, "DCGM_FI_DEV_GPU_UTIL",
                    {"gpu=\"" + std::to_string(gpu) + "\"", "job=\"" + id + "\"", "user=\""});
    return v && *v == 73;
  })) << metrics;
  EXPECT_TRUE(Sample(metrics, "DCGM_FI_DEV_FB_USED", {"job=\"" + id + "\""}).has_value());
  EXPECT_TRUE(
      Sample(metrics, "DCGM_FI_DEV_GPU_TEMP", {"modelName=\"NVIDIA H100 80GB HBM3\""}).has_value());
  EXPECT_EQ(Sample(metrics, "berth_gpus_allocated", {}).value_or(-1), -1);  // unlabelled: below
  EXPECT_NE(metrics.find("berth_gpus_allocated 1\n"), std::string::npos);
  EXPECT_NE(metrics.find("berth_jobs{state=\"Running\",queue=\"default\"} 1"), std::string::npos);

  // The utilization changes and /metrics follows.
  devices[gpu] = Device(gpu, 12, {{{"pid", pid}, {"used_memory_mib", 4096}}});
  gpus_.Write(devices);
  ASSERT_TRUE(WaitFor([&] {
    auto v = Sample(daemon_->GetText("/metrics"), "DCGM_FI_DEV_GPU_UTIL", {"job=\"" + id + "\""});
    return v && *v == 12;
  }));

  // berth gpus shows the reading and the holder; berth get shows the job's usage.
  CommandResult table = daemon_->Cli({"gpus"});
  EXPECT_EQ(table.exit_code, 0);
  EXPECT_NE(table.out.find("12%"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("4096/81559 MiB"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("NVIDIA H100"), std::string::npos);
  auto got = nlohmann::json::parse(daemon_->Cli({"get", id, "-o", "json"}).out);
  ASSERT_TRUE(got.contains("gpuUsage")) << got.dump();
  EXPECT_EQ(got["gpuUsage"]["peakUtilization"], 73);
  EXPECT_EQ(got["gpuUsage"]["peakMemoryMiB"], 4096);
  CommandResult human = daemon_->Cli({"get", id});
  EXPECT_NE(human.out.find("GPU usage:"), std::string::npos) << human.out;

  // The job ends; its usage over its life is kept in the store and shown
  // after berthd restarts.
  WriteFile(work_ / "release", "");
  ASSERT_TRUE(WaitFor([&] { return daemon_->State(id) == "Succeeded"; }));
  ASSERT_TRUE(WaitFor([&] {
    auto j = daemon_->Job(id);
    return j.contains("gpuUsage") && j["gpuUsage"].value("active", true) == false;
  })) << daemon_->Job(id).dump();
  daemon_->Stop();
  ASSERT_TRUE(daemon_->Start()) << ReadFile(daemon_->data_dir() + "/berthd.log");
  auto after = nlohmann::json::parse(daemon_->Cli({"get", id, "-o", "json"}).out);
  ASSERT_TRUE(after.contains("gpuUsage")) << after.dump();
  EXPECT_EQ(after["gpuUsage"]["peakUtilization"], 73);
  EXPECT_EQ(after["gpuUsage"]["peakMemoryMiB"], 4096);
  EXPECT_GT(after["gpuUsage"]["allocatedGpuSeconds"].get<double>(), 0.0);
}

// berth gpus shows each GPU's health: a fatal XID names its reason, and the
// checks a GPU's driver cannot run (no ECC on a consumer GPU) are listed.
TEST_F(Telemetry, BerthGpusShowsHealthAndTheChecksADriverCannotRun) {
  nlohmann::json d0 = Device(0, 0), d1 = Device(1, 0);
  d0["xids"] = {{0, 79}};  // fallen off the bus: fatal
  d1["not_supported"] = {"ecc"};
  gpus_.Write({d0, d1});
  CommandResult r;
  ASSERT_TRUE(WaitFor([&] {
    r = daemon_->Cli({"gpus"});
    return r.out.find("FATAL") != std::string::npos &&
           r.out.find("ecc_dbe_volatile (not_supported)") != std::string::npos;
  })) << r.out
      << r.err;
  std::string gpu0, gpu1;
  std::stringstream ss(r.out);
  for (std::string line; std::getline(ss, line);) {
    if (line.find("H100") == std::string::npos) continue;
    (gpu0.empty() ? gpu0 : gpu1) = line;
  }
  EXPECT_NE(gpu0.find("FATAL: "), std::string::npos) << r.out;
  EXPECT_NE(gpu0.find("XID 79"), std::string::npos) << r.out;
  EXPECT_EQ(gpu1.find("FATAL"), std::string::npos) << r.out;
  EXPECT_NE(gpu1.find(" ok "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("/1: ecc_dbe_volatile (not_supported)"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("/0: ecc_dbe_volatile"), std::string::npos) << r.out;
}

TEST_F(Telemetry, IdleAllocationsAndViolationsBecomeEvents) {
  std::string id = StartJob();
  int gpu = daemon_->Job(id)["gpus"][0];
  int other = 1 - gpu;
  int pid = std::stoi(ReadFile(work_ / ("pid." + id)));
  // Held but idle (0%) for longer than idleAfter (1 s): a GpuIdle event.
  ASSERT_TRUE(WaitFor([&] {
    auto events = daemon_->Get("/api/v1/events?job=" + id);
    for (const auto& e : events["items"])
      if (e["type"] == "GpuIdle") return true;
    return false;
  })) << daemon_->Get("/api/v1/events").dump()
      << ReadFile(daemon_->data_dir() + "/berthd.log");
  auto metrics = daemon_->GetText("/metrics");
  auto idle = Sample(metrics, "berth_gpu_idle_allocated_seconds_total", {"job=\"" + id + "\""});
  ASSERT_TRUE(idle.has_value()) << metrics;
  EXPECT_GT(*idle, 0.5);

  // The job's process shows up on a GPU it was not given: a violation.
  nlohmann::json devices = {Device(0, 50), Device(1, 50)};
  devices[other] = Device(other, 50, {{{"pid", pid}, {"used_memory_mib", 100}}});
  gpus_.Write(devices);
  ASSERT_TRUE(WaitFor([&] {
    auto events = daemon_->Get("/api/v1/events?job=" + id);
    for (const auto& e : events["items"])
      if (e["type"] == "GpuViolation" && e["data"]["gpu"] == other) return true;
    return false;
  }));
}

TEST_F(Telemetry, RealPrometheusScrapesTheJobsGpuUtilization) {
  const char* prom = "/usr/bin/prometheus";
  if (::access(prom, X_OK) != 0)
    BERTH_SKIP_UNLESS_REQUIRED(
        "prometheus is not installed (scripts/install-deps.sh --test installs it)");
  std::string id = StartJob();
  int gpu = daemon_->Job(id)["gpus"][0];
  int pid = std::stoi(ReadFile(work_ / ("pid." + id)));
  nlohmann::json devices = {Device(0, 0), Device(1, 0)};
  devices[gpu] = Device(gpu, 64, {{{"pid", pid}, {"used_memory_mib", 512}}});
  gpus_.Write(devices);

  std::string target = daemon_->url().substr(7);  // host:port
  WriteFile(work_ / "prometheus.yml",
            "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
            "scrape_configs:\n"
            "  - job_name: berthd\n"
            "    honor_labels: true\n"
            "    authorization: {credentials: '" +
                daemon_->token() +  // /metrics needs an identity unless auth.publicMetrics
                "'}\n"
                "    static_configs: [{targets: ['" +
                target + "']}]\n");
  // A free port for Prometheus' own API.
  int port = FreePort();
  pid_t p = ::fork();
  if (p == 0) {
    int log = ::open((work_ / "prometheus.log").c_str(), O_WRONLY | O_CREAT, 0644);
    ::dup2(log, 1);
    ::dup2(log, 2);
    std::string cfg = "--config.file=" + (work_ / "prometheus.yml");
    std::string db = "--storage.tsdb.path=" + (work_ / "prom-data");
    std::string listen = "--web.listen-address=127.0.0.1:" + std::to_string(port);
    ::execl(prom, prom, cfg.c_str(), db.c_str(), listen.c_str(), nullptr);
    ::_exit(127);
  }
  httplib::Client client("127.0.0.1", port);
  client.set_connection_timeout(1, 0);
  client.set_read_timeout(5, 0);
  std::string body;
  bool found = WaitFor(
      [&] {
        auto r =
            client.Get(("/api/v1/query?query=" + httplib::detail::encode_query_param(
                                                     "DCGM_FI_DEV_GPU_UTIL{job=\"" + id + "\"}"))
                           .c_str());
        if (!r || r->status != 200) return false;
        body = r->body;
        auto j = nlohmann::json::parse(body, nullptr, false);
        if (j.is_discarded()) return false;
        for (const auto& s : j["data"]["result"])
          if (s["metric"]["gpu"] == std::to_string(gpu) && s["value"][1] == "64") return true;
        return false;
      },
      std::chrono::seconds(60));
  ::kill(p, SIGTERM);
  ::waitpid(p, nullptr, 0);
  EXPECT_TRUE(found) << body << "\n" << ReadFile(work_ / "prometheus.log");
}

}  // namespace
}  // namespace berth::testing
