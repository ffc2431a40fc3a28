// The cost of the live GPU state loop (issue 12) over 8 GPUs on the fake
// NVML driver: one telemetry controller pass (driver reads, health, drain
// check, per-fraction memory check, events) plus what a scheduling cycle
// reads (FillSnapshot: drains, health, 1-minute utilization, 10-second
// memory peak) and the idle signal for 4 jobs. cpu_pct_at_1Hz is the CPU
// time of one pass and one cycle's reads as a percentage of one core when
// both run once a second; the budget is 1%.
#include <benchmark/benchmark.h>
#include <time.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "controllers/gpu_drains.h"
#include "controllers/telemetry_controller.h"
#include "gpu/inventory.h"

namespace {

using namespace berth;

constexpr int kGpus = 8;

double ThreadCpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

std::string Tmp(const std::string& name) {
  return (std::filesystem::temp_directory_path() /
          ("berth-gpulive-bench-" + std::to_string(getpid()) + "-" + name))
      .string();
}

void WriteConfig() {
  nlohmann::json devices = nlohmann::json::array();
  for (int i = 0; i < kGpus; ++i) {
    char uuid[64], bus[32];
    std::snprintf(uuid, sizeof(uuid), "GPU-be7c0000-0000-0000-0000-%012d", i);
    std::snprintf(bus, sizeof(bus), "00000000:%02X:00.0", 0x10 + i);
    devices.push_back({{"name", "NVIDIA H100 80GB HBM3"},
                       {"uuid", uuid},
                       {"pci_bus_id", bus},
                       {"memory_total_mib", 81559},
                       {"utilization", i % 2 ? 87 : 1},
                       {"temperature", 61},
                       {"power_mw", 512000},
                       {"sm_clock_mhz", 1980},
                       {"ecc_dbe_volatile", 0},
                       {"processes",
                        {{{"pid", 100000 + 2 * i}, {"used_memory_mib", 30000}},
                         {{"pid", 100001 + 2 * i}, {"used_memory_mib", 20000}}}}});
  }
  std::string path = Tmp("nvml.json");
  std::ofstream(path) << nlohmann::json{{"devices", devices}}.dump();
  setenv("BERTH_FAKE_NVML_CONFIG", path.c_str(), 1);
}

void BM_LivePass8Gpus(benchmark::State& state) {
  WriteConfig();
  gpu::NvmlOptions no;
  const char* env = std::getenv("BERTH_NVML_LIBRARY");
  std::error_code ec;
  auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  no.library_path =
      env && *env ? std::string(env)
                  : (exe.parent_path().parent_path() / "tests/gpu/fake_nvml/libberth_fake_nvml.so")
                        .string();
  no.node_name = "bench-node";
  auto inv = gpu::MakeNvmlInventory(no);
  if (!inv.ok()) {
    state.SkipWithError(("fake NVML not usable: " + inv.status().message()).c_str());
    return;
  }
  std::string db = Tmp("berth.db");
  auto store = store::Store::Open(db);
  if (!store.ok()) {
    state.SkipWithError(store.status().message().c_str());
    return;
  }
  ManualClock clock(1'700'000'000'000);
  controllers::GpuDrains drains(**store, clock);
  controllers::TelemetrySource src;
  // 4 jobs: two whole GPUs each, the odd ones as fractions with a floor.
  src.assignments = [] {
    std::vector<gpu::Assignment> a;
    for (int i = 0; i < kGpus; ++i)
      a.push_back(
          {"bench-node", i, 1 + i / 2, "u", "default", i < 4 ? kWholeGpu : 500, i < 4 ? 0 : 40000});
    return a;
  };
  src.process_groups = [] {
    std::map<int, model::JobId> g;
    for (int i = 0; i < kGpus; ++i) g[100000 + 2 * i] = 1 + i / 2;
    return g;
  };
  controllers::TelemetryControllerOptions o;
  o.run_thread = false;
  o.drains = &drains;
  o.sampler.health_events = true;
  o.sampler.pgid_of = [](int pid) { return pid; };
  controllers::TelemetryController t(**store, **inv, clock, src, o);
  std::vector<model::Job> jobs(4);
  for (int k = 0; k < 4; ++k) {
    jobs[k].id = k + 1;
    jobs[k].start_time = clock.Now();
    jobs[k].placement.node = "bench-node";
    jobs[k].placement.gpus = {2 * k, 2 * k + 1};
  }
  for (int i = 0; i < 120; ++i) {  // two minutes of history
    clock.Advance(kSecond);
    t.RunOnce();
  }
  sched::ClusterSnapshot base;
  sched::NodeState n;
  n.name = "bench-node";
  for (int i = 0; i < kGpus; ++i) {
    sched::GpuState g;
    g.index = i;
    g.memory = 81559;
    n.gpus.push_back(g);
  }
  base.nodes.push_back(n);
  double cpu0 = ThreadCpuSeconds();
  for (auto _ : state) {
    clock.Advance(kSecond);
    t.RunOnce();
    sched::ClusterSnapshot snap = base;
    t.FillSnapshot(snap);
    benchmark::DoNotOptimize(snap);
    for (const model::Job& j : jobs)
      benchmark::DoNotOptimize(t.idle_signal().Check(j, {5, kMinute}, clock.Now()));
  }
  double cpu = ThreadCpuSeconds() - cpu0;
  state.counters["cpu_pct_at_1Hz"] =
      benchmark::Counter(cpu * 100.0, benchmark::Counter::kAvgIterations);
  std::filesystem::remove(db);
  std::filesystem::remove(db + "-wal");
  std::filesystem::remove(db + "-shm");
}
BENCHMARK(BM_LivePass8Gpus)->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
