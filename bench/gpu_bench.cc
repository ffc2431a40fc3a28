// The cost of GPU telemetry: one Sampler::Tick over 8 GPUs on the fake NVML
// driver (dlopen'ed, as in production), and one Prometheus rendering.
//
// The figure that matters is cpu_pct_at_1Hz: the CPU time of one tick as a
// percentage of one core when the daemon ticks once a second. It must stay
// below 1%. The fake driver answers from memory (plus one stat() per call to
// notice config edits); a real driver adds its own ioctl time on top.
//
// The fake library is found next to the build tree
// (<build>/tests/gpu/fake_nvml/libberth_fake_nvml.so, built with the tests)
// or through $BERTH_NVML_LIBRARY.
#include <benchmark/benchmark.h>
#include <time.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "gpu/inventory.h"
#include "gpu/prometheus.h"
#include "gpu/sampler.h"

namespace {

using namespace berth;
using namespace berth::gpu;

constexpr int kGpus = 8;

double ThreadCpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

std::string FakeLibrary(const char* name = "libberth_fake_nvml.so") {
  const char* env = std::getenv("BERTH_NVML_LIBRARY");
  if (env != nullptr && *env != '\0') return env;
  std::error_code ec;
  auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  return (exe.parent_path().parent_path() / "tests/gpu/fake_nvml" / name).string();
}

// 8 busy H100s with two processes each, written once per process.
std::string WriteConfig() {
  static std::string path;
  if (!path.empty()) return path;
  path = (std::filesystem::temp_directory_path() /
          ("berth-gpu-bench-" + std::to_string(getpid()) + ".json"))
             .string();
  nlohmann::json devices = nlohmann::json::array();
  for (int i = 0; i < kGpus; ++i) {
    char uuid[64], bus[32];
    std::snprintf(uuid, sizeof(uuid), "GPU-be7c0000-0000-0000-0000-%012d", i);
    std::snprintf(bus, sizeof(bus), "00000000:%02X:00.0", 0x10 + i);
    devices.push_back({{"name", "NVIDIA H100 80GB HBM3"},
                       {"uuid", uuid},
                       {"pci_bus_id", bus},
                       {"memory_total_mib", 81559},
                       {"utilization", 87},
                       {"memory_utilization", 40},
                       {"temperature", 61},
                       {"power_mw", 512000},
                       {"sm_clock_mhz", 1980},
                       {"throttle_reasons", 0x4},
                       {"ecc_dbe_volatile", 0},
                       {"processes",
                        {{{"pid", 100000 + 2 * i}, {"used_memory_mib", 30000}},
                         {{"pid", 100001 + 2 * i}, {"used_memory_mib", 20000}}}}});
  }
  std::ofstream(path) << nlohmann::json{{"devices", devices}}.dump();
  setenv("BERTH_FAKE_NVML_CONFIG", path.c_str(), 1);
  return path;
}

std::unique_ptr<Inventory> MakeFakeInventory(benchmark::State& state,
                                             const char* lib = "libberth_fake_nvml.so") {
  WriteConfig();
  NvmlOptions o;
  o.library_path = FakeLibrary(lib);
  o.node_name = "bench-node";
  auto inv = MakeNvmlInventory(o);
  if (!inv.ok()) {
    state.SkipWithError(
        ("fake NVML not usable (build berth_fake_nvml): " + inv.status().message()).c_str());
    return nullptr;
  }
  return std::move(inv).value();
}

void Assign(Sampler& sampler) {
  std::vector<Assignment> a;
  std::map<int, model::JobId> groups;
  for (int i = 0; i < kGpus; ++i) {
    a.push_back({"bench-node", i, 1 + i / 2, "user" + std::to_string(i % 3), "default", kWholeGpu});
    groups[100000 + 2 * i] = 1 + i / 2;
  }
  sampler.SetAssignments(a);
  sampler.SetProcessGroups(groups);
}

// One tick: read 8 GPUs through NVML, attribute, account, store history.
void BM_Tick8Gpus(benchmark::State& state) {
  auto inv = MakeFakeInventory(state);
  if (!inv) return;
  ManualClock clock(1'700'000'000'000);
  SamplerOptions o;
  // The PIDs in the config are made up; answer their groups as the kernel
  // would for real ones (getpgid is a cheap syscall, measured separately).
  o.pgid_of = [](int pid) { return pid; };
  Sampler sampler(clock, *inv, o);
  Assign(sampler);
  double cpu0 = ThreadCpuSeconds();
  for (auto _ : state) {
    clock.Advance(kSecond);
    auto events = sampler.Tick();
    benchmark::DoNotOptimize(events);
  }
  double cpu = ThreadCpuSeconds() - cpu0;
  // CPU seconds per tick at one tick per second, as a percentage of a core.
  state.counters["cpu_pct_at_1Hz"] =
      benchmark::Counter(cpu * 100.0, benchmark::Counter::kAvgIterations);
  state.counters["gpus"] = kGpus;
}
BENCHMARK(BM_Tick8Gpus)->Unit(benchmark::kMicrosecond);

// The same with the real getpgid(2) for each process.
void BM_Tick8GpusRealGetpgid(benchmark::State& state) {
  auto inv = MakeFakeInventory(state);
  if (!inv) return;
  ManualClock clock(1'700'000'000'000);
  Sampler sampler(clock, *inv);
  Assign(sampler);
  double cpu0 = ThreadCpuSeconds();
  for (auto _ : state) {
    clock.Advance(kSecond);
    benchmark::DoNotOptimize(sampler.Tick());
  }
  double cpu = ThreadCpuSeconds() - cpu0;
  state.counters["cpu_pct_at_1Hz"] =
      benchmark::Counter(cpu * 100.0, benchmark::Counter::kAvgIterations);
}
BENCHMARK(BM_Tick8GpusRealGetpgid)->Unit(benchmark::kMicrosecond);

// The same tick on a driver without the health API (no event wait, no ECC,
// retired-page or remapped-row queries; throttle reasons still read): the
// difference to BM_Tick8Gpus is what the health checks cost.
void BM_Tick8GpusWithoutHealthApi(benchmark::State& state) {
  auto inv = MakeFakeInventory(state, "libberth_fake_nvml_nohealth.so");
  if (!inv) return;
  ManualClock clock(1'700'000'000'000);
  SamplerOptions o;
  o.pgid_of = [](int pid) { return pid; };
  Sampler sampler(clock, *inv, o);
  Assign(sampler);
  double cpu0 = ThreadCpuSeconds();
  for (auto _ : state) {
    clock.Advance(kSecond);
    benchmark::DoNotOptimize(sampler.Tick());
  }
  double cpu = ThreadCpuSeconds() - cpu0;
  state.counters["cpu_pct_at_1Hz"] =
      benchmark::Counter(cpu * 100.0, benchmark::Counter::kAvgIterations);
}
BENCHMARK(BM_Tick8GpusWithoutHealthApi)->Unit(benchmark::kMicrosecond);

// What a telemetry controller reads each cycle: every GPU's health and its
// utilization and memory over the last minute.
void BM_HealthAndRecentUsage8Gpus(benchmark::State& state) {
  auto inv = MakeFakeInventory(state);
  if (!inv) return;
  ManualClock clock(1'700'000'000'000);
  SamplerOptions o;
  o.pgid_of = [](int pid) { return pid; };
  Sampler sampler(clock, *inv, o);
  Assign(sampler);
  for (int i = 0; i < 120; ++i) {
    clock.Advance(kSecond);
    sampler.Tick();
  }
  for (auto _ : state) {
    benchmark::DoNotOptimize(sampler.Health());
    benchmark::DoNotOptimize(sampler.Recent(kMinute));
  }
}
BENCHMARK(BM_HealthAndRecentUsage8Gpus)->Unit(benchmark::kMicrosecond);

// Only the driver reads (Inventory::Sample), without the sampler's bookkeeping.
void BM_NvmlRead8Gpus(benchmark::State& state) {
  auto inv = MakeFakeInventory(state);
  if (!inv) return;
  for (auto _ : state) benchmark::DoNotOptimize(inv->Sample());
}
BENCHMARK(BM_NvmlRead8Gpus)->Unit(benchmark::kMicrosecond);

// One /metrics rendering of 8 GPUs and 4 jobs.
void BM_RenderPrometheus8Gpus(benchmark::State& state) {
  auto inv = MakeFakeInventory(state);
  if (!inv) return;
  ManualClock clock(1'700'000'000'000);
  SamplerOptions o;
  o.pgid_of = [](int pid) { return pid; };
  Sampler sampler(clock, *inv, o);
  Assign(sampler);
  sampler.Tick();
  size_t bytes = 0;
  for (auto _ : state) {
    std::string m = RenderPrometheus(sampler);
    bytes = m.size();
    benchmark::DoNotOptimize(m);
  }
  state.counters["bytes"] = static_cast<double>(bytes);
}
BENCHMARK(BM_RenderPrometheus8Gpus)->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
