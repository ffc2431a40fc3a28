#include <gtest/gtest.h>

#include "model/experiment.h"

namespace berth::model {
namespace {

const char* kGood = R"(
apiVersion: kubeflow.org/v1beta1
kind: Experiment
metadata: {name: digits}
spec:
  objective:
    type: maximize
    goal: 0.99
    objectiveMetricName: accuracy
    additionalMetricNames: [loss]
  algorithm:
    algorithmName: random
    algorithmSettings: []
  parallelTrialCount: 2
  maxTrialCount: 6
  maxFailedTrialCount: 2
  parameters:
    - name: lr
      parameterType: double
      feasibleSpace: {min: "0.001", max: "0.1", distribution: logUniform}
    - name: layers
      parameterType: int
      feasibleSpace: {min: 1, max: 4}
    - name: optimizer
      parameterType: categorical
      feasibleSpace: {list: [sgd, adam]}
  trialTemplate:
    successCondition: exitCode == 0 || exitCode == 3
    trialParameters:
      - {name: learningRate, reference: lr}
      - {name: numLayers, reference: layers}
      - {name: opt, reference: optimizer}
    trialSpec:
      kind: Job
      spec:
        command: [python3, train.py, "--lr=${trialParameters.learningRate}",
                  "--layers=${trialParameters.numLayers}", "--opt", "${trialParameters.opt}",
                  "--name=${trialSpec.Name}", "${HOME}"]
)";

TEST(ExperimentSpec, ParsesKatibFieldsAndDefaults) {
  auto e = ParseExperimentSpec(kGood);
  ASSERT_TRUE(e.ok()) << e.status().message();
  EXPECT_EQ(e->name, "digits");
  EXPECT_EQ(e->goal, tune::Goal::kMaximize);
  EXPECT_EQ(*e->goal_value, 0.99);
  EXPECT_EQ(e->strategies.at("accuracy"), MetricStrategy::kMax);
  EXPECT_EQ(e->strategies.at("loss"), MetricStrategy::kLatest);
  EXPECT_EQ(e->algorithm, "random");
  EXPECT_TRUE(e->algorithm_settings.empty());
  EXPECT_EQ(e->parallel_trials, 2);
  EXPECT_EQ(e->max_trials, 6);
  EXPECT_EQ(e->max_failed_trials, 2);
  ASSERT_EQ(e->space.params.size(), 3u);
  EXPECT_EQ(e->space.params[0].distribution, tune::Distribution::kLogUniform);
  EXPECT_EQ(e->collector.kind, CollectorKind::kStdOut);
  EXPECT_EQ(e->trial_kind, "Job");
  ASSERT_EQ(e->success_condition.any.size(), 2u);
}

TEST(ExperimentSpec, SubstitutesTrialParameters) {
  auto e = ParseExperimentSpec(kGood);
  ASSERT_TRUE(e.ok()) << e.status().message();
  auto job = MakeTrialJob(*e, {{"lr", "0.01"}, {"layers", "3"}, {"optimizer", "a\"b"}}, "d-7");
  ASSERT_TRUE(job.ok()) << job.status().message();
  std::vector<std::string> want = {"python3", "train.py", "--lr=0.01",  "--layers=3",
                                   "--opt",   "a\"b",     "--name=d-7", "${HOME}"};
  EXPECT_EQ(job->command, want);
  EXPECT_EQ(job->name, "d-7");
}

TEST(ExperimentSpec, ParallelTrialCountDefaultsToThree) {
  std::string t = kGood;
  t.erase(t.find("  parallelTrialCount: 2\n"), 24);
  auto e = ParseExperimentSpec(t);
  ASSERT_TRUE(e.ok()) << e.status().message();
  EXPECT_EQ(e->parallel_trials, 3);
}

void ExpectError(const std::string& from, const std::string& to, const std::string& field) {
  std::string t = kGood;
  size_t at = t.find(from);
  ASSERT_NE(at, std::string::npos) << from;
  t.replace(at, from.size(), to);
  auto e = ParseExperimentSpec(t);
  ASSERT_FALSE(e.ok()) << "accepted: " << to;
  EXPECT_NE(e.status().message().find(field), std::string::npos) << e.status().message();
}

TEST(ExperimentSpec, ErrorsNameTheField) {
  ExpectError("type: maximize", "type: biggest", "spec.objective.type");
  ExpectError("algorithmName: random", "algorithmName: nosuch", "algorithm.algorithmName");
  ExpectError("parameterType: int", "parameterType: integer", "spec.parameters[1].parameterType");
  ExpectError("{min: 1, max: 4}", "{min: 5, max: 4}", "spec.parameters[1].feasibleSpace.min");
  ExpectError("{min: 1, max: 4}", "{min: 1.5, max: 4}", "spec.parameters[1].feasibleSpace");
  ExpectError("{list: [sgd, adam]}", "{list: []}", "feasibleSpace.list");
  ExpectError("reference: lr", "reference: rate",
              "spec.trialTemplate.trialParameters[0].reference");
  ExpectError("parallelTrialCount: 2", "parallelTrialCount: 0", "spec.parallelTrialCount");
  ExpectError("maxTrialCount: 6", "maxTrialCount: -1", "spec.maxTrialCount");
  ExpectError("maxFailedTrialCount: 2", "maxFailedTrialCount: x", "spec.maxFailedTrialCount");
  ExpectError("kind: Job", "kind: Pipeline", "spec.trialTemplate.trialSpec.kind");
  ExpectError("kind: Job", "kind: Foo", "spec.trialTemplate.trialSpec.kind");
  ExpectError("${trialParameters.opt}", "${trialParameters.nope}", "spec.trialTemplate.trialSpec");
  ExpectError("command: [", "comand: [", "spec.trialTemplate.trialSpec.spec.comand");
  ExpectError("successCondition: exitCode == 0", "successCondition: rm -rf",
              "spec.trialTemplate.successCondition");
  ExpectError("parallelTrialCount", "parallelTrialCont", "spec.parallelTrialCont");
  ExpectError("name: digits", "name: a/b", "metadata.name");
  ExpectError("objectiveMetricName: accuracy", "objectiveMetricName: \"1 x\"",
              "spec.objective.objectiveMetricName");
}

TEST(ExperimentSpec, CollectorSpec) {
  std::string t = kGood;
  t += R"Y(  metricsCollectorSpec:
    collector: {kind: File}
    source:
      fileSystemPath: {path: /tmp/m.jsonl, kind: File, format: JSON}
      filter: {metricsFormat: ["(\\w+):(\\S+)"]}
)Y";
  auto e = ParseExperimentSpec(t);
  ASSERT_TRUE(e.ok()) << e.status().message();
  EXPECT_EQ(e->collector.kind, CollectorKind::kFile);
  EXPECT_TRUE(e->collector.json_lines);
  EXPECT_EQ(e->collector.path, "/tmp/m.jsonl");
  EXPECT_EQ(e->collector.regex, "(\\w+):(\\S+)");

