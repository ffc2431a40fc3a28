// The local executor: runs tasks on this machine, each under its own
// berth-shim so that tasks survive the daemon (see shim_main.cc and
// run_files.h for the run directory).
//
// Start writes <run_root>/<key>/spec.json and spawns berth-shim in a new
// session; the shim records itself, starts the command and reports "started"
// over a pipe (-> kStarted). One watcher thread waits on every shim with a
// pidfd; when a shim exits, its status.json (the truth) becomes kExited or
// kStartFailed, and a shim that died without one becomes kLost. Stop signals
// the shim, which sends SIGTERM to everything the task started and SIGKILL
// after the grace.
//
// A task never runs twice, whenever the daemon or the shim dies (see
// test_hooks.h for the steps of a start): kLost without a kStarted before it
// means the command certainly never ran and never will (the run was claimed
// as abandoned, or its shim died before forking), so the job may be started
// again; a task that may have run gets its kStarted first (when it was not
// reported yet), then kLost.
//
// Run as root with run_as_owner, a task runs as its owner (TaskSpec::user):
// the shim switches to that account's uid, gid and groups before exec, and
// the task's directory is <run dir>/work, owned by the owner; the run
// directory itself stays the daemon's (run_files.h).
//
// Events are delivered on the watcher thread only, one at a time, in order per
// task; the sink may call Start/Stop/ReadLog but not Shutdown or the
// destructor.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "exec/executor.h"
#include "exec/run_files.h"

namespace berth::exec {

struct LocalExecutorOptions {
  // Where run directories go (<run_root>/<key>/); made if missing. Required.
  std::string run_root;
  // The berth-shim binary; empty: "berth-shim" in the directory of this
  // process's executable (/proc/self/exe).
  std::string shim_path;
  // output.log is rotated to output.log.1 when it would pass this size.
  int64_t log_cap_bytes = 100LL << 20;
  // Apply cpu_limit/memory_limit through cgroups when a writable hierarchy
  // exists (else one warning at start and tasks run without limits).
  bool use_cgroups = true;
  std::string cgroup_root = "/sys/fs/cgroup";
  std::string cgroup_name = "berth";  // the parent cgroup of all tasks
  // When this process runs as root, run each task as its owner (TaskSpec::
  // user; a name without an account is refused). Off, or not root: every task
  // runs as this process's user. berthd turns it on unless configured off
  // (executor.runAsOwner); off here for embedders that set nothing.
  bool run_as_owner = false;
  // Run directories of tasks that ended longer ago than this are removed
  // (0: kept forever). Checked every cleanup_interval, from the first
  // Recover() on (tasks a restart may still report on are never removed
  // before berthd has recovered them).
  DurationMs run_retention = 7 * 24 * kHour;
  DurationMs cleanup_interval = kHour;
};

// "berth-shim" beside the running executable.
std::string DefaultShimPath();

class LocalExecutor final : public Executor {
 public:
  // Use MakeLocalExecutor.
  LocalExecutor(const LocalExecutorOptions& options, std::string shim_path, CgroupPlan cgroups,
                Clock& clock, TaskEventSink sink);
  ~LocalExecutor() override;

  std::string Name() const override { return "local"; }
  // Returns once the shim is spawned (a few ms at most). InvalidArgument for an
  // empty argv; AlreadyExists if the key is running; IoError if the run
  // directory or the shim process cannot be made.
  Status Start(const TaskSpec& spec) override;
  // Writes the grace to <run dir>/stop and SIGTERMs the shim. OK if the task
  // already ended; NotFound if there is no trace of it.
  Status Stop(const TaskKey& key, DurationMs grace) override;
  void Recover(const std::vector<TaskKey>& known) override;
  // Reads <run dir>/output.log (and the rotated part) through ReadTaskLog.
  Result<LogChunk> ReadLog(const TaskKey& key, int64_t offset, int64_t limit) const override;
  // Removes <run_root>/job-<id>.* without following symlinks out of run_root.
  Result<int> RemoveJobFiles(JobId job) override;
  // Looks `user` up when tasks run as their owners (RunsAsOwner).
  Result<std::optional<TaskAccount>> AccountFor(const std::string& user) const override;
  // The stepOutputs of <run dir>/status.json.
  Result<std::string> ReadStepOutputs(const TaskKey& key) const override;
  // run_as_owner, and this process runs as root.
  bool RunsAsOwner() const;
  void Shutdown() override;

