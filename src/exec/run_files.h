// The files in a local task's run directory, shared by the LocalExecutor and
// berth-shim. The directory is <run_root>/<TaskKey::ToString()>/ and holds:
//   spec.json    what to run (written by the executor before the shim starts)
//   shim.json    the shim's pid and /proc start time (so a reused pid is never
//                mistaken for it) and its cgroups; written before the task starts
//   task.json    the task's pid and start time, once it runs (a separate file:
//                replacing a file by rename costs a flush on ext4)
//   output.log   the task's combined stdout+stderr, capped; output.log.1 is the
//                previous part after a rotation
//   stop         the grace period (ms) of a pending stop request
//   status.json  how the task ended; written atomically, the truth on exit
//   shim.log     the shim's own diagnostics
#pragma once

#include <sys/types.h>

#include <cstdint>
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
};

std::string RunStatusToJson(const RunStatus& status);
Result<RunStatus> ParseRunStatus(const std::string& text);

// shim.json plus task.json (child_*).
struct ShimInfo {
  int64_t pid = 0;
  uint64_t start_ticks = 0;  // field 22 of /proc/<pid>/stat
  int64_t child_pid = 0;     // the task, once started
  uint64_t child_start_ticks = 0;
  std::vector<std::string> cgroups;
};

std::string ShimInfoToJson(const ShimInfo& info);  // shim.json: pid, start_ticks, cgroups
std::string TaskInfoToJson(const ShimInfo& info);  // task.json: child_pid, child_start_ticks
Result<ShimInfo> ParseShimInfo(const std::string& text);
// Reads <dir>/shim.json and, if present, <dir>/task.json.
Result<ShimInfo> ReadShimInfo(const std::string& dir);

// State and start time of a process from /proc/<pid>/stat; nullopt if gone.
struct ProcStat {
  char state = '?';  // 'Z' zombie, 'X' dead, ...
  uint64_t start_ticks = 0;
};
std::optional<ProcStat> ReadProcStat(pid_t pid);

// True if `info` names a process that is alive (not a zombie) and is the same
// process (matching start time).
bool ShimAlive(const ShimInfo& info);

// Writes `data` to a temp file beside `path`, optionally fsyncs it, and
// renames it over `path`: readers see the old or the new content, never a mix.
Status WriteFileAtomic(const std::string& path, const std::string& data, bool sync);

// The whole file; NotFound if it does not exist.
Result<std::string> ReadWholeFile(const std::string& path);

// "<dir>/<name>".
std::string JoinPath(const std::string& dir, const std::string& name);

}  // namespace berth::exec