  std::string bad = kGood;
  bad += "  metricsCollectorSpec:\n    source:\n      filter: {metricsFormat: [\"(\"]}\n";
  auto b = ParseExperimentSpec(bad);
  ASSERT_FALSE(b.ok());
  EXPECT_NE(b.status().message().find("metricsCollectorSpec.source.filter.metricsFormat[0]"),
            std::string::npos)
      << b.status().message();
}

TEST(MetricParser, KatibStdoutFormatAndJsonLines) {
  MetricParser p({"accuracy", "loss"}, false, kDefaultMetricsRegex);
  auto r = p.Lines("epoch 1\naccuracy=0.5 loss=2\nnoise=3\naccuracy=0.7\nstep=9 accuracy=0.8\n");
  ASSERT_EQ(r.size(), 4u);
  EXPECT_EQ(r[0].name, "accuracy");
  EXPECT_EQ(r[0].step, 0);
  EXPECT_EQ(r[2].step, 1);
  EXPECT_EQ(r[2].value, 0.7);
  EXPECT_EQ(r[3].step, 9);
  MetricParser j({"accuracy"}, true, "");
  auto rj = j.Lines("{\"step\": 4, \"accuracy\": 0.25}\nnot json\n{\"accuracy\": \"0.5\"}\n");
  ASSERT_EQ(rj.size(), 2u);
  EXPECT_EQ(rj[0].step, 4);
  EXPECT_EQ(rj[1].step, 5);
  EXPECT_EQ(rj[1].value, 0.5);
}

TEST(TrialCondition, ExitCodesAndStates) {
  auto e = ParseExperimentSpec(kGood);
  ASSERT_TRUE(e.ok());
  Job j;
  j.state = JobState::kFailed;
  j.exit_code = 3;
  EXPECT_TRUE(e->success_condition.Holds(j));
  j.exit_code = 1;
  EXPECT_FALSE(e->success_condition.Holds(j));
}

}  // namespace
}  // namespace berth::model
