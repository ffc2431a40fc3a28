// Sampler: reads every GPU once per Tick(), keeps per-GPU history, and ties
// the readings to jobs.
//
// The daemon owns one Sampler and calls Tick() from a thread every
// SamplerOptions::interval (1 s by default). Between ticks it tells the
// sampler who holds which GPU (SetAssignments) and which process group belongs
// to which job (SetProcessGroups: berth-shim makes one group per task). A tick
// then
//  - stores the readings in each GPU's history (1 s for 15 min, 1 min for 24 h),
//  - attributes each GPU process to a job through its process group, and
//    reports a process whose job does not hold that GPU (kViolation),
//  - adds the readings to each holder's lifetime usage (avg/peak util, memory),
//  - counts allocated-but-idle time: a held GPU below idle_util_percent for
//    idle_after raises kIdleAllocation once per idle spell, and from then on
//    the whole spell counts as idle GPU time for the holder.
// Events come back from Tick() as values; nothing is pushed anywhere.
//
// Thread safety: every method may be called from any thread. Tick() reads
// the inventory without holding the sampler's lock, so Snapshot() and
// friends stay fast while NVML is slow; ticks themselves must not overlap.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/quantity.h"
#include "gpu/health.h"
#include "gpu/history.h"
#include "gpu/inventory.h"
#include "gpu/telemetry.h"
#include "model/job.h"

namespace berth::gpu {

struct GpuKey {
  std::string node;
  int index = 0;
  auto operator<=>(const GpuKey&) const = default;
};

// A job holding (a share of) one GPU. Several assignments on one GPU mean
// fractional sharing.
struct Assignment {
  std::string node;
  int gpu = 0;
  model::JobId job = 0;
  std::string user;
  std::string queue;
  MilliGpu share = kWholeGpu;
  MiB memory_limit = 0;  // a fraction's gpuMemory (0: none), checked by the telemetry controller
};

struct SamplerOptions {
  DurationMs interval = kSecond;        // the daemon's tick period (the sampler does not sleep)
  int idle_util_percent = 5;            // a GPU below this utilization is idle
  DurationMs idle_after = 5 * kMinute;  // idle this long while held -> kIdleAllocation
  // A longer gap between two ticks (daemon stopped, clock jump) counts as
  // this much time for usage and idle accounting.
  DurationMs max_gap = 10 * kSecond;
  HistoryOptions history;
  size_t max_finished_jobs = 4096;  // usage kept for jobs no longer assigned; oldest dropped first
  // The process group of a pid, or -1 when unknown. Default: getpgid(2).
  std::function<int(int pid)> pgid_of;
  // Health (health.h): the XIDs that make a GPU fatal, and whether volatile
  // double-bit ECC errors do.
  std::set<int> fatal_xids = DefaultFatalXids();
  bool ecc_dbe_fatal = true;
  // Whether Tick() also returns kXid, kHealthFatal and kHealthOk. Off by
  // default, so that callers written before these types existed see none.
  bool health_events = false;
};

enum class GpuEventType {
  kIdleAllocation,  // a held GPU has been idle for idle_after (job, idle_for set)
  kIdleEnded,       // a GPU that raised kIdleAllocation is busy again or released (job, idle_for)
  kViolation,       // a process of `job` runs on a GPU its job does not hold (pid set)
  kGpuLost,         // the GPU stopped answering (NVML_ERROR_GPU_IS_LOST)
  kGpuRecovered,    // a lost GPU answers again
  kReadFailed,      // the inventory could not be read at all (message set)
  // Only with SamplerOptions::health_events:
  kXid,          // the driver reported an XID on the GPU (xid set)
  kHealthFatal,  // a fatal condition began (message: GpuHealth::reason)
  kHealthOk,     // no fatal condition holds any more
};
const char* GpuEventTypeName(GpuEventType t);  // "idle_allocation", ...

struct GpuEvent {
  GpuEventType type = GpuEventType::kIdleAllocation;
  TimeMs time = 0;
  GpuKey gpu;
  std::string uuid;
  model::JobId job = 0;
  std::string user;
  std::string queue;
  int pid = 0;                        // kViolation
  std::vector<model::JobId> holders;  // kViolation: the jobs that do hold the GPU
  DurationMs idle_for = 0;            // kIdleAllocation, kIdleEnded
  int xid = 0;                        // kXid
  std::string message;                // one line for logs and the event log
};

// One GPU as of the last tick.
struct GpuStatus {
  TimeMs time = 0;   // when it was sampled
  GpuSample sample;  // processes carry pgid and job
  std::vector<Assignment> holders;
  DurationMs idle_for = 0;  // how long it has been below the idle threshold (0: busy or unknown)
  GpuHealth health;         // fatal or not, counters, unavailable checks
};

// A GPU's recent load, from its history (Sampler::Recent).
struct RecentUsage {
  std::optional<double> avg_util;       // mean utilization, percent (nullopt: no reading)
  std::optional<MiB> max_mem_used_mib;  // peak used memory (nullopt: no reading)
  int samples = 0;                      // samples in the window with a utilization reading
};
// The summary of history points (oldest first): util weighted by each point's
// samples, memory the highest peak. Points without readings are skipped.
RecentUsage SummarizeRecent(const std::vector<HistoryPoint>& points);

// A job's GPU usage over its life (while it held GPUs).
struct JobUsage {
  model::JobId job = 0;
  std::string user;
  std::string queue;
  bool active = false;                 // still holds GPUs
  TimeMs first_time = 0;               // first tick that saw it
  TimeMs last_time = 0;                // last tick that saw it
  int64_t util_samples = 0;            // GPU-ticks with a utilization reading
  int64_t util_sum = 0;                // sum of those readings (percent)
  int peak_util = 0;                   // percent
  int64_t memory_samples = 0;          // ticks with a memory figure
  int64_t memory_sum = 0;              // MiB summed over those ticks
  MiB peak_memory = 0;                 // MiB over all its GPUs at one tick
  int64_t allocated_milli_gpu_ms = 0;  // held GPU time (share-weighted)
  int64_t idle_milli_gpu_ms = 0;       // of which allocated-but-idle
  int violations = 0;                  // processes seen on GPUs it did not hold (a job that holds
                                       // no GPU at all gets an entry for this alone)

