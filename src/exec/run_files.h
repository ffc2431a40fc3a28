// The files in a local task's run directory, shared by the LocalExecutor and
// berth-shim. The directory is <run_root>/<TaskKey::ToString()>/, owned by the
// daemon's user (only it writes there), and holds:
//   spec.json    what to run (written by the executor before the shim starts)
//   shim.json    the shim's pid and /proc start time (so a reused pid is never
//                mistaken for it) and its cgroups. Created exclusively (never
//                replaced) before the task is forked: whoever creates it first
//                decides the run. The shim claims it; an executor that finds a
//                run without one after a restart claims it as "abandoned", and
//                a shim that comes late then exits without starting anything.
//   forked       created just before the shim forks the task: a run without
//                it whose shim is gone certainly never ran its command
//   task.json    the task's pid and start time, once it runs (a separate file:
//                replacing a file by rename costs a flush on ext4)
//   output.log   the task's combined stdout+stderr, capped; output.log.1 is the
//                previous part after a rotation
//   stop         the grace period (ms) of a pending stop request
//   status.json  how the task ended; written atomically, the truth on exit
//   shim.log     the shim's own diagnostics
//   work/        only for a task that runs as another user than the daemon's:
//                the task's own directory (its default working directory and
//                BERTH_RUN_DIR), owned by that user. Everything else above is
//                the daemon's, and berthd opens nothing there through a link.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/quantity.h"
#include "common/status.h"
#include "exec/executor.h"

namespace berth::exec {

inline constexpr char kSpecFile[] = "spec.json";
inline constexpr char kShimFile[] = "shim.json";
inline constexpr char kTaskFile[] = "task.json";
inline constexpr char kOutputFile[] = "output.log";
inline constexpr char kOutputOldFile[] = "output.log.1";
inline constexpr char kStopFile[] = "stop";
inline constexpr char kStatusFile[] = "status.json";
inline constexpr char kShimLogFile[] = "shim.log";
inline constexpr char kForkedFile[] = "forked";
inline constexpr char kWorkDir[] = "work";

// Where the shim makes a task's cgroups: <parent>/<key>-<shim pid>. Empty
// parents mean that controller is not available.
struct CgroupPlan {
  int version = 0;            // 0: none, 1: v1 hierarchies, 2: unified
  std::string v2_parent;      // v2: e.g. /sys/fs/cgroup/berth (cpu+memory enabled)
  std::string cpu_parent;     // v1: e.g. /sys/fs/cgroup/cpu/berth
  std::string memory_parent;  // v1: e.g. /sys/fs/cgroup/memory/berth
};

// spec.json: everything the shim needs, with the environment already final
// (these variables are set on top of the shim's own environment).
struct RunSpec {
  TaskKey key;
  std::vector<std::string> argv;
  std::map<std::string, std::string> env;
  std::string working_dir;  // never empty here
  MilliCpu cpu_limit = 0;
  MiB memory_limit = 0;
  DurationMs time_limit = 0;
  DurationMs grace = 30 * kSecond;
  int64_t log_cap_bytes = 100LL << 20;
  CgroupPlan cgroup;
  // The account the task runs as; uid -1: the shim's own (no switch). The
  // shim sets the supplementary groups of `user`, then gid, then uid.
  int64_t uid = -1;
  int64_t gid = -1;
  std::string user;   // name, for the groups and USER/LOGNAME
  std::string home;   // HOME
  std::string shell;  // SHELL
  // A pipeline step's files (exec/step_files.h, JSON); empty for other tasks.
  std::string step_files;
};

std::string RunSpecToJson(const RunSpec& spec);
Result<RunSpec> ParseRunSpec(const std::string& text);

// status.json. started is false when the command never ran (then exit_code is
// 127 or 126 and error says why). exit_code is 128+signal when killed.
struct RunStatus {
  bool started = false;
  int exit_code = 0;
  int signal = 0;
  TimeMs start_time = 0;
  TimeMs end_time = 0;
  std::string error;
  int64_t pid = 0;  // the task's pid (0 if it never started)
  // A pipeline step that succeeded: what the shim collected as the task's
  // owner (CollectStepOutputs, JSON text); empty otherwise.
  std::string step_outputs;
};

std::string RunStatusToJson(const RunStatus& status);
Result<RunStatus> ParseRunStatus(const std::string& text);

// shim.json plus task.json (child_*).
struct ShimInfo {
  // Set when the executor claimed the run before any shim recorded itself:
  // then nothing ran and nothing will (pid is 0).
  bool abandoned = false;
  std::string abandoned_reason;
  int64_t pid = 0;
  uint64_t start_ticks = 0;  // field 22 of /proc/<pid>/stat
  int64_t child_pid = 0;     // the task, once started
  uint64_t child_start_ticks = 0;
  std::vector<std::string> cgroups;
};

std::string ShimInfoToJson(const ShimInfo& info);        // shim.json: pid, start_ticks, cgroups
std::string AbandonedToJson(const std::string& reason);  // shim.json of a run given up
std::string TaskInfoToJson(const ShimInfo& info);        // task.json: child_pid, child_start_ticks
Result<ShimInfo> ParseShimInfo(const std::string& text);
// Reads <dir>/shim.json and, if present, <dir>/task.json.
Result<ShimInfo> ReadShimInfo(const std::string& dir);

// State and start time of a process from /proc/<pid>/stat; nullopt if gone.
struct ProcStat {
  char state = '?';  // 'Z' zombie, 'X' dead, ...
  pid_t ppid = 0;
  uint64_t start_ticks = 0;
};
std::optional<ProcStat> ReadProcStat(pid_t pid);

// True if `info` names a process that is alive (not a zombie) and is the same
// process (matching start time).
bool ShimAlive(const ShimInfo& info);

// A pidfd for the live shim that `info` names, or -1 if that process is gone
// (or its pid now belongs to another process).
int OpenLiveShim(const ShimInfo& info);

// Writes `data` to a temp file beside `path`, optionally fsyncs it, and
// renames it over `path`: readers see the old or the new content, never a mix.
// The temp file is made afresh (O_EXCL, no link followed).
Status WriteFileAtomic(const std::string& path, const std::string& data, bool sync);

// Creates `path` with `data` only if nothing is there yet, all at once (a temp
// file hard-linked to its name): AlreadyExists if it exists, and readers never
// see it partly written.
Status CreateFileExclusive(const std::string& path, const std::string& data);

// The whole regular file; NotFound if it does not exist. A symbolic link in
// the last component is not followed (an error), nor is anything but a
// regular file read.
Result<std::string> ReadWholeFile(const std::string& path);

// Removes `name` in the directory open as `dirfd` and, if it is a directory,
// everything in it, without following any symbolic link (links are removed,
// not their targets). OK if it does not exist.
Status RemoveTreeAt(int dirfd, const std::string& name);

// Removes every attempt's run directory of `job` in `run_root`
// (job-<id>.t<rank>.a<attempt>, matched by name) through RemoveTreeAt, except
// those `keep` names (a task still running). The number removed; 0 when
// run_root does not exist.
Result<int> RemoveJobRunDirs(const std::string& run_root, JobId job,
                             const std::function<bool(const TaskKey&)>& keep);

// "<dir>/<name>".
std::string JoinPath(const std::string& dir, const std::string& name);

}  // namespace berth::exec
