// The pipeline DAG engine as a pure function: a run's record and `now` in,
// actions out. The test applies the actions the way the controller does
// (without files, a store or processes; a launch gets a fake job id) and ends
// step jobs itself, on a ManualClock.
#include "controllers/pipeline_engine.h"

#include <gtest/gtest.h>

namespace berth::controllers::pipeline_engine {
namespace {

using model::StepState;
using Kind = Action::Kind;

class Harness {
 public:
  explicit Harness(const std::string& steps_yaml) {
    auto spec = model::ParsePipelineSpec(
        "apiVersion: berth/v1\nkind: Pipeline\nmetadata: {name: t}\n" + steps_yaml);
    EXPECT_TRUE(spec.ok()) << spec.status().message();
    if (spec.ok()) spec_ = std::move(*spec);
    run_.id = 1;
    run_.name = "t";
    run_.started = clock_.Now();
    for (const auto& s : spec_.steps) {
      store::NodeRecord n;
      n.name = n.step = s.name;
      run_.nodes[n.name] = n;
    }
  }

  // One call of the engine, applied. Returns the actions.
  std::vector<Action> StepOnce() {
    std::vector<Action> actions = Step({run_, spec_}, clock_.Now());
    for (const Action& a : actions) Apply(a);
    return actions;
  }
  // Steps until the engine has nothing to do; returns every action taken.
  std::vector<Action> Settle() {
    std::vector<Action> all;
    for (int i = 0; i < 100; ++i) {
      auto a = StepOnce();
      if (a.empty()) break;
      all.insert(all.end(), a.begin(), a.end());
    }
    return all;
  }
  // The step job of `node` ended.
  void End(const std::string& node, StepState state, const std::string& result = "") {
    store::NodeRecord& n = run_.nodes.at(node);
    ASSERT_EQ(n.state, StepState::kRunning) << node;
    n.state = state;
    n.end_time = clock_.Now();
    n.outputs["result"] = result;
    n.outputs["parameters"]["v"] = result;
  }

  StepState State(const std::string& node) const { return run_.nodes.at(node).state; }
  std::vector<std::string> Running() const {
    std::vector<std::string> out;
    for (const auto& [name, n] : run_.nodes)
      if (n.state == StepState::kRunning && n.job_id) out.push_back(name);
    return out;
  }

  ManualClock clock_{1'000'000};
  model::PipelineSpec spec_;
  store::RunRecord run_;
  std::vector<std::string> launched_;
  std::vector<int64_t> cancelled_;

