// berth-shim keeps a task's processes in the task's lifetime without cgroups,
// and a stop is honoured at every point of a start, however large the spec.
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
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

class ShimContainment : public testing::LocalFixture {
 protected:
  // No cgroups at all: what is left is the shim's own containment.
  LocalExecutorOptions NoCgroups() {
    LocalExecutorOptions o = Options();
    o.use_cgroups = false;
    return o;
  }

  // A script that starts `sleep 300` as a daemon (a double fork into a new
  // session, output closed) and waits until its pid is in `pidfile`.
  static std::string Daemonize(const std::string& pidfile) {
    return "setsid sh -c 'sleep 300 </dev/null >/dev/null 2>&1 & echo $! > " + pidfile +
           ".tmp; mv " + pidfile + ".tmp " + pidfile + "'; while [ ! -s " + pidfile +
           " ]; do sleep 0.01; done; ";
  }

  pid_t ReadPid(const std::string& pidfile) {
    std::string text = ReadFileOrEmpty(pidfile);
    return text.empty() ? 0 : static_cast<pid_t>(std::stol(text));
  }
};

TEST_F(ShimContainment, ADaemonizedChildEndsWithItsTask) {
  EventLog log;
  auto ex = Make(log, NoCgroups());
  ASSERT_TRUE(ex);
  std::string pidfile = tmp_.path() + "/daemon.pid";
  TaskSpec spec = Shell(1, Daemonize(pidfile) + "exit 0");
  ASSERT_TRUE(ex->Start(spec).ok());
  auto end = log.WaitEnd(spec.key, 10s);
  ASSERT_TRUE(end);
  EXPECT_EQ(end->type, TaskEventType::kExited) << end->message;
  EXPECT_EQ(end->exit_code, 0);
  pid_t daemon = ReadPid(pidfile);
  ASSERT_GT(daemon, 0);
  // Gone by the time the end is reported (the shim ends it before it writes
  // its status), not merely soon after.
  EXPECT_FALSE(Alive(daemon)) << "pid " << daemon << " outlived its task";
  if (Alive(daemon)) ::kill(daemon, SIGKILL);
}

TEST_F(ShimContainment, ADaemonizedChildEndsWhenItsTaskIsCancelled) {
  EventLog log;
  auto ex = Make(log, NoCgroups());
  ASSERT_TRUE(ex);
  std::string pidfile = tmp_.path() + "/daemon.pid";
  TaskSpec spec = Shell(1, Daemonize(pidfile) + "echo ready; while :; do sleep 0.05; done");
  ASSERT_TRUE(ex->Start(spec).ok());
  ASSERT_TRUE(WaitUntil([&] { return Output(*ex, spec.key).find("ready") != std::string::npos; }));
  pid_t daemon = ReadPid(pidfile);
  ASSERT_GT(daemon, 0);
  ASSERT_TRUE(Alive(daemon));
  ASSERT_TRUE(ex->Stop(spec.key, 2 * kSecond).ok());
  auto end = log.WaitEnd(spec.key, 10s);
  ASSERT_TRUE(end);
  EXPECT_EQ(end->signal, SIGTERM);
  EXPECT_FALSE(Alive(daemon)) << "pid " << daemon << " outlived its cancelled task";
  if (Alive(daemon)) ::kill(daemon, SIGKILL);
}

// The shim is held just before it forks the task, a cancel arrives, then the
// shim goes on: the command never runs, and the stop is reported at once.
TEST_F(ShimContainment, ACancelWhileStartingIsHonouredBeforeTheCommandRuns) {
  EventLog log;
  auto ex = Make(log, NoCgroups());
  ASSERT_TRUE(ex);
  std::string ran = tmp_.path() + "/ran";
  TaskSpec spec = Shell(1, "touch " + ran + "; sleep 30");
  ::setenv(kTestPauseEnv, "shim-recorded", 1);
  Status st = ex->Start(spec);
  ::unsetenv(kTestPauseEnv);
  ASSERT_TRUE(st.ok());
  std::string paused = ex->RunDir(spec.key) + "/" + kTestPausedFile;
  ASSERT_TRUE(WaitUntil([&] { return !ReadFileOrEmpty(paused).empty(); }));
  ASSERT_TRUE(ex->Stop(spec.key, 10 * kSecond).ok());
  ASSERT_EQ(::kill(std::stoi(ReadFileOrEmpty(paused)), SIGCONT), 0);
  auto end = log.WaitEnd(spec.key, 5s);
  ASSERT_TRUE(end);
  EXPECT_EQ(end->type, TaskEventType::kStartFailed);
  EXPECT_EQ(end->message, "stopped before the task started");
  EXPECT_FALSE(std::filesystem::exists(ran));
}

// 200,000 variables: the shim reads and builds them in linear time, and a
// stop right after the start ends the task within seconds (the exec itself
// may refuse an environment that large: that is a start failure, not a hang).
TEST_F(ShimContainment, AHugeEnvironmentStartsAndStopsQuickly) {
  EventLog log;
  auto ex = Make(log, NoCgroups());
  ASSERT_TRUE(ex);
  TaskSpec big = Shell(1, "sleep 30");
  for (int i = 0; i < 200000; ++i) big.env["V" + std::to_string(i)] = "x";
  TaskSpec stopped = big;
  stopped.key.job = 2;

  int64_t t0 = MonotonicNanos();
  ASSERT_TRUE(ex->Start(big).ok());
  auto end = log.WaitEnd(big.key, 20s);
  ASSERT_TRUE(end);
  int64_t run_ms = (MonotonicNanos() - t0) / 1000000;
  if (end->type == TaskEventType::kStartFailed) {
    EXPECT_NE(end->message.find("Argument list too long"), std::string::npos) << end->message;
  }

  t0 = MonotonicNanos();
  ASSERT_TRUE(ex->Start(stopped).ok());
  ASSERT_TRUE(ex->Stop(stopped.key, 100).ok());
  auto end2 = log.WaitEnd(stopped.key, 20s);
  ASSERT_TRUE(end2);
  int64_t stop_ms = (MonotonicNanos() - t0) / 1000000;
  std::printf("200000 env vars: start to end %lld ms (%s), start+stop to end %lld ms (%s)\n",
              static_cast<long long>(run_ms), TaskEventTypeName(end->type),
              static_cast<long long>(stop_ms), end2->message.c_str());
  EXPECT_LT(run_ms, 10000);
  EXPECT_LT(stop_ms, 10000);
}

}  // namespace
}  // namespace berth::exec
