#include "exec/local_executor.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>

#include "exec/run_files.h"
#include "exec_test_util.h"

namespace berth::exec {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using testing::EventLog;
using testing::ReadFileOrEmpty;
using testing::TempDir;
using testing::WaitUntil;

constexpr char kShim[] = BERTH_BINARY_DIR "/bin/berth-shim";

// Milliseconds since `since` (a MonotonicNanos reading).
int64_t ElapsedMs(int64_t since) { return (MonotonicNanos() - since) / 1000000; }

class LocalExecutorTest : public ::testing::Test {
 protected:
  LocalExecutorOptions Options() {
    LocalExecutorOptions o;
    o.run_root = tmp_.path() + "/runs";
    o.shim_path = kShim;
    return o;
  }

  std::unique_ptr<LocalExecutor> Make(EventLog& log, LocalExecutorOptions o) {
    auto ex = MakeLocalExecutor(o, clock_, log.Sink());
    EXPECT_TRUE(ex.ok()) << ex.status().ToString();
    return ex.ok() ? std::move(ex).value() : nullptr;
  }
  std::unique_ptr<LocalExecutor> Make(EventLog& log) { return Make(log, Options()); }

  static TaskSpec Spec(JobId job, std::vector<std::string> argv) {
    TaskSpec s;
    s.key = TaskKey{job, 0, 0};
    s.argv = std::move(argv);
    s.node = "local";
    return s;
  }
  static TaskSpec Shell(JobId job, const std::string& script) {
    return Spec(job, {"sh", "-c", script});
  }

  // The task's whole retained output, read page by page through ReadLog.
  std::string Output(LocalExecutor& ex, const TaskKey& key) {
    std::string out;
    int64_t offset = 0;
    while (true) {
      auto page = ex.ReadLog(key, offset, 64);
      if (!page.ok() || page->data.empty()) return out;
      out += page->data;
      offset = page->next;
    }
  }

  // Waits until the task's output contains `text`.
  bool WaitOutput(LocalExecutor& ex, const TaskKey& key, const std::string& text) {
    return WaitUntil([&] { return Output(ex, key).find(text) != std::string::npos; });
  }

  static void Touch(const std::string& path) { std::ofstream(path) << "go\n"; }

  TempDir tmp_;
  SystemClock clock_;
};

TEST_F(LocalExecutorTest, RunsTaskAndCapturesCombinedOutput) {
  EventLog log;
  auto ex = Make(log);
  ASSERT_TRUE(ex);
  TaskSpec spec = Shell(1, "echo hello; echo oops >&2");
  ASSERT_TRUE(ex->Start(spec).ok());
  auto end = log.WaitEnd(spec.key);
  ASSERT_TRUE(end);
  EXPECT_EQ(end->type, TaskEventType::kExited) << end->message;
  EXPECT_EQ(end->exit_code, 0);
  EXPECT_EQ(end->signal, 0);
  auto events = log.For(spec.key);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].type, TaskEventType::kStarted);
  EXPECT_FALSE(events[0].external_id.empty());
  EXPECT_EQ(events[0].external_id, end->external_id);
  EXPECT_EQ(Output(*ex, spec.key), "hello\noops\n");
  // The run directory holds the files the shim promises.
  std::string dir = ex->RunDir(spec.key);
  EXPECT_EQ(ReadFileOrEmpty(dir + "/output.log"), "hello\noops\n");
  auto status = ParseRunStatus(ReadFileOrEmpty(dir + "/status.json"));
  ASSERT_TRUE(status.ok());
  EXPECT_TRUE(status->started);
  EXPECT_EQ(status->exit_code, 0);
  EXPECT_GT(status->start_time, 0);
  EXPECT_GE(status->end_time, status->start_time);
  auto spec_file = ParseRunSpec(ReadFileOrEmpty(dir + "/spec.json"));
  ASSERT_TRUE(spec_file.ok());
  EXPECT_EQ(spec_file->argv, spec.argv);
  EXPECT_TRUE(ReadShimInfo(dir).ok() && ReadShimInfo(dir)->child_pid > 0);
}

