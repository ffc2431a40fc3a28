// The training controller runs training jobs' gangs (spec.training): one
// executor task per worker (TaskKey.task = rank) with the torch.distributed
// environment, a checkpoint directory per job, and the job's training status
// (restarts, resizes, workers, world-size history, master address; table
// training_status). Any worker failing stops the whole gang; once every
// worker of the attempt has ended, the gang is finished, restarted (under
// restartPolicy and backoffLimit) or relaunched at a new size (elastic).
// successPolicy Worker0 stops the stragglers a grace period after worker 0
// succeeded; ttlSecondsAfterFinished removes a finished job's files.
//
// It is a part of the job controller, not a controller of its own: training
// jobs are jobs (one row, one life cycle, one scheduler), so the job
// controller owns their transitions and calls this unit, on its own thread,
// for everything gang-specific; this unit asks for transitions back through
// TrainingHost. Rebuilt from the store on start (Restore, LoadCleanups).
//
// A relaunch (restart after a failure, preemption, elastic resize) goes
// Running -> Preempted -> Pending and the scheduler binds the gang again: an
// elastic job is then bound at whatever size between min and max fits.
#pragma once

#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/clock.h"
#include "exec/executor.h"
#include "gpu/inventory.h"
#include "model/job.h"
#include "store/store.h"

namespace berth::controllers {

// Why a job is being stopped; persisted (the job's stop_reason and
// stop_deadline, written with the request's event) so a restarted daemon
// finishes the job the way it was asked to (a cancelled job stays Cancelled,
// a preempted one is requeued). The job's next transition out of Scheduled or
// Running clears it.
// kResize (elastic grow/shrink) is persisted as "preempt": both requeue.
// kDrain: a GPU of the job was drained (live_state.h): requeued like a
// preemption (a training gang counts one restart); persisted as "preempt".
// kEnd: stopped to end as Failed for a live-state reason (IdleTimeout,
// GpuMemoryExceeded); persisted as "cancel".
enum class StopIntent { kNone, kCancel, kPreempt, kResize, kDrain, kEnd };

// What the training controller needs of the job controller, which owns the
// jobs' records and transitions. Every call but FindJob may end the job.
class TrainingHost {
 public:
  struct JobRef {
    const model::Job* job = nullptr;  // nullptr: not an active job
    StopIntent* intent = nullptr;
  };
  virtual JobRef FindJob(model::JobId id) = 0;
  // As JobController's Move, Requeue, Finish and RequestStop.
  virtual bool MoveJob(model::JobId id, model::JobState to, store::JobUpdate update,
                       const std::string& type, const std::string& message,
                       const nlohmann::json& data) = 0;
  virtual void RequeueJob(model::JobId id, const store::JobUpdate& ended, const std::string& type,
                          const std::string& message, const nlohmann::json& data,
                          const std::string& requeue_message) = 0;
  virtual void FinishJob(model::JobId id, model::JobState to, const store::JobUpdate& update,
                         const std::string& type, const std::string& message,
                         const nlohmann::json& data) = 0;
  virtual bool RequestJobStop(model::JobId id, StopIntent intent, const std::string& type,
                              const std::string& message, const nlohmann::json& data,
                              store::JobAnnotation annotation) = 0;
  virtual void CountPreemption() = 0;
  // Why a job stopped with kDrain or kEnd is being stopped ("" if unknown)
  // and the event type its end records (kEnd: "IdleTimeout", ...).
  virtual std::string StopMessage(model::JobId) { return ""; }
  virtual std::string StopEventType(model::JobId) { return ""; }
  // A worker started or ended: the GPU holders and process groups changed.
  virtual void HoldersChanged() = 0;
  // Queues a store write (an annotation or an event about the job) with the
  // job controller's other writes of this pass, in order.
  virtual void WriteJob(store::StateOp op) = 0;
  // Runs `fn` once the writes queued so far are committed (a stop that must
  // not be sent before the request is recorded).
  virtual void AfterCommitOf(std::function<void()> fn) = 0;

