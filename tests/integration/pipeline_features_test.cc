// End-to-end tests of pipeline spec features on real processes (berthd, the
// berth CLI, step jobs under berth-shim): withItems fan-out, retry policies,
// retry backoff factor and cap, memoization maxAge, the one_success trigger
// rule, and every example pipeline under examples/pipelines/.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>

#include "model/pipeline.h"
#include "pipeline_util.h"

namespace berth::testing {
namespace {

class PipelineFeatureTest : public PipelineDaemonTest {};

TEST_F(PipelineFeatureTest, WithItemsFansOutOverObjectsAndScalarsWithParallelism) {
  std::string log = work_ / "conc";
  std::string id = StartRun(d_, work_.path(),
                            R"(
kind: Pipeline
metadata: {name: items}
spec:
  steps:
  - name: greet
    withItems: [{name: ada, n: 1}, {name: bob, n: 2}, {name: cy, n: 3}, {name: dee, n: 4}]
    parallelism: 2
    script: "echo + >> )" + log +
                                R"(; sleep 0.3; echo - >> )" + log +
                                R"(; echo {{item.name}}-$(( {{item.n}} * 10 )) "
    outputs: {parameters: [{name: v, valueFrom: {stdout: true}}]}
  - name: letters
    withItems: [x, y]
    command: [echo, "{{item}}"]
    outputs: {parameters: [{name: v, valueFrom: {stdout: true}}]}
  - name: join
    dependencies: [greet, letters]
    command: [echo, "{{steps.greet.outputs.parameters.v}} {{steps.letters.outputs.parameters.v}}"]
)");
  auto run = WaitRunEnd(d_, id);
  ASSERT_EQ(run["state"], "Succeeded") << run.dump(2);
  EXPECT_EQ(Node(run, "greet")["state"], "Succeeded");
  // YAML scalars arrive as strings.
  EXPECT_EQ(Node(run, "greet(1)")["item"], R"({"n":"2","name":"bob"})");
  EXPECT_EQ(Node(run, "greet(3)")["outputs"]["parameters"]["v"], "dee-40");
  EXPECT_EQ(Node(run, "letters(1)")["item"], "\"y\"");
  // The fan-in sees the children's outputs in item order.
  EXPECT_EQ(Trim(d_.GetText("/api/v1/pipelines/runs/" + id + "/logs?step=join")),
            R"(["ada-10","bob-20","cy-30","dee-40"] ["x","y"])");
  int cur = 0, peak = 0, starts = 0;
  std::stringstream ss(ReadFile(log));
  for (std::string line; std::getline(ss, line);) {
    if (line == "+") peak = std::max(peak, ++cur), ++starts;
    if (line == "-") --cur;
  }
  EXPECT_EQ(starts, 4);
  EXPECT_LE(peak, 2);  // the step's parallelism
}

TEST_F(PipelineFeatureTest, RetryPoliciesTellFailuresFromErrors) {
  // A failure: the process ran and exited non-zero. An error: it could not be
  // started, either refused at submission (no such command) or failing in
  // berth-shim's exec (an executable whose interpreter does not exist: the
  // job fails with exit code 127, "failed to start").
  std::string bad = work_ / "bad-interpreter";
  WriteFile(bad, "#!/nonexistent/berth-interpreter\n");
  std::filesystem::permissions(bad, std::filesystem::perms::owner_all);
  auto count = [&](const std::string& name) { return "echo x >> " + (work_ / name) + "; exit 1"; };
  std::string id = StartRun(d_, work_.path(), R"(
kind: Pipeline
metadata: {name: policies}
spec:
  steps:
  - name: always-fails
    script: ")" + count("always") + R"("
    retryStrategy: {limit: 2, retryPolicy: Always}
  - name: onerror-fails
    script: ")" + count("onerror") + R"("
    retryStrategy: {limit: 2, retryPolicy: OnError}
  - name: onfailure-fails
    script: ")" + count("onfailure") + R"("
    retryStrategy: {limit: 2, retryPolicy: OnFailure}
  - name: always-nostart
    command: [/nonexistent/berth-no-such-command]
    retryStrategy: {limit: 1, retryPolicy: Always}
  - name: onerror-nostart
    command: [/nonexistent/berth-no-such-command]
    retryStrategy: {limit: 1, retryPolicy: OnError}
  - name: onfailure-nostart
    command: [/nonexistent/berth-no-such-command]
    retryStrategy: {limit: 1, retryPolicy: OnFailure}
  - name: always-execfails
    command: [)" + bad + R"(]
    retryStrategy: {limit: 1, retryPolicy: Always}
  - name: onerror-execfails
    command: [)" + bad + R"(]
    retryStrategy: {limit: 1, retryPolicy: OnError}
  - name: onfailure-execfails
    command: [)" + bad + R"(]
    retryStrategy: {limit: 1, retryPolicy: OnFailure}
)");
  auto run = WaitRunEnd(d_, id);
  ASSERT_EQ(run["state"], "Failed") << run.dump(2);
  for (const auto& n : run["nodes"]) EXPECT_EQ(n["state"], "Failed") << n.dump();
  EXPECT_EQ(Node(run, "always-fails")["attempts"], 3);
  EXPECT_EQ(Node(run, "onerror-fails")["attempts"], 1);  // it ran: not an error
  EXPECT_EQ(Node(run, "onfailure-fails")["attempts"], 3);
  EXPECT_EQ(ReadFile(work_ / "always"), "x\nx\nx\n");
  EXPECT_EQ(ReadFile(work_ / "onerror"), "x\n");
  EXPECT_EQ(ReadFile(work_ / "onfailure"), "x\nx\nx\n");
  for (std::string how : {"nostart", "execfails"}) {
    EXPECT_EQ(Node(run, "always-" + how)["attempts"], 2) << how;
    EXPECT_EQ(Node(run, "onerror-" + how)["attempts"], 2) << how;
    EXPECT_EQ(Node(run, "onfailure-" + how)["attempts"], 1) << how;  // it never ran
  }
  EXPECT_NE(Node(run, "onfailure-nostart")["message"].get<std::string>().find("not an executable"),
            std::string::npos)
      << Node(run, "onfailure-nostart").dump();
  auto execfails = Node(run, "onfailure-execfails");
  EXPECT_EQ(execfails["exitCode"], 127) << execfails.dump();
  EXPECT_NE(execfails["message"].get<std::string>().find("failed to start"), std::string::npos)
      << execfails.dump();
}

TEST_F(PipelineFeatureTest, RetryBackoffGrowsByTheFactorUpToMaxDuration) {
  // Waits before attempts 2, 3, 4: 300 ms, 300*4 = 1200 ms, min(4800, 1500) = 1500 ms.
  std::string times = work_ / "times";
  std::string id = StartRun(d_, work_.path(),
                            R"(
kind: Pipeline
metadata: {name: backoff}
spec:
  steps:
  - name: flaky
    script: "echo start $(date +%s%N) >> )" +
                                times + R"(; n=$(grep -c start )" + times +
                                R"(); echo end $(date +%s%N) >> )" + times +
                                R"(; [ $n -ge 4 ]"
    retryStrategy: {limit: 5, retryPolicy: OnFailure, backoff: {duration: 300ms, factor: 4, maxDuration: 1500ms}}
)");
  auto run = WaitRunEnd(d_, id);
  ASSERT_EQ(run["state"], "Succeeded") << run.dump(2);
  EXPECT_EQ(Node(run, "flaky")["attempts"], 4);
  std::vector<int64_t> start, end;  // ms, as the attempts themselves saw them
  std::stringstream ss(ReadFile(times));
  for (std::string what, ns; ss >> what >> ns;)
    (what == "start" ? start : end).push_back(std::stoll(ns) / 1000000);
  ASSERT_EQ(start.size(), 4u) << ReadFile(times);
  ASSERT_EQ(end.size(), 4u);
  std::vector<int64_t> gap;
  for (size_t i = 0; i + 1 < start.size(); ++i) gap.push_back(start[i + 1] - end[i]);
  // A wait is never shorter than the backoff (the controller measures it from
  // after the attempt ended) ...
  EXPECT_GE(gap[0], 300 - 2) << gap[0];
  EXPECT_GE(gap[1], 1200 - 2) << gap[1];  // the factor applied
  EXPECT_GE(gap[2], 1500 - 2) << gap[2];
  // ... and, with generous room for a loaded machine, not much longer: the
  // first is not multiplied and the third is capped (4800 ms without the cap).
  EXPECT_LT(gap[0], 1200) << gap[0];
  EXPECT_LT(gap[2], 4000) << gap[2];
}

TEST_F(PipelineFeatureTest, MemoizedResultOlderThanMaxAgeIsNotReused) {
  std::string yaml = R"(
kind: Pipeline
metadata: {name: memo-age}
spec:
  steps:
  - name: expensive
    script: "echo ran >> )" +
                     (work_ / "count") + R"(; echo result"
    outputs: {parameters: [{name: out, valueFrom: {stdout: true}}]}
    memoize: {key: "memo-age-test", maxAge: 3s}
)";
  auto first = WaitRunEnd(d_, StartRun(d_, work_.path(), yaml));
  // The cached result is at most this old when the first run is seen ended.
  auto first_seen = std::chrono::steady_clock::now();
  ASSERT_EQ(first["state"], "Succeeded") << first.dump(2);
  EXPECT_FALSE(Node(first, "expensive")["cached"].get<bool>());
  auto second = WaitRunEnd(d_, StartRun(d_, work_.path(), yaml));  // well within 3 s
  ASSERT_EQ(second["state"], "Succeeded");
  EXPECT_TRUE(Node(second, "expensive")["cached"].get<bool>());
  EXPECT_EQ(ReadFile(work_ / "count"), "ran\n");
  // Once the result is older than maxAge the step runs again.
  ASSERT_TRUE(WaitFor(
      [&] {
        return std::chrono::steady_clock::now() - first_seen > std::chrono::milliseconds(3200);
      },
      std::chrono::seconds(10)));
  auto third = WaitRunEnd(d_, StartRun(d_, work_.path(), yaml));
  ASSERT_EQ(third["state"], "Succeeded");
  EXPECT_FALSE(Node(third, "expensive")["cached"].get<bool>());
  EXPECT_EQ(ReadFile(work_ / "count"), "ran\nran\n");
  // And its fresh result is what the next run reuses.
  auto fourth = WaitRunEnd(d_, StartRun(d_, work_.path(), yaml));
  EXPECT_TRUE(Node(fourth, "expensive")["cached"].get<bool>());
  EXPECT_EQ(ReadFile(work_ / "count"), "ran\nran\n");
}

TEST_F(PipelineFeatureTest, OneSuccessRunsAsSoonAsOneDependencySucceeded) {
  std::string release = work_ / "release";
  std::string id = StartRun(d_, work_.path(), R"(
kind: Pipeline
metadata: {name: first-wins}
spec:
  steps:
  - name: fast
    command: [echo, fast]
  - name: slow
    script: "while [ ! -e )" + release + R"( ]; do sleep 0.02; done"
  - name: bad
    script: "exit 2"
  - name: first
    dependencies: [fast, slow]
    triggerRule: one_success
    command: [echo, first]
  - name: nothing-succeeded
    dependencies: [bad]
    triggerRule: one_success
    command: [echo, never]
)");
  // `first` ran while `slow` is still running.
  nlohmann::json run;
  ASSERT_TRUE(WaitFor([&] {
    run = GetRun(d_, id);
    return Node(run, "first")["state"] == "Succeeded";
  })) << run.dump(2);
  EXPECT_EQ(Node(run, "slow")["state"], "Running");
  WriteFile(release, "");
  run = WaitRunEnd(d_, id);
  EXPECT_EQ(run["state"], "Failed");  // `bad` failed
  EXPECT_EQ(Node(run, "slow")["state"], "Succeeded");
  EXPECT_EQ(Node(run, "nothing-succeeded")["state"], "Omitted");
  EXPECT_EQ(Trim(d_.GetText("/api/v1/pipelines/runs/" + id + "/logs?step=first")), "first");
}

// Regression: the controller read a node's name through a reference into an
// index entry it had just erased, so a step whose name did not fit in
// std::string's inline buffer (16+ characters) never saw its job end.
TEST_F(PipelineFeatureTest, StepsWithLongNamesEnd) {
  std::string id = StartRun(d_, work_.path(), R"(
kind: Pipeline
metadata: {name: long-names}
spec:
  steps:
  - name: a-step-whose-name-is-well-past-sixteen-characters
    command: [echo, one]
  - name: a-fan-out-step-with-a-long-name
    dependencies: [a-step-whose-name-is-well-past-sixteen-characters]
    withItems: [1, 2]
    command: [echo, "{{item}}"]
)");
  auto run = WaitRunEnd(d_, id);
  ASSERT_EQ(run["state"], "Succeeded") << run.dump(2);
  EXPECT_EQ(Node(run, "a-fan-out-step-with-a-long-name(1)")["state"], "Succeeded");
}

// The artifact root: `artifactRoot` in berthd's config file, and
// $BERTH_ARTIFACT_ROOT, which wins over it.
TEST(PipelineArtifactRoot, ConfigKeyAndEnvironment) {
  TempDir dir;
  std::string config = dir / "berthd.yaml";
  WriteFile(config, "artifactRoot: " + (dir / "from-config") + "\n");
  const std::string yaml = R"(
kind: Pipeline
metadata: {name: where}
spec:
  steps:
  - name: produce
    script: "echo hi > out.txt"
    outputs: {artifacts: [{name: out, path: out.txt}]}
)";
  {
    Daemon d({"--gpus", "0", "--config", config});
    ASSERT_TRUE(d.Start()) << ReadFile(d.data_dir() + "/berthd.log");
    auto run = WaitRunEnd(d, StartRun(d, dir.path(), yaml));
    ASSERT_EQ(run["state"], "Succeeded") << run.dump(2);
    std::string root = dir / "from-config";
    EXPECT_EQ(run["artifactDir"].get<std::string>().rfind(root + "/run-", 0), 0u) << run.dump(2);
    EXPECT_EQ(Trim(ReadFile(run["artifactDir"].get<std::string>() + "/artifacts/produce/out")),
              "hi");
  }
  {
    Daemon d({"--gpus", "0", "--config", config}, {"BERTH_ARTIFACT_ROOT=" + (dir / "from-env")});
    ASSERT_TRUE(d.Start()) << ReadFile(d.data_dir() + "/berthd.log");
    auto run = WaitRunEnd(d, StartRun(d, dir.path(), yaml));
    ASSERT_EQ(run["state"], "Succeeded") << run.dump(2);
    EXPECT_EQ(run["artifactDir"].get<std::string>().rfind(dir / "from-env/run-", 0), 0u)
        << run.dump(2);
  }
}