TEST_F(LocalExecutorTest, ReportsExitCodes) {
  EventLog log;
  auto ex = Make(log);
  ASSERT_TRUE(ex);
  TaskSpec zero = Shell(1, "exit 0");
  TaskSpec three = Shell(2, "exit 3");
  ASSERT_TRUE(ex->Start(zero).ok());
  ASSERT_TRUE(ex->Start(three).ok());
  auto e0 = log.WaitEnd(zero.key);
  auto e3 = log.WaitEnd(three.key);
  ASSERT_TRUE(e0 && e3);
  EXPECT_EQ(e0->type, TaskEventType::kExited);
  EXPECT_EQ(e0->exit_code, 0);
  EXPECT_EQ(e3->type, TaskEventType::kExited);
  EXPECT_EQ(e3->exit_code, 3);
  EXPECT_EQ(e3->signal, 0);
}

TEST_F(LocalExecutorTest, KilledTaskReportsSignal) {
  EventLog log;
  auto ex = Make(log);
  ASSERT_TRUE(ex);
  TaskSpec spec = Shell(1, "kill -9 $$");
  ASSERT_TRUE(ex->Start(spec).ok());
  auto end = log.WaitEnd(spec.key);
  ASSERT_TRUE(end);
  EXPECT_EQ(end->type, TaskEventType::kExited);
  EXPECT_EQ(end->signal, SIGKILL);
  EXPECT_EQ(end->exit_code, 128 + SIGKILL);
}

TEST_F(LocalExecutorTest, SetsGpuAndBerthEnvironment) {
  EventLog log;
  auto ex = Make(log);
  ASSERT_TRUE(ex);
  TaskSpec spec = Spec(7, {"env"});
  spec.key.task = 2;
  spec.key.attempt = 1;
  spec.gpus = {1, 3};
  spec.node = "n1";
  spec.env = {{"FOO", "bar baz"}, {"CUDA_VISIBLE_DEVICES", "0,1,2,3"}};
  ASSERT_TRUE(ex->Start(spec).ok());
  auto end = log.WaitEnd(spec.key);
  ASSERT_TRUE(end);
  ASSERT_EQ(end->exit_code, 0) << end->message;
  std::map<std::string, std::string> env;
  std::istringstream in(Output(*ex, spec.key));
  std::string line;
  while (std::getline(in, line)) {
    size_t eq = line.find('=');
    if (eq != std::string::npos) env[line.substr(0, eq)] = line.substr(eq + 1);
  }
  EXPECT_EQ(env["CUDA_VISIBLE_DEVICES"], "1,3");
  EXPECT_EQ(env["NVIDIA_VISIBLE_DEVICES"], "1,3");
  EXPECT_EQ(env["FOO"], "bar baz");
  EXPECT_EQ(env["BERTH_JOB_ID"], "7");
  EXPECT_EQ(env["BERTH_TASK_INDEX"], "2");
  EXPECT_EQ(env["BERTH_ATTEMPT"], "1");
  EXPECT_EQ(env["BERTH_NODE"], "n1");
  EXPECT_EQ(env["BERTH_RUN_DIR"], ex->RunDir(spec.key));
  EXPECT_EQ(env["PWD"], ex->RunDir(spec.key));  // default working directory
  EXPECT_TRUE(env.count("PATH"));               // the shim's environment is inherited
}

TEST_F(LocalExecutorTest, TaskWithoutGpusSeesNone) {
  EventLog log;
  auto ex = Make(log);
  ASSERT_TRUE(ex);
  TaskSpec spec = Shell(1, "echo \"[${CUDA_VISIBLE_DEVICES-unset}]\"");
  ASSERT_TRUE(ex->Start(spec).ok());
  ASSERT_TRUE(log.WaitEnd(spec.key));
  EXPECT_EQ(Output(*ex, spec.key), "[]\n");
}

TEST_F(LocalExecutorTest, CommandNotFoundIsStartFailed) {
  EventLog log;
  auto ex = Make(log);
  ASSERT_TRUE(ex);
  TaskSpec spec = Spec(1, {"berth-no-such-command", "x"});
  ASSERT_TRUE(ex->Start(spec).ok());
  auto end = log.WaitEnd(spec.key);
  ASSERT_TRUE(end);
  EXPECT_EQ(end->type, TaskEventType::kStartFailed);
  EXPECT_EQ(end->message, "command not found: berth-no-such-command");
  EXPECT_EQ(end->exit_code, 127);
  EXPECT_EQ(log.For(spec.key).size(), 1u);  // no kStarted
  auto status = ParseRunStatus(ReadFileOrEmpty(ex->RunDir(spec.key) + "/status.json"));
  ASSERT_TRUE(status.ok());
  EXPECT_FALSE(status->started);
  EXPECT_EQ(status->exit_code, 127);
}

