// The trace-driven simulator: replays a trace through the daemon's own
// controllers::JobController (and so the very same sched::Scheduler), over
// an in-memory store, on a virtual clock (ManualClock) advanced by a
// discrete-event loop: the next arrival, the next task event of the
// SimExecutor (sim_executor.h), or the controller's next deadline
// (JobController::NextWakeup: the end of a submission batching window, a
// policy recheck, a gang deadline). It reports JCT, queueing, utilization,
// preemptions and per-queue fairness.
//
// Model (docs/scheduling.md says why):
//  - a trace job of 1 GPU is a Job; one of G > 1 GPUs a TrainingJob of G
//    one-GPU workers (one gang, as data-parallel training runs); the
//    scheduler consolidates them;
//  - its trace duration is its run time when placed on the fewest nodes
//    possible; a gang spread over more nodes than that runs `spread_slowdown`
//    times slower;
//  - preemption is the controller's: SIGTERM, the job keeps its GPUs while
//    its tasks exit (`stop_time`, at most the grace period), then it is
//    requeued keeping its attained service; its progress is kept
//    (checkpoint) and it pays `restart_penalty` of no progress on restart;
//  - cycles are the controller's: on every change (submissions batched in
//    its 5 ms window), and at the policy's recheck_at, at most every `tick`.
// Deterministic: the same options give the same report.
#pragma once

#include <nlohmann/json.hpp>

#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "sim/trace.h"

namespace berth::sim {

struct SimOptions {
  std::string trace_path;      // read when `trace` is not set
  std::optional<Trace> trace;  // an already loaded trace
  int nodes = 64;
  int gpus_per_node = 8;
  std::string policy = "dynamic";
  std::map<std::string, std::string> policy_options;
  // Only jobs submitted in [window_from, window_to) are replayed; -1: open.
  TimeMs window_from = -1;
  TimeMs window_to = -1;
  uint64_t seed = 1;
  DurationMs restart_penalty = 30 * kSecond;
  double spread_slowdown = 1.25;
  // How long a task takes to exit after SIGTERM (its checkpoint); a
  // preempted job holds its GPUs that long, or until its grace ends.
  DurationMs stop_time = 30 * kSecond;
  // The controller's min_recheck_interval: time-driven cycles (a policy's
  // recheck_at) run at most this often.
  DurationMs tick = 60 * kSecond;
  // Stop after this much virtual time past the last submission (jobs still
  // unfinished are reported as such); 0: run until every job ends.
  DurationMs horizon = 0;
};

struct QueueReport {
  int jobs = 0;
  double avg_jct_s = 0;
  double avg_queue_delay_s = 0;
  double gpu_hours = 0;     // GPU-time allocated to the queue
  double demand_share = 0;  // the queue's share of the trace's GPU-time
  double usage_share = 0;   // its share of the GPU-time allocated
  double avg_slowdown = 0;  // JCT over trace duration (durations under 60 s count as 60 s)
};

struct SimReport {
  std::string policy;
  std::string cluster;  // "64x8"
  int jobs = 0;         // jobs replayed (in the window)
  int completed = 0;
  int unfinished = 0;  // still pending or running at the horizon
  int rejected = 0;    // can never run on this cluster
  double avg_jct_s = 0;
  double p50_jct_s = 0;
  double p99_jct_s = 0;
  double avg_queue_delay_s = 0;  // submit to first start
  double makespan_s = 0;         // first submission to last completion
  double gpu_utilization = 0;    // allocated GPU-time / capacity while work was pending or running
  int64_t preemptions = 0;
  int64_t resizes = 0;
  int64_t cycles = 0;
  double fairness = 0;  // Jain's index over per-queue average slowdown (1: equal)
  std::map<std::string, QueueReport> queues;
  std::vector<std::string> ignored;  // what the trace holds that the model does not
  double sim_wall_s = 0;             // how long the simulation took (not deterministic)
};

// Replays the trace. InvalidArgument for bad options (unknown policy, empty
// cluster), IoError if the trace cannot be read.
Result<SimReport> RunSimulation(const SimOptions& options);

// One JSON object: avg_jct_s, p50_jct_s, p99_jct_s, avg_queue_delay_s,
// makespan_s, gpu_utilization, preemptions, jobs, and the rest of the report.
nlohmann::json ToJson(const SimReport& report);

// A few lines for people: the headline figures, then one line per queue.
std::string ToText(const SimReport& report);

// "64x8" -> {64, 8}. InvalidArgument naming the flag otherwise.
Result<std::pair<int, int>> ParseClusterShape(const std::string& text);
// "FROM:TO" in seconds, each with an optional unit s, m, h or d ("0:7d",
// "3600:"); an empty side is open (-1). Returns milliseconds.
Result<std::pair<TimeMs, TimeMs>> ParseWindow(const std::string& text);

}  // namespace berth::sim
