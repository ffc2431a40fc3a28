// How berth-shim turns a RunSpec into an exec: everything is prepared in the
// shim before it forks (environment, candidate paths, groups), in time linear
// in the spec's size, so the forked child only switches identity, changes
// directory and execs.
#pragma once

#include <sys/types.h>

#include <functional>
#include <string>
#include <vector>

#include "common/status.h"
#include "exec/run_files.h"

namespace berth::exec {

// Why the child could not become the task; sent to the shim over a pipe.
struct ExecFailure {
  enum Stage : int { kChdir = 1, kExec = 2, kStdio = 3, kCredentials = 4 } stage;
  int err;
};

struct ExecPlan {
  std::vector<std::string> env;  // "KEY=VALUE", one per key
  std::vector<std::string> argv;
  std::vector<std::string> paths;  // where to look for argv[0], in order
  std::string working_dir;
  bool switch_user = false;
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;
};

// The task's environment: the shim's own `base` (for a task that runs as
// another user only PATH, LANG, LANGUAGE, LC_* and TZ of it), then PWD, then
// HOME, USER, LOGNAME and SHELL of the account it runs as, then spec.env.
// Later entries replace earlier ones with the same name.
Result<ExecPlan> PlanExec(const RunSpec& spec, char** base);

// Sets the supplementary groups, gid and uid of `plan` (when it switches)
// for good; 0 or the errno.
int SwitchUser(const ExecPlan& plan);

// In the forked child: sets the groups, gid and uid (when switching), asks
// for SIGKILL if the shim dies, changes to the working directory and execs
// like execvp (a file without a #! line runs under /bin/sh). Returns only on
// failure, with the stage and errno.
ExecFailure ExecTask(const ExecPlan& plan, pid_t shim);

// Runs `work` in a forked child with the task's identity (spec's uid, gid and
// groups when it names another account; never the shim's root) and returns
// what it returned. The child reaches the shim only through a pipe; it is
// SIGKILLed if the shim dies. The report is capped at 8 MiB.
Result<std::string> RunAsTaskUser(const RunSpec& spec, const std::function<std::string()>& work);

int ExitCodeFor(const ExecFailure& f);
std::string DescribeFailure(const ExecFailure& f, const RunSpec& spec);

}  // namespace berth::exec