TEST_F(LocalExecutorTest, BadWorkingDirectoryIsStartFailed) {
  EventLog log;
  auto ex = Make(log);
  ASSERT_TRUE(ex);
  TaskSpec spec = Spec(1, {"true"});
  spec.working_dir = "/berth-no-such-dir/x";
  ASSERT_TRUE(ex->Start(spec).ok());
  auto end = log.WaitEnd(spec.key);
  ASSERT_TRUE(end);
  EXPECT_EQ(end->type, TaskEventType::kStartFailed);
  EXPECT_EQ(end->message, "working directory /berth-no-such-dir/x: No such file or directory");
}

TEST_F(LocalExecutorTest, NotExecutableIsStartFailedWith126) {
  EventLog log;
  auto ex = Make(log);
  ASSERT_TRUE(ex);
  std::string script = tmp_.path() + "/script.sh";
  std::ofstream(script) << "#!/bin/sh\necho hi\n";
  ::chmod(script.c_str(), 0644);
  TaskSpec spec = Spec(1, {script});
  ASSERT_TRUE(ex->Start(spec).ok());
  auto end = log.WaitEnd(spec.key);
  ASSERT_TRUE(end);
  EXPECT_EQ(end->type, TaskEventType::kStartFailed);
  EXPECT_EQ(end->message, "permission denied: " + script);
  EXPECT_EQ(end->exit_code, 126);
}

TEST_F(LocalExecutorTest, RejectsEmptyArgvAndDuplicateStart) {
  EventLog log;
  auto ex = Make(log);
  ASSERT_TRUE(ex);
  EXPECT_EQ(ex->Start(Spec(1, {})).code(), StatusCode::kInvalidArgument);
  TaskSpec spec = Shell(2, "while [ ! -e go ]; do sleep 0.02; done");
  ASSERT_TRUE(ex->Start(spec).ok());
  EXPECT_EQ(ex->Start(spec).code(), StatusCode::kAlreadyExists);
  Touch(ex->RunDir(spec.key) + "/go");
  auto end = log.WaitEnd(spec.key);
  ASSERT_TRUE(end);
  EXPECT_EQ(end->exit_code, 0);
}

TEST_F(LocalExecutorTest, StopSendsSigtermAndTaskMayExitCleanly) {
  EventLog log;
  auto ex = Make(log);
  ASSERT_TRUE(ex);
  TaskSpec spec =
      Shell(1, "trap 'echo got-term; exit 0' TERM; echo ready; while :; do sleep 0.02; done");
  ASSERT_TRUE(ex->Start(spec).ok());
  ASSERT_TRUE(WaitOutput(*ex, spec.key, "ready"));
  ASSERT_TRUE(ex->Stop(spec.key, 10 * kSecond).ok());
  auto end = log.WaitEnd(spec.key);
  ASSERT_TRUE(end);
  EXPECT_EQ(end->type, TaskEventType::kExited);
  EXPECT_EQ(end->exit_code, 0);
  EXPECT_EQ(end->signal, 0);
  EXPECT_EQ(end->message, "");
  EXPECT_NE(Output(*ex, spec.key).find("got-term"), std::string::npos);
  // Stopping again, after the end, is fine.
  EXPECT_TRUE(ex->Stop(spec.key, 0).ok());
  EXPECT_EQ(ex->Stop(TaskKey{999, 0, 0}, 0).code(), StatusCode::kNotFound);
}

TEST_F(LocalExecutorTest, StopKillsTaskThatIgnoresSigtermAfterGrace) {
  EventLog log;
  auto ex = Make(log);
  ASSERT_TRUE(ex);
  TaskSpec spec = Shell(1, "trap '' TERM; echo ready; while :; do sleep 0.02; done");
  ASSERT_TRUE(ex->Start(spec).ok());
  ASSERT_TRUE(WaitOutput(*ex, spec.key, "ready"));
  int64_t t0 = MonotonicNanos();
  ASSERT_TRUE(ex->Stop(spec.key, 300).ok());
  ASSERT_TRUE(ex->Stop(spec.key, 300).ok());  // idempotent
  auto end = log.WaitEnd(spec.key);
  int64_t took = ElapsedMs(t0);
  ASSERT_TRUE(end);
  EXPECT_EQ(end->type, TaskEventType::kExited);
  EXPECT_EQ(end->signal, SIGKILL);
  EXPECT_EQ(end->exit_code, 128 + SIGKILL);
  EXPECT_EQ(end->message, "killed after the grace period");
  EXPECT_GE(took, 300);
  EXPECT_LT(took, 3000);
}

