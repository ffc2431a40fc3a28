// cgroup limits for local tasks (cpu_limit, memory_limit).
//
// Prefers cgroup v2 (a unified hierarchy whose cgroup.controllers lists cpu and
// memory), else v1 (the cpu and memory hierarchies). The executor probes once
// at start (ProbeCgroups) and passes the plan to each shim in spec.json; the
// shim makes the task's cgroups, the task joins them before exec, and the shim
// removes them when the task ends.
#pragma once

#include <string>
#include <vector>

#include "common/quantity.h"
#include "exec/run_files.h"

namespace berth::exec {

// Finds a writable hierarchy under `root` (normally /sys/fs/cgroup) and makes
// the parent cgroup `name` in it. On failure returns version 0 and sets
// *problem; a plan with only one v1 controller sets *problem too.
CgroupPlan ProbeCgroups(const std::string& root, const std::string& name, std::string* problem);

// The cgroups of one task.
struct TaskCgroups {
  std::vector<std::string> dirs;         // every cgroup made for the task
  std::vector<std::string> procs_files;  // where the task writes its pid
  std::string memory_dir;                // the one that enforces memory, if any
  int version = 0;
};

// Makes <parent>/<leaf> for each controller that a limit needs and writes the
// limits. Problems are appended to *warnings; the task runs without that limit.
TaskCgroups CreateTaskCgroups(const CgroupPlan& plan, const std::string& leaf, MilliCpu cpu_limit,
                              MiB memory_limit, std::vector<std::string>* warnings);

// Whether the kernel OOM-killed a process in the task's memory cgroup.
bool CgroupOomKilled(const TaskCgroups& cg);

// SIGKILLs what is left in `dir` and removes it (retrying briefly while the
// killed processes exit). Returns false if it could not be removed.
bool RemoveCgroup(const std::string& dir);

}  // namespace berth::exec
