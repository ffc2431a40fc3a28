// End-to-end tests of berthd and the berth CLI on declared GPUs: real
// processes, a real SQLite file, real signals.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "harness.h"

namespace berth::testing {
namespace {

// A job script that records its GPUs and start order, then waits until the
// test releases it, then exits with `code`.
std::string Waiter(const std::string& dir, int code) {
  return "echo \"$CUDA_VISIBLE_DEVICES\" > " + dir + "/gpus.$BERTH_JOB_ID; echo $BERTH_JOB_ID >> " +
         dir + "/order; while [ ! -e " + dir +
         "/release.$BERTH_JOB_ID ]; do sleep 0.02; done; exit " + std::to_string(code);
}

std::set<std::string> Split(const std::string& csv) {
  std::set<std::string> out;
  std::stringstream ss(Trim(csv));
  for (std::string one; std::getline(ss, one, ',');) out.insert(one);
  return out;
}

TEST(Jobs, ConcurrentJobsGetDisjointGpusAndTheThirdWaits) {
  TempDir work;
  Daemon d({"--gpus", "4"});
  ASSERT_TRUE(d.Start()) << ReadFile(d.data_dir() + "/berthd.log");

  std::string a = SubmitScript(d, {"--gpus", "2"}, Waiter(work.path(), 0));
  std::string b = SubmitScript(d, {"--gpus", "2"}, Waiter(work.path(), 0));
  ASSERT_TRUE(WaitFor([&] { return d.State(a) == "Running" && d.State(b) == "Running"; }));
  ASSERT_TRUE(WaitFor([&] {
    return !ReadFile(work / ("gpus." + a)).empty() && !ReadFile(work / ("gpus." + b)).empty();
  }));
  std::set<std::string> ga = Split(ReadFile(work / ("gpus." + a)));
  std::set<std::string> gb = Split(ReadFile(work / ("gpus." + b)));
  EXPECT_EQ(ga.size(), 2u);
  EXPECT_EQ(gb.size(), 2u);
  std::set<std::string> all = ga;
  all.insert(gb.begin(), gb.end());
  EXPECT_EQ(all, (std::set<std::string>{"0", "1", "2", "3"}));

  // What the job saw is what the API says it was given.
  auto ja = d.Job(a);
  std::set<std::string> api_gpus;
  for (const auto& g : ja["gpus"]) api_gpus.insert(g.dump());
  EXPECT_EQ(api_gpus, ga);
  EXPECT_EQ(ja["gpuUuids"].size(), 2u);

  // berth gpus shows each declared GPU and the job holding it.
  CommandResult gpus = d.Cli({"gpus"});
  EXPECT_EQ(gpus.exit_code, 0) << gpus.err;
  EXPECT_NE(gpus.out.find("Simulated GPU"), std::string::npos) << gpus.out;
  for (const std::string& g : ga) {
    std::string row = "  " + g + "    Simulated GPU";
    size_t at = gpus.out.find(row);
    ASSERT_NE(at, std::string::npos) << gpus.out;
    std::string line = gpus.out.substr(at, gpus.out.find('\n', at) - at);
    EXPECT_NE(line.find(" " + a + " "), std::string::npos) << line;
  }

  std::string c = SubmitScript(d, {"--gpus", "2"}, Waiter(work.path(), 0));
  ASSERT_TRUE(WaitFor([&] { return d.State(c) == "Pending"; }));
  // It stays pending while both run: check the API's reason for waiting.
  auto jc = d.Job(c);
  EXPECT_EQ(jc["state"], "Pending");
  EXPECT_FALSE(jc.value("waitingReason", "").empty());

  WriteFile(work / ("release." + a), "");
  ASSERT_TRUE(WaitFor([&] { return d.State(c) == "Running"; }));
  ASSERT_TRUE(WaitFor([&] { return !ReadFile(work / ("gpus." + c)).empty(); }));
  EXPECT_EQ(Split(ReadFile(work / ("gpus." + c))), ga);  // it took the GPUs a gave back
  EXPECT_EQ(d.State(a), "Succeeded");

  WriteFile(work / ("release." + b), "");
  WriteFile(work / ("release." + c), "");
  ASSERT_TRUE(WaitFor([&] { return d.State(b) == "Succeeded" && d.State(c) == "Succeeded"; }));
}

TEST(Jobs, RunWaitStreamsLogsAndExitsWithTheJobsCode) {
  Daemon d({"--gpus", "1"});
  ASSERT_TRUE(d.Start());
  CommandResult r = d.Cli({"run", "--wait", "--gpus", "1", "--", "/bin/sh", "-c",
                           "echo hello from $BERTH_JOB_ID; echo to-stderr >&2; exit 7"});
  EXPECT_EQ(r.exit_code, 7) << r.err;
  EXPECT_NE(r.out.find("hello from"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("to-stderr"), std::string::npos) << r.out;

  CommandResult ok = d.Cli({"run", "--wait", "--", "true"});
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
}

// Like srun and sbatch, a job without workingDir runs where berth was called
// (relative paths in the command work); tasks reach the daemon through
// BERTH_SERVER, the address it really listens on (even with --listen :0).
TEST(Jobs, RunsInTheCallersDirectoryAndKnowsTheServer) {
  TempDir work;
  Daemon d({"--gpus", "1"});
  ASSERT_TRUE(d.Start());
  WriteFile(work / "probe.sh", "echo \"pwd=$(pwd)\"; echo \"server=$BERTH_SERVER\"\n");
  auto berth_in = [&](const std::string& dir, std::vector<std::string> args) {
    args.insert(args.begin(),
                {"/usr/bin/env", "-C", dir, BinDir() + "/berth", "--server", d.socket_url()});
    return RunCommand(args);
  };
  CommandResult r = berth_in(work.path(), {"run", "--wait", "--", "/bin/sh", "probe.sh"});
  EXPECT_EQ(r.exit_code, 0) << r.err << r.out;
  EXPECT_NE(r.out.find("pwd=" + work.path() + "\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("server=" + d.url() + "\n"), std::string::npos) << r.out;
  EXPECT_EQ(d.url().find(":0"), std::string::npos) << d.url();

  // A document without workingDir gets the caller's directory; one with it keeps it.
  WriteFile(work / "job.yaml",
            "apiVersion: berth/v1\nkind: Job\nspec:\n  command: [/bin/sh, probe.sh]\n"
            "  env: {STEPS: \"080\"}\n");
  r = berth_in(work.path(), {"submit", "-f", "job.yaml", "--wait"});
  EXPECT_EQ(r.exit_code, 0) << r.err << r.out;
  EXPECT_NE(r.out.find("pwd=" + work.path() + "\n"), std::string::npos) << r.out;
  WriteFile(work / "pinned.yaml",
            "apiVersion: berth/v1\nkind: Job\nspec:\n  command: [/bin/sh, -c, pwd]\n"
            "  workingDir: /tmp\n");
  r = berth_in(work.path(), {"submit", "-f", "pinned.yaml", "--wait"});
  EXPECT_EQ(r.exit_code, 0) << r.err << r.out;
  EXPECT_NE(r.out.find("/tmp\n"), std::string::npos) << r.out;
  // Malformed documents still get berthd's error with the line.
  WriteFile(work / "bad.yaml", "apiVersion: berth/v1\nkind: Job\nspec: [unclosed\n");
  r = berth_in(work.path(), {"submit", "-f", "bad.yaml"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("line"), std::string::npos) << r.err;
}

TEST(Jobs, GetShowsTheFieldsProgramsNeed) {
  Daemon d({"--gpus", "2"});
  ASSERT_TRUE(d.Start());
  CommandResult r = d.Cli({"run", "--wait", "--gpus", "1", "--name", "probe", "--", "true"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  CommandResult ps = d.Cli({"ps", "-a", "-o", "json"});
  ASSERT_EQ(ps.exit_code, 0);
  auto items = nlohmann::json::parse(ps.out);
  ASSERT_EQ(items.size(), 1u);
  std::string id = items[0]["id"].dump();
  CommandResult g = d.Cli({"get", id, "-o", "json"});
  ASSERT_EQ(g.exit_code, 0);
  auto j = nlohmann::json::parse(g.out);
  EXPECT_EQ(j["id"].dump(), id);
  EXPECT_EQ(j["state"], "Succeeded");
  EXPECT_EQ(j["exitCode"], 0);
  EXPECT_EQ(j["gpus"].size(), 1u);
  EXPECT_FALSE(j["node"].get<std::string>().empty());
  for (const char* t : {"submitTime", "scheduledTime", "startTime", "endTime"})
    EXPECT_FALSE(j[t].get<std::string>().empty()) << t;
  EXPECT_EQ(j["name"], "probe");

  CommandResult table = d.Cli({"get", id});
  EXPECT_NE(table.out.find("Succeeded"), std::string::npos);
  CommandResult pst = d.Cli({"ps", "-a"});
  EXPECT_NE(pst.out.find("probe"), std::string::npos);
}

TEST(Jobs, CancelStopsARunningJobWithSigterm) {
  TempDir work;
  Daemon d({"--gpus", "1"});
  ASSERT_TRUE(d.Start());
  std::string id =
      SubmitScript(d, {"--gpus", "1"},
                   "trap 'echo got-term > " + work.path() + "/term; exit 0' TERM; echo ready > " +
                       work.path() + "/ready; while true; do sleep 0.05; done");
  ASSERT_TRUE(WaitFor([&] { return !ReadFile(work / "ready").empty(); }));
  CommandResult c = d.Cli({"cancel", id});
  EXPECT_EQ(c.exit_code, 0) << c.err;
  ASSERT_TRUE(WaitFor([&] { return d.State(id) == "Cancelled"; }));
  EXPECT_EQ(Trim(ReadFile(work / "term")), "got-term");

  // A pending job is cancelled at once; cancelling twice is an error.
  std::string p = SubmitScript(d, {"--gpus", "1"}, "sleep 30");
  std::string q = SubmitScript(d, {"--gpus", "1"}, "true");
  ASSERT_TRUE(WaitFor([&] { return d.State(p) == "Running"; }));
  EXPECT_EQ(d.State(q), "Pending");
  EXPECT_EQ(d.Cli({"cancel", q}).exit_code, 0);
  EXPECT_EQ(d.State(q), "Cancelled");
  CommandResult again = d.Cli({"cancel", q});
  EXPECT_NE(again.exit_code, 0);
  EXPECT_NE(again.err.find("already ended"), std::string::npos) << again.err;
  EXPECT_EQ(d.Cli({"cancel", p}).exit_code, 0);
  ASSERT_TRUE(WaitFor([&] { return d.State(p) == "Cancelled"; }));
}

TEST(Jobs, LogsFollowSeesOutputAsItIsWritten) {
  TempDir work;
  Daemon d({"--gpus", "1"});
  ASSERT_TRUE(d.Start());
  std::string id = SubmitScript(
      d, {}, "echo first; while [ ! -e " + work.path() + "/go ]; do sleep 0.02; done; echo second");
  ASSERT_TRUE(WaitFor([&] { return d.Cli({"logs", id}).out.find("first") != std::string::npos; }));
  WriteFile(work / "go", "");
  CommandResult f = d.Cli({"logs", "-f", id});
  EXPECT_EQ(f.exit_code, 0);
  EXPECT_EQ(f.out, "first\nsecond\n");
}

TEST(Jobs, BadInputGetsClearErrorsAndTheDaemonStaysUp) {
  TempDir work;
  Daemon d({"--gpus", "4"});
  ASSERT_TRUE(d.Start());
  auto submit_file = [&](const std::string& text) {
    WriteFile(work / "job.yaml", text);
    return d.Cli({"submit", "-f", work / "job.yaml"});
  };
  CommandResult malformed = submit_file("apiVersion: berth/v1\nkind: Job\nspec: [unclosed\n");
  EXPECT_NE(malformed.exit_code, 0);
  EXPECT_NE(malformed.err.find("malformed"), std::string::npos) << malformed.err;

  CommandResult unknown = submit_file(
      "apiVersion: berth/v1\nkind: Job\nspec:\n  command: [\"true\"]\n  resources: {gpu: 1}\n");
  EXPECT_NE(unknown.exit_code, 0);
  EXPECT_NE(unknown.err.find("spec.resources.gpu: unknown field"), std::string::npos)
      << unknown.err;

  CommandResult negative = submit_file(
      "apiVersion: berth/v1\nkind: Job\nspec:\n  command: [\"true\"]\n  resources: {gpus: -1}\n");
  EXPECT_NE(negative.exit_code, 0);
  EXPECT_NE(negative.err.find("spec.resources.gpus: must be >= 0, got -1"), std::string::npos)
      << negative.err;

  CommandResult neg_flag = d.Cli({"run", "--gpus", "-1", "--", "true"});
  EXPECT_NE(neg_flag.exit_code, 0);
  EXPECT_NE(neg_flag.err.find("--gpus"), std::string::npos) << neg_flag.err;

  CommandResult impossible = d.Cli({"run", "--gpus", "16", "--", "true"});
  EXPECT_NE(impossible.exit_code, 0);
  EXPECT_NE(impossible.err.find("16"), std::string::npos) << impossible.err;

  CommandResult missing = d.Cli({"get", "424242"});
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_NE(missing.err.find("424242"), std::string::npos) << missing.err;
  EXPECT_NE(d.Cli({"get", "abc"}).exit_code, 0);
  EXPECT_NE(d.Cli({"logs", "424242"}).exit_code, 0);
  EXPECT_NE(d.Cli({"cancel", "424242"}).exit_code, 0);

  CommandResult nocmd = d.Cli({"run", "--", "no-such-command-berth"});
  EXPECT_NE(nocmd.exit_code, 0);
  EXPECT_NE(nocmd.err.find("command not found"), std::string::npos) << nocmd.err;

  // A command that vanishes between submit and start fails with a clear message.
  std::string script = work / "vanish.sh";
  WriteFile(script, "#!/bin/sh\nexit 0\n");
  ::chmod(script.c_str(), 0755);
  std::string blocker = SubmitScript(
      d, {"--gpus", "4"}, "while [ ! -e " + work.path() + "/release ]; do sleep 0.02; done");
  CommandResult queued = d.Cli({"run", "--gpus", "1", "--", script});
  ASSERT_EQ(queued.exit_code, 0) << queued.err;
  std::string vid = Trim(queued.out);
  std::filesystem::remove(script);
  WriteFile(work / "release", "");
  ASSERT_TRUE(WaitFor([&] { return d.State(vid) == "Failed"; }));
  auto vj = d.Job(vid);
  EXPECT_NE(vj["message"].get<std::string>().find(script), std::string::npos) << vj.dump();
  EXPECT_EQ(vj["exitCode"], 127);

  EXPECT_TRUE(d.Alive());
  EXPECT_EQ(d.Cli({"ps", "-a"}).exit_code, 0);
  // Nothing was stored for the rejected submissions.
  auto all = nlohmann::json::parse(d.Cli({"ps", "-a", "-o", "json"}).out);
  EXPECT_EQ(all.size(), 2u);
}

}  // namespace
}  // namespace berth::testing