TEST_F(LocalExecutorTest, StopRightAfterStartIsNotLost) {
  EventLog log;
  auto ex = Make(log);
  ASSERT_TRUE(ex);
  TaskSpec spec = Spec(1, {"sleep", "30"});
  ASSERT_TRUE(ex->Start(spec).ok());
  ASSERT_TRUE(ex->Stop(spec.key, 5 * kSecond).ok());
  auto end = log.WaitEnd(spec.key);
  ASSERT_TRUE(end);
  // Honoured whether it came before the command ran or after.
  if (end->type == TaskEventType::kStartFailed) {
    EXPECT_EQ(end->message, "stopped before the task started");
  } else {
    EXPECT_EQ(end->type, TaskEventType::kExited) << end->message;
    EXPECT_EQ(end->signal, SIGTERM);
  }
}

TEST_F(LocalExecutorTest, TimeLimitStopsTask) {
  EventLog log;
  auto ex = Make(log);
  ASSERT_TRUE(ex);
  TaskSpec spec = Spec(1, {"sleep", "30"});
  spec.time_limit = 300;
  spec.termination_grace = 2 * kSecond;
  int64_t t0 = MonotonicNanos();
  ASSERT_TRUE(ex->Start(spec).ok());
  auto end = log.WaitEnd(spec.key);
  int64_t took = ElapsedMs(t0);
  ASSERT_TRUE(end);
  EXPECT_EQ(end->type, TaskEventType::kExited);
  EXPECT_EQ(end->signal, SIGTERM);
  EXPECT_EQ(end->exit_code, 128 + SIGTERM);
  EXPECT_EQ(end->message, "time limit exceeded");
  EXPECT_GE(took, 300);
  EXPECT_LT(took, 2000);
  EXPECT_NE(Output(*ex, spec.key).find("time limit of 300ms exceeded"), std::string::npos);
}

TEST_F(LocalExecutorTest, TimeLimitKillsTaskThatIgnoresSigterm) {
  EventLog log;
  auto ex = Make(log);
  ASSERT_TRUE(ex);
  TaskSpec spec = Shell(1, "trap '' TERM; while :; do sleep 0.02; done");
  spec.time_limit = 200;
  spec.termination_grace = 200;
  ASSERT_TRUE(ex->Start(spec).ok());
  auto end = log.WaitEnd(spec.key);
  ASSERT_TRUE(end);
  EXPECT_EQ(end->signal, SIGKILL);
  EXPECT_EQ(end->message, "time limit exceeded");
}

TEST_F(LocalExecutorTest, RotatesOutputAtTheCap) {
  EventLog log;
  LocalExecutorOptions o = Options();
  o.log_cap_bytes = 1000;
  auto ex = Make(log, o);
  ASSERT_TRUE(ex);
  TaskSpec spec = Spec(1, {"seq", "1", "1000"});
  ASSERT_TRUE(ex->Start(spec).ok());
  auto end = log.WaitEnd(spec.key);
  ASSERT_TRUE(end);
  ASSERT_EQ(end->exit_code, 0);
  std::string expected;
  for (int i = 1; i <= 1000; ++i) expected += std::to_string(i) + "\n";
  ASSERT_EQ(expected.size(), 3893u);
  std::string old_part = ReadFileOrEmpty(ex->RunDir(spec.key) + "/output.log.1");
  std::string cur = ReadFileOrEmpty(ex->RunDir(spec.key) + "/output.log");
  // 3893 bytes in parts of 1000: the last full part and the 893-byte rest.
  EXPECT_EQ(old_part.size(), 1000u);
  EXPECT_EQ(cur.size(), 893u);
  EXPECT_EQ(old_part + cur, expected.substr(expected.size() - 1893));
  EXPECT_FALSE(fs::exists(ex->RunDir(spec.key) + "/output.log.2"));
  // ReadLog keeps the task's offsets: the first 2000 bytes were rotated away.
  auto all = ex->ReadLog(spec.key, 0, 1 << 20);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->start, 2000);
  EXPECT_EQ(all->end, 3893);
  EXPECT_EQ(all->next, 3893);
  EXPECT_EQ(all->data, expected.substr(2000));
  // A page across the boundary of the two files.
  auto mid = ex->ReadLog(spec.key, 2990, 20);
  ASSERT_TRUE(mid.ok());
  EXPECT_EQ(mid->start, 2990);
  EXPECT_EQ(mid->data, expected.substr(2990, 20));
  // Past the end: empty, positioned at the end.
  auto past = ex->ReadLog(spec.key, 5000, 10);
  ASSERT_TRUE(past.ok());
  EXPECT_TRUE(past->data.empty());
  EXPECT_EQ(past->start, 3893);
  // A task that never ran reads as an empty log.
  auto none = ex->ReadLog(TaskKey{99, 0, 1}, 0, 10);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->data.empty());
  EXPECT_EQ(none->end, 0);
  // Bad pages are refused by name.
  EXPECT_EQ(ex->ReadLog(spec.key, -1, 10).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ex->ReadLog(spec.key, 0, 0).status().code(), StatusCode::kInvalidArgument);
}