  int AvgUtil() const {
    return util_samples ? static_cast<int>((util_sum + util_samples / 2) / util_samples) : 0;
  }
  MiB AvgMemory() const {
    return memory_samples ? (memory_sum + memory_samples / 2) / memory_samples : 0;
  }
  double IdleGpuSeconds() const { return static_cast<double>(idle_milli_gpu_ms) / 1e6; }
  double AllocatedGpuSeconds() const { return static_cast<double>(allocated_milli_gpu_ms) / 1e6; }
};

class Sampler {
 public:
  // `clock` and `inventory` must outlive the sampler.
  Sampler(Clock& clock, Inventory& inventory, SamplerOptions options = {});

  // Reads the inventory once and updates everything above. Returns the events
  // this tick raised, grouped by GPU in the inventory's order.
  std::vector<GpuEvent> Tick();

  // Replaces the GPU -> job map (the daemon's current placements).
  void SetAssignments(std::vector<Assignment> assignments);
  // Replaces the process group -> job map (berth-shim's groups of running tasks).
  void SetProcessGroups(std::map<int, model::JobId> pgid_to_job);

  // Every GPU as of the last tick, ordered by node and index.
  std::vector<GpuStatus> Snapshot() const;
  std::optional<GpuStatus> Gpu(const GpuKey& key) const;
  // History of one GPU (empty when unknown); see GpuHistory.
  std::vector<HistoryPoint> FineHistory(const GpuKey& key, TimeMs since = 0) const;
  std::vector<HistoryPoint> CoarseHistory(const GpuKey& key, TimeMs since = 0) const;
  // Fine points if `since` is within the fine span before the last tick, else coarse.
  std::vector<HistoryPoint> History(const GpuKey& key, TimeMs since) const;

  // Health of every GPU as of the last tick, ordered by node and index.
  std::vector<GpuHealth> Health() const;
  std::optional<GpuHealth> Health(const GpuKey& key) const;
  // Forgets the fatal XID seen on a GPU (after it was reset and undrained).
  // Conditions that still hold (lost, ECC, remap failure) stay fatal.
  void ClearHealth(const GpuKey& key);

  // Utilization and used memory of one GPU over the last `window` before the
  // last tick (fine points within the fine span, else coarse ones), and of
  // every GPU.
  RecentUsage Recent(const GpuKey& key, DurationMs window) const;
  std::map<GpuKey, RecentUsage> Recent(DurationMs window) const;
  // The compute processes on a GPU at the last tick, with their memory, process
  // group and job (empty when unknown or not reported).
  std::vector<GpuProcess> Processes(const GpuKey& key) const;

  // Usage of every job seen (active and finished, until forgotten), by id.
  std::vector<JobUsage> Jobs() const;
  std::optional<JobUsage> Job(model::JobId job) const;
  // Drops a finished job's usage (e.g. once the daemon has stored it).
  void ForgetJob(model::JobId job);

  // The time of the last tick (0: none yet).
  TimeMs LastTick() const;
  const SamplerOptions& options() const { return options_; }

 private:
  struct GpuState {
    GpuStatus status;
    std::unique_ptr<GpuHistory> history;
    TimeMs idle_since = -1;  // -1: not idle
    bool lost = false;
    std::set<model::JobId> idle_reported;         // holders told kIdleAllocation this spell
    std::set<int> violations_reported;            // pids already reported on this GPU
    std::map<model::JobId, TimeMs> holder_since;  // when each current holder was first seen here
  };

  void Account(const GpuKey& key, GpuState& g, TimeMs now, DurationMs dt,
               std::map<model::JobId, MiB>& tick_memory, std::vector<GpuEvent>& events);
  void UpdateHealth(const GpuKey& key, GpuState& g, TimeMs now, std::vector<GpuEvent>& events);
  RecentUsage RecentLocked(const GpuState& g, DurationMs window) const;
  JobUsage& UsageFor(const Assignment& a, TimeMs now);
  void EvictFinished();

  Clock& clock_;
  Inventory& inventory_;
  SamplerOptions options_;

  mutable std::mutex mu_;
  std::map<GpuKey, GpuState> gpus_;
  std::map<GpuKey, std::vector<Assignment>> assignments_;
  std::map<int, model::JobId> pgid_to_job_;
  std::map<model::JobId, JobUsage> jobs_;
  std::vector<model::JobId> finished_order_;  // finished jobs, oldest first
  bool ticked_ = false;
  TimeMs last_tick_ = 0;
};

}  // namespace berth::gpu
