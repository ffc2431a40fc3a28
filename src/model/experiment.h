// kind: Experiment: hyperparameter tuning with Katib's v1beta1 field names
// (docs/experiments.md).
//
//   apiVersion: berth/v1            (kubeflow.org/v1beta1 is accepted too)
//   kind: Experiment
//   metadata: {name, user}
//   spec:
//     objective: {type: maximize|minimize, goal, objectiveMetricName,
//                 additionalMetricNames: [..], metricStrategies: [{name, value: min|max|latest}]}
//     algorithm: {algorithmName, algorithmSettings: [{name, value}]}
//     earlyStopping: {algorithmName, algorithmSettings: [{name, value}]}
//     parameters: [{name, parameterType: int|double|categorical|discrete,
//                   feasibleSpace: {min, max, step, list, distribution}}]
//     trialTemplate: {trialParameters: [{name, description, reference}],
//                     trialSpec: <a Berth Job or TrainingJob document>,
//                     successCondition, failureCondition, primaryContainerName (ignored)}
//     parallelTrialCount (3), maxTrialCount, maxFailedTrialCount,
//     metricsCollectorSpec: {collector: {kind: StdOut|File|Push|None},
//                            source: {filter: {metricsFormat: [regex]},
//                                     fileSystemPath: {path, kind: File, format: TEXT|JSON}}}
//     resumePolicy: Never|LongRunning|FromVolume
//
// `${trialParameters.NAME}` in the trialSpec is replaced by the value of the
// parameter NAME references; `${trialSpec.Name}` by the trial's job name.
// Every error names the field and the reason; model/limits.h bounds apply.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "model/job.h"
#include "tune/suggester.h"

namespace berth::model {

enum class MetricStrategy { kMin, kMax, kLatest };
const char* MetricStrategyName(MetricStrategy s);  // "min", "max", "latest"

enum class CollectorKind { kStdOut, kFile, kPush, kNone };
const char* CollectorKindName(CollectorKind k);  // "StdOut", "File", "Push", "None"

// Katib's default metricsFormat: `name=value` pairs (value a float).
inline constexpr char kDefaultMetricsRegex[] =
    R"(([\w|-]+)\s*=\s*([+-]?\d*(\.\d+)?([Ee][+-]?\d+)?))";

// Bounds of an experiment document (besides limits.h).
inline constexpr int64_t kMaxExperimentParameters = 100;
inline constexpr int64_t kMaxParameterListItems = 10000;
inline constexpr int64_t kMaxParallelTrials = 1000;
inline constexpr int64_t kMaxTrialCount = 100000;
inline constexpr int64_t kMaxMetricNames = 64;
inline constexpr size_t kMaxRegexBytes = 1024;

struct TrialParameter {
  std::string name;
  std::string description;
  std::string reference;  // a parameter's name
};

// successCondition / failureCondition: "" (the default: the job's own state)
// or comparisons joined by "||": `exitCode == N`, `exitCode != N`,
// `state == Succeeded` (the job's state name).
struct TrialCondition {
  struct Term {
    std::string field;  // "exitCode" or "state"
    bool equal = true;
    std::string value;
  };
  std::vector<Term> any;  // empty: no condition
  // Whether the ended job `job` meets the condition.
  bool Holds(const Job& job) const;
};

struct MetricsCollector {
  CollectorKind kind = CollectorKind::kStdOut;
  std::string regex = kDefaultMetricsRegex;  // StdOut, File with format TEXT
  std::string path;                          // File: "" means $BERTH_METRICS_FILE
  bool json_lines = false;                   // File: format JSON (else TEXT)
};

struct ExperimentSpec {
  std::string name;
  std::string user;  // metadata.user: empty or the caller
  // objective
  tune::Goal goal = tune::Goal::kMaximize;
  std::optional<double> goal_value;
  std::string objective_metric;
  std::vector<std::string> additional_metrics;
  std::map<std::string, MetricStrategy> strategies;  // every metric has one
  // algorithm and early stopping
  std::string algorithm;
  tune::Settings algorithm_settings;
  std::string early_stopping;  // "" when none
  tune::Settings early_stopping_settings;
  tune::SearchSpace space;
  // trial template
  std::vector<TrialParameter> trial_parameters;
  std::string trial_kind;       // "Job" or "TrainingJob"
  std::string trial_spec_json;  // the trialSpec as JSON text, placeholders unreplaced
  TrialCondition success_condition, failure_condition;
  // counts
  int64_t parallel_trials = 3;
  int64_t max_trials = 0;          // 0: no limit
  int64_t max_failed_trials = -1;  // -1: no limit
  MetricsCollector collector;
  std::string resume_policy = "LongRunning";
};

// Parses and checks an Experiment document (YAML or JSON): the search space,
// the algorithm and early stopper by name (tune::MakeSuggester /
// MakeEarlyStopper), and the trial template (every placeholder resolves and
// a trial made from it parses as a job).
Result<ExperimentSpec> ParseExperimentSpec(const std::string& text);

// The job of one trial: the trialSpec with `params` substituted, named
// `job_name`. InvalidArgument naming spec.trialTemplate.trialSpec and the
// reason when the result does not parse as a job.
Result<JobSpec> MakeTrialJob(const ExperimentSpec& spec, const tune::Assignment& params,
                             const std::string& job_name);

// Parses the metric records in `text` (what a collector wrote, one per line):
// JSON lines ({"step": N, "name": value, ...}) when `json_lines`, else lines
// matched by `regex` (the first two groups: name and value; every match on a
// line). Only `names` are kept. A record without "step" (or "epoch") gets
// one past the last step seen of each of its metrics.
struct MetricRecord {
  std::string name;
  int64_t step = 0;
  double value = 0;
};
class MetricParser {
 public:
  MetricParser(std::vector<std::string> names, bool json_lines, const std::string& regex);
  // Feeds complete lines; returns the records found.
  std::vector<MetricRecord> Lines(const std::string& text);

 private:
  std::vector<std::string> names_;
  bool json_lines_;
  std::string regex_;
  std::map<std::string, int64_t> last_step_;
};

}  // namespace berth::model
