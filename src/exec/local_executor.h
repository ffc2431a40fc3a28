// The local executor: runs tasks on this machine, each under its own
// berth-shim so that tasks survive the daemon (see shim_main.cc and
// run_files.h for the run directory).
//
// Start writes <run_root>/<key>/spec.json and spawns berth-shim in a new
// session; the shim starts the command and reports "started" over a pipe
// (-> kStarted). One watcher thread waits on every shim with a pidfd; when a
// shim reports "exited" (or, failing that, exits), its status.json (the
// truth) becomes kExited or kStartFailed, and a shim that died without one
// becomes kLost. Stop signals the shim, which
// sends SIGTERM to the task's process group and SIGKILL after the grace.
//
// Events are delivered on the watcher thread only, one at a time, in order per
// task; the sink may call Start/Stop/ReadLog but not Shutdown or the
// destructor.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
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
  void Shutdown() override;

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
    bool reported = false;  // its end was reported from the "exited" line
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
};

// Checks the options, finds the shim, probes cgroups (one spdlog::warn if
// none is usable) and starts the watcher thread.
Result<std::unique_ptr<LocalExecutor>> MakeLocalExecutor(const LocalExecutorOptions& options,
                                                         Clock& clock, TaskEventSink sink);

}  // namespace berth::exec
