// The job controller turns users' intent (submit, cancel) and executors'
// reports (started, exited) into state transitions in the store, and drives
// the scheduler: every change wakes one scheduling cycle whose decisions it
// applies (bind -> start on the executor, preempt -> stop and requeue,
// resize -> the training controller). Training jobs' gangs are delegated to
// its TrainingController (training_controller.h) through TrainingHost.
//
// Files: job_controller.cc (start, loop, inputs, executor events),
// job_transitions.cc (Move, Requeue, Finish, RequestStop), job_cycle.cc (the
// scheduling cycle and starting tasks).
//
// Threading: Submit/Cancel may be called from any thread. Executor events
// arrive from the executor's thread through OnTaskEvent. All transitions and
// scheduling happen on the controller's own thread, which owns the in-memory
// view of active jobs; the store stays the truth and the view is rebuilt from
// it on Start.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "controllers/controller.h"
#include "controllers/live_state.h"
#include "controllers/training_controller.h"
#include "exec/executor.h"
#include "gpu/inventory.h"
#include "model/job.h"
#include "sched/scheduler.h"
#include "store/store.h"

namespace berth::controllers {

using model::Job;
using model::JobId;
using model::JobSpec;

struct JobControllerOptions {
  // How often a cycle runs even without a change (time limits of pending
  // work, telemetry-driven policies).
  DurationMs resync_interval = 5 * kSecond;
  // While jobs are waiting and only new submissions arrive, cycles run at
  // most this often, so a burst of submissions is scheduled in batches
  // instead of one full cycle per job. A freed GPU triggers a cycle at once.
  DurationMs submit_batch_window = 5;
  // A policy whose priorities move with time (Decisions::recheck_at) gets a
  // cycle at that time, but never sooner than this (or four times the last
  // cycle's cost) after the last one.
  DurationMs min_recheck_interval = 100;
  // Environment added to every task (BERTH_SERVER, ...).
  std::map<std::string, std::string> task_env;
  // Environment made for one job's task as it starts (its BERTH_TOKEN),
  // added last; null: none.
  std::function<std::map<std::string, std::string>(const model::Job&)> task_env_for;
  // Reject at submit a command that cannot be found on this machine (local
  // executor only: other engines resolve commands on their nodes).
  bool check_commands_locally = true;
  // Training jobs: BERTH_CHECKPOINT_DIR is <checkpoint_root>/job-<id>. Empty:
  // no checkpoint directory is made or handed to the tasks.
  std::string checkpoint_root;
  // false: Start runs no controller thread; the caller drives the controller
  // with RunOnce (tests on a ManualClock), and Cancel runs one pass itself.
  bool run_thread = true;
  // Added for the simulator (src/sim/), which drives this controller on a
  // virtual clock; the daemon keeps the defaults.
  // Called on every scheduler request built from a job, to fill in what only
  // the caller knows (the simulator: expected_duration and progress).
  std::function<void(const Job&, sched::JobRequest&)> request_hook;
  // false: the batching window and the recheck spacing are the options
  // above only, not stretched by the measured cost of cycles (wall time),
  // so a run on a ManualClock is deterministic.
  bool adapt_to_cycle_cost = true;
  // SchedulerInput::explain_waiting: false skips building wait reasons
  // (WaitingReason then says less); the simulator's mode.
  bool explain_waiting = true;
  // false: GpuHolders, ProcessGroups and the GPU and state figures of
  // GetStats are not kept up to date (nobody asks for them in a simulation).
  bool publish_holders = true;
  // true: the inventory never changes (the simulator's cluster): its
  // snapshot is taken once, on Start, instead of on every cycle and submit.
  bool static_inventory = false;
  // Live GPU state (issue 12, live_state.h): drains, measured memory, idle
  // policies. Empty: cycles see the inventory only.
  LiveHooks live;
};

// StopIntent (why a job is being stopped) is in training_controller.h.
// Training jobs' gangs are run by the TrainingController this controller
// owns and delegates to (training_controller.h).
class JobController : public Controller, private TrainingHost {
 public:
  JobController(store::Store& store, sched::Scheduler& scheduler, exec::Executor& executor,
                const gpu::Inventory& inventory, const Clock& clock,
                JobControllerOptions options = {});
  ~JobController() override;