TEST_F(LocalExecutorTest, RemoveJobFilesRemovesOnlyThatJobsRunsAndFollowsNoLink) {
  EventLog log;
  auto ex = Make(log);
  ASSERT_TRUE(ex);
  std::vector<TaskSpec> specs = {Spec(7, {"true"}), Spec(7, {"true"}), Spec(70, {"true"})};
  specs[1].key.attempt = 1;
  for (const auto& s : specs) {
    ASSERT_TRUE(ex->Start(s).ok());
    ASSERT_TRUE(log.WaitEnd(s.key));
  }
  // A link planted in a run directory to a directory outside run_root.
  std::string outside = tmp_.path() + "/outside";
  fs::create_directories(outside);
  std::ofstream(outside + "/keep") << "x";
  fs::create_directory_symlink(outside, ex->RunDir(specs[0].key) + "/link");
  auto removed = ex->RemoveJobFiles(7);
  ASSERT_TRUE(removed.ok()) << removed.status().ToString();
  EXPECT_EQ(*removed, 2);
  EXPECT_FALSE(fs::exists(ex->RunDir(specs[0].key)));
  EXPECT_FALSE(fs::exists(ex->RunDir(specs[1].key)));
  EXPECT_TRUE(fs::exists(ex->RunDir(specs[2].key)));  // job 70 shares the prefix "job-7"
  EXPECT_TRUE(fs::exists(outside + "/keep"));
  auto again = ex->RemoveJobFiles(7);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, 0);
}

TEST_F(LocalExecutorTest, RecoverReattachesToRunningTask) {
  TaskSpec spec = Shell(1, "while [ ! -e go ]; do sleep 0.02; done; exit 5");
  std::string dir;
  {
    EventLog log1;
    auto ex1 = Make(log1);
    ASSERT_TRUE(ex1);
    ASSERT_TRUE(ex1->Start(spec).ok());
    ASSERT_TRUE(log1.WaitFor(spec.key, TaskEventType::kStarted));
    dir = ex1->RunDir(spec.key);
  }  // the executor is gone; the task is not
  ASSERT_FALSE(fs::exists(dir + "/status.json"));
  EventLog log2;
  auto ex2 = Make(log2);
  ASSERT_TRUE(ex2);
  ex2->Recover({spec.key});
  Touch(dir + "/go");
  auto end = log2.WaitEnd(spec.key);
  ASSERT_TRUE(end);
  EXPECT_EQ(end->type, TaskEventType::kExited);
  EXPECT_EQ(end->exit_code, 5);
  // The start is reported again (a restarted daemon may never have recorded
  // it), with the same pid, then the end.
  auto events = log2.For(spec.key);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].type, TaskEventType::kStarted);
  EXPECT_EQ(events[0].external_id, end->external_id);
  // Stop works on a recovered task too (and is OK after the end).
  EXPECT_TRUE(ex2->Stop(spec.key, 0).ok());
}

TEST_F(LocalExecutorTest, StopAfterRecoverReachesTheShim) {
  TaskSpec spec =
      Shell(1, "trap 'echo term; exit 9' TERM; echo ready; while :; do sleep 0.02; done");
  {
    EventLog log1;
    auto ex1 = Make(log1);
    ASSERT_TRUE(ex1);
    ASSERT_TRUE(ex1->Start(spec).ok());
    ASSERT_TRUE(WaitOutput(*ex1, spec.key, "ready"));
  }
  EventLog log2;
  auto ex2 = Make(log2);
  ASSERT_TRUE(ex2);
  ex2->Recover({spec.key});
  ASSERT_TRUE(ex2->Stop(spec.key, 5 * kSecond).ok());
  auto end = log2.WaitEnd(spec.key);
  ASSERT_TRUE(end);
  EXPECT_EQ(end->exit_code, 9);
}

