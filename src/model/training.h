// Distributed training: the TrainingJob spec fields that a plain Job lacks.
//
// A TrainingJob is a Job whose spec carries a TrainingSpec: N workers (gang
// tasks, one per rank), each with spec.resources (GPUs per worker), started
// together with the torch.distributed environment. The document form is the
// Job document with kind: TrainingJob and these extra spec fields:
//   workers, gpusPerWorker, procsPerWorker, restartPolicy (Never | OnFailure |
//   ExitCode), retryExitCodes, backoffLimit, activeDeadlineSeconds,
//   ttlSecondsAfterFinished, elasticPolicy: {minReplicas, maxReplicas, maxRestarts}
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "common/clock.h"
#include "common/status.h"

namespace berth::model {

class SpecReader;

enum class RestartPolicy { kNever, kOnFailure, kExitCode };
const char* RestartPolicyName(RestartPolicy p);  // "Never", "OnFailure", "ExitCode"

// When a gang has succeeded. kWorker0: once worker 0 (the master) exits 0,
// the others get terminationGracePeriodSeconds to exit on their own; any
// still running then are stopped and not held against the job (a straggler
// hung in teardown must not hold its GPU). A worker that fails on its own
// still fails the gang. kAllWorkers: every worker must exit 0, however long
// that takes.
enum class SuccessPolicy { kWorker0, kAllWorkers };
const char* SuccessPolicyName(SuccessPolicy p);  // "Worker0", "AllWorkers"

struct ElasticPolicy {
  int min_replicas = 0;  // 0: not elastic
  int max_replicas = 0;
  int max_restarts = -1;  // resizes allowed; -1: unbounded
};

struct TrainingSpec {
  int workers = 1;           // the gang size (elastic: the most workers wanted)
  int procs_per_worker = 1;  // processes per worker (LOCAL_WORLD_SIZE / PET_NPROC_PER_NODE)
  RestartPolicy restart_policy = RestartPolicy::kOnFailure;
  SuccessPolicy success_policy = SuccessPolicy::kWorker0;
  std::vector<int> retry_exit_codes;   // ExitCode: retried codes besides 128+signal
  int backoff_limit = 3;               // gang restarts after failures
  DurationMs active_deadline = 0;      // 0: none
  DurationMs ttl_after_finished = -1;  // -1: keep forever
  ElasticPolicy elastic;

  bool IsElastic() const { return elastic.min_replicas > 0; }
  int MinWorkers() const { return IsElastic() ? elastic.min_replicas : workers; }
  int MaxWorkers() const { return IsElastic() ? elastic.max_replicas : workers; }
};

// Reads the training fields from the `spec` map of a TrainingJob document
// (marks them known). gpus_per_worker is set (milli) when gpusPerWorker is given.
Status ParseTrainingFields(SpecReader& spec, TrainingSpec* out, int64_t* gpus_per_worker);
// Range checks; errors name the field.
Status ValidateTrainingSpec(const TrainingSpec& t);
// Adds the training fields to a spec JSON object (the inverse of the parser).
void AddTrainingFields(const TrainingSpec& t, nlohmann::json& spec);

// Whether a worker that ended with `exit_code` (128+signal when killed) may be
// retried under `t.restart_policy` (the backoff limit is checked separately).
bool IsRetryable(const TrainingSpec& t, int exit_code);

}  // namespace berth::model
