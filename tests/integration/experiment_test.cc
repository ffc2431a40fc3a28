// Experiments (kind: Experiment) on a real berthd: trials are jobs run by
// berth-shim, metrics come from stdout, a file or pushes.
#include <gtest/gtest.h>

#include <set>

#include "harness.h"

namespace berth::testing {
namespace {

using nlohmann::json;

// An experiment over x in [-2, 2] whose trial prints score = -x^2 (after
// `pre`, shell run first: a sleep, a failure).
std::string QuadSpec(const std::string& name, int parallel, int max_trials,
                     const std::string& extra = "", const std::string& pre = "true",
                     const std::string& algorithm = "random") {
  return R"Q(apiVersion: berth/v1
kind: Experiment
metadata: {name: )Q" +
         name + R"Q(}
spec:
  objective: {type: maximize, objectiveMetricName: score}
  algorithm: {algorithmName: )Q" +
         algorithm + R"Q(}
  parallelTrialCount: )Q" +
         std::to_string(parallel) + R"Q(
  maxTrialCount: )Q" +
         std::to_string(max_trials) + "\n" + extra + R"Q(
  parameters:
    - {name: x, parameterType: double, feasibleSpace: {min: "-2", max: "2"}}
  trialTemplate:
    trialParameters: [{name: x, reference: x}]
    trialSpec:
      kind: Job
      spec:
        command: [sh, -c, ")Q" +
         pre + R"Q( && echo step=1 score=$(awk 'BEGIN{print -(${trialParameters.x})^2}')"]
)Q";
}

json Create(const Daemon& d, const std::string& spec, Status* err = nullptr) {
  cli::ApiClient api(d.socket_url());
  auto r = api.Post("/api/v1/experiments", json{{"spec", spec}}.dump());
  if (!r.ok()) {
    if (err) *err = r.status();
    return json();
  }
  return *r;
}

json Exp(const Daemon& d, const std::string& name) { return d.Get("/api/v1/experiments/" + name); }

std::string ExpState(const Daemon& d, const std::string& name) {
  json e = Exp(d, name);
  return e.is_object() ? e.value("state", "") : "";
}

bool WaitEnded(const Daemon& d, const std::string& name, int seconds = 30) {
  return WaitFor([&] { return ExpState(d, name) != "Running" && !ExpState(d, name).empty(); },
                 std::chrono::seconds(seconds));
}

int Count(const json& e, const std::string& state) { return e["trialCounts"].value(state, 0); }