TEST_F(LocalExecutorTest, RecoverReportsTaskThatEndedWhileNoExecutorExisted) {
  TaskSpec spec = Shell(1, "while [ ! -e go ]; do sleep 0.02; done; exit 4");
  std::string dir;
  {
    EventLog log1;
    auto ex1 = Make(log1);
    ASSERT_TRUE(ex1);
    ASSERT_TRUE(ex1->Start(spec).ok());
    ASSERT_TRUE(log1.WaitFor(spec.key, TaskEventType::kStarted));
    dir = ex1->RunDir(spec.key);
  }
  Touch(dir + "/go");
  ASSERT_TRUE(WaitUntil([&] { return fs::exists(dir + "/status.json"); }));
  auto status = ParseRunStatus(ReadFileOrEmpty(dir + "/status.json"));
  ASSERT_TRUE(status.ok());

  EventLog log2;
  auto ex2 = Make(log2);
  ASSERT_TRUE(ex2);
  TaskKey never{2, 0, 0};
  ex2->Recover({spec.key, never});
  auto end = log2.WaitEnd(spec.key);
  ASSERT_TRUE(end);
  EXPECT_EQ(end->type, TaskEventType::kExited);
  EXPECT_EQ(end->exit_code, 4);
  EXPECT_EQ(end->time, status->end_time);  // when it really ended
  auto lost = log2.WaitEnd(never);
  ASSERT_TRUE(lost);
  EXPECT_EQ(lost->type, TaskEventType::kLost);
}

// The daemon is SIGKILLed: the shim is orphaned, the task runs on, and a new
// executor in another process reattaches.
TEST_F(LocalExecutorTest, TaskSurvivesDaemonKill) {
  TaskSpec spec = Shell(1, "echo ready; while [ ! -e go ]; do sleep 0.02; done; exit 6");
  LocalExecutorOptions o = Options();
  pid_t daemon = ::fork();
  ASSERT_GE(daemon, 0);
  if (daemon == 0) {
    EventLog log;
    auto ex = MakeLocalExecutor(o, clock_, log.Sink());
    if (!ex.ok() || !(*ex)->Start(spec).ok() || !log.WaitFor(spec.key, TaskEventType::kStarted)) {
      ::_exit(1);
    }
    ::raise(SIGKILL);
  }
  int ws = 0;
  ASSERT_EQ(::waitpid(daemon, &ws, 0), daemon);
  ASSERT_TRUE(WIFSIGNALED(ws)) << "the fake daemon failed to start the task";

  EventLog log;
  auto ex = Make(log, o);
  ASSERT_TRUE(ex);
  ASSERT_TRUE(WaitOutput(*ex, spec.key, "ready"));
  ex->Recover({spec.key});
  Touch(ex->RunDir(spec.key) + "/go");
  auto end = log.WaitEnd(spec.key);
  ASSERT_TRUE(end);
  EXPECT_EQ(end->type, TaskEventType::kExited);
  EXPECT_EQ(end->exit_code, 6);
}

TEST_F(LocalExecutorTest, ShimKilledIsLostAndTaskIsEnded) {
  EventLog log;
  auto ex = Make(log);
  ASSERT_TRUE(ex);
  TaskSpec spec = Shell(1, "echo ready; while :; do sleep 0.02; done");
  ASSERT_TRUE(ex->Start(spec).ok());
  auto started = log.WaitFor(spec.key, TaskEventType::kStarted);
  ASSERT_TRUE(started);
  ASSERT_TRUE(WaitOutput(*ex, spec.key, "ready"));
  auto info = ReadShimInfo(ex->RunDir(spec.key));
  ASSERT_TRUE(info.ok());
  ASSERT_EQ(::kill(static_cast<pid_t>(info->pid), SIGKILL), 0);
  auto end = log.WaitEnd(spec.key);
  ASSERT_TRUE(end);
  EXPECT_EQ(end->type, TaskEventType::kLost);
  pid_t task = std::stoi(started->external_id);
  EXPECT_TRUE(WaitUntil([&] {
    auto st = ReadProcStat(task);
    return !st || st->start_ticks != info->child_start_ticks || st->state == 'Z';
  }));
}

