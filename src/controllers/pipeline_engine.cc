#include "controllers/pipeline_engine.h"

#include "model/request.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <sstream>

namespace berth::controllers::pipeline_engine {
namespace {

using model::StepState;
using nlohmann::json;
using store::NodeRecord;
using store::RunRecord;

const NodeRecord& NodeOf(const RunRecord& run, const std::string& name) {
  static const NodeRecord kNew;  // a node not stored yet: Pending, never attempted
  auto it = run.nodes.find(name);
  return it == run.nodes.end() ? kNew : it->second;
}

// The run's end once every node is done.
Action FinishAction(const RunRecord& run) {
  bool failed = false;
  std::string why;
  for (const auto& [name, n] : run.nodes)
    if (n.state == StepState::kFailed && n.index < 0) {
      failed = true;
      if (why.empty()) why = "step " + name + " failed: " + n.message;
    }
  Action a;
  a.kind = Action::Kind::kFinishRun;
  if (run.stopping == "cancel") {
    a.run_state = model::RunState::kCancelled;
    a.message = run.message.empty() ? "cancelled" : run.message;
  } else if (run.stopping == "timeout" || failed) {
    a.run_state = model::RunState::kFailed;
    a.message = run.message.empty() ? why : run.message;
  } else {
    a.run_state = model::RunState::kSucceeded;
  }
  return a;
}

}  // namespace

std::string ChildName(const std::string& step, int64_t i) {
  return step + "(" + std::to_string(i) + ")";
}

std::vector<Action> Step(const RunView& view, TimeMs now) {
  const RunRecord& run = view.run;
  const model::PipelineSpec& spec = view.spec;
  std::vector<Action> out;
  if (model::IsTerminal(run.state)) return out;

  std::string stopping = run.stopping;
  if (stopping.empty() && spec.timeout > 0 && run.started > 0 &&
      now >= run.started + spec.timeout) {
    stopping = "timeout";
    Action t;
    t.kind = Action::Kind::kTimeout;
    t.message = "pipeline timeout after " + FormatDuration(spec.timeout);
    out.push_back(std::move(t));
    for (const auto& [name, n] : run.nodes)
      if (n.state == StepState::kRunning && n.job_id && name != kExitNode) {
        Action c;
        c.kind = Action::Kind::kCancelJob;
        c.node = name;
        c.job = n.job_id;
        out.push_back(std::move(c));
      }
  }
  const bool is_stopping = !stopping.empty();

  // Children of fan-out steps, and how many step jobs run now.
  std::map<std::string, std::vector<const NodeRecord*>> children;
  int64_t running = 0;
  for (const auto& [name, n] : run.nodes) {
    if (n.index >= 0) children[n.step].push_back(&n);
    if (n.state == StepState::kRunning && n.job_id) ++running;
  }
  for (auto& [step, list] : children)
    std::sort(list.begin(), list.end(), [](auto* a, auto* b) { return a->index < b->index; });
  auto can_launch = [&] {
    return !is_stopping && !run.suspended && (spec.parallelism <= 0 || running < spec.parallelism);
  };
  auto set = [&](const std::string& node, StepState state, std::string msg) -> Action& {
    Action a;
    a.kind = Action::Kind::kSetNode;
    a.node = node;
    a.state = state;
    a.message = std::move(msg);
    out.push_back(std::move(a));
    return out.back();
  };
  auto launch = [&](const std::string& node) {
    Action a;
    a.kind = Action::Kind::kLaunch;
    a.node = node;
    out.push_back(std::move(a));
    ++running;
  };

  for (const model::StepSpec& step : spec.steps) {
    const NodeRecord& n = NodeOf(run, step.name);
    if (model::IsTerminal(n.state)) continue;
    if (n.state == StepState::kRunning && n.index < 0 && n.outputs.contains("children")) {
      // An expanded fan-out group: launch children, then sum them up.
      const auto& kids = children[step.name];
      bool all_done = true, any_failed = false;
      int64_t kids_running = std::count_if(kids.begin(), kids.end(),
                                           [](auto* k) { return k->state == StepState::kRunning; });
      for (const NodeRecord* c : kids) {
        StepState cs = c->state;  // as this call leaves it
        if (is_stopping && cs == StepState::kPending) {
          set(c->name, StepState::kCancelled, "run " + stopping);
          cs = StepState::kCancelled;
        }
        if (cs == StepState::kPending && c->next_at <= now && can_launch() &&
            (step.parallelism <= 0 || kids_running < step.parallelism)) {
          launch(c->name);
          ++kids_running;
          cs = StepState::kRunning;
        }
        if (!model::IsTerminal(cs)) all_done = false;
        if (model::IsFailure(cs)) any_failed = true;
      }
      if (all_done) {
        json params = json::object(), results = json::array();
        for (const auto& p : step.output_parameters) {
          json list = json::array();
          for (const NodeRecord* c : kids)
            if (c->outputs.contains("parameters") && c->outputs["parameters"].contains(p.name))
              list.push_back(c->outputs["parameters"][p.name]);
          params[p.name] = list.dump();
        }
        for (const NodeRecord* c : kids) results.push_back(c->outputs.value("result", ""));
        Action& a = set(step.name, any_failed ? StepState::kFailed : StepState::kSucceeded,
                        any_failed ? "some fan-out children failed" : "");
        a.outputs = {{"parameters", params}, {"result", results.dump()}};
      }
      continue;
    }
    if (n.state == StepState::kRunning) continue;
    // Pending: are the dependencies done, and does the trigger rule let it run?
    if (is_stopping) {
      set(step.name, StepState::kCancelled, "run " + stopping);
      continue;
    }
    if (n.job_id == 0 && n.attempts > 0) {  // waiting to retry
      if (n.next_at <= now && can_launch()) launch(step.name);
      continue;
    }
    int total = 0, done = 0, succeeded = 0, failed = 0, upstream_failed = 0;
    for (const auto& d : step.dependencies) {
      StepState ds = NodeOf(run, d).state;
      ++total;
      if (model::IsTerminal(ds)) ++done;
      if (ds == StepState::kSucceeded) ++succeeded;
      if (model::IsFailure(ds)) ++failed;
      if (ds == StepState::kOmitted) ++upstream_failed;
    }
    bool ready = false;
    switch (step.trigger) {
      case model::TriggerRule::kAllSuccess:
        if (failed + upstream_failed > 0) {
          set(step.name, StepState::kOmitted, "upstream step failed");
          continue;
        }
        ready = done == total;
        break;
      case model::TriggerRule::kNoneFailed:
        if (failed > 0) {
          set(step.name, StepState::kOmitted, "upstream step failed");
          continue;
        }
        ready = done == total;
        break;
      case model::TriggerRule::kAllDone:
        ready = done == total;
        break;
      case model::TriggerRule::kOneFailed:
        if (failed > 0)
          ready = true;
        else if (done == total) {
          set(step.name, StepState::kSkipped, "no upstream step failed (triggerRule one_failed)");
          continue;
        }
        break;
      case model::TriggerRule::kOneSuccess:
        if (succeeded > 0)
          ready = true;
        else if (done == total) {
          set(step.name, StepState::kOmitted,
              "no upstream step succeeded (triggerRule one_success)");
          continue;
        }
        break;
    }
    if (!ready || !can_launch()) continue;
    if (!step.when.empty()) {
      auto expr = model::Substitute(step.when, Lookup(run, n));
      if (!expr.ok()) {
        set(step.name, StepState::kFailed, "when: " + expr.status().message());
        continue;
      }
      auto v = model::EvaluateCondition(*expr);
      if (!v.ok()) {
        set(step.name, StepState::kFailed, "when: " + v.status().message());
        continue;
      }
      if (!*v) {
        set(step.name, StepState::kSkipped, "when \"" + *expr + "\" is false").started = true;
        continue;
      }
    }
    if (step.FansOut()) {
      json items;
      if (step.with_items) {
        items = *step.with_items;
      } else {
        auto text = model::Substitute(step.with_param, Lookup(run, n));
        if (!text.ok()) {
          set(step.name, StepState::kFailed, "withParam: " + text.status().message());
          continue;
        }
        // The text comes from a task's output: parsed with the request bounds
        // (size, nesting depth), and quoted in the reason at most 200 bytes long.
        auto parsed = model::ParseJsonBody(*text, "withParam");
        if (!parsed.ok()) {
          set(step.name, StepState::kFailed, parsed.status().message());
          continue;
        }
        items = std::move(*parsed);
        if (!items.is_array()) {
          set(step.name, StepState::kFailed,
              "withParam: not a JSON list: " + text->substr(0, 200) +
                  (text->size() > 200 ? "..." : ""));
          continue;
        }
      }
      if (Status cap = model::CheckFanOut(static_cast<int64_t>(items.size()), view.max_fan_out,
                                          step.with_items ? "withItems" : "withParam");
          !cap.ok()) {
        set(step.name, StepState::kFailed, cap.message());
        continue;
      }
      Action a;
      a.kind = Action::Kind::kExpand;
      a.node = step.name;
      a.items = std::move(items);
      out.push_back(std::move(a));
      continue;  // children launch on the next call
    }
    launch(step.name);
  }
  // What this call decided is seen by the next: the run ends only once its
  // nodes are seen done.
  if (!out.empty()) return out;

  // All DAG nodes done: the exit handler, then the run's end.
  for (const model::StepSpec& step : spec.steps)
    if (!model::IsTerminal(NodeOf(run, step.name).state)) return out;
  for (const auto& [name, n] : run.nodes)
    if (name != kExitNode && !model::IsTerminal(n.state)) return out;
  if (spec.on_exit) {
    const NodeRecord& e = NodeOf(run, kExitNode);
    if (e.state == StepState::kPending && !(e.attempts > 0 && e.next_at > now)) {
      Action a;
      a.kind = Action::Kind::kLaunch;
      a.node = kExitNode;
      out.push_back(std::move(a));
      return out;
    }
    if (!model::IsTerminal(e.state)) return out;
  }
  out.push_back(FinishAction(run));
  return out;
}

std::optional<TimeMs> RetryAt(const model::StepSpec& step, const NodeRecord& node, bool process_ran,
                              bool run_stopping, TimeMs now) {
  const auto& r = step.retry;
  bool policy_ok = r.policy == model::RetryPolicy::kAlways ||
                   (r.policy == model::RetryPolicy::kOnFailure && process_ran) ||
                   (r.policy == model::RetryPolicy::kOnError && !process_ran);
  if (run_stopping || !policy_ok || node.attempts > r.limit) return std::nullopt;
  double backoff =
      static_cast<double>(r.backoff) * std::pow(r.factor, static_cast<double>(node.attempts - 1));
  if (r.max_backoff > 0) backoff = std::min(backoff, static_cast<double>(r.max_backoff));
  return now + static_cast<DurationMs>(backoff);
}

std::optional<std::string> LookupRef(const RunRecord& run, const NodeRecord& self,
                                     const std::string& ref) {
  std::vector<std::string> p;
  std::stringstream ss(ref);
  for (std::string x; std::getline(ss, x, '.');) p.push_back(x);
  if (p.empty()) return std::nullopt;
  if (p[0] == "item") {
    json item;
    try {
      item = json::parse(self.item);
    } catch (...) {
      return std::nullopt;
    }
    if (p.size() == 1) return item.is_string() ? item.get<std::string>() : item.dump();
    if (p.size() == 2 && item.is_object() && item.contains(p[1]))
      return item[p[1]].is_string() ? item[p[1]].get<std::string>() : item[p[1]].dump();
    return std::nullopt;
  }
  if (p[0] == "inputs" && p.size() == 3) {
    auto it = run.parameters.find(p[2]);
    if (it == run.parameters.end()) return std::nullopt;
    return it->second;
  }
  if (p[0] == "pipeline" && p.size() == 2) {
    if (p[1] == "name") return run.name;
    if (p[1] == "runId") return std::to_string(run.id);
    if (p[1] == "status") {
      // What the run's state will be (the exit handler runs before it ends).
      using model::RunState;
      if (run.stopping == "cancel") return std::string(model::ToString(RunState::kCancelled));
      for (const auto& [name, n] : run.nodes)
        if (name != kExitNode && (n.state == StepState::kFailed || n.state == StepState::kOmitted))
          return std::string(model::ToString(RunState::kFailed));
      return std::string(
          model::ToString(run.stopping == "timeout" ? RunState::kFailed : RunState::kSucceeded));
    }
    return std::nullopt;
  }
  if (p[0] == "steps" && p.size() >= 3) {
    auto it = run.nodes.find(p[1]);
    if (it == run.nodes.end()) return std::nullopt;
    const NodeRecord& n = it->second;
    if (p.size() == 3 && p[2] == "status") return std::string(model::ToString(n.state));
    if (p.size() == 3 && p[2] == "exitCode") return n.exit_code ? std::to_string(*n.exit_code) : "";
    if (p.size() == 4 && p[3] == "result" && n.outputs.contains("result")) {
      const json& v = n.outputs["result"];
      return v.is_string() ? v.get<std::string>() : v.dump();
    }
    if (p.size() == 5 && n.outputs.contains(p[3]) && n.outputs[p[3]].contains(p[4])) {
      const json& v = n.outputs[p[3]][p[4]];
      return v.is_string() ? v.get<std::string>() : v.dump();
    }
  }
  return std::nullopt;
}

std::function<std::optional<std::string>(const std::string&)> Lookup(const RunRecord& run,
                                                                     const NodeRecord& self) {
  return [&run, &self](const std::string& ref) { return LookupRef(run, self, ref); };
}

}  // namespace berth::controllers::pipeline_engine
