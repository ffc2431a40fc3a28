// A process's descendants, found through /proc: what berth-shim ends when a
// task ends or is stopped, so that nothing a task started outlives it even
// where there are no cgroups. The shim is a child subreaper
// (PR_SET_CHILD_SUBREAPER): a process that leaves its process group and
// session (setsid, a double fork) and loses its parent is re-parented to the
// shim, so it is still found here.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "common/status.h"

namespace berth::exec {

// The live (not zombie) descendants of `root`, parents before children.
// Unavailable if /proc cannot be read.
Result<std::vector<pid_t>> LiveDescendants(pid_t root);

// Sends `sig` to every live descendant of `root` (through a pidfd, after
// checking the process is still a descendant, so a reused pid is never hit).
// Returns how many were signalled.
Result<int> SignalDescendants(pid_t root, int sig);

// SIGKILLs the descendants of `root` until none is left alive or
// `timeout_ms` passes (processes forked meanwhile are found on the next
// round). Returns how many are still alive at the end (0: all gone).
Result<int> KillDescendants(pid_t root, int timeout_ms);

}  // namespace berth::exec