// Every Pipeline under examples/pipelines/ runs to success (CronPipelines are
// only validated, and a Python SDK example is run by the SDK's tests).
TEST_F(PipelineFeatureTest, EveryExamplePipelineSucceeds) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  std::vector<std::pair<std::string, std::string>> runs;  // file, run id
  std::vector<std::string> files;
  for (const auto& e :
       std::filesystem::directory_iterator(std::string(BERTH_SOURCE_DIR) + "/examples/pipelines"))
    if (e.path().extension() == ".yaml") files.push_back(e.path().string());
  std::sort(files.begin(), files.end());
  ASSERT_GE(files.size(), 7u);
  for (const auto& f : files) {
    std::string text = ReadFile(f);
    auto kind = model::DocumentKind(text);
    ASSERT_TRUE(kind.ok()) << f << ": " << kind.status().message();
    if (*kind == "CronPipeline") {
      auto cron = model::ParseCronPipelineSpec(text);
      EXPECT_TRUE(cron.ok()) << f << ": " << cron.status().message();
      continue;
    }
    ASSERT_EQ(*kind, "Pipeline") << f;
    CommandResult r = d_.Cli({"pipeline", "run", "-f", f});
    ASSERT_EQ(r.exit_code, 0) << f << ": " << r.err;
    runs.emplace_back(f, Trim(r.out));
  }
  for (const auto& [f, id] : runs) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    auto run = WaitRunEnd(d_, id, std::max(left, std::chrono::milliseconds(1)));
    EXPECT_EQ(run["state"], "Succeeded") << f << ":\n" << run.dump(2);
  }
}

}  // namespace
}  // namespace berth::testing
