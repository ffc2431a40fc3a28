// The simulated executor: an exec::Executor without processes, on the
// simulation's virtual clock. The simulator runs the daemon's own
// controllers::JobController over it, so every start, stop and grace period
// is the controller's.
//
// Each job carries its trace work: `duration` ms of run time at full size on
// the fewest nodes possible. A job's gang (its tasks of one attempt) runs
// once all its tasks are started; it progresses at rate 1, or
// 1/spread_slowdown when spread over more nodes than needed, after a restart
// penalty on every start but the first (progress is checkpointed), and then
// every task exits with code 0. Asked to stop (preemption, cancel), the
// tasks stop progressing at the SIGTERM (their checkpoint) and exit
// `stop_time` later (code 143, SIGTERM), or are killed when the grace the
// controller gave ends first (code 137, SIGKILL); the GPUs stay held until
// then.
//
// Events are delivered by Poll on the caller's thread, in time order, each
// stamped with its due time, the sink called without any lock held (it may
// call Start and Stop). Not thread-safe: one simulation thread drives it.
#pragma once

#include <cstdint>
#include <queue>
#include <string>
#include <tuple>
#include <vector>

#include "exec/executor.h"

namespace berth::sim {

struct SimExecutorOptions {
  int gpus_per_node = 8;
  DurationMs restart_penalty = 30 * kSecond;
  double spread_slowdown = 1.25;
  // How long a task takes to exit after SIGTERM (writing its checkpoint).
  DurationMs stop_time = 30 * kSecond;
};

class SimExecutor final : public exec::Executor {
 public:
  SimExecutor(SimExecutorOptions options, const Clock& clock, exec::TaskEventSink sink);

  // Declares job `id`'s work before it is started: its run time at full
  // size and the number of tasks of its gang (1 for a plain job).
  void AddJob(model::JobId id, DurationMs duration, int tasks);

  std::string Name() const override { return "sim"; }
  // InvalidArgument for a job AddJob did not declare or a task index out of
  // its gang. kStarted follows at the same virtual time.
  Status Start(const exec::TaskSpec& spec) override;
  // Idempotent; the first stop of an attempt decides its exit time.
  Status Stop(const exec::TaskKey& key, DurationMs grace) override;
  // Nothing outlives a simulation: every known task is reported lost.
  void Recover(const std::vector<exec::TaskKey>& known) override;
  Result<exec::LogChunk> ReadLog(const exec::TaskKey& key, int64_t offset,
                                 int64_t limit) const override;
  Result<int> RemoveJobFiles(model::JobId job) override;
  void Shutdown() override {}

  // Delivers every event due at or before the clock's now; how many.
  int Poll();
  // When the next event is due; 0: none.
  TimeMs NextDue();

  // What a job did, for the simulator's report.
  struct JobRecord {
    DurationMs duration = 0;         // trace run time (full size, consolidated)
    int tasks = 0;                   // 0: not declared
    double remaining = 0;            // ms of work left at full rate
    double rate = 0;                 // work per ms in the current attempt
    TimeMs last_update = 0;          // progress counted up to here
    TimeMs productive_from = 0;      // the restart penalty ends here
    int attempt = -1;                // the current attempt (TaskKey.attempt)
    int started_tasks = 0;           // tasks of the attempt started so far
    std::vector<std::string> nodes;  // distinct nodes of the attempt
    int attempt_gpus = 0;
    MilliGpu held = 0;  // milli-GPU held by the attempt's tasks
    TimeMs held_since = 0;
    enum Phase { kIdle, kRunning, kStopping } phase = kIdle;
    uint64_t epoch = 0;  // bumps when the attempt's exit moves
    int starts = 0;
    TimeMs first_start = -1;
    TimeMs end = -1;    // when its work was done (exit 0)
    double gpu_ms = 0;  // GPU-ms held over all attempts
  };
  // nullptr for a job AddJob did not declare.
  const JobRecord* Record(model::JobId id) const;
  // Work done up to now (ms at full rate), for the scheduler's oracle.
  DurationMs Progress(model::JobId id) const;
  MilliGpu allocated() const { return allocated_; }

 private:
  enum class Kind { kStarted, kExit, kStopExit };
  // Due time, sequence, kind, job, attempt, epoch, task.
  using Event = std::tuple<TimeMs, uint64_t, Kind, model::JobId, int, uint64_t, int>;
  void Push(TimeMs at, Kind kind, model::JobId job, int attempt, uint64_t epoch, int task);
  void Account(JobRecord& j, TimeMs now);
  void Release(JobRecord& j, TimeMs now);
  JobRecord* Find(model::JobId id);

  SimExecutorOptions options_;
  const Clock& clock_;
  exec::TaskEventSink sink_;
  std::vector<JobRecord> jobs_;  // by job id
  std::priority_queue<Event, std::vector<Event>, std::greater<Event>> events_;
  std::vector<exec::TaskEvent> recovered_;
  uint64_t seq_ = 0;
  MilliGpu allocated_ = 0;
};

}  // namespace berth::sim
