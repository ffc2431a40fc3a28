// The Job: one command on N GPUs. Spec (what the user asked for), state
// machine, and the JSON forms used by the API and the store.
//
// State machine:
//   Pending -> Scheduled -> Running -> Succeeded | Failed | Cancelled
//   Pending | Scheduled | Running -> Cancelled
//   Scheduled | Running -> Preempted -> Pending (requeued)
//   Scheduled -> Failed (the executor could not start it)
#pragma once

#include <nlohmann/json.hpp>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/quantity.h"
#include "common/status.h"
#include "model/training.h"

namespace berth::model {

using JobId = int64_t;

enum class JobState { kPending, kScheduled, kRunning, kSucceeded, kFailed, kCancelled, kPreempted };

const char* JobStateName(JobState s);                  // "Pending", "Running", ...
Result<JobState> ParseJobState(const std::string& s);  // case-insensitive
bool IsTerminal(JobState s);
// Whether the state machine allows from -> to.
bool IsValidTransition(JobState from, JobState to);

// What kind of work a job is, which orders the queue before its priority and
// decides who may preempt whom (sched/priority.h; docs/scheduling.md,
// "Priority classes"): tuning trials and other filler, ordinary jobs,
// notebooks and other work a person waits at. The spec field is
// spec.priorityClassName, as in Kubernetes and Volcano.
enum class PriorityClass : int8_t { kScavenger = 0, kBatch = 1, kInteractive = 2 };
inline constexpr PriorityClass kDefaultPriorityClass = PriorityClass::kBatch;
const char* PriorityClassName(PriorityClass c);  // "scavenger", "batch", "interactive"
// Exact lower-case names; InvalidArgument naming `field` and the allowed values.
Result<PriorityClass> ParsePriorityClass(const std::string& name, const std::string& field);
// spec.priority's bounds (the scheduler packs it with the class into one key).
inline constexpr int64_t kMaxPriority = 1000000;
inline constexpr int64_t kMinPriority = -1000000;
// Checks a priority against the bounds; InvalidArgument naming `field`.
Status ValidatePriority(int64_t priority, const std::string& field);
// A preempted job's grace before it is killed: its own
// terminationGracePeriodSeconds, at most 30 seconds for a scavenger.
inline constexpr DurationMs kScavengerMaxGrace = 30 * kSecond;
DurationMs PreemptionGrace(PriorityClass c, DurationMs termination_grace);

struct Resources {
  MilliGpu gpus = 0;   // 1000 per whole GPU; below 1000 is a fraction of one GPU
  MiB gpu_memory = 0;  // memory floor per GPU, for fractional sharing
  MilliCpu cpu = 0;    // 0: no request and no limit
  MiB memory = 0;      // 0: no request and no limit
  // GPU models the job may run on (resources.gpuModel: canonical names,
  // model/node.h CanonicalGpuModel); empty: any.
  std::vector<std::string> gpu_models;
};

struct JobSpec {
  std::string name;
  std::string user;
  std::string queue = "default";
  int64_t priority = 0;  // within the class: higher first
  PriorityClass priority_class = kDefaultPriorityClass;
  std::vector<std::string> command;  // argv: command followed by args
  std::map<std::string, std::string> env;
  std::string working_dir;
  Resources resources;
  DurationMs time_limit = 0;  // 0: none
  DurationMs termination_grace = 30 * kSecond;
  std::map<std::string, std::string> labels;
  // Set for kind: TrainingJob (see model/training.h): resources are per worker.
  std::optional<TrainingSpec> training;
};

// Where a job runs: the node and the GPU indices (and UUIDs) on it.
struct Placement {
  std::string node;
  std::vector<int> gpus;
  std::vector<std::string> gpu_uuids;
  MilliGpu gpu_share = 0;  // per GPU: 1000 for whole GPUs, less for a fraction
  // Training jobs: one placement per worker (rank order); the fields above
  // then repeat worker 0's. Empty for single-task jobs.
  std::vector<Placement> workers;
};

struct Job {
  JobId id = 0;
  JobSpec spec;
  JobState state = JobState::kPending;
  TimeMs submit_time = 0;
  TimeMs schedule_time = 0;
  TimeMs start_time = 0;
  TimeMs end_time = 0;
  std::optional<int> exit_code;
  std::string message;  // why it is in its state ("command not found: foo", ...)
  Placement placement;
  int attempts = 0;  // how many times it was started (requeues add one)
  // Service of the attempts that ended in a requeue (preemption, elastic
  // resize, gang restart), for the scheduler's least-attained-service
  // policies: GPU-milliseconds in all, the wall time of the last such run,
  // and when the job last re-entered the queue (0: never requeued).
  DurationMs attained_service = 0;
  DurationMs last_run_time = 0;
  TimeMs queued_since = 0;
  // While a Scheduled or Running job is being stopped: why ("cancel", or
  // "preempt" for preemption and elastic resizes) and when its grace period
  // ends (SIGKILL). Empty and 0 otherwise.
  std::string stop_reason;
  TimeMs stop_deadline = 0;
  // Ended training jobs with ttlSecondsAfterFinished: when their run
  // directories and checkpoints are due for removal (0: none pending).
  TimeMs cleanup_at = 0;
};

// Parses a job document (YAML or JSON):
//   apiVersion: berth/v1
//   kind: Job
//   metadata: {name, user, labels}
//   spec: {command, args, env, workingDir, resources: {gpus, gpuMemory, cpu, memory},
//          queue, priority, priorityClassName, timeLimit, terminationGracePeriodSeconds}
// Unknown fields and bad values are InvalidArgument naming the field path.
Result<JobSpec> ParseJobSpec(const std::string& text);

// Checks values that do not depend on the cluster (ranges, required fields).
Status ValidateJobSpec(const JobSpec& spec);

// The document form (same shape as the YAML above).
nlohmann::json JobSpecToJson(const JobSpec& spec);
// GPUs of the whole job (every worker of a training job): the most it asks
// for (elastic: at maxReplicas), the least (elastic: at minReplicas; else the
// same) and what its placement holds now (0 unless Scheduled or Running).
MilliGpu RequestedGpus(const JobSpec& spec);
MilliGpu MinRequestedGpus(const JobSpec& spec);
MilliGpu HeldGpus(const Job& job);

// The API form of a job: id, name, user, queue, state, exitCode, node, gpus,
// times (RFC 3339), message, attempts, spec, and the job's GPU totals:
// gpusRequested, gpusHeld (and, for training jobs, gpusPerWorker; elastic
// ones also gpusRequestedMin).
nlohmann::json JobToJson(const Job& job);

}  // namespace berth::model
