// The API forms of experiments and trials.
#include <nlohmann/json.hpp>

#include "controllers/experiment_controller.h"

namespace berth::controllers {

using nlohmann::json;

std::string TrialName(const std::string& experiment, int64_t id) {
  return experiment + "-trial-" + std::to_string(id);
}

json TrialJson(const std::string& experiment, const store::TrialRecord& t) {
  json j = {{"id", t.id},
            {"name", TrialName(experiment, t.id)},
            {"state", t.state},
            {"jobId", t.job_id},
            {"parameters", t.params},
            {"labels", t.labels},
            {"objective", t.objective ? json(*t.objective) : json(nullptr)},
            {"metrics", t.metrics},
            {"created", FormatTime(t.created)},
            {"message", t.message}};
  if (t.ended) j["ended"] = FormatTime(t.ended);
  return j;
}

json ExperimentRecordJson(const store::ExperimentRecord& rec, const model::ExperimentSpec* spec,
                          const std::vector<store::TrialRecord>& trials, bool with_trials) {
  json counts = {{"total", static_cast<int64_t>(trials.size())},
                 {"Pending", 0},
                 {"Running", 0},
                 {"Succeeded", 0},
                 {"Failed", 0},
                 {"EarlyStopped", 0},
                 {"MetricsUnavailable", 0},
                 {"Killed", 0}};
  for (const auto& t : trials) counts[t.state] = counts.value(t.state, 0) + 1;
  json j = {{"name", rec.name},
            {"uid", rec.uid},
            {"owner", rec.owner},
            {"state", rec.state},
            {"message", rec.message},
            {"created", FormatTime(rec.created)},
            {"parallelTrialCount", rec.parallel},
            {"maxTrialCount", rec.max_trials},
            {"maxFailedTrialCount", rec.max_failed},
            {"exhausted", rec.exhausted},
            {"trialCounts", counts},
            {"spec", rec.spec}};
  if (rec.ended) j["ended"] = FormatTime(rec.ended);
  if (spec) {
    j["algorithm"] = spec->algorithm;
    if (!spec->early_stopping.empty()) j["earlyStopping"] = spec->early_stopping;
    j["objective"] = {{"type", spec->goal == tune::Goal::kMaximize ? "maximize" : "minimize"},
                      {"objectiveMetricName", spec->objective_metric},
                      {"additionalMetricNames", spec->additional_metrics},
                      {"goal", spec->goal_value ? json(*spec->goal_value) : json(nullptr)}};
    j["metricsCollector"] = model::CollectorKindName(spec->collector.kind);
  }
  if (rec.best_trial >= 0 && rec.best_trial < static_cast<int64_t>(trials.size()))
    j["currentOptimalTrial"] = TrialJson(rec.name, trials[static_cast<size_t>(rec.best_trial)]);
  else
    j["currentOptimalTrial"] = nullptr;
  if (with_trials) {
    json a = json::array();
    for (const auto& t : trials) {
      json tj = TrialJson(rec.name, t);
      tj["best"] = t.id == rec.best_trial;
      a.push_back(std::move(tj));
    }
    j["trials"] = std::move(a);
  }
  return j;
}

}  // namespace berth::controllers
