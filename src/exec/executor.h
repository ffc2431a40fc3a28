// Executors start, watch and stop tasks on placements the scheduler chose.
//
// The one interface fits every engine: local (fork/exec under berth-shim),
// Slurm, Kubernetes and the simulator. Start is asynchronous and returns at
// once; what happens next arrives as TaskEvents through the sink given at
// construction. Stop is idempotent. After a daemon restart, Recover reattaches
// to tasks that outlived the daemon and reports those that ended meanwhile.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/quantity.h"
#include "common/status.h"
#include "model/job.h"

namespace berth::exec {

using model::JobId;

// Identifies one run of one task: job, task index within the gang, attempt.
struct TaskKey {
  JobId job = 0;
  int task = 0;
  int attempt = 0;
  // "job-12.t0.a1": stable, used for run directories and external names.
  std::string ToString() const;
  static std::optional<TaskKey> Parse(const std::string& s);
  auto operator<=>(const TaskKey&) const = default;
};

// A Unix account that tasks run as.
struct TaskAccount {
  int64_t uid = -1;
  int64_t gid = -1;
  std::string name;
  std::string home;
  std::string shell;
};

struct TaskSpec {
  TaskKey key;
  // The job's owner (a user name). An executor that runs tasks as their
  // owners resolves it to an account and refuses a start for a name without
  // one; empty: the executor's own account.
  std::string user;
  std::vector<std::string> argv;
  std::map<std::string, std::string> env;  // added to the executor's base environment
  std::string working_dir;                 // empty: the task's run directory
  std::string node;
  std::vector<int> gpus;  // indices on `node`
  std::vector<std::string> gpu_uuids;
  MilliGpu gpu_share = 0;
  MilliCpu cpu_limit = 0;     // 0: no limit
  MiB memory_limit = 0;       // 0: no limit
  DurationMs time_limit = 0;  // 0: none; the executor stops the task when it is reached
  // SIGTERM-to-SIGKILL grace used when the time limit is reached.
  DurationMs termination_grace = 30 * kSecond;
};

enum class TaskEventType {
  kStarted,      // the command is running (pid/external id known)
  kExited,       // it ended; exit_code or signal set
  kStartFailed,  // it could not be started (command not found, bad working dir, ...)
  kLost,         // the executor lost track of it (no status recorded)
};

const char* TaskEventTypeName(TaskEventType t);

struct TaskEvent {
  TaskKey key;
  TaskEventType type = TaskEventType::kStarted;
  TimeMs time = 0;
  std::string external_id;       // pid for local, job id for Slurm, pod name for Kubernetes
  std::optional<int> exit_code;  // for kExited: the exit status, or 128+signal when killed
  int signal = 0;                // for kExited by a signal: the signal number
  std::string message;
  // kLost: the engine lost the task's node (Slurm's NODE_FAIL); the job may
  // run again elsewhere rather than fail.
  bool node_failed = false;
};

using TaskEventSink = std::function<void(const TaskEvent&)>;

// A page of a task's combined stdout and stderr. Offsets count bytes of the
// task's output since it began; an executor may keep only the newest part
// (rotation, an engine's retention), so a read can start later than asked:
// `start > offset` means the bytes in between are gone.
struct LogChunk {
  std::string data;
  int64_t start = 0;  // offset of data's first byte
  int64_t next = 0;   // where the following read starts (start + data.size())
  int64_t end = 0;    // the log's length when it was read
};

class Executor {
 public:
  virtual ~Executor() = default;
  virtual std::string Name() const = 0;

  // Begins starting the task; returns once the start is under way (or failed
  // synchronously, e.g. a malformed spec). Events follow through the sink.
  virtual Status Start(const TaskSpec& spec) = 0;

  // Asks the task to stop: SIGTERM (or the engine's equivalent), then a hard
  // kill after `grace`. Stopping a task that already ended is OK.
  virtual Status Stop(const TaskKey& key, DurationMs grace) = 0;

  // Reattaches to `known` tasks after a restart. Tasks still running are
  // watched again, and their kStarted may come again (a daemon that died
  // right after a start may never have recorded it; a job already running
  // ignores it); tasks that ended meanwhile get their kExited with the real
  // status; tasks the executor has no trace of get kLost. A kLost with no
  // kStarted before it means the command never ran and never will, so the
  // job may be started again; one that may have run never gets that.
  virtual void Recover(const std::vector<TaskKey>& known) = 0;

  // Reads up to `limit` bytes (an executor may return fewer: pages are
  // bounded) of the task's output from `offset`. A task that wrote nothing
  // yet, or is unknown, reads as an empty log. Safe to call while the task
  // runs and after it ended, from any thread.
  virtual Result<LogChunk> ReadLog(const TaskKey& key, int64_t offset, int64_t limit) const = 0;

  // Removes what the executor keeps of every attempt of every task of `job`
  // (run directories, logs, status files) once nobody needs them. Returns how
  // many task runs were removed; removing nothing is not an error.
  virtual Result<int> RemoveJobFiles(JobId job) = 0;

  // The account a task of `user` runs as: nullopt when this executor runs
  // every task as its own user; FailedPrecondition naming the user when it
  // runs tasks as their owners and `user` is no account here (checked when a
  // job or pipeline run is submitted, and again at start).
  virtual Result<std::optional<TaskAccount>> AccountFor(const std::string& user) const {
    (void)user;
    return std::optional<TaskAccount>();
  }

  // What the task's supervisor collected of a pipeline step's outputs
  // (exec/step_files.h): JSON text, {"parameters": {...}, "artifacts":
  // {...}} or {"error": "..."}. NotFound if there is none.
  virtual Result<std::string> ReadStepOutputs(const TaskKey& key) const {
    return NotFound(key.ToString() + ": this executor collects no step outputs");
  }

  // Stops watching (tasks keep running). Idempotent.
  virtual void Shutdown() = 0;
};

}  // namespace berth::exec
