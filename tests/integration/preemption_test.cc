// Scheduling policies in the daemon on real processes: a higher-priority job
// preempts a running one (SIGTERM, grace, SIGKILL), which is requeued and
// runs again to completion.
#include <gtest/gtest.h>

#include "harness.h"

namespace berth::testing {
namespace {

std::string JobYaml(const std::string& name, int priority, int gpus, int grace_s, const std::string& script) {
  nlohmann::json doc = {
      {"apiVersion", "berth/v1"},
      {"kind", "Job"},
      {"metadata", {{"name", name}}},
      {"spec",
       {{"command", {"/bin/sh", "-c", script}},
        {"priority", priority},
        {"terminationGracePeriodSeconds", grace_s},
        {"resources", {{"gpus", gpus}}}}}};
  return doc.dump();
}

std::string SubmitDoc(const Daemon& d, const TempDir& work, const std::string& doc) {
  static int n = 0;
  std::string path = work / ("job" + std::to_string(n++) + ".json");
  WriteFile(path, doc);
  CommandResult r = d.Cli({"submit", "-f", path});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return Trim(r.out);
}

class Preemption : public ::testing::TestWithParam<std::string> {};

TEST_P(Preemption, HigherPriorityJobPreemptsAndTheVictimIsRequeued) {
  TempDir work;
  const std::string dir = work.path();
  Daemon d({"--gpus", "2", "--policy", GetParam()});
  ASSERT_TRUE(d.Start()) << ReadFile(d.data_dir() + "/berthd.log");

  // The victim checkpoints on SIGTERM (records it) and exits; on its second
  // attempt it finishes at once.
  std::string low = SubmitDoc(
      d, work,
      JobYaml("low", 0, 2, 30,
              "echo \"start $BERTH_ATTEMPT\" >> " + dir + "/low.log; "
              "if [ \"$BERTH_ATTEMPT\" -gt 1 ]; then exit 0; fi; "
              "trap 'echo \"term $BERTH_ATTEMPT\" >> " + dir + "/low.log; exit 143' TERM; "
              "while true; do sleep 0.02; done"));
  ASSERT_TRUE(WaitFor([&] { return ReadFile(work / "low.log").find("start 1") != std::string::npos; }));

  std::string high = SubmitDoc(
      d, work,
      JobYaml("high", 10, 2, 30,
              "echo run >> " + dir + "/high.log; while [ ! -e " + dir + "/release ]; do sleep 0.02; done"));
  // The victim got SIGTERM, was requeued, and the high-priority job runs.
  ASSERT_TRUE(WaitFor([&] { return d.State(high) == "Running"; })) << d.Job(low).dump();
  EXPECT_NE(ReadFile(work / "low.log").find("term 1"), std::string::npos);
  EXPECT_EQ(d.State(low), "Pending");
  bool saw_preempted = false, saw_requeued = false;
  auto events = d.Get("/api/v1/events?job=" + low);
  for (const auto& e : events["items"]) {
    saw_preempted |= e["type"] == "JobPreempted";
    saw_requeued |= e["type"] == "JobRequeued";
  }
  EXPECT_TRUE(saw_preempted);
  EXPECT_TRUE(saw_requeued);

  // When the high-priority job ends, the victim runs again (attempt 2) and succeeds.
  WriteFile(work / "release", "");
  ASSERT_TRUE(WaitFor([&] { return d.State(low) == "Succeeded"; })) << d.Job(low).dump();
  EXPECT_EQ(d.State(high), "Succeeded");
  auto lj = d.Job(low);
  EXPECT_EQ(lj["attempts"], 2);
  EXPECT_NE(ReadFile(work / "low.log").find("start 2"), std::string::npos);
  EXPECT_NE(d.GetText("/metrics").find("berth_preemptions_total 1"), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(Policies, Preemption, ::testing::Values("fairshare"));

// Every registered policy runs real jobs in the daemon: a gang of 2 GPUs, a
// fractional job and a whole-GPU job all complete with their exit codes.
class EveryPolicy : public ::testing::TestWithParam<std::string> {};

TEST_P(EveryPolicy, RunsJobsToCompletion) {
  Daemon d({"--gpus", "2", "--policy", GetParam()});
  ASSERT_TRUE(d.Start()) << ReadFile(d.data_dir() + "/berthd.log");
  EXPECT_EQ(d.Get("/healthz")["policy"], GetParam());
  std::vector<std::pair<std::string, int>> jobs;
  for (auto [gpus, code] : {std::pair<std::string, int>{"2", 0}, {"0.5", 3}, {"1", 0}, {"1", 4}}) {
    CommandResult r = d.Cli({"run", "--gpus", gpus, "--time-limit", "1m", "--", "/bin/sh", "-c",
                             "echo $CUDA_VISIBLE_DEVICES; exit " + std::to_string(code)});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    jobs.push_back({Trim(r.out), code});
  }
  for (const auto& [id, code] : jobs) {
    ASSERT_TRUE(WaitFor([&] {
      std::string s = d.State(id);
      return s == "Succeeded" || s == "Failed";
    })) << GetParam() << " job " << id << ": " << d.Job(id).dump();
    EXPECT_EQ(d.Job(id)["exitCode"], code);
  }
}

INSTANTIATE_TEST_SUITE_P(Policies, EveryPolicy,
                         ::testing::Values("fifo", "backfill", "tiresias", "static", "fairshare",
                                           "srtf-oracle", "dynamic"));

TEST(PreemptionGrace, AVictimIgnoringSigtermIsKilledAfterItsGrace) {
  TempDir work;
  const std::string dir = work.path();
  Daemon d({"--gpus", "1", "--policy", "fairshare"});
  ASSERT_TRUE(d.Start());
  std::string stubborn = SubmitDoc(
      d, work,
      JobYaml("stubborn", 0, 1, 1,
              "if [ \"$BERTH_ATTEMPT\" -gt 1 ]; then exit 0; fi; trap '' TERM; echo up > " + dir +
                  "/up; while true; do sleep 0.02; done"));
  ASSERT_TRUE(WaitFor([&] { return !ReadFile(work / "up").empty(); }));
  std::string urgent = SubmitDoc(d, work, JobYaml("urgent", 5, 1, 30, "true"));
  // Killed with SIGKILL after the 1 s grace, requeued, then both finish.
  ASSERT_TRUE(WaitFor([&] { return d.State(urgent) == "Succeeded"; }));
  ASSERT_TRUE(WaitFor([&] { return d.State(stubborn) == "Succeeded"; }));
  auto events = d.Get("/api/v1/events?job=" + stubborn);
  bool killed = false;
  for (const auto& e : events["items"])
    if (e["type"] == "JobPreempted" && e["data"].value("signal", 0) == 9) killed = true;
  EXPECT_TRUE(killed) << events.dump();
}

}  // namespace
}  // namespace berth::testing