  // Removes the run directories past run_retention now (what the cleaner
  // does every cleanup_interval). Returns how many were removed.
  int CleanUpOldRuns();

  // <run_root>/<key>.
  std::string RunDir(const TaskKey& key) const;
  // The cgroup hierarchy found at start: version 0 (none), 1 or 2.
  const CgroupPlan& cgroups() const { return cgroups_; }

 private:
  struct Watched {
    TaskKey key;
    std::string dir;
    pid_t pid = 0;
    int pidfd = -1;
    int progress_fd = -1;  // -1 after recovery: no pipe to a shim we did not start
    std::string buf;       // partial progress line
    uint64_t token = 0;
    bool started_reported = false;  // a kStarted was sent for it
    bool reported = false;          // its end was reported from the "exited" line
  };

  void WatchLoop();
  // Reads progress lines; appends kStarted events, and the task's end from
  // status.json on the "exited" line (the shim fsyncs it after that line).
  void ReadProgress(Watched& w, std::vector<TaskEvent>& out);
  // The shim exited: reaps it, reads status.json, forgets it.
  void OnShimExit(const std::shared_ptr<Watched>& w, std::vector<TaskEvent>& out);
  // Takes `w` out of the maps and epoll and closes its fds. Caller holds mu_.
  void ForgetLocked(const std::shared_ptr<Watched>& w);
  // The event that status.json in `dir` describes, if it exists.
  std::optional<TaskEvent> EventFromStatus(const TaskKey& key, const std::string& dir,
                                           bool use_end_time) const;
  // Events for a run whose shim is gone without a status: never started (the
  // run is claimed as abandoned if nobody recorded itself), or a kStarted
  // (unless `started_reported`) and kLost if the command may have run.
  void ReportDeadShim(const TaskKey& key, const std::string& dir, bool started_reported,
                      const std::string& who, std::vector<TaskEvent>& out);
  // Recover() of one key.
  void RecoverOne(const TaskKey& key, std::vector<TaskEvent>& out);
  // kStarted for recovered tasks whose start no pipe reports (polled).
  void PollRecoveredStarts(std::vector<TaskEvent>& out);
  void CleanerLoop();
  Status WatchLocked(std::shared_ptr<Watched> w);
  void Post(std::vector<TaskEvent> events);
  void Wake();

  LocalExecutorOptions options_;
  std::string shim_path_;
  CgroupPlan cgroups_;
  Clock& clock_;
  TaskEventSink sink_;

  int epfd_ = -1;
  int wakefd_ = -1;
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  bool shut_down_ = false;  // under shutdown_mu_
  std::mutex shutdown_mu_;

  mutable std::mutex mu_;
  std::map<TaskKey, std::shared_ptr<Watched>> tasks_;
  std::unordered_map<uint64_t, std::shared_ptr<Watched>> by_token_;
  uint64_t next_token_ = 1;
  std::deque<TaskEvent> pending_;  // from Recover, delivered by the watcher
  std::set<TaskKey> recovered_;    // keys given to Recover: never cleaned up by age

  std::thread cleaner_;
  std::mutex cleaner_mu_;
  std::condition_variable cleaner_cv_;
  bool cleaner_stop_ = false;  // under cleaner_mu_
};

// Checks the options, finds the shim, probes cgroups (one spdlog::warn if
// none is usable) and starts the watcher thread.
Result<std::unique_ptr<LocalExecutor>> MakeLocalExecutor(const LocalExecutorOptions& options,
                                                         Clock& clock, TaskEventSink sink);

}  // namespace berth::exec
