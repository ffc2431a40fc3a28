// The pipeline DAG engine: pure functions from a run's state, its nodes'
// states and `now` to the actions that move the run on. No store, no clock,
// no files and no processes: the pipeline controller applies the actions
// (and does the I/O they imply), then asks again until nothing is left to do.
//
// What Step decides, in the spec's step order:
// - the run's timeout (spec.timeout after it started): stop it, cancel the
//   running step jobs;
// - a stopping run's Pending nodes end Cancelled;
// - a Pending step whose dependencies are done and whose triggerRule lets it
//   run (all_success, none_failed, all_done, one_failed, one_success) is
//   launched, or skipped when its `when` is false, or Omitted when an
//   upstream failure rules it out; a retry launches once its backoff passed;
// - a fan-out step (withItems, withParam) expands into one child per item,
//   launched up to the step's and the run's parallelism; when every child is
//   done the group ends with the children's results gathered;
// - when every DAG node is done, the exit handler runs, then the run ends
//   (Cancelled when cancelled, Failed on a timeout or a failed step, else
//   Succeeded).
// Step reads only the view: a node changed by its actions is seen changed on
// the next call, so callers loop (apply, Step again) until Step returns none.
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "model/limits.h"
#include "model/pipeline.h"
#include "model/pipeline_state.h"
#include "store/pipeline_store.h"

namespace berth::controllers::pipeline_engine {

inline constexpr char kExitNode[] = "onExit";

// What the engine reads: the run (its row and nodes) and its parsed spec.
struct RunView {
  const store::RunRecord& run;
  const model::PipelineSpec& spec;
  // The most children of one fan-out step (berthd's pipelines.maxFanOut): a
  // withParam list past it fails its step (withItems is checked at submit).
  int64_t max_fan_out = model::kDefaultMaxFanOut;
};

struct Action {
  enum class Kind {
    kTimeout,    // the run's timeout passed: stopping = "timeout" with `message`
    kCancelJob,  // cancel the step job `job` (of node `node`)
    kSetNode,    // node `node` ends in `state` with `message` (end time now if unset);
                 // `outputs` (an object) is merged into its outputs; `started`: start time now
    kExpand,     // fan-out node `node` becomes Running with one Pending child per `items` entry
    kLaunch,     // start node `node`'s next attempt (memoized result, or a step job)
    kFinishRun,  // every node is done: the run ends in `run_state` with `message`
  };
  Kind kind = Kind::kSetNode;
  std::string node;
  model::StepState state = model::StepState::kPending;
  std::string message;
  nlohmann::json outputs;  // kSetNode: merged into the node's outputs
  nlohmann::json items;    // kExpand: the items, a JSON array
  bool started = false;    // kSetNode: the node's start time becomes now
  int64_t job = 0;         // kCancelJob
  model::RunState run_state = model::RunState::kRunning;  // kFinishRun
};

// The actions that move the run on at `now`; empty when nothing can happen
// until a step job ends or time passes.
std::vector<Action> Step(const RunView& view, TimeMs now);

// When a failed attempt of `node` (its `attempts` counted) runs again under
// `step`'s retryStrategy: the time its backoff ends, or nullopt when it is
// not retried (policy, limit, or the run is stopping). `process_ran`: the
// step's process ran and failed (OnFailure) rather than never starting
// (OnError).
std::optional<TimeMs> RetryAt(const model::StepSpec& step, const store::NodeRecord& node,
                              bool process_ran, bool run_stopping, TimeMs now);

// Resolves a reference in a step's text ("inputs.parameters.lr",
// "steps.train.outputs.parameters.acc", "item.x", "pipeline.status", ...)
// for `self` against the run; nullopt when it names nothing.
std::optional<std::string> LookupRef(const store::RunRecord& run, const store::NodeRecord& self,
                                     const std::string& ref);
std::function<std::optional<std::string>(const std::string&)> Lookup(const store::RunRecord& run,
                                                                     const store::NodeRecord& self);

// The name of fan-out child `i` of `step`: "step(i)".
std::string ChildName(const std::string& step, int64_t i);

}  // namespace berth::controllers::pipeline_engine