TEST_F(LocalExecutorTest, MissingShimIsAClearError) {
  EventLog log;
  LocalExecutorOptions o = Options();
  o.shim_path = tmp_.path() + "/no-shim";
  auto ex = MakeLocalExecutor(o, clock_, log.Sink());
  ASSERT_FALSE(ex.ok());
  EXPECT_NE(ex.status().message().find("berth-shim not found"), std::string::npos);
  o.run_root = "";
  EXPECT_EQ(MakeLocalExecutor(o, clock_, log.Sink()).status().code(), StatusCode::kInvalidArgument);
}

bool HasMemoryCgroup(const CgroupPlan& p) { return p.version == 2 || !p.memory_parent.empty(); }
bool HasCpuCgroup(const CgroupPlan& p) { return p.version == 2 || !p.cpu_parent.empty(); }

TEST_F(LocalExecutorTest, MemoryLimitOomKillsTask) {
  EventLog log;
  auto ex = Make(log);
  ASSERT_TRUE(ex);
  if (!HasMemoryCgroup(ex->cgroups())) {
    GTEST_SKIP() << "no writable memory cgroup (v2 with memory, or v1 memory) on this machine";
  }
  TaskSpec spec = Spec(1, {"dd", "if=/dev/zero", "of=/dev/null", "bs=256M", "count=1"});
  spec.memory_limit = 32;
  ASSERT_TRUE(ex->Start(spec).ok());
  auto end = log.WaitEnd(spec.key, 10s);
  ASSERT_TRUE(end);
  EXPECT_EQ(end->type, TaskEventType::kExited);
  EXPECT_EQ(end->signal, SIGKILL);
  EXPECT_EQ(end->message, "out of memory: memory limit of 32 MiB exceeded");
  // The task's cgroup is gone afterwards.
  auto info = ReadShimInfo(ex->RunDir(spec.key));
  ASSERT_TRUE(info.ok());
  ASSERT_FALSE(info->cgroups.empty());
  for (const auto& cg : info->cgroups) EXPECT_FALSE(fs::exists(cg)) << cg;

  // The same allocation under a larger limit succeeds.
  TaskSpec roomy = spec;
  roomy.key.job = 2;
  roomy.memory_limit = 512;
  ASSERT_TRUE(ex->Start(roomy).ok());
  auto ok = log.WaitEnd(roomy.key, 10s);
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->exit_code, 0) << ok->message;
}

TEST_F(LocalExecutorTest, CpuLimitIsWrittenToTheTaskCgroup) {
  EventLog log;
  auto ex = Make(log);
  ASSERT_TRUE(ex);
  if (!HasCpuCgroup(ex->cgroups())) {
    GTEST_SKIP() << "no writable cpu cgroup (v2 with cpu, or v1 cpu) on this machine";
  }
  TaskSpec spec = Shell(1, "echo ready; while [ ! -e go ]; do sleep 0.02; done");
  spec.cpu_limit = 250;  // a quarter core: 25 ms per 100 ms
  ASSERT_TRUE(ex->Start(spec).ok());
  ASSERT_TRUE(WaitOutput(*ex, spec.key, "ready"));
  auto info = ReadShimInfo(ex->RunDir(spec.key));
  ASSERT_TRUE(info.ok());
  ASSERT_EQ(info->cgroups.size(), 1u);
  const std::string& cg = info->cgroups[0];
  if (ex->cgroups().version == 2) {
    EXPECT_EQ(ReadFileOrEmpty(cg + "/cpu.max"), "25000 100000\n");
  } else {
    EXPECT_EQ(ReadFileOrEmpty(cg + "/cpu.cfs_quota_us"), "25000\n");
  }
  // The task is in it.
  std::string task_pid = log.WaitFor(spec.key, TaskEventType::kStarted)->external_id;
  EXPECT_NE(ReadFileOrEmpty(cg + "/cgroup.procs").find(task_pid), std::string::npos);
  Touch(ex->RunDir(spec.key) + "/go");
  ASSERT_TRUE(log.WaitEnd(spec.key));
  EXPECT_TRUE(WaitUntil([&] { return !fs::exists(cg); }));
}

