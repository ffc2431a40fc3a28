// `berth pipeline run --wait`: step progress as it happens (from the event
// log), events that name the run, and Ctrl-C cancelling the run.
#include <gtest/gtest.h>

#include "pipeline_util.h"

namespace berth::testing {
namespace {

using nlohmann::json;

class PipelineWatchTest : public PipelineDaemonTest {
 protected:
  std::string Write(const std::string& yaml) {
    static int n = 0;
    std::string file = work_ / ("watch-" + std::to_string(++n) + ".yaml");
    WriteFile(file, yaml);
    return file;
  }
};

// Where `needle` is in `text` at or after `from` (npos if not).
size_t After(const std::string& text, const std::string& needle, size_t from) {
  return from == std::string::npos ? std::string::npos : text.find(needle, from);
}

TEST_F(PipelineWatchTest, WaitShowsEachStepStartingAndEndingBeforeTheSummary) {
  std::string file = Write(R"(
apiVersion: berth/v1
kind: Pipeline
metadata: {name: two}
spec:
  steps:
  - {name: first, command: [echo, one]}
  - {name: second, dependencies: [first], command: [echo, two]}
)");
  CommandResult r = d_.Cli({"pipeline", "run", "-f", file, "--wait"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  std::string id = r.out.substr(0, r.out.find('\n'));
  json run = GetRun(d_, id);
  std::string j1 = Node(run, "first")["jobId"].dump(), j2 = Node(run, "second")["jobId"].dump();
  // Each transition on its own line (time, step, state, job), in order, then the tree.
  size_t p = After(r.out, "  first                 Running     job " + j1 + "\n", 0);
  p = After(r.out, "  first                 Succeeded   job " + j1 + "\n", p);
  p = After(r.out, "  second                Running     job " + j2 + "\n", p);
  p = After(r.out, "  second                Succeeded   job " + j2 + "\n", p);
  p = After(r.out, "Run " + id + " (two): Succeeded\n", p);
  EXPECT_NE(p, std::string::npos) << r.out;

  // The run's events name it, never "job 0".
  json events = d_.Get("/api/v1/events");
  int of_run = 0;
  for (const auto& e : events["items"]) {
    if (!e["data"].is_object() || !e["data"].contains("pipelineRun")) continue;
    if (e["data"]["pipelineRun"].dump() != id) continue;
    ++of_run;
    EXPECT_EQ(e["message"].get<std::string>().rfind("pipeline run " + id + " (two)", 0), 0u)
        << e.dump();
  }
  EXPECT_EQ(of_run, 6);  // created, 2 x (Running, Succeeded), succeeded
  CommandResult ev = d_.Cli({"events"});
  EXPECT_EQ(ev.out.find("job 0"), std::string::npos) << ev.out;
  EXPECT_NE(ev.out.find("PipelineRunSucceeded  pipeline run " + id + " (two) succeeded"),
            std::string::npos)
      << ev.out;
}

TEST_F(PipelineWatchTest, AFailedStepShowsItsMessage) {
  std::string file = Write(R"(
apiVersion: berth/v1
kind: Pipeline
metadata: {name: bad}
spec:
  steps:
  - {name: boom, command: [/bin/sh, -c, "exit 3"]}
)");
  CommandResult r = d_.Cli({"pipeline", "run", "-f", file, "--wait"});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  size_t p = After(r.out, "  boom                  Running     job ", 0);
  p = After(r.out, "  boom                  Failed      job ", p);
  p = After(r.out, "exited with code 3", p);
  p = After(r.out, "): Failed\n", p);
  EXPECT_NE(p, std::string::npos) << r.out;
}

// The CLI waiting in the background, as a user's terminal would run it.
struct Waiter {
  pid_t pid = 0;
  std::string out, err;
  int Wait(std::chrono::seconds timeout) {
    int status = 0, rc = -1;
    WaitFor(
        [&] {
          pid_t w = ::waitpid(pid, &status, WNOHANG);
          if (w != pid) return false;
          rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
          return true;
        },
        timeout);
    if (rc == -1) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
    return rc;
  }
};

Waiter StartWaiting(const Daemon& d, const TempDir& work, const std::string& file) {
  Waiter w;
  w.out = work / "wait.out";
  w.err = work / "wait.err";
  w.pid = SpawnToFiles(
      {BinDir() + "/berth", "--server", d.socket_url(), "pipeline", "run", "-f", file, "--wait"},
      {}, w.out, w.err);
  return w;
}

TEST_F(PipelineWatchTest, CtrlCCancelsTheRunAndExits130) {
  std::string file = Write(R"(
apiVersion: berth/v1
kind: Pipeline
metadata: {name: long}
spec:
  steps:
  - {name: slow, command: [/bin/sh, -c, "while true; do sleep 0.05; done"]}
  - {name: later, dependencies: [slow], command: [echo, never]}
)");
  Waiter w = StartWaiting(d_, work_, file);
  // Interrupt once the step runs (its Running line is out).
  ASSERT_TRUE(WaitFor([&] { return ReadFile(w.out).find("slow") != std::string::npos; }))
      << ReadFile(w.out) << ReadFile(w.err);
  std::string id = ReadFile(w.out).substr(0, ReadFile(w.out).find('\n'));
  ::kill(w.pid, SIGINT);
  EXPECT_EQ(w.Wait(std::chrono::seconds(20)), 130) << ReadFile(w.out) << ReadFile(w.err);
  EXPECT_NE(ReadFile(w.err).find("berth: interrupted: cancelling pipeline run " + id +
                                 " (Ctrl-C again to stop waiting)"),
            std::string::npos)
      << ReadFile(w.err);
  EXPECT_EQ(GetRun(d_, id)["state"], "Cancelled");
  std::string out = ReadFile(w.out);
  EXPECT_NE(After(out, "Cancelled", out.find("slow                  Running")), std::string::npos)
      << out;
}

TEST_F(PipelineWatchTest, ASecondCtrlCStopsWaitingAtOnce) {
  std::string release = work_ / "release";
  // Released however the test ends, so the step never outlives it.
  struct Release {
    std::string path;
    ~Release() { WriteFile(path, ""); }
  } guard{release};
  // The step outlives SIGTERM until released: cancelling takes as long.
  std::string file =
      Write(R"(
apiVersion: berth/v1
kind: Pipeline
metadata: {name: stubborn}
spec:
  steps:
  - {name: hold, command: [/bin/sh, -c, "trap '' TERM; touch )" +
            release + R"(.ready; while [ ! -e )" + release + R"( ]; do sleep 0.05; done"]}
)");
  Waiter w = StartWaiting(d_, work_, file);
  // Interrupt once the step ignores SIGTERM (before, a cancel would end it at once).
  ASSERT_TRUE(WaitFor([&] { return std::filesystem::exists(release + ".ready"); }))
      << ReadFile(w.out) << ReadFile(w.err);
  std::string id = ReadFile(w.out).substr(0, ReadFile(w.out).find('\n'));
  ::kill(w.pid, SIGINT);
  ASSERT_TRUE(WaitFor([&] {
    return ReadFile(w.err).find("interrupted: cancelling") != std::string::npos;
  })) << ReadFile(w.err);
  ::kill(w.pid, SIGINT);
  EXPECT_EQ(w.Wait(std::chrono::seconds(5)), 130) << ReadFile(w.err);
  EXPECT_NE(ReadFile(w.err).find("stopped waiting"), std::string::npos) << ReadFile(w.err);
  EXPECT_EQ(GetRun(d_, id)["stopping"], "cancel");
  WriteFile(release, "");
  EXPECT_EQ(WaitRunEnd(d_, id)["state"], "Cancelled");
}

}  // namespace
}  // namespace berth::testing
