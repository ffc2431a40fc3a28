// End-to-end tests of pipelines on real processes: berthd, the berth CLI and
// step jobs under berth-shim.
#include <gtest/gtest.h>

#include <algorithm>

#include "pipeline_util.h"

namespace berth::testing {
namespace {

class PipelineTest : public PipelineDaemonTest {};

TEST_F(PipelineTest, OutputsArtifactsFanInWhenAndExitHandler) {
  std::string id = StartRun(d_, work_.path(),
                            R"(
apiVersion: berth/v1
kind: Pipeline
metadata: {name: demo}
spec:
  parameters: [{name: threshold, value: "5"}]
  onExit: {script: "echo {{pipeline.status}} > )" +
                                work_.path() + R"(/exit"}
  steps:
  - name: prep
    script: "echo '[\"a\",\"b\",\"c\"]' > list.txt; mkdir -p out; echo payload > out/data.txt; echo 7"
    outputs:
      parameters: [{name: list, valueFrom: {path: list.txt}}, {name: score, valueFrom: {stdout: true}}]
      artifacts: [{name: data, path: out}]
  - name: fan
    dependencies: [prep]
    withParam: "{{steps.prep.outputs.parameters.list}}"
    script: "echo item-{{item}}"
    outputs: {parameters: [{name: v, valueFrom: {stdout: true}}]}
  - name: fanin
    dependencies: [fan, prep]
    inputs: {artifacts: [{name: d, from: "{{steps.prep.outputs.artifacts.data}}", path: in}]}
    script: "cat in/data.txt; echo '{{steps.fan.outputs.parameters.v}}'"
  - name: deploy
    dependencies: [prep]
    when: "{{steps.prep.outputs.parameters.score}} > {{inputs.parameters.threshold}}"
    command: [echo, deployed]
  - name: skipped
    dependencies: [prep]
    when: "{{steps.prep.outputs.parameters.score}} < {{inputs.parameters.threshold}}"
    command: [echo, never]
  - name: after-skip
    dependencies: [skipped]
    command: [echo, runs-after-a-skipped-step]
)");
  auto run = WaitRunEnd(d_, id);
  ASSERT_EQ(run["state"], "Succeeded") << run.dump(2);
  EXPECT_EQ(Node(run, "prep")["outputs"]["parameters"]["score"], "7");
  EXPECT_EQ(Node(run, "fan")["state"], "Succeeded");
  EXPECT_EQ(Node(run, "fan(2)")["item"], "\"c\"");
  EXPECT_EQ(Node(run, "deploy")["state"], "Succeeded");
  EXPECT_EQ(Node(run, "skipped")["state"], "Skipped");
  EXPECT_EQ(Node(run, "after-skip")["state"], "Succeeded");
  // The fan-in step saw every child's output and the artifact prep produced.
  std::string logs = d_.GetText("/api/v1/pipelines/runs/" + id + "/logs?step=fanin");
  EXPECT_NE(logs.find("payload"), std::string::npos) << logs;
  EXPECT_NE(logs.find(R"(["item-a","item-b","item-c"])"), std::string::npos) << logs;
  EXPECT_EQ(Trim(ReadFile(work_ / "exit")), "Succeeded");
  // The CLI draws the DAG with states.
  CommandResult get = d_.Cli({"pipeline", "get", id});
  EXPECT_EQ(get.exit_code, 0);
  EXPECT_NE(get.out.find("`-- "), std::string::npos) << get.out;
  EXPECT_NE(get.out.find("Skipped"), std::string::npos) << get.out;
  CommandResult logs_cli = d_.Cli({"pipeline", "logs", id, "deploy"});
  EXPECT_EQ(Trim(logs_cli.out), "deployed");
}

TEST_F(PipelineTest, RetrySucceedsOnTheSecondAttemptAfterBackoff) {
  std::string id = StartRun(d_, work_.path(), R"(
kind: Pipeline
metadata: {name: flaky}
spec:
  steps:
  - name: flaky
    script: "if [ -e tried ]; then echo ok; exit 0; fi; touch tried; exit 3"
    retryStrategy: {limit: 2, retryPolicy: OnFailure, backoff: {duration: 200ms, factor: 2}}
)");
  auto run = WaitRunEnd(d_, id);
  ASSERT_EQ(run["state"], "Succeeded") << run.dump(2);
  EXPECT_EQ(Node(run, "flaky")["attempts"], 2);
  EXPECT_EQ(Node(run, "flaky")["exitCode"], 0);
}

TEST_F(PipelineTest, FanOutOf100WithParallelism10AndFanIn) {
  std::string log = work_ / "conc";
  std::string id =
      StartRun(d_, work_.path(),
               R"(
kind: Pipeline
metadata: {name: wide}
spec:
  steps:
  - name: gen
    script: "python3 -c 'import json; print(json.dumps(list(range(100))))'"
    outputs: {parameters: [{name: items, valueFrom: {stdout: true}}]}
  - name: work
    dependencies: [gen]
    withParam: "{{steps.gen.outputs.parameters.items}}"
    parallelism: 10
    script: "echo + >> )" +
                   log + R"(; sleep 0.05; echo - >> )" + log + R"(; echo $(( {{item}} * 2 )) "
    outputs: {parameters: [{name: double, valueFrom: {stdout: true}}]}
  - name: sum
    dependencies: [work]
    script: "python3 -c 'import json,sys; print(sum(int(x) for x in json.loads(sys.argv[1])))' '{{steps.work.outputs.parameters.double}}'"
    outputs: {parameters: [{name: total, valueFrom: {stdout: true}}]}
)");
  auto run = WaitRunEnd(d_, id, std::chrono::seconds(50));
  ASSERT_EQ(run["state"], "Succeeded") << run["message"];
  EXPECT_EQ(Node(run, "sum")["outputs"]["parameters"]["total"], "9900");
  int cur = 0, peak = 0, starts = 0;
  std::stringstream ss(ReadFile(log));
  for (std::string line; std::getline(ss, line);) {
    if (line == "+") peak = std::max(peak, ++cur), ++starts;
    if (line == "-") --cur;
  }
  EXPECT_EQ(starts, 100);
  EXPECT_LE(peak, 10);
  EXPECT_GE(peak, 2);  // they did run side by side
}

TEST_F(PipelineTest, MemoizedStepIsReusedOnTheNextRun) {
  std::string yaml = R"(
kind: Pipeline
metadata: {name: memo}
spec:
  parameters: [{name: key}]
  steps:
  - name: expensive
    script: "echo ran >> )" +
                     (work_ / "count") + R"(; echo result-{{inputs.parameters.key}}"
    outputs: {parameters: [{name: out, valueFrom: {stdout: true}}]}
    memoize: {key: "expensive-{{inputs.parameters.key}}", maxAge: 1h}
  - name: use
    dependencies: [expensive]
    command: [echo, "{{steps.expensive.outputs.parameters.out}}"]
)";
  auto first = WaitRunEnd(d_, StartRun(d_, work_.path(), yaml, {"key=a"}));
  ASSERT_EQ(first["state"], "Succeeded") << first.dump(2);
  EXPECT_FALSE(Node(first, "expensive")["cached"].get<bool>());
  std::string second_id = StartRun(d_, work_.path(), yaml, {"key=a"});
  auto second = WaitRunEnd(d_, second_id);
  ASSERT_EQ(second["state"], "Succeeded");
  EXPECT_TRUE(Node(second, "expensive")["cached"].get<bool>());
  EXPECT_EQ(Node(second, "expensive")["outputs"]["parameters"]["out"], "result-a");
  EXPECT_EQ(Trim(d_.GetText("/api/v1/pipelines/runs/" + second_id + "/logs?step=use")), "result-a");
  auto third = WaitRunEnd(d_, StartRun(d_, work_.path(), yaml, {"key=b"}));  // another key: runs
  EXPECT_FALSE(Node(third, "expensive")["cached"].get<bool>());
  EXPECT_EQ(ReadFile(work_ / "count"), "ran\nran\n");
}

TEST_F(PipelineTest, RetryFromTheFailedStepKeepsTheSuccessfulOnes) {
  std::string flag = work_ / "fixed";
  std::string id = StartRun(d_, work_.path(), R"(
kind: Pipeline
metadata: {name: fixme}
spec:
  steps:
  - name: a
    script: "echo a >> )" + (work_ / "a-runs") + R"("
  - name: b
    dependencies: [a]
    script: "test -e )" + flag + R"("
  - name: c
    dependencies: [b]
    command: [echo, c]
  - name: cleanup
    dependencies: [b]
    triggerRule: one_failed
    command: [echo, cleaning]
)");
  auto run = WaitRunEnd(d_, id);
  ASSERT_EQ(run["state"], "Failed");
  EXPECT_EQ(Node(run, "b")["state"], "Failed");
  EXPECT_EQ(Node(run, "c")["state"], "Omitted");
  EXPECT_EQ(Node(run, "cleanup")["state"], "Succeeded");
  EXPECT_NE(run["message"].get<std::string>().find("step b failed"), std::string::npos)
      << run["message"];
  WriteFile(flag, "");
  CommandResult r = d_.Cli({"pipeline", "retry", id});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  run = WaitRunEnd(d_, id);
  ASSERT_EQ(run["state"], "Succeeded") << run.dump(2);
  EXPECT_EQ(Node(run, "c")["state"], "Succeeded");
  EXPECT_EQ(ReadFile(work_ / "a-runs"), "a\n");  // a was kept, not rerun
}

TEST_F(PipelineTest, CancelStopsStepsAndStillRunsTheExitHandler) {
  std::string id = StartRun(d_, work_.path(),
                            R"(
kind: Pipeline
metadata: {name: long}
spec:
  onExit: {script: "echo {{pipeline.status}} > )" +
                                (work_ / "exit") + R"("}
  steps:
  - name: sleeper
    command: [sleep, "30"]
  - name: next
    dependencies: [sleeper]
    command: [echo, never]
)");
  ASSERT_TRUE(WaitFor([&] { return Node(GetRun(d_, id), "sleeper")["state"] == "Running"; }));
  CommandResult r = d_.Cli({"pipeline", "cancel", id});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto run = WaitRunEnd(d_, id);
  EXPECT_EQ(run["state"], "Cancelled");
  EXPECT_EQ(Node(run, "sleeper")["state"], "Cancelled");
  EXPECT_EQ(Node(run, "next")["state"], "Cancelled");
  EXPECT_EQ(Trim(ReadFile(work_ / "exit")), "Cancelled");
}

TEST_F(PipelineTest, StepTimeoutFailsTheStepAndAllDoneStillRuns) {
  std::string id = StartRun(d_, work_.path(), R"(
kind: Pipeline
metadata: {name: slow}
spec:
  steps:
  - name: slow
    command: [sleep, "30"]
    timeout: 1s
  - name: report
    dependencies: [slow]
    triggerRule: all_done
    command: [echo, "slow ended {{steps.slow.status}}"]
)");
  auto run = WaitRunEnd(d_, id);
  EXPECT_EQ(run["state"], "Failed");
  EXPECT_EQ(Node(run, "slow")["state"], "Failed");
  EXPECT_EQ(Node(run, "report")["state"], "Succeeded");
  EXPECT_EQ(Trim(d_.GetText("/api/v1/pipelines/runs/" + id + "/logs?step=report")),
            "slow ended Failed");
}

TEST_F(PipelineTest, PipelineTimeoutCancelsTheRunningStepsAndFailsTheRun) {
  std::string id = StartRun(d_, work_.path(),
                            R"(
kind: Pipeline
metadata: {name: bounded}
spec:
  timeout: 1s
  onExit: {script: "echo {{pipeline.status}} > )" +
                                (work_ / "exit") + R"("}
  steps:
  - name: slow
    command: [sleep, "30"]
)");
  auto run = WaitRunEnd(d_, id);
  EXPECT_EQ(run["state"], "Failed");
  EXPECT_NE(run["message"].get<std::string>().find("pipeline timeout"), std::string::npos)
      << run["message"];
  EXPECT_EQ(Node(run, "slow")["state"], "Cancelled");
  EXPECT_EQ(Trim(ReadFile(work_ / "exit")), "Failed");
}

TEST_F(PipelineTest, SuspendHoldsNewStepsUntilResume) {
  std::string release = work_ / "release";
  std::string id = StartRun(d_, work_.path(), R"(
kind: Pipeline
metadata: {name: pausable}
spec:
  steps:
  - name: a
    script: "while [ ! -e )" + release + R"( ]; do sleep 0.02; done"
  - name: b
    dependencies: [a]
    command: [echo, b]
)");
  ASSERT_TRUE(WaitFor([&] { return Node(GetRun(d_, id), "a")["state"] == "Running"; }));
  ASSERT_EQ(d_.Cli({"pipeline", "suspend", id}).exit_code, 0);
  WriteFile(release, "");
  ASSERT_TRUE(WaitFor([&] { return Node(GetRun(d_, id), "a")["state"] == "Succeeded"; }));
  // Held: b does not start while the run is suspended. The pass that saw a
  // end would have launched b; a whole other run started afterwards and run
  // to its end shows that the controller made further passes meanwhile.
  EXPECT_EQ(Node(GetRun(d_, id), "b")["state"], "Pending");
  auto other = WaitRunEnd(d_, StartRun(d_, work_.path(), R"(
kind: Pipeline
metadata: {name: meanwhile}
spec:
  steps:
  - {name: x, command: [echo, x]}
  - {name: y, dependencies: [x], command: [echo, y]}
)"));
  ASSERT_EQ(other["state"], "Succeeded") << other.dump(2);
  EXPECT_EQ(Node(GetRun(d_, id), "b")["state"], "Pending");
  EXPECT_EQ(Node(GetRun(d_, id), "b")["jobId"], 0);
  ASSERT_EQ(d_.Cli({"pipeline", "resume", id}).exit_code, 0);
  EXPECT_EQ(WaitRunEnd(d_, id)["state"], "Succeeded");
}

TEST_F(PipelineTest, RunSurvivesADaemonCrashInTheMiddle) {
  std::string release = work_ / "release";
  std::string id = StartRun(d_, work_.path(), R"(
kind: Pipeline
metadata: {name: durable}
spec:
  steps:
  - name: first
    command: [echo, one]
  - name: wait
    dependencies: [first]
    script: "while [ ! -e )" + release + R"( ]; do sleep 0.02; done; echo two"
    outputs: {parameters: [{name: v, valueFrom: {stdout: true}}]}
  - name: last
    dependencies: [wait]
    command: [echo, "got {{steps.wait.outputs.parameters.v}}"]
)");
  nlohmann::json wait;
  ASSERT_TRUE(WaitFor([&] {
    wait = Node(GetRun(d_, id), "wait");
    return wait["state"] == "Running" && wait["jobId"].get<int64_t>() > 0;
  }));
  d_.Kill();
  WriteFile(release, "");  // the step ends while berthd is down
  ASSERT_TRUE(WaitFor([&] { return TaskStatusWritten(d_, wait["jobId"].get<int64_t>()); }))
      << "the step's task did not end";
  ASSERT_TRUE(d_.Start()) << ReadFile(d_.data_dir() + "/berthd.log");
  auto run = WaitRunEnd(d_, id);
  ASSERT_EQ(run["state"], "Succeeded") << run.dump(2);
  EXPECT_EQ(Node(run, "wait")["attempts"], 1);  // not rerun
  EXPECT_EQ(Trim(d_.GetText("/api/v1/pipelines/runs/" + id + "/logs?step=last")), "got two");
}

TEST_F(PipelineTest, TheExampleMlPipelineRunsOnDeclaredGpus) {
  std::string yaml =
      ReadFile(std::string(BERTH_SOURCE_DIR) + "/examples/pipelines/ml-pipeline.yaml");
  ASSERT_FALSE(yaml.empty());
  auto run = WaitRunEnd(d_, StartRun(d_, work_.path(), yaml));
  ASSERT_EQ(run["state"], "Succeeded") << run.dump(2);
  for (int i = 0; i < 3; ++i) {
    auto t = Node(run, "train(" + std::to_string(i) + ")");
    EXPECT_EQ(t["state"], "Succeeded");
    EXPECT_EQ(t["gpus"].get<std::string>().size(), 1u) << t.dump();  // one GPU each
  }
  EXPECT_EQ(Node(run, "evaluate")["outputs"]["parameters"]["best"], "0.875");
  EXPECT_EQ(Node(run, "deploy")["state"], "Succeeded");
  // A higher bar: the deploy step is skipped.
  auto strict = WaitRunEnd(d_, StartRun(d_, work_.path(), yaml, {"threshold=0.9"}));
  ASSERT_EQ(strict["state"], "Succeeded");
  EXPECT_EQ(Node(strict, "deploy")["state"], "Skipped");
  // Resubmit starts a new run with the same document and parameters.
  CommandResult r = d_.Cli({"pipeline", "resubmit", strict["id"].dump()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto again = WaitRunEnd(d_, Trim(r.out));
  EXPECT_EQ(again["parameters"]["threshold"], "0.9");
  EXPECT_EQ(Node(again, "deploy")["state"], "Skipped");
}

TEST_F(PipelineTest, BadSpecsAreRejectedNamingStepAndField) {
  auto reject = [&](const std::string& yaml) {
    std::string file = work_ / "bad.yaml";
    WriteFile(file, yaml);
    CommandResult r = d_.Cli({"pipeline", "run", "-f", file});
    EXPECT_NE(r.exit_code, 0);
    return r.err;
  };
  std::string cycle = reject(R"(
kind: Pipeline
spec:
  steps:
  - {name: a, command: [true], dependencies: [c]}
  - {name: b, command: [true], dependencies: [a]}
  - {name: c, command: [true], dependencies: [b]}
)");
  EXPECT_NE(cycle.find("cycle: a -> c -> b -> a"), std::string::npos) << cycle;
  std::string unknown = reject(R"(
kind: Pipeline
spec:
  steps:
  - {name: a, command: [true], dependencies: [nope]}
)");
  EXPECT_NE(unknown.find("spec.steps[0](a).dependencies[0]: unknown step \"nope\""),
            std::string::npos)
      << unknown;
  std::string undefined = reject(R"(
kind: Pipeline
spec:
  steps:
  - {name: a, command: [true]}
  - {name: b, dependencies: [a], command: [echo, "{{steps.a.outputs.parameters.x}}"]}
)");
  EXPECT_NE(undefined.find("(b).command[1]: undefined reference {{steps.a.outputs.parameters.x}}"),
            std::string::npos)
      << undefined;
  std::string cron = reject(R"(
kind: CronPipeline
metadata: {name: nightly}
spec:
  schedule: "61 * * * *"
  pipeline: {kind: Pipeline, spec: {steps: [{name: a, command: [true]}]}}
)");
  EXPECT_NE(cron.find("spec.schedule: minute: 61 is out of range 0-59"), std::string::npos) << cron;
}

}  // namespace
}  // namespace berth::testing
