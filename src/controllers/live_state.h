// What the live GPU state changes in scheduling (issue 12), as the job
// controller sees it: each cycle's snapshot is filled with health, drains,
// recent utilization and measured memory (LiveHooks::fill_snapshot); jobs on
// unhealthy GPUs are requeued; idle jobs are reported, reclaimed or stopped
// per queue (QueueLivePolicy); a fraction whose process exceeds its memory is
// stopped where its queue enforces it.
//
// Idleness is an interface (IdleSignal): the GPU signal (telemetry) says a
// job is idle when its GPUs stayed below the queue's utilization threshold
// for the whole window; a controller that owns a kind adds its own signals
// (a notebook's kernel and terminal activity). A job is idle only when every
// signal that knows something about it says idle.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "model/job.h"
#include "sched/scheduler.h"

namespace berth::controllers {

enum class IdlePolicy { kReport, kReclaim, kStop };
const char* IdlePolicyName(IdlePolicy p);  // "report", "reclaim", "stop"
// "report" | "reclaim" | "stop"; InvalidArgument naming `field` otherwise.
Result<IdlePolicy> ParseIdlePolicy(const std::string& s, const std::string& field);

// A queue's rules for live state (berthd.yaml `queues.NAME`, docs/gpu.md).
struct QueueLivePolicy {
  IdlePolicy idle = IdlePolicy::kReport;
  // Idle: utilization below idle_util_percent on every GPU of the job for
  // idle_after (defaults and their reasons in docs/scheduling.md).
  int idle_util_percent = 5;
  DurationMs idle_after = 30 * kMinute;
  // A fraction's process using more than its gpuMemory: always reported;
  // with enforce, the job is stopped (failed, reason GpuMemoryExceeded).
  bool enforce = false;
};

struct IdleRule {
  int util_percent = 5;
  DurationMs after = 30 * kMinute;
};

struct IdleVerdict {
  bool known = false;  // false: this signal has nothing to say about the job
  bool idle = false;
  std::string why;  // "GPU utilization below 5% on GPU 0 for 30m"
};

class IdleSignal {
 public:
  virtual ~IdleSignal() = default;
  virtual std::string_view Name() const = 0;
  // Whether `job` (bound, running since job.start_time) has been idle for
  // the whole rule.after before `now`. Must use history, not one sample.
  virtual IdleVerdict Check(const model::Job& job, const IdleRule& rule, TimeMs now) const = 0;
};

// Every signal that knows must say idle, and at least one must know.
IdleVerdict CombineIdle(const std::vector<const IdleSignal*>& signals, const model::Job& job,
                        const IdleRule& rule, TimeMs now);

struct LiveHooks {
  // Fills each GPU's healthy, utilization and memory_used in a cycle's
  // snapshot (not the snapshot a submission's feasibility is checked on).
  std::function<void(sched::ClusterSnapshot&)> fill_snapshot;
  std::vector<const IdleSignal*> idle_signals;
  std::map<std::string, QueueLivePolicy> queues;  // by queue name
  QueueLivePolicy default_queue;                  // queues not listed
  const QueueLivePolicy& For(const std::string& queue) const {
    auto it = queues.find(queue);
    return it == queues.end() ? default_queue : it->second;
  }
};

}  // namespace berth::controllers
