#include "model/training.h"

#include <algorithm>

#include "model/limits.h"
#include "model/spec_reader.h"

namespace berth::model {

const char* RestartPolicyName(RestartPolicy p) {
  switch (p) {
    case RestartPolicy::kNever:
      return "Never";
    case RestartPolicy::kOnFailure:
      return "OnFailure";
    case RestartPolicy::kExitCode:
      return "ExitCode";
  }
  return "OnFailure";
}

const char* SuccessPolicyName(SuccessPolicy p) {
  return p == SuccessPolicy::kAllWorkers ? "AllWorkers" : "Worker0";
}

Status ParseTrainingFields(SpecReader& s, TrainingSpec* t, int64_t* gpus_per_worker) {
  int64_t v = t->workers;
  RETURN_IF_ERROR(s.Int("workers", &v));
  if (v < 1) return s.Error("workers", "must be >= 1, got " + std::to_string(v));
  if (v > kMaxWorkers)
    return s.Error("workers",
                   "must be at most " + std::to_string(kMaxWorkers) + ", got " + std::to_string(v));
  t->workers = static_cast<int>(v);
  if (s.Has("gpusPerWorker")) {
    RETURN_IF_ERROR(s.Milli("gpusPerWorker", gpus_per_worker));
  }
  v = t->procs_per_worker;
  RETURN_IF_ERROR(s.Int("procsPerWorker", &v));
  if (v < 1) return s.Error("procsPerWorker", "must be >= 1, got " + std::to_string(v));
  if (v > kMaxProcsPerWorker)
    return s.Error("procsPerWorker", "must be at most " + std::to_string(kMaxProcsPerWorker) +
                                         ", got " + std::to_string(v));
  t->procs_per_worker = static_cast<int>(v);
  std::string policy = RestartPolicyName(t->restart_policy);
  RETURN_IF_ERROR(s.String("restartPolicy", &policy));
  if (policy == "Never")
    t->restart_policy = RestartPolicy::kNever;
  else if (policy == "OnFailure")
    t->restart_policy = RestartPolicy::kOnFailure;
  else if (policy == "ExitCode")
    t->restart_policy = RestartPolicy::kExitCode;
  else
    return s.Error("restartPolicy", "must be Never, OnFailure or ExitCode, got \"" + policy + "\"");
  std::string success = SuccessPolicyName(t->success_policy);
  RETURN_IF_ERROR(s.String("successPolicy", &success));
  if (success == "Worker0")
    t->success_policy = SuccessPolicy::kWorker0;
  else if (success == "AllWorkers")
    t->success_policy = SuccessPolicy::kAllWorkers;
  else
    return s.Error("successPolicy", "must be Worker0 or AllWorkers, got \"" + success + "\"");
  std::vector<std::string> codes;
  RETURN_IF_ERROR(s.StringList("retryExitCodes", &codes));
  for (const std::string& c : codes) {
    try {
      size_t used = 0;
      int code = std::stoi(c, &used);
      if (used != c.size() || code < 1 || code > 255) throw std::invalid_argument(c);
      t->retry_exit_codes.push_back(code);
    } catch (const std::exception&) {
      return s.Error("retryExitCodes", "must be exit codes 1..255, got \"" + c + "\"");
    }
  }
  v = t->backoff_limit;
  RETURN_IF_ERROR(s.Int("backoffLimit", &v));
  if (v < 0) return s.Error("backoffLimit", "must be >= 0, got " + std::to_string(v));
  if (v > kMaxRestarts)
    return s.Error("backoffLimit", "must be at most " + std::to_string(kMaxRestarts) + ", got " +
                                       std::to_string(v));
  t->backoff_limit = static_cast<int>(v);
  RETURN_IF_ERROR(s.Seconds("activeDeadlineSeconds", &t->active_deadline));
  RETURN_IF_ERROR(
      s.Seconds("ttlSecondsAfterFinished", &t->ttl_after_finished, /*allow_negative=*/true));

  SpecReader e = s.Child("elasticPolicy");
  if (e.node().IsDefined() && !e.node().IsNull()) {
    if (!e.IsMap()) return e.Error("", "must be a map");
    int64_t mn = 1, mx = t->workers, mr = -1;
    RETURN_IF_ERROR(e.Int("minReplicas", &mn));
    RETURN_IF_ERROR(e.Int("maxReplicas", &mx));
    RETURN_IF_ERROR(e.Int("maxRestarts", &mr));
    RETURN_IF_ERROR(e.CheckNoUnknown());
    if (mn < 1) return e.Error("minReplicas", "must be >= 1, got " + std::to_string(mn));
    if (mn > kMaxWorkers)
      return e.Error("minReplicas", "must be at most " + std::to_string(kMaxWorkers) + ", got " +
                                        std::to_string(mn));
    if (mx > kMaxWorkers)
      return e.Error("maxReplicas", "must be at most " + std::to_string(kMaxWorkers) + ", got " +
                                        std::to_string(mx));
    if (mr < -1 || mr > kMaxRestarts)
      return e.Error("maxRestarts", "must be in -1.." + std::to_string(kMaxRestarts) +
                                        " (-1: no limit), got " + std::to_string(mr));
    if (mx < mn)
      return e.Error("maxReplicas", "must be >= minReplicas (" + std::to_string(mn) + "), got " +
                                        std::to_string(mx));
    t->elastic.min_replicas = static_cast<int>(mn);
    t->elastic.max_replicas = static_cast<int>(mx);
    t->elastic.max_restarts = static_cast<int>(mr);
    if (!s.Has("workers")) t->workers = t->elastic.max_replicas;
  }
  return Status::Ok();
}

Status ValidateTrainingSpec(const TrainingSpec& t) {
  if (t.workers < 1)
    return InvalidArgument("spec.workers: must be >= 1, got " + std::to_string(t.workers));
  if (t.procs_per_worker < 1) return InvalidArgument("spec.procsPerWorker: must be >= 1");
  if (t.backoff_limit < 0) return InvalidArgument("spec.backoffLimit: must be >= 0");
  RETURN_IF_ERROR(CheckDuration(t.active_deadline, "spec.activeDeadlineSeconds"));
  if (t.ttl_after_finished >= 0)
    RETURN_IF_ERROR(CheckDuration(t.ttl_after_finished, "spec.ttlSecondsAfterFinished"));
  if (t.IsElastic()) {
    if (t.elastic.max_replicas < t.elastic.min_replicas)
      return InvalidArgument("spec.elasticPolicy.maxReplicas: must be >= minReplicas (" +
                             std::to_string(t.elastic.min_replicas) + "), got " +
                             std::to_string(t.elastic.max_replicas));
  }
  return Status::Ok();
}

void AddTrainingFields(const TrainingSpec& t, nlohmann::json& s) {
  s["workers"] = t.workers;
  s["procsPerWorker"] = t.procs_per_worker;
  s["restartPolicy"] = RestartPolicyName(t.restart_policy);
  s["successPolicy"] = SuccessPolicyName(t.success_policy);
  if (!t.retry_exit_codes.empty()) {
    std::vector<std::string> codes;
    for (int c : t.retry_exit_codes) codes.push_back(std::to_string(c));
    s["retryExitCodes"] = codes;
  }
  s["backoffLimit"] = t.backoff_limit;
  if (t.active_deadline > 0) s["activeDeadlineSeconds"] = t.active_deadline / kSecond;
  if (t.ttl_after_finished >= 0) s["ttlSecondsAfterFinished"] = t.ttl_after_finished / kSecond;
  if (t.IsElastic()) {
    s["elasticPolicy"] = {{"minReplicas", t.elastic.min_replicas},
                          {"maxReplicas", t.elastic.max_replicas},
                          {"maxRestarts", t.elastic.max_restarts}};
  }
}

bool IsRetryable(const TrainingSpec& t, int exit_code) {
  switch (t.restart_policy) {
    case RestartPolicy::kNever:
      return false;
    case RestartPolicy::kOnFailure:
      return exit_code != 0;
    case RestartPolicy::kExitCode:
      return exit_code >= 128 || std::find(t.retry_exit_codes.begin(), t.retry_exit_codes.end(),
                                           exit_code) != t.retry_exit_codes.end();
  }
  return false;
}

}  // namespace berth::model
