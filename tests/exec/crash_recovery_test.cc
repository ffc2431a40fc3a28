// A crash at any step of a local task's start never runs the task twice and
// never loses it (exec/test_hooks.h lists the steps). Each case kills the
// "daemon" (a forked process that owns an executor) or the shim at one step,
// then a fresh executor recovers and does what the job controller does: a
// kLost with no kStarted before it means "never ran", so the task is started
// again as the next attempt. The command appends a line to a counter file;
// once every shim of the run is gone, the file must hold exactly one line
// (or at most one where the shim itself died after forking the command).
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <string>

#include "exec/test_hooks.h"
#include "local_fixture.h"

namespace berth::exec {
namespace {

using namespace std::chrono_literals;
using testing::EventLog;
using testing::ReadFileOrEmpty;
using testing::WaitUntil;

enum class Fault {
  kDaemonCrashes,     // berthd dies at the step (an executor step)
  kDaemonDiesAtShim,  // berthd dies while the shim is held at the step
  kShimCrashes,       // the shim dies at the step, berthd lives on
};

struct Case {
  const char* step;
  Fault fault;
};

std::string CaseName(const ::testing::TestParamInfo<Case>& info) {
  std::string s = info.param.step;
  for (char& c : s) {
    if (c == '-') c = '_';
  }
  switch (info.param.fault) {
    case Fault::kDaemonCrashes:
      return "DaemonCrashesAt_" + s;
    case Fault::kDaemonDiesAtShim:
      return "DaemonDiesWhileShimAt_" + s;
    case Fault::kShimCrashes:
      return "ShimCrashesAt_" + s;
  }
  return s;
}

class LocalCrashRecovery : public testing::LocalFixture,
                           public ::testing::WithParamInterface<Case> {
 protected:
  int Runs() {
    std::string text = ReadFileOrEmpty(counter_);
    int n = 0;
    for (char c : text) n += c == '\n';
    return n;
  }

  TaskSpec CountingTask(int attempt) {
    TaskSpec s = Shell(1, "echo run >> " + counter_ + "; exit 7");
    s.key.attempt = attempt;
    return s;
  }

  std::string counter_ = tmp_.path() + "/counter";
};

TEST_P(LocalCrashRecovery, TheTaskRunsOnce) {
  const Case c = GetParam();
  LocalExecutorOptions o = Options();
  TaskSpec first = CountingTask(0);
  std::string dir;
  std::unique_ptr<LocalExecutor> ex;
  EventLog log;

  if (c.fault == Fault::kShimCrashes) {
    ex = Make(log, o);
    ASSERT_TRUE(ex);
    dir = ex->RunDir(first.key);
    ::setenv(kTestCrashEnv, c.step, 1);  // the shim inherits it at spawn
    Status st = ex->Start(first);
    ::unsetenv(kTestCrashEnv);
    ASSERT_TRUE(st.ok()) << st.ToString();
  } else {
    pid_t daemon = ::fork();
    ASSERT_GE(daemon, 0);
    if (daemon == 0) {
      ::setenv(c.fault == Fault::kDaemonCrashes ? kTestCrashEnv : kTestPauseEnv, c.step, 1);
      auto d = MakeLocalExecutor(o, clock_, nullptr);
      if (!d.ok() || !(*d)->Start(first).ok()) ::_exit(1);
      if (c.fault == Fault::kDaemonCrashes) ::_exit(2);  // the step was not reached
      std::string paused = (*d)->RunDir(first.key) + "/" + kTestPausedFile;
      if (!WaitUntil([&] { return !ReadFileOrEmpty(paused).empty(); }, 10s)) ::_exit(3);
      ::raise(SIGKILL);  // the daemon dies while the shim is held at the step
    }
    int ws = 0;
    ASSERT_EQ(::waitpid(daemon, &ws, 0), daemon);
    if (c.fault == Fault::kDaemonCrashes) {
      ASSERT_TRUE(WIFEXITED(ws) && WEXITSTATUS(ws) == kTestCrashExitCode) << ws;
    } else {
      ASSERT_TRUE(WIFSIGNALED(ws)) << "the fake daemon failed: " << ws;
    }
    ex = Make(log, o);
    ASSERT_TRUE(ex);
    dir = ex->RunDir(first.key);
    ex->Recover({first.key});
    if (c.fault == Fault::kDaemonDiesAtShim) {
      pid_t shim = std::stoi(ReadFileOrEmpty(dir + "/" + kTestPausedFile));
      ASSERT_EQ(::kill(shim, SIGCONT), 0);
    }
  }

  auto end = log.WaitEnd(first.key, 10s);
  ASSERT_TRUE(end) << "no end reported for the first attempt";
  auto events = log.For(first.key);
  bool started = events.front().type == TaskEventType::kStarted;
  bool never_ran = end->type == TaskEventType::kLost && !started;
  if (never_ran) {
    // What the job controller does: the next attempt.
    TaskSpec second = CountingTask(1);
    ASSERT_TRUE(ex->Start(second).ok());
    auto end2 = log.WaitEnd(second.key, 10s);
    ASSERT_TRUE(end2);
    EXPECT_EQ(end2->type, TaskEventType::kExited) << end2->message;
    EXPECT_EQ(end2->exit_code, 7);
  }
  // Every shim of the first attempt is gone before the count is taken: a late
  // one would have had its chance to run the command again.
  ASSERT_TRUE(WaitUntil([&] { return ShimsOf(dir).empty(); }, 10s));

  if (c.fault == Fault::kShimCrashes && !never_ran && end->type == TaskEventType::kLost) {
    // The shim died after forking: the command may or may not have run, and
    // it is not run again (the job fails as lost).
    EXPECT_TRUE(started);
    EXPECT_LE(Runs(), 1);
    EXPECT_NE(end->message.find("may have run"), std::string::npos) << end->message;
    return;
  }
  EXPECT_EQ(Runs(), 1) << "end: " << TaskEventTypeName(end->type) << " " << end->message;
  if (!never_ran) {
    EXPECT_EQ(end->type, TaskEventType::kExited) << end->message;
    EXPECT_EQ(end->exit_code, 7);
  }
}

INSTANTIATE_TEST_SUITE_P(EveryStep, LocalCrashRecovery,
                         ::testing::Values(Case{"spec-written", Fault::kDaemonCrashes},
                                           Case{"shim-spawned", Fault::kDaemonCrashes},
                                           Case{"shim-begun", Fault::kDaemonDiesAtShim},
                                           Case{"shim-recorded", Fault::kDaemonDiesAtShim},
                                           Case{"task-forked", Fault::kDaemonDiesAtShim},
                                           Case{"task-started", Fault::kDaemonDiesAtShim},
                                           Case{"started-reported", Fault::kDaemonDiesAtShim},
                                           Case{"task-exited", Fault::kDaemonDiesAtShim},
                                           Case{"status-written", Fault::kDaemonDiesAtShim},
                                           Case{"shim-begun", Fault::kShimCrashes},
                                           Case{"shim-recorded", Fault::kShimCrashes},
                                           Case{"task-forked", Fault::kShimCrashes},
                                           Case{"task-started", Fault::kShimCrashes},
                                           Case{"started-reported", Fault::kShimCrashes},
                                           Case{"task-exited", Fault::kShimCrashes},
                                           Case{"status-written", Fault::kShimCrashes}),
                         CaseName);

}  // namespace
}  // namespace berth::exec