TEST_F(LocalExecutorTest, NoCgroupsMeansNoLimitsButTasksRun) {
  EventLog log;
  LocalExecutorOptions o = Options();
  o.cgroup_root = tmp_.path() + "/no-cgroupfs";
  auto ex = Make(log, o);
  ASSERT_TRUE(ex);
  EXPECT_EQ(ex->cgroups().version, 0);
  TaskSpec spec = Spec(1, {"true"});
  spec.memory_limit = 64;
  ASSERT_TRUE(ex->Start(spec).ok());
  auto end = log.WaitEnd(spec.key);
  ASSERT_TRUE(end);
  EXPECT_EQ(end->exit_code, 0);
  EXPECT_NE(Output(*ex, spec.key).find("warning: no usable cgroup hierarchy"), std::string::npos);
}

// Submit-to-process-start: Start() to the kStarted event (the task has exec'd).
TEST_F(LocalExecutorTest, StartLatency) {
  EventLog log;
  auto ex = Make(log);
  ASSERT_TRUE(ex);
  std::vector<int64_t> micros;
  for (int i = 0; i < 30; ++i) {
    TaskSpec spec = Spec(100 + i, {"true"});
    int64_t t0 = MonotonicNanos();
    ASSERT_TRUE(ex->Start(spec).ok());
    ASSERT_TRUE(log.WaitFor(spec.key, TaskEventType::kStarted));
    micros.push_back((MonotonicNanos() - t0) / 1000);
    ASSERT_TRUE(log.WaitEnd(spec.key));
  }
  std::sort(micros.begin(), micros.end());
  int64_t p50 = micros[micros.size() / 2];
  int64_t p95 = micros[micros.size() * 95 / 100];
  std::printf("start latency: p50 %.2f ms, p95 %.2f ms, max %.2f ms\n", p50 / 1000.0, p95 / 1000.0,
              micros.back() / 1000.0);
  // The target is p50 < 20 ms submit-to-start for the whole daemon, about 3 ms
  // of which is this path on an idle machine. The bound here is loose because
  // ctest runs tests in parallel on two shared cores; it still catches a fixed
  // delay or a polling loop creeping into the start path.
  EXPECT_LT(p50, 100000);
}

}  // namespace
}  // namespace berth::exec

namespace berth::exec {
namespace {

TEST_F(LocalExecutorTest, TaskInheritsOnlyStdio) {
  EventLog log;
  auto ex = Make(log);
  ASSERT_TRUE(ex);
  TaskSpec spec = Shell(1, "echo ready; while [ ! -e go ]; do sleep 0.02; done");
  ASSERT_TRUE(ex->Start(spec).ok());
  auto started = log.WaitFor(spec.key, TaskEventType::kStarted);
  ASSERT_TRUE(started);
  ASSERT_TRUE(WaitOutput(*ex, spec.key, "ready"));
  std::vector<std::string> fds;
  for (const auto& e : fs::directory_iterator("/proc/" + started->external_id + "/fd")) {
    fds.push_back(e.path().filename().string());
  }
  std::sort(fds.begin(), fds.end());
  EXPECT_EQ(fds, (std::vector<std::string>{"0", "1", "2"}));
  Touch(ex->RunDir(spec.key) + "/go");
  ASSERT_TRUE(log.WaitEnd(spec.key));
}

TEST_F(LocalExecutorTest, ManyConcurrentTasksAllReportTheirOwnStatus) {
  EventLog log;
  auto ex = Make(log);
  ASSERT_TRUE(ex);
  const int kTasks = 40;
  for (int i = 0; i < kTasks; ++i) {
    ASSERT_TRUE(
        ex->Start(Shell(i + 1, "echo task" + std::to_string(i) + "; exit " + std::to_string(i % 7)))
            .ok());
  }
  for (int i = 0; i < kTasks; ++i) {
    TaskKey key{i + 1, 0, 0};
    auto end = log.WaitEnd(key, 10s);
    ASSERT_TRUE(end) << key.ToString();
    EXPECT_EQ(end->exit_code, i % 7);
    auto events = log.For(key);
    ASSERT_EQ(events.size(), 2u);
    EXPECT_EQ(events[0].type, TaskEventType::kStarted);
    EXPECT_EQ(Output(*ex, key), "task" + std::to_string(i) + "\n");
  }
}

TEST_F(LocalExecutorTest, ShutdownIsIdempotentAndRefusesNewWork) {
  EventLog log;
  auto ex = Make(log);
  ASSERT_TRUE(ex);
  ex->Shutdown();
  ex->Shutdown();
  EXPECT_EQ(ex->Start(Spec(1, {"true"})).code(), StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace berth::exec