 private:
  void Apply(const Action& a) {
    switch (a.kind) {
      case Kind::kTimeout:
        run_.stopping = "timeout";
        run_.message = a.message;
        return;
      case Kind::kCancelJob:
        cancelled_.push_back(a.job);
        return;
      case Kind::kFinishRun:
        run_.state = a.run_state;
        run_.message = a.message;
        return;
      default:
        break;
    }
    store::NodeRecord& n = run_.nodes[a.node];
    if (n.name.empty()) n.name = n.step = a.node;
    if (a.kind == Kind::kSetNode) {
      if (a.outputs.is_object())
        for (auto it = a.outputs.begin(); it != a.outputs.end(); ++it)
          n.outputs[it.key()] = it.value();
      n.state = a.state;
      n.message = a.message;
    } else if (a.kind == Kind::kExpand) {
      n.state = StepState::kRunning;
      n.outputs["children"] = a.items.size();
      for (size_t i = 0; i < a.items.size(); ++i) {
        store::NodeRecord c;
        c.name = ChildName(n.step, static_cast<int64_t>(i));
        c.step = n.step;
        c.index = static_cast<int64_t>(i);
        c.item = a.items[i].dump();
        run_.nodes[c.name] = c;
      }
    } else {  // kLaunch
      n.attempts++;
      n.state = StepState::kRunning;
      n.job_id = next_job_++;
      n.next_at = 0;
      launched_.push_back(a.node);
    }
  }
  int64_t next_job_ = 100;
};

TEST(PipelineEngine, AChainRunsOneStepAfterTheOther) {
  Harness h(R"(spec:
  steps:
  - {name: a, command: [x]}
  - {name: b, command: [x], dependencies: [a]}
  - {name: c, command: [x], dependencies: [b]}
)");
  h.Settle();
  EXPECT_EQ(h.launched_, std::vector<std::string>{"a"});
  EXPECT_TRUE(h.Settle().empty()) << "nothing happens until a's job ends";
  h.End("a", StepState::kSucceeded);
  h.Settle();
  EXPECT_EQ(h.launched_, (std::vector<std::string>{"a", "b"}));
  h.End("b", StepState::kSucceeded);
  h.Settle();
  h.End("c", StepState::kSucceeded);
  auto last = h.Settle();
  ASSERT_EQ(last.size(), 1u);
  EXPECT_EQ(last[0].kind, Kind::kFinishRun);
  EXPECT_EQ(h.run_.state, model::RunState::kSucceeded);
  EXPECT_TRUE(h.Settle().empty()) << "an ended run decides nothing";
}

TEST(PipelineEngine, FanOutRespectsParallelismAndGathersResultsInItemOrder) {
  Harness h(R"(spec:
  steps:
  - name: fan
    withItems: [a, b, c]
    parallelism: 2
    command: [echo, "{{item}}"]
    outputs: {parameters: [{name: v, valueFrom: {stdout: true}}]}
  - {name: join, command: [x], dependencies: [fan]}
)");
  auto first = h.StepOnce();
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(first[0].kind, Kind::kExpand);
  EXPECT_EQ(first[0].items.size(), 3u);
  h.Settle();
  EXPECT_EQ(h.Running(), (std::vector<std::string>{"fan(0)", "fan(1)"}));
  EXPECT_EQ(h.run_.nodes.at("fan(1)").item, "\"b\"");
  h.End("fan(1)", StepState::kSucceeded, "B");
  h.Settle();
  EXPECT_EQ(h.Running(), (std::vector<std::string>{"fan(0)", "fan(2)"}));
  h.End("fan(2)", StepState::kSucceeded, "C");
  h.End("fan(0)", StepState::kSucceeded, "A");
  h.Settle();
  EXPECT_EQ(h.State("fan"), StepState::kSucceeded);
  EXPECT_EQ(h.run_.nodes.at("fan").outputs["result"], R"(["A","B","C"])");
  EXPECT_EQ(h.run_.nodes.at("fan").outputs["parameters"]["v"], R"(["A","B","C"])");
  EXPECT_EQ(h.Running(), std::vector<std::string>{"join"});
}

// A withParam list comes from a task's output: a deeply nested value fails the
// step with the reason instead of recursing without bound.
TEST(PipelineEngine, AWithParamNestedTooDeepFailsTheStepWithTheReason) {
  Harness h(R"(spec:
  steps:
  - {name: gen, command: [x], outputs: {parameters: [{name: v, valueFrom: {stdout: true}}]}}
  - {name: fan, command: [x], dependencies: [gen], withParam: "{{steps.gen.outputs.parameters.v}}"}
)");
  h.Settle();
  ASSERT_EQ(h.State("gen"), StepState::kRunning);
  h.End("gen", StepState::kSucceeded, std::string(100000, '[') + std::string(100000, ']'));
  h.Settle();
  EXPECT_EQ(h.State("fan"), StepState::kFailed);
  EXPECT_NE(h.run_.nodes.at("fan").message.find("withParam: nests deeper than"), std::string::npos)
      << h.run_.nodes.at("fan").message;
  EXPECT_LT(h.run_.nodes.at("fan").message.size(), 400u);
}

TEST(PipelineEngine, RetryWaitsForItsBackoffAndStopsAtTheLimit) {
  Harness h(R"(spec:
  steps:
  - name: flaky
    command: [x]
    retryStrategy: {limit: 2, retryPolicy: OnFailure, backoff: {duration: 1s, factor: 3, maxDuration: 2500ms}}
)");
  const model::StepSpec& step = h.spec_.steps[0];
  h.Settle();
  store::NodeRecord& n = h.run_.nodes.at("flaky");
  ASSERT_EQ(n.attempts, 1);
  TimeMs now = h.clock_.Now();
  // A process that never started is not retried under OnFailure.
  EXPECT_FALSE(RetryAt(step, n, /*process_ran=*/false, false, now));
  // Nor is anything once the run is stopping.
  EXPECT_FALSE(RetryAt(step, n, true, /*run_stopping=*/true, now));
  auto at = RetryAt(step, n, true, false, now);
  ASSERT_TRUE(at);
  EXPECT_EQ(*at, now + 1000);
  // The controller puts the node back to Pending until then.
  n.state = StepState::kPending;
  n.job_id = 0;
  n.next_at = *at;
  h.clock_.Advance(999);
  EXPECT_TRUE(h.Settle().empty()) << "launched before its backoff ended";
  h.clock_.Advance(1);
  h.Settle();
  EXPECT_EQ(n.attempts, 2);
  EXPECT_EQ(n.state, StepState::kRunning);
  // The factor applies, capped by maxDuration; after the limit, no retry.
  EXPECT_EQ(*RetryAt(step, n, true, false, 0), 2500);
  n.attempts = 3;
  EXPECT_FALSE(RetryAt(step, n, true, false, 0));
}

TEST(PipelineEngine, AFalseWhenSkipsTheStepAndItsDependentsStillRun) {
  Harness h(R"(spec:
  steps:
  - {name: check, command: [x], outputs: {parameters: [{name: v, valueFrom: {stdout: true}}]}}
  - {name: deploy, command: [x], dependencies: [check], when: "{{steps.check.outputs.parameters.v}} == yes"}
  - {name: report, command: [x], dependencies: [deploy]}
)");
  h.Settle();
  h.End("check", StepState::kSucceeded, "no");
  auto actions = h.Settle();
  EXPECT_EQ(h.State("deploy"), StepState::kSkipped);
  EXPECT_EQ(h.run_.nodes.at("deploy").message, "when \"no == yes\" is false");
  bool started = false;
  for (const auto& a : actions)
    started |= a.kind == Kind::kSetNode && a.node == "deploy" && a.started;
  EXPECT_TRUE(started) << "a skipped step is stamped with a start time";
  EXPECT_EQ(h.Running(), std::vector<std::string>{"report"}) << "Skipped is not a failure";
}

TEST(PipelineEngine, TriggerRulesOmitOrRunAfterAFailureAndTheExitHandlerRunsLast) {
  Harness h(R"(spec:
  steps:
  - {name: a, command: [x]}
  - {name: ok, command: [x]}
  - {name: b, command: [x], dependencies: [a]}
  - {name: d, command: [x], dependencies: [b]}
  - {name: alert, command: [x], dependencies: [a], triggerRule: one_failed}
  - {name: quiet, command: [x], dependencies: [ok], triggerRule: one_failed}
  - {name: any, command: [x], dependencies: [a, ok], triggerRule: one_success}
  onExit: {command: [cleanup]}
)");
  h.Settle();
  EXPECT_EQ(h.Running(), (std::vector<std::string>{"a", "ok"}));
  h.End("ok", StepState::kSucceeded);
  h.End("a", StepState::kFailed);
  h.Settle();
  EXPECT_EQ(h.State("b"), StepState::kOmitted);
  EXPECT_EQ(h.State("d"), StepState::kOmitted) << "an Omitted upstream omits all_success steps";
  EXPECT_EQ(h.State("quiet"), StepState::kSkipped);
  EXPECT_EQ(h.Running(), (std::vector<std::string>{"alert", "any"}));
  h.End("alert", StepState::kSucceeded);
  h.End("any", StepState::kSucceeded);
  h.Settle();
  EXPECT_EQ(h.Running(), std::vector<std::string>{"onExit"});
  EXPECT_EQ(h.run_.state, model::RunState::kRunning);
  h.End("onExit", StepState::kSucceeded);
  h.Settle();
  EXPECT_EQ(h.run_.state, model::RunState::kFailed);
  EXPECT_EQ(h.run_.message, "step a failed: ");
}

TEST(PipelineEngine, TimeoutCancelsRunningJobsAndPendingSteps) {
  Harness h(R"(spec:
  timeout: 10s
  steps:
  - {name: a, command: [x]}
  - {name: b, command: [x], dependencies: [a]}
)");
  h.Settle();
  int64_t job = h.run_.nodes.at("a").job_id;
  h.clock_.Advance(9999);
  EXPECT_TRUE(h.Settle().empty());
  h.clock_.Advance(1);
  h.Settle();
  EXPECT_EQ(h.run_.stopping, "timeout");
  EXPECT_EQ(h.cancelled_, std::vector<int64_t>{job});
  EXPECT_EQ(h.State("b"), StepState::kCancelled);
  EXPECT_EQ(h.run_.nodes.at("b").message, "run timeout");
  h.End("a", StepState::kCancelled);
  h.Settle();
  EXPECT_EQ(h.run_.state, model::RunState::kFailed);
  EXPECT_EQ(h.run_.message, "pipeline timeout after 10.0s");
}

TEST(PipelineEngine, ASuspendedRunStartsNothingAndTheRunParallelismCapsLaunches) {
  Harness h(R"(spec:
  parallelism: 1
  steps:
  - {name: a, command: [x]}
  - {name: b, command: [x]}
)");
  h.run_.suspended = true;
  EXPECT_TRUE(h.Settle().empty());
  h.run_.suspended = false;
  h.Settle();
  EXPECT_EQ(h.Running(), std::vector<std::string>{"a"});
  h.End("a", StepState::kSucceeded);
  h.Settle();
  EXPECT_EQ(h.Running(), std::vector<std::string>{"b"});
}

TEST(PipelineEngine, LookupResolvesStatusesOutputsItemsAndParameters) {
  Harness h(R"(spec:
  steps:
  - {name: a, command: [x]}
  - {name: b, command: [x]}
)");
  h.run_.parameters["lr"] = "0.1";
  h.Settle();
  h.End("a", StepState::kSucceeded, "42");
  store::NodeRecord child;
  child.item = R"({"x": 3, "name": "ada"})";
  auto at = [&](const std::string& ref) {
    return LookupRef(h.run_, child, ref).value_or("<none>");
  };
  EXPECT_EQ(at("steps.a.status"), "Succeeded");
  EXPECT_EQ(at("steps.a.outputs.result"), "42");
  EXPECT_EQ(at("steps.a.outputs.parameters.v"), "42");
  EXPECT_EQ(at("item.name"), "ada");
  EXPECT_EQ(at("item.x"), "3");
  EXPECT_EQ(at("inputs.parameters.lr"), "0.1");
  EXPECT_EQ(at("pipeline.status"), "Succeeded");
  EXPECT_EQ(at("steps.nope.status"), "<none>");
  h.End("b", StepState::kFailed);
  EXPECT_EQ(at("pipeline.status"), "Failed");
  h.run_.stopping = "cancel";
  EXPECT_EQ(at("pipeline.status"), "Cancelled");
}

}  // namespace
}  // namespace berth::controllers::pipeline_engine