  std::string_view Name() const override { return "jobs"; }

  // Rebuilds the active jobs from the store, reattaches the executor to the
  // tasks that may still run, and starts the controller thread.
  Status Start() override;
  // Stops the controller thread. Running tasks keep running.
  void Stop() override;

  // Validates, checks that some node could ever run it, stores it and wakes
  // the scheduler. durable: the returned job is on disk (a client's
  // submission); false: committed, which survives a crash of berthd but not
  // a power loss (a pipeline's step jobs, recorded by their run in a later
  // commit). The scheduler sees the job as soon as it is committed, so it may
  // start while the store syncs it to disk.
  Result<Job> Submit(JobSpec spec, bool durable = true);

  // Cancels a job: a pending job at once, a scheduled or running one by
  // stopping its task (SIGTERM, grace, SIGKILL). Returns the job as stored
  // after the request. FailedPrecondition for a job that already ended.
  Result<Job> Cancel(JobId id);

  // The executor's sink.
  void OnTaskEvent(const exec::TaskEvent& event);

  // Which job holds which GPU now: (node, gpu index) -> job.
  struct GpuHolder {
    std::string node;
    int gpu = 0;
    JobId job = 0;
    std::string user, queue, name;
    MilliGpu share = 0;
    MiB gpu_memory = 0;  // the job's per-GPU memory floor (fractions)
  };
  std::vector<GpuHolder> GpuHolders() const;
  // Process group -> job for tasks running on this machine (each task leads
  // its own process group), for attributing GPU processes to jobs.
  std::map<int, JobId> ProcessGroups() const;
  // Appends a job-related event to the store (telemetry findings).
  void RecordEvent(const std::string& type, JobId job, const std::string& message,
                   const nlohmann::json& data = nullptr);

  // A fraction's process uses more GPU memory than its gpuMemory (the
  // telemetry controller found it): stopped at the next cycle when its
  // queue enforces memory (QueueLivePolicy::enforce). Any thread.
  void ReportMemoryExceeded(JobId job, const std::string& message);
  // Runs a cycle soon (live state changed: a drain, an undrain). Any thread.
  void Poke();

  // Counters for /metrics.
  struct Stats {
    // Active jobs now, by (state, queue).
    std::map<std::pair<std::string, std::string>, int64_t> active_by_state_queue;
    // Jobs that ended since the daemon started, by (state, queue).
    std::map<std::pair<std::string, std::string>, int64_t> finished_by_state_queue;
    int64_t gpus_total_milli = 0;
    int64_t gpus_allocated_milli = 0;
    // Queue wait (submit to schedule) histogram, seconds; counts are per
    // bucket (not cumulative), the last bucket is +Inf.
    std::vector<double> wait_bounds = {0.01, 0.1, 1, 10, 60, 300, 1800, 3600, 6 * 3600.0};
    std::vector<int64_t> wait_counts = std::vector<int64_t>(10, 0);
    double wait_sum = 0;
    int64_t wait_count = 0;
    int64_t preemptions = 0;
    int64_t cycles = 0;
  };
  Stats GetStats() const;

  // One pass of the controller loop on the calling thread: handles queued
  // submissions, cancels and executor events, due timers, and a scheduling
  // cycle if one is due. The controller thread calls it; with
  // options.run_thread false the caller does (from one thread at a time).
  void RunOnce() override;

  // Blocks until the controller has no queued work or the timeout passes
  // (for tests and benchmarks). True when idle.
  bool WaitIdle(DurationMs timeout_ms);

  // Why a pending job is still waiting, as the scheduler last said ("" if unknown).
  std::string WaitingReason(JobId id) const;

