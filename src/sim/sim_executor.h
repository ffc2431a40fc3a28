// The simulated executor: holds every trace job's state, turns the
// scheduler's decisions into virtual starts, stops and resizes, and finishes
// jobs when their work is done. It owns the SchedulerInput it hands to the
// scheduler and keeps it up to date in place, so a cycle costs little more
// than the scheduler's own work.
#pragma once

#include <queue>
#include <tuple>
#include <vector>

#include "sched/scheduler.h"
#include "sim/trace.h"

namespace berth::sim {

struct SimExecutorOptions {
  int gpus_per_node = 8;
  DurationMs restart_penalty = 30 * kSecond;
  double spread_slowdown = 1.25;
};

struct SimJobState {
  enum Phase { kFuture, kPending, kRunning, kDone, kRejected };
  Phase phase = kFuture;
  double remaining = 0;          // ms of run time left at full size and speed
  double rate = 0;               // work per ms now (1: full size, consolidated)
  TimeMs last_update = 0;        // progress counted up to here
  TimeMs productive_from = 0;    // the restart penalty ends here
  TimeMs run_start = 0;
  TimeMs first_start = -1;
  TimeMs end = -1;
  double gpu_ms = 0;             // milli-GPU x ms allocated / 1000 (GPU-ms)
  int starts = 0;
  uint64_t epoch = 0;            // bumps on every change; stale completions are skipped
  int slot = -1;                 // index in the input's pending or running list
};

class SimExecutor {
 public:
  // Job i of `jobs` gets JobId i + 1: a gang of `gpus` one-GPU tasks.
  SimExecutor(const SimExecutorOptions& options, const std::vector<const TraceJob*>& jobs);

  const sched::JobRequest& request(int i) const { return base_[i]; }
  const SimJobState& state(int i) const { return states_[i]; }
  void Submit(int i, TimeMs now);
  void Reject(int i);

  // The earliest pending completion (max TimeMs if none).
  TimeMs NextCompletion();
  // Finishes every job whose work ends at or before `now`; returns how many.
  int CompleteUntil(TimeMs now);

  // The input the scheduler is given; its pending and running lists are
  // kept here (set `cluster` and `explain_waiting` once).
  sched::SchedulerInput& input() { return in_; }
  // Brings running jobs' progress and attained service up to `now`.
  void Prepare(TimeMs now);
  // Applies a cycle's decisions made on input().
  void Apply(TimeMs now, const sched::Decisions& decisions);

  int pending_count() const { return pending_count_; }
  int running_count() const { return static_cast<int>(running_ids_.size()); }
  MilliGpu allocated() const { return allocated_; }
  int64_t preemptions() const { return preemptions_; }
  int64_t resizes() const { return resizes_; }

 private:
  void Account(int i, TimeMs now);
  double Rate(const sched::JobRequest& req, const std::vector<sched::TaskPlacement>& ps) const;
  void ScheduleCompletion(int i, TimeMs now);
  static MilliGpu Held(const std::vector<sched::TaskPlacement>& ps);
  void RemoveRunning(int i);
  sched::RunningJob& Running(int i) { return in_.running[states_[i].slot]; }

  SimExecutorOptions options_;
  std::vector<const TraceJob*> jobs_;
  std::vector<sched::JobRequest> base_;
  std::vector<SimJobState> states_;
  sched::SchedulerInput in_;
  std::vector<int> pending_ids_;  // job per slot of in_.pending (-1: removed this cycle)
  std::vector<int> running_ids_;  // job per slot of in_.running
  int pending_count_ = 0;
  using Event = std::tuple<TimeMs, int, uint64_t>;
  std::priority_queue<Event, std::vector<Event>, std::greater<Event>> completions_;
  MilliGpu allocated_ = 0;
  int64_t preemptions_ = 0;
  int64_t resizes_ = 0;
};

}  // namespace berth::sim
