// Scheduling policies in the daemon on real processes: a higher-priority job
// preempts a running one (SIGTERM, grace, SIGKILL), which is requeued and
// runs again to completion.
#include <gtest/gtest.h>

#include "harness.h"

namespace berth::testing {
namespace {

using nlohmann::json;

std::string JobYaml(const std::string& name, int priority, int gpus, int grace_s,
                    const std::string& script) {
  nlohmann::json doc = {{"apiVersion", "berth/v1"},
                        {"kind", "Job"},
                        {"metadata", {{"name", name}}},
                        {"spec",
                         {{"command", {"/bin/sh", "-c", script}},
                          {"priority", priority},
                          {"terminationGracePeriodSeconds", grace_s},
                          {"resources", {{"gpus", gpus}}}}}};
  return doc.dump();
}

class Preemption : public ::testing::TestWithParam<std::string> {};

TEST_P(Preemption, HigherPriorityJobPreemptsAndTheVictimIsRequeued) {
  TempDir work;
  const std::string dir = work.path();
  Daemon d({"--gpus", "2", "--policy", GetParam()});
  ASSERT_TRUE(d.Start()) << ReadFile(d.data_dir() + "/berthd.log");

  // The victim checkpoints on SIGTERM (records it, then holds on until the
  // test lets it go) and exits; on its second attempt it finishes at once.
  std::string low =
      SubmitDoc(d, work,
                JobYaml("low", 0, 2, 30,
                        "echo \"start $BERTH_ATTEMPT\" >> " + dir +
                            "/low.log; "
                            "if [ \"$BERTH_ATTEMPT\" -gt 1 ]; then exit 0; fi; "
                            "trap 'echo \"term $BERTH_ATTEMPT\" >> " +
                            dir + "/low.log; while [ ! -e " + dir +
                            "/let_go ]; do sleep 0.02; done; echo low-exit >> " + dir +
                            "/order; exit 143' TERM; "
                            "while true; do sleep 0.02; done"));
  ASSERT_TRUE(
      WaitFor([&] { return ReadFile(work / "low.log").find("start 1") != std::string::npos; }));

  std::string high = SubmitDoc(d, work,
                               JobYaml("high", 10, 2, 30,
                                       "echo high-start >> " + dir + "/order; while [ ! -e " + dir +
                                           "/release ]; do sleep 0.02; done"));
  // The victim got SIGTERM; while it checkpoints it still holds the GPUs, so
  // the high-priority job waits for them (and nothing else is preempted).
  ASSERT_TRUE(
      WaitFor([&] { return ReadFile(work / "low.log").find("term 1") != std::string::npos; }));
  ASSERT_TRUE(WaitFor([&] {
    json h = d.Job(high);
    return h.value("waitingReason", "").find("to release GPU") != std::string::npos;
  })) << d.Job(high).dump();
  EXPECT_EQ(d.State(high), "Pending");
  EXPECT_EQ(d.State(low), "Running");
  WriteFile(work / "let_go", "");
  // Then it is requeued, and the high-priority job runs.
  ASSERT_TRUE(WaitFor([&] { return d.State(high) == "Running"; })) << d.Job(low).dump();
  EXPECT_EQ(d.State(low), "Pending");
  ASSERT_TRUE(
      WaitFor([&] { return ReadFile(work / "order").find("high-start") != std::string::npos; }));
  EXPECT_EQ(ReadFile(work / "order"), "low-exit\nhigh-start\n");
  // What the first attempt received is kept for the scheduler (2 GPUs for a while).
  json requeued = d.Job(low);
  EXPECT_GT(requeued.value("attainedGpuSeconds", 0.0), 0.0) << requeued.dump();
  EXPECT_TRUE(requeued.contains("requeuedTime")) << requeued.dump();
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

// --priority orders jobs of one queue and class under the default policy: a
// priority-100 job submitted after a priority-0 one starts first when the
// only GPU frees.
TEST(Priority, HigherPriorityStartsFirstUnderTheDefaultPolicy) {
  TempDir work;
  const std::string dir = work.path();
  Daemon d({"--gpus", "1"});
  ASSERT_TRUE(d.Start()) << ReadFile(d.data_dir() + "/berthd.log");
  ASSERT_EQ(d.Get("/healthz")["policy"], "dynamic");
  std::string holder = SubmitScript(
      d, {"--gpus", "1"},
      "echo holder >> " + dir + "/order; while [ ! -e " + dir + "/release ]; do sleep 0.02; done");
  ASSERT_TRUE(WaitFor([&] { return d.State(holder) == "Running"; })) << d.Job(holder).dump();
  std::string low =
      SubmitScript(d, {"--gpus", "1", "--priority", "0"}, "echo low >> " + dir + "/order");
  std::string high =
      SubmitScript(d, {"--gpus", "1", "--priority", "100"}, "echo high >> " + dir + "/order");
  // Both wait for the GPU (a cycle has seen them), nobody is preempted.
  ASSERT_TRUE(WaitFor([&] {
    return !d.Job(low).value("waitingReason", "").empty() &&
           !d.Job(high).value("waitingReason", "").empty();
  })) << d.Job(high).dump();
  EXPECT_EQ(d.State(holder), "Running");
  WriteFile(work / "release", "");
  ASSERT_TRUE(WaitFor([&] { return d.State(low) == "Succeeded" && d.State(high) == "Succeeded"; }))
      << d.Job(low).dump() << d.Job(high).dump();
  EXPECT_EQ(ReadFile(work / "order"), "holder\nhigh\nlow\n");
}

// --priority-class reaches the job (berth get, the API) and is checked
// before anything is sent.
TEST(Priority, PriorityClassIsShownAndCheckedByTheCli) {
  Daemon d({"--gpus", "1"});
  ASSERT_TRUE(d.Start()) << ReadFile(d.data_dir() + "/berthd.log");
  CommandResult r =
      d.Cli({"run", "--priority-class", "interactive", "--priority", "3", "--", "true"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::string id = Trim(r.out);
  EXPECT_EQ(d.Job(id)["priorityClassName"], "interactive");
  EXPECT_EQ(d.Job(id)["spec"]["spec"]["priorityClassName"], "interactive");
  CommandResult g = d.Cli({"get", id});
  EXPECT_NE(g.out.find("interactive"), std::string::npos) << g.out;
  std::string plain = SubmitScript(d, {}, "true");
  EXPECT_EQ(d.Job(plain)["priorityClassName"], "batch");

  CommandResult bad = d.Cli({"run", "--priority-class", "urgent", "--", "true"});
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.err.find("--priority-class: unknown priority class \"urgent\" (one of scavenger, "
                         "batch, interactive)"),
            std::string::npos)
      << bad.err;
  CommandResult big = d.Cli({"run", "--priority", "5000000", "--", "true"});
  EXPECT_NE(big.exit_code, 0);
  EXPECT_NE(big.err.find("--priority: must be between -1000000 and 1000000"), std::string::npos)
      << big.err;
  // The API checks the document too.
  TempDir work;
  std::string path = work / "bad.json";
  WriteFile(
      path,
      R"({"apiVersion":"berth/v1","kind":"Job","spec":{"command":["true"],"priorityClassName":"gold"}})");
  CommandResult doc = d.Cli({"submit", "-f", path});
  EXPECT_NE(doc.exit_code, 0);
  EXPECT_NE(doc.err.find("spec.priorityClassName: unknown priority class \"gold\""),
            std::string::npos)
      << doc.err;
}

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
    })) << GetParam()
        << " job " << id << ": " << d.Job(id).dump();
    EXPECT_EQ(d.Job(id)["exitCode"], code);
  }
}