  // With run_thread false: the earliest time at which RunOnce has something
  // to do without new input (a deferred cycle at the end of the batching
  // window, a policy recheck, a gang deadline, a clean-up, the resync); 0
  // when nothing is due. For a caller that drives the controller on a
  // virtual clock (the simulator).
  TimeMs NextWakeup() const;

 private:
  struct Active {
    Job job;
    StopIntent intent = StopIntent::kNone;
    int pid = 0;            // the task's pid (= its process group) once started, if local
    int pending_slot = -1;  // index in pending_requests_ while Pending
    // The scheduler's view of the job while it runs, kept between cycles.
    std::optional<sched::RunningJob> running_request;
    // kDrain / kEnd: why it is being stopped, and kEnd's event type.
    std::string live_reason, live_event;
  };
  struct Input {
    enum Kind { kSubmitted, kCancel, kTaskEvent } kind = kSubmitted;
    Job job;
    JobId id = 0;
    exec::TaskEvent event;
    std::shared_ptr<std::promise<Result<Job>>> reply;
  };

  void Loop();
  void Handle(const Input& in);
  void HandleTaskEvent(const exec::TaskEvent& ev);
  Result<Job> HandleCancel(JobId id);
  void RunCycle();
  void StartTask(Active& a);
  // The earliest time the loop must wake for (recheck, gang deadline, clean-up); 0: none.
  TimeMs NextTimer() const;
  // When the policy's recheck may run: its time, spaced from the last cycle.
  TimeMs RecheckTime() const;
  std::vector<sched::TaskPlacement> TaskPlacements(const Job& job) const;
  // Ends the attempt (Running/Scheduled -> Preempted with `ended`, event
  // `type`) and puts the job back in the queue (-> Pending, "JobRequeued").
  void Requeue(Active& a, const store::JobUpdate& ended, const std::string& type,
               const std::string& message, const nlohmann::json& data,
               const std::string& requeue_message);
  void Finish(Active& a, model::JobState to, const store::JobUpdate& update,
              const std::string& type, const std::string& message, const nlohmann::json& data);
  bool Move(Active& a, model::JobState to, store::JobUpdate update, const std::string& type,
            const std::string& message, const nlohmann::json& data = nullptr);
  // Records that `a` is being stopped for `intent` (its grace period ends at
  // now + grace) with the event `type`, in one transaction, and sets
  // a.intent. `annotation` may carry more (a resize's training status).
  // False (and a.intent unchanged) when the store refuses.
  bool RequestStop(Active& a, StopIntent intent, const std::string& type,
                   const std::string& message, const nlohmann::json& data = nullptr,
                   store::JobAnnotation annotation = {});
  // Commits the pass's queued store writes (outbox_) in one transaction,
  // then runs what waited for them (after_commit_: a task's start or stop),
  // until both are empty. False when the store refused the batch (locked by
  // another process, I/O error): everything stays queued, in order, and is
  // retried from RunOnce; no cycle runs meanwhile.
  bool Flush();
  // Runs `fn` once everything queued so far is committed (see Flush).
  void AfterCommit(std::function<void()> fn) { after_commit_.push_back(std::move(fn)); }
  // Starts the task of a job bound in this pass, once its binding is committed.
  void StartAfterCommit(JobId id);
  void PublishHolders();
  // Live state (job_live.cc): the cycle's snapshot with health, drains and
  // measurements, jobs on unhealthy GPUs requeued, idle and memory rules
  // applied; idle jobs reclaimed for jobs the cycle left waiting.
  const sched::ClusterSnapshot& LiveSnapshot(sched::ClusterSnapshot& fresh);
  void ReclaimIdle(const sched::Decisions& d, const sched::ClusterSnapshot& snap);
  // Records the stop (RequestStop) and stops the job's task(s).
  bool StopLive(Active& a, StopIntent intent, const std::string& type, const std::string& message,
                const nlohmann::json& data, DurationMs grace);
  std::string StopMessage(JobId id) override;
  std::string StopEventType(JobId id) override;
  sched::JobRequest ToRequest(const Job& job) const;
  sched::ClusterSnapshot Snapshot() const;
  Status CheckCommand(const JobSpec& spec) const;