TEST(Experiment, RandomSearchRunsToTheEndWithTheBestTrialReported) {
  Daemon d;
  ASSERT_TRUE(d.Start());
  TempDir work;
  WriteFile(work / "exp.yaml", QuadSpec("quad", 2, 6));
  auto r = d.Cli({"exp", "create", "-f", work / "exp.yaml"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_TRUE(WaitEnded(d, "quad"));
  json e = Exp(d, "quad");
  EXPECT_EQ(e["state"], "Succeeded") << e.dump(2);
  EXPECT_EQ(e["trialCounts"]["total"], 6);
  EXPECT_EQ(Count(e, "Succeeded"), 6);
  // The best trial is the one with the highest score, in the status.
  double best = -1e9;
  int64_t best_id = -1;
  std::set<int64_t> jobs;
  for (const auto& t : e["trials"]) {
    ASSERT_TRUE(t["objective"].is_number()) << t.dump();
    double x = std::stod(t["parameters"]["x"].get<std::string>());
    EXPECT_NEAR(t["objective"].get<double>(), -x * x, 1e-4);
    if (t["objective"].get<double>() > best) {
      best = t["objective"].get<double>();
      best_id = t["id"].get<int64_t>();
    }
    jobs.insert(t["jobId"].get<int64_t>());
  }
  EXPECT_EQ(jobs.size(), 6u);
  ASSERT_TRUE(e["currentOptimalTrial"].is_object());
  EXPECT_EQ(e["currentOptimalTrial"]["id"], best_id);
  // berth exp get: trials best first, the best marked.
  r = d.Cli({"exp", "get", "quad"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  size_t table = r.out.find("TRIAL");
  ASSERT_NE(table, std::string::npos) << r.out;
  std::string first_row = r.out.substr(r.out.find('\n', table) + 1);
  first_row = first_row.substr(0, first_row.find('\n'));
  EXPECT_EQ(first_row.rfind("*", 0), 0u) << r.out;
  EXPECT_NE(first_row.find(" " + std::to_string(best_id) + " "), std::string::npos) << r.out;
  r = d.Cli({"exp", "trials", "quad", "-o", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(json::parse(r.out)["items"].size(), 6u);
  // A trial's output through its job.
  r = d.Cli({"exp", "logs", "quad", "0"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("score="), std::string::npos) << r.out;
}

TEST(Experiment, FailedTrialLimitEndsTheExperiment) {
  Daemon d;
  ASSERT_TRUE(d.Start());
  Create(d, QuadSpec("failing", 1, 10, "  maxFailedTrialCount: 1", "exit 3"));
  ASSERT_TRUE(WaitEnded(d, "failing"));
  json e = Exp(d, "failing");
  EXPECT_EQ(e["state"], "Failed") << e.dump(2);
  // One failure is allowed; the second ends it: no third trial starts.
  EXPECT_EQ(Count(e, "Failed"), 2) << e.dump(2);
  EXPECT_EQ(e["trialCounts"]["total"], 2);
  EXPECT_NE(e["message"].get<std::string>().find("maxFailedTrialCount"), std::string::npos);
}

TEST(Experiment, TrialWithoutItsObjectiveIsMetricsUnavailable) {
  Daemon d;
  ASSERT_TRUE(d.Start());
  std::string spec = QuadSpec("silent", 1, 2);
  spec.replace(spec.find("echo step=1 score="), 18, "echo step=1 other=");
  Create(d, spec);
  ASSERT_TRUE(WaitEnded(d, "silent"));
  json e = Exp(d, "silent");
  EXPECT_EQ(Count(e, "MetricsUnavailable"), 2) << e.dump(2);
  EXPECT_EQ(Count(e, "Succeeded"), 0);
  EXPECT_TRUE(e["currentOptimalTrial"].is_null());
}

TEST(Experiment, BadSpecIsRefusedNamingTheField) {
  Daemon d;
  ASSERT_TRUE(d.Start());
  TempDir work;
  std::string spec = QuadSpec("bad", 1, 2);
  spec.replace(spec.find("parameterType: double"), 21, "parameterType: float");
  WriteFile(work / "bad.yaml", spec);
  auto r = d.Cli({"exp", "create", "-f", work / "bad.yaml"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("spec.parameters[0].parameterType"), std::string::npos) << r.err;
  spec = QuadSpec("bad", 0, 2);
  WriteFile(work / "bad.yaml", spec);
  r = d.Cli({"exp", "create", "-f", work / "bad.yaml"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("spec.parallelTrialCount"), std::string::npos) << r.err;
  EXPECT_TRUE(Exp(d, "bad").is_null());
}

TEST(Experiment, StopStopsRunningTrialsAndResumeKeepsThem) {
  Daemon d;
  ASSERT_TRUE(d.Start());
  Create(d, QuadSpec("slow", 2, 4, "", "sleep 60"));
  std::vector<std::string> jobs;
  ASSERT_TRUE(WaitFor([&] {
    json e = Exp(d, "slow");
    jobs.clear();
    for (const auto& t : e["trials"])
      if (t["jobId"].get<int64_t>() && d.State(t["jobId"].dump()) == "Running")
        jobs.push_back(t["jobId"].dump());
    return jobs.size() == 2;
  }));
  auto r = d.Cli({"exp", "stop", "slow"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(ExpState(d, "slow"), "Stopped");
  for (const auto& j : jobs)
    EXPECT_TRUE(WaitFor([&] { return d.State(j) == "Cancelled"; }, std::chrono::seconds(10)))
        << "job " << j << " is " << d.State(j);
  json e = Exp(d, "slow");
  EXPECT_EQ(Count(e, "Killed"), 2) << e.dump(2);
  // Resume with a shorter trial: earlier trials are kept, new ones added.
  r = d.Cli({"exp", "resume", "slow", "--max-trials", "3"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_TRUE(WaitFor([&] { return Exp(d, "slow")["trialCounts"]["total"] == 3; }));
  r = d.Cli({"exp", "delete", "slow"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(Exp(d, "slow").is_null());
}

TEST(Experiment, SigkillMidExperimentLosesNoTrialAndDuplicatesNone) {
  Daemon d;
  ASSERT_TRUE(d.Start());
  Create(d, QuadSpec("crash", 3, 12, "", "sleep 0.3"));
  // Kill berthd twice while trials are being created and run.
  for (int round = 0; round < 2; ++round) {
    ASSERT_TRUE(WaitFor([&] {
      json e = Exp(d, "crash");
      return e.is_object() && e["trialCounts"]["total"].get<int>() >= 3 + 4 * round;
    }));
    d.Kill();
    ASSERT_TRUE(d.Start());
  }
  ASSERT_TRUE(WaitEnded(d, "crash", 60));
  json e = Exp(d, "crash");
  EXPECT_EQ(e["state"], "Succeeded") << e.dump(2);
  ASSERT_EQ(e["trials"].size(), 12u);
  std::set<std::string> params;
  std::set<int64_t> job_ids;
  for (size_t i = 0; i < 12; ++i) {
    const auto& t = e["trials"][i];
    EXPECT_EQ(t["id"], static_cast<int64_t>(i));
    EXPECT_EQ(t["state"], "Succeeded") << t.dump();
    params.insert(t["parameters"]["x"].get<std::string>());
    job_ids.insert(t["jobId"].get<int64_t>());
  }
  EXPECT_EQ(params.size(), 12u);   // no suggestion twice
  EXPECT_EQ(job_ids.size(), 12u);  // one job per trial
  // ... and no job that is no trial's.
  json all = d.Get("/api/v1/jobs?limit=1000");
  int trial_jobs = 0;
  for (const auto& j : all["items"])
    if (j["name"].get<std::string>().rfind("crash-trial-", 0) == 0) ++trial_jobs;
  EXPECT_EQ(trial_jobs, 12);
}

TEST(Experiment, PushedAndFileMetrics) {
  Daemon d;
  ASSERT_TRUE(d.Start());
  std::string sdk = std::string(BERTH_SOURCE_DIR) + "/python";
  std::string push = QuadSpec("pushed", 2, 2, "  metricsCollectorSpec: {collector: {kind: Push}}");
  push.replace(
      push.find("echo step=1 score=$(awk"), 23,
      "PYTHONPATH=" + sdk +
          " python3 -c \\\"import berth,sys; berth.report(step=2, score=float(sys.argv[1]))\\\" "
          "$(awk");
  Status err;
  Create(d, push, &err);
  ASSERT_TRUE(err.ok()) << err.message();
  std::string file = QuadSpec("filed", 2, 2, "  metricsCollectorSpec: {collector: {kind: File}}");
  file.replace(file.find("echo step=1 score=$(awk"), 23,
               "printf '{\\\"step\\\": 4, \\\"score\\\": %s}\\\\n' $(awk");
  file.replace(file.find("^2}')\""), 6, "^2}') > $BERTH_METRICS_FILE\"");
  Create(d, file, &err);
  ASSERT_TRUE(err.ok()) << err.message();
  ASSERT_TRUE(WaitEnded(d, "pushed"));
  ASSERT_TRUE(WaitEnded(d, "filed"));
  for (const char* name : {"pushed", "filed"}) {
    json e = Exp(d, name);
    EXPECT_EQ(Count(e, "Succeeded"), 2) << e.dump(2);
    for (const auto& t : e["trials"]) {
      double x = std::stod(t["parameters"]["x"].get<std::string>());
      EXPECT_NEAR(t["objective"].get<double>(), -x * x, 1e-4) << t.dump();
      ASSERT_TRUE(t.contains("observations")) << t.dump();
      EXPECT_EQ(t["observations"]["score"][0][0], std::string(name) == "pushed" ? 2 : 4);
    }
  }
  // Pushing to an ended trial, or to a trial that does not exist, is refused.
  cli::ApiClient api(d.socket_url());
  EXPECT_FALSE(api.Post("/api/v1/experiments/pushed/trials/0/metrics", R"({"score": 1})").ok());
  EXPECT_FALSE(api.Post("/api/v1/experiments/nope/trials/0/metrics", R"({"score": 1})").ok());
}

TEST(Experiment, ScavengerTrialYieldsAndResumesFromItsCheckpoint) {
  TempDir work;
  Daemon d({"--gpus", "1"});
  ASSERT_TRUE(d.Start());
  std::string spec = QuadSpec("filler", 1, 1);
  // The trial takes the only GPU as scavenger work; the first time it saves
  // a checkpoint and waits, after a preemption it resumes from it.
  std::string script =
      "if [ -f $BERTH_CHECKPOINT_DIR/ckpt ]; then echo score=$(cat $BERTH_CHECKPOINT_DIR/ckpt); "
      "exit 0; fi; echo 0.5 > $BERTH_CHECKPOINT_DIR/ckpt; echo up > " +
      work.path() + "/up; sleep 60";
  size_t at = spec.find("command: [sh, -c, \"");
  spec = spec.substr(0, at) + "resources: {gpus: 1}\n        priorityClassName: scavenger\n" +
         "        terminationGracePeriodSeconds: 5\n        command: [sh, -c, \"" + script +
         "\"]\n";
  Status err;
  Create(d, spec, &err);
  ASSERT_TRUE(err.ok()) << err.message();
  ASSERT_TRUE(WaitFor([&] { return !ReadFile(work / "up").empty(); }));
  std::string fg = SubmitScript(d, {"--gpus", "1"}, "true");
  ASSERT_TRUE(WaitFor([&] { return d.State(fg) == "Succeeded"; }));
  ASSERT_TRUE(WaitEnded(d, "filler"));
  json e = Exp(d, "filler");
  EXPECT_EQ(e["state"], "Succeeded") << e.dump(2);
  ASSERT_EQ(e["trials"].size(), 1u);
  const json& t = e["trials"][0];
  EXPECT_EQ(t["state"], "Succeeded") << t.dump();
  EXPECT_EQ(t["objective"], 0.5);
  EXPECT_EQ(Count(e, "Failed"), 0);
  EXPECT_EQ(d.Job(t["jobId"].dump())["attempts"], 2) << d.Job(t["jobId"].dump()).dump();
}

// Algorithms another branch adds (src/tune): skipped until they exist.
void RunOrSkip(const std::string& name, const std::string& algorithm, const std::string& extra,
               const std::string& pre) {
  Daemon d;
  ASSERT_TRUE(d.Start());
  Status err;
  Create(d, QuadSpec(name, 2, 8, extra, pre, algorithm), &err);
  if (!err.ok() && err.message().find("unknown algorithm") != std::string::npos)
    GTEST_SKIP() << err.message();
  ASSERT_TRUE(err.ok()) << err.message();
  ASSERT_TRUE(WaitEnded(d, name, 60));
  json e = Exp(d, name);
  EXPECT_EQ(e["state"], "Succeeded") << e.dump(2);
  EXPECT_EQ(e["trialCounts"]["total"], 8);
  EXPECT_EQ(Count(e, "Failed") + Count(e, "MetricsUnavailable"), 0) << e.dump(2);
  EXPECT_TRUE(e["currentOptimalTrial"].is_object());
}

TEST(Experiment, TpeWithMedianStop) {
  // Each trial reports 6 steps; medianstop may stop the worse ones.
  RunOrSkip(
      "tpe", "tpe",
      "  earlyStopping: {algorithmName: medianstop, algorithmSettings: "
      "[{name: min_trials_required, value: \"2\"}, {name: start_step, value: \"2\"}]}",
      "for s in 1 2 3 4 5; do echo step=$s score=$(awk 'BEGIN{print -(${trialParameters.x})^2 "
      "- 1/'$s'}'); sleep 0.1; done");
}

// ASHA (budgets 1, 2, 4 at divisor 2): new trials and promotions of the best
// ones, eight trials in all.
TEST(Experiment, Asha) {
  RunOrSkip("asha",
            "asha, algorithmSettings: [{name: max_length, value: \"4\"}, "
            "{name: divisor, value: \"2\"}]",
            "", "true");
}

}  // namespace
}  // namespace berth::testing