 protected:
  ~TrainingHost() = default;
};

struct TrainingOptions {
  // Environment added to every worker (BERTH_SERVER, ...).
  std::map<std::string, std::string> task_env;
  // Environment made for one job as its workers start (BERTH_TOKEN).
  std::function<std::map<std::string, std::string>(const model::Job&)> task_env_for;
  // BERTH_CHECKPOINT_DIR is <checkpoint_root>/job-<id>. Empty: none.
  std::string checkpoint_root;
};

class TrainingController {
 public:
  TrainingController(store::Store& store, exec::Executor& executor, const gpu::Inventory& inventory,
                     const Clock& clock, TrainingHost& host, TrainingOptions options);

  // A new training job: its initial status, saved.
  void Add(const model::Job& job);
  // An active training job read from the store at start: its saved status,
  // and its workers as the job's state says.
  void Restore(const model::Job& job);
  // The finished jobs' pending clean-ups, from the store.
  Status LoadCleanups();
  // The job was bound (Scheduled, placement.workers set): starts its workers.
  void Launch(model::JobId id);
  // An executor event about one of the job's workers.
  void OnTaskEvent(model::JobId id, const exec::TaskEvent& ev);
  // Stops every worker still running (SIGTERM, SIGKILL after `grace`).
  void Stop(model::JobId id, DurationMs grace);
  // The scheduler would run the job on `to` workers: records the resize and
  // stops the gang (it checkpoints and is relaunched). False when the job
  // cannot be resized now (not running, being stopped, failing, a limit).
  bool Resize(model::JobId id, int to);
  // The job ended: forgets its gang; `cleanup_at` (ttlSecondsAfterFinished)
  // schedules the removal of its files.
  void Forget(model::JobId id, std::optional<TimeMs> cleanup_at);

  // The status written with each transition of the job (brought up to date
  // with its workers); nullptr when the job has none.
  const nlohmann::json* StatusForTransition(model::JobId id);
  // Adds the job's running workers' process groups to `groups`.
  void ProcessGroups(model::JobId id, std::map<int, model::JobId>& groups) const;

  // Queues the statuses changed since the last call (workers started or
  // ended) as one write per job, through the host: a gang's status is
  // written once per pass, not once per worker.
  void FlushStatuses();

  // Gang deadlines (successPolicy Worker0) and clean-ups due at `now`.
  void RunTimers(TimeMs now);
  // The earliest of those timers; 0: none.
  TimeMs NextTimer() const;

  std::string CheckpointDir(model::JobId id) const;

 private:
  // One worker (task) of a training job's current attempt.
  struct Worker {
    std::string state = "Pending";  // Pending, Running, Succeeded, Failed, Stopped, NotStarted
    std::optional<int> exit_code;
    int pid = 0;
    bool ended = false;
  };
  struct Gang {
    std::vector<Worker> workers;
    bool failing = false;  // a worker failed: the others are being stopped
    int failed_rank = -1;
    int failed_code = 0;
    std::string failure;          // "worker 1 exited with code 3"
    bool unstarted_lost = false;  // lost before it ever started: requeue
    bool finishing = false;       // worker 0 succeeded, stragglers past the grace are being stopped
    nlohmann::json status;        // persisted training status (table training_status)
  };

  const nlohmann::json& UpdateStatus(const model::Job& job, Gang& g);
  void SaveStatus(const model::Job& job, Gang& g);
  // Queues an event about the job with the host's writes of this pass.
  void RecordEvent(model::JobId id, const std::string& type, const std::string& message,
                   const nlohmann::json& data);
  void StopWorkers(const model::Job& job, Gang& g, DurationMs grace);
  void End(model::JobId id);
  void RunDeadlines(TimeMs now);
  void RunCleanups(TimeMs now);

  store::Store& store_;
  exec::Executor& executor_;
  const gpu::Inventory& inventory_;
  const Clock& clock_;
  TrainingHost& host_;
  TrainingOptions options_;

  std::map<model::JobId, Gang> gangs_;         // active training jobs
  std::map<model::JobId, TimeMs> deadlines_;   // worker 0 succeeded: stop the rest at this time
  std::map<model::JobId, TimeMs> cleanup_at_;  // finished jobs: clean up at this time
  std::set<model::JobId> status_dirty_;        // statuses to write (FlushStatuses)
};

}  // namespace berth::controllers