  // TrainingHost: what the training controller asks of this one (job_controller.cc).
  JobRef FindJob(JobId id) override;
  bool MoveJob(JobId id, model::JobState to, store::JobUpdate update, const std::string& type,
               const std::string& message, const nlohmann::json& data) override;
  void RequeueJob(JobId id, const store::JobUpdate& ended, const std::string& type,
                  const std::string& message, const nlohmann::json& data,
                  const std::string& requeue_message) override;
  void FinishJob(JobId id, model::JobState to, const store::JobUpdate& update,
                 const std::string& type, const std::string& message,
                 const nlohmann::json& data) override;
  bool RequestJobStop(JobId id, StopIntent intent, const std::string& type,
                      const std::string& message, const nlohmann::json& data,
                      store::JobAnnotation annotation) override;
  void CountPreemption() override;
  void HoldersChanged() override { holders_dirty_ = true; }
  void WriteJob(store::StateOp op) override { outbox_.push_back(std::move(op)); }
  void AfterCommitOf(std::function<void()> fn) override { AfterCommit(std::move(fn)); }

  store::Store& store_;
  sched::Scheduler& scheduler_;
  exec::Executor& executor_;
  const gpu::Inventory& inventory_;
  const Clock& clock_;
  JobControllerOptions options_;
  TrainingController training_;  // training jobs' gangs, on this controller's thread

  mutable std::mutex mu_;  // guards inputs_, busy_, stop_, holders_, stats_
  std::condition_variable cv_;
  std::condition_variable idle_cv_;
  std::deque<Input> inputs_;
  bool busy_ = false;
  bool stop_ = false;
  bool dirty_ = true;  // a cycle is due
  std::vector<GpuHolder> holders_;
  std::map<int, JobId> process_groups_;
  std::map<JobId, std::string> waiting_reason_;
  std::vector<std::pair<JobId, std::string>> memory_reports_;  // ReportMemoryExceeded
  bool poked_ = false;
  Stats stats_;
  std::thread thread_;

  // Owned by the controller thread.
  std::map<JobId, Active> active_;
  std::set<JobId> bound_;  // active jobs in Scheduled or Running
  std::map<std::pair<std::string, std::string>, int64_t> counts_;  // (state, queue) of active jobs
  bool capacity_changed_ = true;  // something other than a submission happened since the last cycle
  bool jobs_waiting_ = false;     // the last cycle left jobs waiting
  TimeMs last_cycle_ = 0;
  TimeMs last_resync_ = 0;
  DurationMs batch_window_ = 0;  // the current window: the option, or more when cycles are costly
  bool holders_dirty_ = true;
  TimeMs recheck_at_ = 0;
  DurationMs last_cycle_cost_ = 0;  // how long the last cycle took
  // The scheduler's pending list, kept up to date as jobs enter and leave
  // Pending (a pending job's request does not change while it waits), so a
  // cycle does not rebuild it from every active job. Slots of jobs that
  // left are compacted away before the next cycle, keeping the order.
  std::vector<sched::JobRequest> pending_requests_;
  std::vector<Active*> pending_owners_;  // per slot; nullptr: left since the last compaction
  size_t pending_holes_ = 0;
  bool pending_rebuild_ = true;             // rebuild from active_ (after Start)
  sched::ClusterSnapshot static_snapshot_;  // options_.static_inventory: taken on Start
  // Store writes of the current pass (transitions, stop requests, events),
  // in order; the in-memory view above already shows them. Committed by
  // Flush, kept and retried while the store refuses them.
  std::vector<store::StateOp> outbox_;
  std::vector<std::function<void()>> after_commit_;
  bool store_blocked_ = false;  // the last Flush failed: retry at retry_at_
  TimeMs retry_at_ = 0;
  DurationMs retry_backoff_ = 0;
  int64_t blocked_since_ = 0;  // MonotonicNanos of the first refusal
  void PendingAdd(Active& a);
  void PendingRemove(Active& a);
};

}  // namespace berth::controllers
