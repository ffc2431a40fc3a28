// Fault injection for the crash tests (tests/exec/crash_recovery_test.cc).
//
// The steps of a local task's start, in order, each a point where berthd (or
// the shim) may die:
//   spec-written      the executor wrote spec.json, no shim yet
//   shim-spawned      the executor spawned the shim (not yet watching it)
//   shim-begun        the shim read its spec, has not recorded itself
//   shim-recorded     shim.json is claimed, the task not forked
//   task-forked       the task is forked, not yet exec'd (shim side)
//   task-started      the command was exec'd, "started" not yet reported
//   started-reported  "started" was reported and task.json written
//   task-exited       the task ended, status.json not yet written
//   status-written    status.json written, the shim not yet gone
//
// BERTH_TEST_CRASH_AT=<step>: the process that reaches <step> exits there at
// once (_exit). BERTH_TEST_PAUSE_AT=<step>: berth-shim writes its pid to
// <run dir>/test-paused and stops itself (SIGSTOP) there until SIGCONT, so a
// test can kill the daemon, recover, and resume the shim at exactly that
// point. Both are read from the environment of berthd, which the shim
// inherits; a task's spec cannot set them.
#pragma once

#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include "exec/run_files.h"

namespace berth::exec {

inline constexpr char kTestCrashEnv[] = "BERTH_TEST_CRASH_AT";
inline constexpr char kTestPauseEnv[] = "BERTH_TEST_PAUSE_AT";
inline constexpr char kTestPausedFile[] = "test-paused";
inline constexpr int kTestCrashExitCode = 86;

inline void TestPoint(const char* step, const std::string& run_dir) {
  const char* crash = std::getenv(kTestCrashEnv);
  if (crash != nullptr && std::strcmp(crash, step) == 0) ::_exit(kTestCrashExitCode);
  const char* pause = std::getenv(kTestPauseEnv);
  if (pause != nullptr && std::strcmp(pause, step) == 0) {
    (void)WriteFileAtomic(JoinPath(run_dir, kTestPausedFile), std::to_string(::getpid()) + "\n",
                          false);
    ::raise(SIGSTOP);
  }
}

}  // namespace berth::exec
