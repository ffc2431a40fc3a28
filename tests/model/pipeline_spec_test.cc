// Pipeline documents: parsing, DAG validation, templates and conditions.
#include <gtest/gtest.h>

#include "model/pipeline.h"

namespace berth::model {
namespace {

std::string Error(const std::string& yaml) {
  auto r = ParsePipelineSpec(yaml);
  return r.ok() ? "ok" : r.status().message();
}

TEST(PipelineSpec, ParsesStepsInTopologicalOrder) {
  auto r = ParsePipelineSpec(R"(
apiVersion: berth/v1
kind: Pipeline
metadata: {name: ml}
spec:
  parameters: [{name: lr, value: "0.1"}, {name: epochs}]
  parallelism: 4
  timeout: 1h
  steps:
  - name: train
    dependencies: [prep]
    command: [python, train.py]
    args: ["--lr", "{{inputs.parameters.lr}}"]
    resources: {gpus: 1, memory: 4Gi}
    retryStrategy: {limit: 3, retryPolicy: OnFailure, backoff: {duration: 1s, factor: 2, maxDuration: 10s}}
    outputs: {parameters: [{name: acc, valueFrom: {path: acc.txt}}]}
  - name: prep
    script: "echo hi"
    memoize: {key: "prep-{{inputs.parameters.lr}}", maxAge: 2h}
  - name: deploy
    dependencies: [train]
    when: "{{steps.train.outputs.parameters.acc}} > 0.9"
    command: [echo, deploy]
  onExit: {command: [echo, "{{pipeline.status}}"]}
)");
  ASSERT_TRUE(r.ok()) << r.status().message();
  ASSERT_EQ(r->steps.size(), 3u);
  EXPECT_EQ(r->steps[0].name, "prep");
  EXPECT_EQ(r->steps[1].name, "train");
  EXPECT_EQ(r->steps[1].command,
            (std::vector<std::string>{"python", "train.py", "--lr", "{{inputs.parameters.lr}}"}));
  EXPECT_EQ(r->steps[1].resources.gpus, 1000);
  EXPECT_EQ(r->steps[1].retry.limit, 3);
  EXPECT_EQ(r->steps[1].retry.backoff, 1000);
  EXPECT_EQ(r->steps[1].retry.max_backoff, 10000);
  EXPECT_DOUBLE_EQ(r->steps[1].retry.factor, 2);
  EXPECT_EQ(r->steps[0].memoize_max_age, 2 * kHour);
  EXPECT_EQ(r->timeout, kHour);
  ASSERT_TRUE(r->on_exit.has_value());
  auto params = ResolveParameters(*r, {{"epochs", "3"}});
  ASSERT_TRUE(params.ok());
  EXPECT_EQ((*params)["lr"], "0.1");
  EXPECT_EQ(ResolveParameters(*r, {}).status().message(),
            "parameter epochs: is required (no default value)");
  EXPECT_EQ(ResolveParameters(*r, {{"epochs", "1"}, {"lr2", "1"}}).status().message(),
            "parameter lr2: the pipeline declares no such parameter");
}

TEST(PipelineSpec, RejectsCyclesWithThePath) {
  EXPECT_EQ(Error(R"(
kind: Pipeline
spec:
  steps:
  - {name: a, command: [x], dependencies: [b]}
  - {name: b, command: [x], dependencies: [a]}
)"),
            "spec.steps[1](b).dependencies: cycle: a -> b -> a");
  EXPECT_EQ(
      Error("kind: Pipeline\nspec:\n  steps:\n  - {name: a, command: [x], dependencies: [a]}\n"),
      "spec.steps[0](a).dependencies[0]: cycle: a -> a");
}

TEST(PipelineSpec, RejectsBadStructureNamingTheField) {
  EXPECT_EQ(
      Error("kind: Pipeline\nspec:\n  steps:\n  - {name: a, command: [x], dependencies: [zz]}\n"),
      "spec.steps[0](a).dependencies[0]: unknown step \"zz\"");
  EXPECT_EQ(Error("kind: Pipeline\nspec:\n  steps:\n  - {name: a, command: [x]}\n  - {name: a, "
                  "command: [x]}\n"),
            "spec.steps[1](a).name: duplicate step name \"a\"");
  EXPECT_EQ(Error("kind: Pipeline\nspec:\n  steps:\n  - {name: a}\n"),
            "spec.steps[0].command: is required (or script)");
  EXPECT_NE(Error("kind: Pipeline\nspec:\n  steps:\n  - {name: a, command: [x], retries: 3}\n")
                .find("spec.steps[0].retries"),
            std::string::npos);
  EXPECT_EQ(
      Error(
          "kind: Pipeline\nspec:\n  steps:\n  - {name: a, command: [x], triggerRule: sometimes}\n"),
      "spec.steps[0].triggerRule: must be all_success, all_done, one_failed, one_success or "
      "none_failed, got \"sometimes\"");
  EXPECT_EQ(Error("kind: Pipeline\nspec:\n  steps: []\n"),
            "spec.steps: must list at least one step");
  EXPECT_EQ(Error("kind: Job\nspec: {}\n"), "kind: must be Pipeline, got \"Job\"");
  EXPECT_EQ(
      Error(
          "kind: Pipeline\nspec:\n  steps:\n  - {name: a, command: [x], priorityClassName: low}\n"),
      "spec.steps[0].priorityClassName: unknown priority class \"low\" (one of scavenger, batch, "
      "interactive)");
  EXPECT_EQ(
      Error("kind: Pipeline\nspec:\n  steps:\n  - {name: a, command: [x], priority: 5000000}\n"),
      "spec.steps[0].priority: must be between -1000000 and 1000000, got 5000000");
}

// Artifact and parameter file paths stay inside the step's working directory
// (the audit's `path: ../../../../victim` and `valueFrom.path: /secret`).
TEST(PipelineSpec, RejectsFilePathsThatLeaveTheStepsDirectory) {
  const std::string a =
      "kind: Pipeline\nspec:\n  steps:\n  - name: a\n    command: [x]\n"
      "    outputs: {artifacts: [{name: o, path: out}]}\n"
      "  - name: b\n    dependencies: [a]\n    command: [x]\n";
  EXPECT_EQ(
      Error(a + "    inputs: {artifacts: [{name: i, from: \"{{steps.a.outputs.artifacts.o}}\", "
                "path: ../../../../victim}]}\n"),
      "spec.steps[1].inputs.artifacts[0].path: must not leave the step's working directory "
      "(\"..\"), got \"../../../../victim\"");
  EXPECT_EQ(Error(a + "    outputs: {parameters: [{name: p, valueFrom: {path: /some/secret}}]}\n"),
            "spec.steps[1].outputs.parameters[0].valueFrom.path: must be a path relative to the "
            "step's working directory, got \"/some/secret\"");
  EXPECT_EQ(Error(a + "    outputs: {artifacts: [{name: p, path: x/./y}]}\n"),
            "spec.steps[1].outputs.artifacts[0].path: must not have empty or \".\" components, "
            "got \"x/./y\"");
  EXPECT_NE(Error(a + "    outputs: {artifacts: [{name: p, path: x//y}]}\n").find("empty"),
            std::string::npos);
  EXPECT_NE(Error(a + "    inputs: {artifacts: [{name: i, from: \"/etc/{{steps.a.outputs.artifacts."
                      "o}}\", path: in}]}\n")
                .find("inputs.artifacts[0].from: must be {{steps.STEP.outputs.artifacts.NAME}}"),
            std::string::npos);
  EXPECT_EQ(
      Error(a + "    inputs: {artifacts: [{name: i, from: \"{{steps.a.outputs.artifacts.o}}\", "
                "path: in/data}]}\n    outputs: {artifacts: [{name: o, path: out/x}]}\n"),
      "ok");
}

TEST(PipelineSpec, StepsCarryTheirPriorityClass) {
  auto r = ParsePipelineSpec(
      "apiVersion: berth/v1\nkind: Pipeline\nspec:\n  steps:\n"
      "  - {name: a, command: [x], priorityClassName: scavenger, priority: 3}\n  - {name: b, "
      "command: [x]}\n");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->steps.size(), 2u);
  EXPECT_EQ(r->steps[0].priority_class, PriorityClass::kScavenger);
  EXPECT_EQ(r->steps[0].priority, 3);
  EXPECT_EQ(r->steps[1].priority_class, PriorityClass::kBatch);
}

TEST(PipelineSpec, RejectsUndefinedTemplateReferences) {
  auto err = [](const std::string& steps) {
    return Error("kind: Pipeline\nspec:\n  parameters: [{name: p, value: v}]\n  steps:\n" + steps);
  };
  EXPECT_EQ(err("  - {name: a, command: [echo, '{{inputs.parameters.q}}']}\n"),
            "spec.steps[0](a).command[1]: undefined reference {{inputs.parameters.q}}: no pipeline "
            "parameter named q");
  EXPECT_EQ(err("  - {name: a, command: [echo, '{{item}}']}\n"),
            "spec.steps[0](a).command[1]: undefined reference {{item}}: {{item}} is only defined "
            "in a step with withItems or withParam");
  EXPECT_EQ(err("  - {name: a, command: [x], outputs: {parameters: [{name: o, valueFrom: {stdout: "
                "true}}]}}\n"
                "  - {name: b, command: [echo, '{{steps.a.outputs.parameters.o}}']}\n"),
            "spec.steps[1](b).command[1]: undefined reference {{steps.a.outputs.parameters.o}}: "
            "step a is not a dependency of b");
  EXPECT_EQ(err("  - {name: a, command: [x]}\n  - {name: b, dependencies: [a], script: 'echo "
                "{{steps.a.outputs.parameters.o}}'}\n"),
            "spec.steps[1](b).script: undefined reference {{steps.a.outputs.parameters.o}}: step a "
            "has no output parameter o");
  EXPECT_EQ(err("  - {name: b, command: [x], env: {X: '{{steps.zz.status}}'}}\n"),
            "spec.steps[0](b).env.X: undefined reference {{steps.zz.status}}: no step named zz");
  EXPECT_EQ(err("  - {name: b, command: [x], when: '{{pipeline.status}} == ok'}\n"),
            "spec.steps[0](b).when: undefined reference {{pipeline.status}}: pipeline.status is "
            "only defined in onExit");
  EXPECT_EQ(err("  - {name: b, command: [x], when: '1 >'}\n"),
            "spec.steps[0](b).when: condition \"1 >\" ends early");
  EXPECT_EQ(err("  - {name: a, command: [x], withItems: [1, 2], inputs: {artifacts: [{name: m, "
                "from: '{{steps.a.outputs.artifacts.m}}', path: m}]}}\n"),
            "spec.steps[0](a).inputs.artifacts[0].from: undefined reference "
            "{{steps.a.outputs.artifacts.m}}: step a is not a dependency of a");
  // Transitive dependencies may be referenced; {{item}} in a fan-out step is fine.
  EXPECT_EQ(err("  - {name: a, command: [x], outputs: {parameters: [{name: o, valueFrom: {stdout: "
                "true}}]}}\n"
                "  - {name: b, dependencies: [a], command: [x]}\n"
                "  - {name: c, dependencies: [b], withItems: [{k: 1}], command: [echo, "
                "'{{steps.a.outputs.parameters.o}}', '{{item.k}}']}\n"),
            "ok");
}

TEST(PipelineSpec, TemplatesAndConditions) {
  auto lookup = [](const std::string& n) -> std::optional<std::string> {
    if (n == "x") return "3";
    return std::nullopt;
  };
  EXPECT_EQ(*Substitute("a {{ x }} b {{x}}", lookup), "a 3 b 3");
  EXPECT_EQ(Substitute("{{y}}", lookup).status().message(), "undefined reference {{y}}");
  EXPECT_EQ(*EvaluateCondition("3 > 2"), true);
  EXPECT_EQ(*EvaluateCondition("10 > 9"), true);  // numeric, not lexical
  EXPECT_EQ(*EvaluateCondition("abc == abc && !(1 == 2)"), true);
  EXPECT_EQ(*EvaluateCondition("'a b' == 'a c' || false"), false);
  EXPECT_EQ(*EvaluateCondition("0.95 >= 0.9"), true);
  EXPECT_EQ(*EvaluateCondition("false"), false);
  EXPECT_FALSE(EvaluateCondition("(1 == 1").ok());
}

TEST(PipelineSpec, CronPipelineDocuments) {
  auto c = ParseCronPipelineSpec(R"(
kind: CronPipeline
metadata: {name: nightly}
spec:
  schedule: "0 2 * * *"
  timezone: Europe/Berlin
  concurrencyPolicy: Forbid
  parameters: {lr: "0.2"}
  pipeline:
    kind: Pipeline
    metadata: {name: train}
    spec:
      parameters: [{name: lr}]
      steps: [{name: a, command: [echo, "{{inputs.parameters.lr}}"]}]
)");
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->concurrency, ConcurrencyPolicy::kForbid);
  EXPECT_EQ(c->pipeline_spec.name, "train");
  auto bad = [](const std::string& extra) {
    auto r = ParseCronPipelineSpec(
        "kind: CronPipeline\nmetadata: {name: n}\nspec:\n" + extra +
        "  pipeline: {kind: Pipeline, spec: {steps: [{name: a, command: [x]}]}}\n");
    return r.ok() ? "ok" : r.status().message();
  };
  EXPECT_EQ(bad("  schedule: '* * * *'\n"),
            "spec.schedule: \"* * * *\": needs 5 fields (minute hour day-of-month month "
            "day-of-week), got 4");
  EXPECT_EQ(bad("  schedule: '@daily'\n  timezone: Nowhere/City\n"),
            "spec.timezone: unknown time zone \"Nowhere/City\" (no file in /usr/share/zoneinfo)");
  EXPECT_EQ(bad("  schedule: '@daily'\n  concurrencyPolicy: Sometimes\n"),
            "spec.concurrencyPolicy: must be Allow, Forbid or Replace, got \"Sometimes\"");
}

}  // namespace
}  // namespace berth::model