INSTANTIATE_TEST_SUITE_P(Policies, EveryPolicy,
                         ::testing::Values("fifo", "backfill", "tiresias", "static", "fairshare",
                                           "srtf-oracle", "dynamic"));

// A least-attained-service policy in the daemon: with a 3 GPU-second
// threshold and a one-hour resync, only the policy's own recheck time can
// wake the cycle that demotes the running job; the job keeps its attained
// service across the preemption, so a newer job goes before it.
TEST(LeastAttainedService, RecheckDemotesARunningJobAndServiceSurvivesRequeue) {
  TempDir work;
  const std::string dir = work.path();
  WriteFile(work / "berthd.yaml",
            "scheduler:\n  policy: tiresias\n  resyncInterval: 1h\n"
            "  options: {thresholds: \"3\", promote_knob: \"1000\"}\n");
  Daemon d({"--gpus", "1", "--config", work / "berthd.yaml"});
  ASSERT_TRUE(d.Start()) << ReadFile(d.data_dir() + "/berthd.log");
  auto waiter = [&](const std::string& name) {
    return "echo " + name + "-$BERTH_ATTEMPT >> " + dir +
           "/order; "
           "if [ \"$BERTH_ATTEMPT\" -gt 1 ]; then exit 0; fi; "
           "trap 'exit 143' TERM; while [ ! -e " +
           dir + "/release-" + name + " ]; do sleep 0.02; done";
  };
  std::string a = SubmitDoc(d, work, JobYaml("a", 0, 1, 30, waiter("a")));
  ASSERT_TRUE(WaitFor([&] { return d.State(a) == "Running"; }));
  std::string b = SubmitDoc(d, work, JobYaml("b", 0, 1, 30, waiter("b")));
  // b waits behind a (same level, FIFO) until a crosses 3 GPU-seconds; b
  // then has as long before it would be demoted in turn.
  ASSERT_TRUE(WaitFor([&] { return d.State(b) == "Running"; }))
      << d.Job(a).dump() << d.Job(b).dump();
  ASSERT_TRUE(WaitFor([&] { return d.State(a) == "Pending"; })) << d.Job(a).dump();
  json ja = d.Job(a);
  EXPECT_GE(ja.value("attainedGpuSeconds", 0.0), 3.0) << ja.dump();
  // c arrives while b runs; when b ends, c (no service yet) goes before a.
  std::string c = SubmitDoc(d, work, JobYaml("c", 0, 1, 30, waiter("c")));
  ASSERT_TRUE(WaitFor([&] { return d.State(c) == "Pending"; }));
  WriteFile(work / "release-b", "");
  ASSERT_TRUE(WaitFor([&] { return d.State(c) == "Running"; }))
      << d.Job(a).dump() << d.Job(c).dump();
  EXPECT_EQ(d.State(a), "Pending");
  WriteFile(work / "release-c", "");
  ASSERT_TRUE(WaitFor([&] { return d.State(a) == "Succeeded"; })) << d.Job(a).dump();
  EXPECT_EQ(d.State(b), "Succeeded");
  EXPECT_EQ(d.State(c), "Succeeded");
  EXPECT_EQ(ReadFile(work / "order"), "a-1\nb-1\nc-1\na-2\n");
}

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
