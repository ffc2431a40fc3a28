// Pipelines: DAGs of steps (kind: Pipeline) and their schedules (kind:
// CronPipeline). Parsing, validation (DAG, cycles, templates), template
// substitution and `when` expressions. Plain data: no clock, no I/O.
//
//   apiVersion: berth/v1
//   kind: Pipeline
//   metadata: {name, user, labels}
//   spec:
//     parameters: [{name, value}]          # value absent: must be given at run time
//     parallelism: 0                       # most steps running at once (0: no limit)
//     timeout: 1h                          # the whole run
//     onExit: {command|script, ...}        # a step that runs after all others, always
//     steps:
//     - name: train
//       command: [...]  args: [...]  | script: "..."   (run by /bin/sh -c)
//       env, workingDir, queue, priority, priorityClassName, resources: {gpus, gpuMemory, cpu,
//       memory} dependencies: [prep] when: "{{steps.prep.outputs.parameters.n}} > 3" withItems: [a,
//       b] | withParam: "{{steps.prep.outputs.parameters.list}}" parallelism: 10 # fan-out children
//       at once inputs: {artifacts: [{name, from: "{{steps.prep.outputs.artifacts.data}}", path}]}
//       outputs: {parameters: [{name, valueFrom: {path: f} | {stdout: true}}],
//                 artifacts: [{name, path}]}
//       retryStrategy: {limit, retryPolicy: Always|OnFailure|OnError,
//                       backoff: {duration, factor, maxDuration}}
//       timeout: 10m
//       triggerRule: all_success | all_done | one_failed | one_success | none_failed
//       memoize: {key: "...", maxAge: 1h}
//
// Templates: {{inputs.parameters.P}}, {{steps.S.outputs.parameters.P}},
// {{steps.S.outputs.result}} (stdout), {{steps.S.outputs.artifacts.A}} (a path),
// {{steps.S.status}}, {{steps.S.exitCode}}, {{item}}, {{item.FIELD}},
// {{pipeline.name}}, {{pipeline.runId}}, {{pipeline.status}} (onExit only).
// S must be an (indirect) dependency of the step using it; a fan-out step's
// output parameters are JSON lists of its children's values.
#pragma once

#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "model/job.h"
#include "model/limits.h"

namespace berth::model {

enum class TriggerRule { kAllSuccess, kAllDone, kOneFailed, kOneSuccess, kNoneFailed };
const char* TriggerRuleName(TriggerRule r);

enum class RetryPolicy { kAlways, kOnFailure, kOnError };

struct RetryStrategy {
  int64_t limit = 0;  // retries after the first attempt
  RetryPolicy policy = RetryPolicy::kAlways;
  DurationMs backoff = 0;
  double factor = 1;
  DurationMs max_backoff = 0;  // 0: no cap
};

struct OutputParameter {
  std::string name;
  std::string path;     // a file the step writes (relative: to its working dir)
  bool stdout = false;  // or its stdout
};

struct ArtifactRef {
  std::string name;
  std::string path;  // outputs: what the step produced; inputs: where it wants it
  std::string from;  // inputs only: "{{steps.S.outputs.artifacts.A}}"
};

struct StepSpec {
  std::string name;
  std::vector<std::string> command;  // command + args, or empty with `script`
  std::string script;
  std::map<std::string, std::string> env;
  std::string working_dir;
  std::string queue = "default";
  int64_t priority = 0;
  PriorityClass priority_class = kDefaultPriorityClass;
  Resources resources;
  std::vector<std::string> dependencies;
  std::string when;
  std::optional<nlohmann::json> with_items;  // a list
  std::string with_param;                    // a template that yields a JSON list
  int64_t parallelism = 0;
  std::vector<ArtifactRef> input_artifacts;
  std::vector<OutputParameter> output_parameters;
  std::vector<ArtifactRef> output_artifacts;
  RetryStrategy retry;
  DurationMs timeout = 0;
  TriggerRule trigger = TriggerRule::kAllSuccess;
  std::string memoize_key;         // empty: no memoization
  DurationMs memoize_max_age = 0;  // 0: forever

  bool FansOut() const { return with_items.has_value() || !with_param.empty(); }
};

struct PipelineParameter {
  std::string name;
  std::optional<std::string> value;  // the default
};

struct PipelineSpec {
  std::string name;
  std::string user;
  std::map<std::string, std::string> labels;
  std::vector<PipelineParameter> parameters;
  int64_t parallelism = 0;
  DurationMs timeout = 0;
  std::vector<StepSpec> steps;      // in a topological order after validation
  std::optional<StepSpec> on_exit;  // named "onExit"

  const StepSpec* Step(const std::string& name) const;
};

enum class ConcurrencyPolicy { kAllow, kForbid, kReplace };
const char* ConcurrencyPolicyName(ConcurrencyPolicy p);

struct CronPipelineSpec {
  std::string name;
  std::string schedule;  // 5 fields or @hourly, @daily, ...
  std::string timezone = "UTC";
  ConcurrencyPolicy concurrency = ConcurrencyPolicy::kAllow;
  bool suspend = false;
  std::map<std::string, std::string> parameters;  // passed to each run
  std::string pipeline_text;                      // the Pipeline document the schedule runs (YAML)
  PipelineSpec pipeline_spec;
};

// Parses and validates a Pipeline document (YAML or JSON). Errors name the
// field path and the step: "spec.steps[1](train).args[0]: undefined
// reference {{steps.x.outputs.parameters.y}}: no step named x".
Result<PipelineSpec> ParsePipelineSpec(const std::string& text);

// An artifact or parameter file path of a step (inputs.artifacts[].path,
// outputs.artifacts[].path, outputs.parameters[].valueFrom.path): relative to
// the step's working directory and never leaving it (not absolute, no ".."
// or "." or empty component, no NUL). InvalidArgument naming `field`.
// Symbolic links are dealt with at run time: the task's supervisor follows
// none (exec/step_files.h).
Status CheckStepPath(const std::string& path, const std::string& field);

// Parses a CronPipeline document: metadata.name, spec: {schedule, timezone,
// concurrencyPolicy, suspend, parameters: {k: v}, pipeline: <Pipeline document
// or its spec>}. The schedule and time zone are checked.
Result<CronPipelineSpec> ParseCronPipelineSpec(const std::string& text);

// Every fan-out step's withItems against `cap` (berthd's pipelines.maxFanOut);
// InvalidArgument naming the step.
Status CheckPipelineFanOut(const PipelineSpec& spec, int64_t cap);

// "kind" of a document (Pipeline, CronPipeline, Job, ...), or an error.
Result<std::string> DocumentKind(const std::string& text);

// Merges run-time parameters into the defaults; an unknown name or a missing
// required value is InvalidArgument.
Result<std::map<std::string, std::string>> ResolveParameters(
    const PipelineSpec& spec, const std::map<std::string, std::string>& given);

// Replaces every {{ name }} in `text` with lookup(name). lookup returns
// nullopt for an undefined name, which is an error naming it.
Result<std::string> Substitute(
    const std::string& text,
    const std::function<std::optional<std::string>(const std::string&)>& lookup);

// Names referenced by {{...}} in `text`, trimmed.
std::vector<std::string> TemplateRefs(const std::string& text);

// Evaluates a `when` expression after substitution: comparisons (== != < >
// <= >=, numeric when both sides are numbers), && || ! and parentheses;
// a bare word is true unless it is false, 0 or empty.
Result<bool> EvaluateCondition(const std::string& expr);

}  // namespace berth::model
