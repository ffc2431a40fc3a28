// The telemetry controller owns GPU telemetry: every interval it tells the
// sampler which job holds which GPU (and each task's process group), reads
// every GPU once (gpu::Sampler::Tick), records what the sampler finds as
// job events (GpuIdle, GpuBusy, GpuViolation, GpuLost, GpuRecovered,
// GpuReadFailed), and saves the usage of jobs that no longer hold GPUs in the
// job_usage table, so `berth get` shows it after berthd restarts.
//
// It also keeps the per-GPU state of the last tick (health and utilization,
// GpuStates()) that scheduling cycles are to receive in their snapshot.
//
// Level-triggered: each pass reads the current holders from its source and
// the GPUs from the inventory; the usage of every ended job the sampler still
// keeps is saved unless this controller already saved it. Nothing is rebuilt
// at Start: the live history is in memory only (docs/gpu.md); saved usage is
// read back from the store by JobUsageJson.
//
// Threading: every public method may be called from any thread.
#pragma once

#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "controllers/controller.h"
#include "controllers/gpu_drains.h"
#include "controllers/live_state.h"
#include "gpu/inventory.h"
#include "gpu/sampler.h"
#include "model/job.h"
#include "store/store.h"

namespace berth::controllers {

// What the telemetry controller needs from the job controller (a narrow
// interface, so tests and the simulator can feed it directly).
struct TelemetrySource {
  // Which job holds which GPU now.
  std::function<std::vector<gpu::Assignment>()> assignments;
  // Process group -> job of the tasks running on this machine.
  std::function<std::map<int, model::JobId>()> process_groups;
  // Appends a job event (type, job or 0, message, data) to the event log.
  std::function<void(const std::string&, model::JobId, const std::string&, const nlohmann::json&)>
      record_event;
  // A fraction's processes use more memory on a GPU than its gpuMemory
  // (once per spell over it), and a GPU was drained on a fatal condition.
  std::function<void(model::JobId, const std::string& message)> memory_exceeded;
  std::function<void()> drained;
};

struct TelemetryControllerOptions {
  gpu::SamplerOptions sampler;  // sampler.interval is the pass interval
  // false: Start runs no thread; the caller drives passes with RunOnce.
  bool run_thread = true;
  // Where drains are kept (gpu_drains.h); null: fatal GPUs are not drained.
  GpuDrains* drains = nullptr;
  // GpuLiveState / FillSnapshot: utilization is the mean over this window
  // and used memory the peak over measured_memory_window.
  DurationMs utilization_window = kMinute;
  DurationMs measured_memory_window = 10 * kSecond;
};

// One GPU's state as of the last tick, for the scheduler (issue 12: drain
// sick GPUs, place fractions by measured memory, reclaim idle allocations).
struct GpuLiveState {
  std::string node;
  int index = 0;
  std::string uuid;
  TimeMs time = 0;      // when it was sampled (0: never)
  bool healthy = true;  // false: lost, or no reading could be taken
  std::string reason;   // why not healthy ("lost", the read errors)
  std::optional<int> util_percent;
  std::optional<MiB> memory_used, memory_total;
  DurationMs idle_for = 0;  // below the idle threshold for this long (0: busy or unknown)
};

class TelemetryController : public Controller {
 public:
  // `clock`, `inventory` and `store` must outlive the controller.
  TelemetryController(store::Store& store, gpu::Inventory& inventory, Clock& clock,
                      TelemetrySource source, TelemetryControllerOptions options = {});
  ~TelemetryController() override;

  std::string_view Name() const override { return "telemetry"; }
  Status Start() override;
  void Stop() override;
  // One pass: holders to the sampler, one tick, its events recorded, the
  // usage of ended jobs saved.
  void RunOnce() override;

  // Per-GPU health and utilization as of the last tick, by node and index.
  std::vector<GpuLiveState> GpuStates() const;
  // Sets each GPU's healthy (not drained, lost or fatal), utilization (mean
  // over utilization_window) and memory_used (peak over
  // measured_memory_window) in a scheduling cycle's snapshot.
  void FillSnapshot(sched::ClusterSnapshot& snap) const;
  // The GPU idleness signal (live_state.h): a job is idle when every GPU it
  // holds stayed below the rule's utilization for the rule's window (every
  // history step's peak, not one sample), and it has held them that long.
  const IdleSignal& idle_signal() const { return idle_signal_; }
  // After an undrain: forgets the GPU's fatal XID (gpu -1: every GPU of the node).
  void ClearHealth(const std::string& node, int gpu);
  // berth_gpu_drained and berth_gpu_memory_exceeded_total (Prometheus text).
  std::string RenderMetrics() const;

  // A job's GPU usage as the API shows it (`gpuUsage`): live from the
  // sampler, else as saved in the store; null when unknown.
  nlohmann::json JobUsageJson(model::JobId id) const;
  // One GPU's latest telemetry as the API shows it; null before its first sample.
  nlohmann::json GpuJson(const std::string& node, int index) const;

  const gpu::Sampler& sampler() const { return sampler_; }

  // The event type recorded for a sampler event ("GpuIdle", ...).
  static std::string EventType(gpu::GpuEventType type);
  static store::JobUsageRecord ToRecord(const gpu::JobUsage& u);
  static gpu::JobUsage FromRecord(const store::JobUsageRecord& r);

 private:
  void Loop();
  void DrainFatal();
  void CheckMemory();

  class GpuIdle : public IdleSignal {
   public:
    explicit GpuIdle(const TelemetryController& t) : t_(t) {}
    std::string_view Name() const override { return "gpu"; }
    IdleVerdict Check(const model::Job& job, const IdleRule& rule, TimeMs now) const override;

   private:
    const TelemetryController& t_;
  };

  store::Store& store_;
  gpu::Inventory& inventory_;
  GpuIdle idle_signal_{*this};
  gpu::Sampler sampler_;
  TelemetrySource source_;
  TelemetryControllerOptions options_;
  // Declared GPUs have no driver: their jobs' utilization and memory are
  // null (not measured), not 0.
  bool declared_only_ = true;

  std::mutex pass_mu_;                                          // one pass at a time
  std::set<model::JobId> usage_saved_;                          // guarded by pass_mu_
  std::set<std::pair<model::JobId, gpu::GpuKey>> memory_over_;  // guarded by pass_mu_
  mutable std::mutex metrics_mu_;
  std::map<model::JobId, std::pair<std::string, int64_t>> memory_exceeded_;  // job -> (labels, n)

  std::mutex mu_;  // guards stop_
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace berth::controllers
