// The Slurm executor: runs each task as one Slurm batch job on the node
// Berth's scheduler chose, under berth-shim (the same supervisor as the
// local executor, run in the foreground inside the job), with the run
// directory under a root every node sees. docs/slurm.md has the whole story.
//
// Start writes <run_root>/<key>/spec.json and submits, with sbatch, a short
// batch script that records what Slurm bound (node, GPU indices, job id:
// <dir>/slurm.env) and execs `berth-shim --run-dir <dir>`. The job asks for
// exactly the placement (`--nodelist=<node> --gres=gpu:<n>`, CPUs, memory),
// is named "<prefix><key>" so that a restarted berthd finds it by name, runs
// as the task's owner (`--uid/--gid`, berthd as root) and is never requeued
// by Slurm (`--no-requeue`: Berth decides). The run directory then belongs
// to the owner, since the shim runs as the owner.
//
// One poller thread watches every task: the shim's files say when the
// command started (task.json -> kStarted) and how it ended (status.json ->
// kExited / kStartFailed, the real exit code); one squeue per poll says when
// a job ended without a status (a node failure, a cancel before the shim
// ran): kLost, after claiming the run as abandoned when the shim never
// recorded itself (then the command certainly never ran). Stop writes the
// grace to <dir>/stop and sends SIGTERM to the batch step only (the shim,
// which stops the task with that grace); a job still pending is cancelled;
// a job still there grace + killAfter later is cancelled outright (Slurm's
// TERM, then KILL after its KillWait).
//
// Events are delivered on the poller thread, one at a time, in order per task.
#pragma once

#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "exec/executor.h"
#include "exec/slurm_tools.h"
#include "gpu/inventory.h"

namespace berth::exec {

struct SlurmExecutorOptions {
  SlurmToolsOptions tools;
  // Where run directories go; must be the same path on every node (a shared
  // file system in a real cluster). Required.
  std::string run_root;
  // The berth-shim binary, at this path on every node; empty: beside berthd.
  std::string shim_path;
  std::string job_name_prefix = "berth.";
  int64_t log_cap_bytes = 100LL << 20;
  // As root: each job runs as its owner (sbatch --uid/--gid). Off, or not
  // root: every job runs as berthd's user.
  bool run_as_owner = false;
  DurationMs poll_interval = 250;
  // A job that ended in Slurm with no status from its shim is reported lost
  // after this long (the status may still be on its way over a shared file
  // system).
  DurationMs settle = 2 * kSecond;
  // After a stop's grace, how long the shim gets before the job is cancelled.
  DurationMs kill_after = 10 * kSecond;
  // When slurmctld cannot be reached at a start, the task is reported lost
  // before it started (its job goes back to Berth's queue) this much later,
  // so that the retries of a long outage stay spaced.
  DurationMs unreachable_retry = 5 * kSecond;
};

class SlurmExecutor final : public Executor {
 public:
  // Use MakeSlurmExecutor.
  SlurmExecutor(SlurmExecutorOptions options, Clock& clock, TaskEventSink sink);
  ~SlurmExecutor() override;

  std::string Name() const override { return "slurm"; }
  // Submits the job (sbatch, tens of ms). InvalidArgument for an empty argv
  // or no node; FailedPrecondition for an owner without an account;
  // Unavailable when sbatch refuses the job (its message). When slurmctld
  // cannot be reached, returns OK and reports the task lost before it
  // started `unreachable_retry` later (the job waits in Berth's queue).
  Status Start(const TaskSpec& spec) override;
  Status Stop(const TaskKey& key, DurationMs grace) override;
  void Recover(const std::vector<TaskKey>& known) override;
  Result<LogChunk> ReadLog(const TaskKey& key, int64_t offset, int64_t limit) const override;
  Result<std::string> ReadStepOutputs(const TaskKey& key) const override;
  Result<int> RemoveJobFiles(JobId job) override;
  void Shutdown() override;

  std::string RunDir(const TaskKey& key) const;
  // The batch script submitted for a task in `dir` (exposed for tests).
  static std::string BatchScript(const std::string& dir, const std::string& shim);

 private:
  struct Watched {
    TaskKey key;
    std::string dir;
    std::string slurm_id;  // empty until known (recovered: found by name)
    std::string node;      // Berth's choice
    std::vector<int> gpus;
    bool started_reported = false;
    TimeMs gone_since = 0;    // Slurm says it ended (or forgot it) but no status yet
    TimeMs hard_kill_at = 0;  // cancel outright then (a stop's backstop)
    std::string last_state;   // Slurm's, as of the last poll
  };

  void PollLoop();
  void PollOnce();
  // Events for one task given Slurm's view (`job` null: Slurm does not
  // know it); true when the task is done and is forgotten.
  bool Check(Watched& w, const SlurmJob* job, bool slurm_ok, TimeMs now,
             std::vector<TaskEvent>& out);
  TaskEvent StartedEvent(const Watched& w, TimeMs time) const;
  void Post(std::vector<TaskEvent> events);

  SlurmExecutorOptions options_;
  SlurmTools tools_;
  Clock& clock_;
  TaskEventSink sink_;

  mutable std::mutex mu_;
  std::map<TaskKey, std::shared_ptr<Watched>> tasks_;
  std::vector<TaskEvent> pending_;  // from Recover, delivered by the poller
  // Starts Slurm could not take (unreachable): their kLost, due at a time.
  std::vector<std::pair<TimeMs, TaskEvent>> delayed_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
  std::mutex shutdown_mu_;
  bool shut_down_ = false;
  TimeMs last_warned_ = 0;  // squeue failures: one warning a minute (poller only)
};

// Checks the options, finds the shim, asks Slurm once (sinfo) so that a bad
// configuration fails at start, and starts the poller.
Result<std::unique_ptr<SlurmExecutor>> MakeSlurmExecutor(const SlurmExecutorOptions& options,
                                                         Clock& clock, TaskEventSink sink);

struct SlurmInventoryOptions {
  SlurmToolsOptions tools;
  // Slurm does not know a GPU's memory or model: what to assume.
  MiB gpu_memory = 81920;
  std::string gpu_model = "Slurm GPU";  // used when the gres has no type
  DurationMs refresh = 2 * kSecond;     // sinfo at most this often
};

// The nodes of a Slurm partition (sinfo): their GPUs (gres), CPUs, memory
// and address; nodes Slurm marks down, drained, failing or not responding
// are left out. If sinfo fails, the last list read stays (with one warning
// per outage). Fails at creation when Slurm cannot be asked at all.
Result<std::unique_ptr<gpu::Inventory>> MakeSlurmInventory(const SlurmInventoryOptions& options,
                                                           Clock& clock);

}  // namespace berth::exec
