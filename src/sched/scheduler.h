// The scheduler core's public contract. Pure: no clock, no I/O, no globals.
// The daemon drives it in real time and the simulator on a virtual clock;
// both hand it a SchedulerInput and apply the Decisions it returns.
//
// A cycle: the caller passes the cluster's capacity (nodes and GPUs, with
// telemetry where known), the pending jobs and the running jobs with their
// placements. The scheduler computes what is free from those, runs the
// configured policy, and returns decisions as values: jobs to bind (with a
// placement per task), jobs to preempt, elastic jobs to resize, and for every
// job left waiting the reason and the plugin that decided, split into
// "not now" and "never".
#pragma once

#include <map>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/quantity.h"
#include "common/random.h"
#include "common/status.h"
#include "model/job.h"

namespace berth::sched {

using model::JobId;

struct GpuState {
  int index = 0;
  std::string uuid;
  MiB memory = 0;                 // total device memory
  std::vector<int> nvlink_peers;  // same-node GPU indices reachable over NVLink
  // Live state from telemetry (the daemon's telemetry controller; in the
  // simulator its models). Unhealthy: drained or lost, never offered.
  bool healthy = true;
  double utilization = -1;  // 0..100 from telemetry (recent mean), -1 unknown
  // Measured used device memory, -1 unknown. A fraction is placed only where
  // memory - memory_used holds its gpu_memory floor (besides the declared
  // floors of the fractions already there).
  MiB memory_used = -1;
  std::string model;  // canonical GPU model (model/gpu_model.h), "" unknown
};

struct NodeState {
  std::string name;
  std::vector<GpuState> gpus;
  MilliCpu cpu = 0;  // 0: CPU not scheduled on this node
  MiB memory = 0;    // 0: memory not scheduled on this node
};

struct ClusterSnapshot {
  std::vector<NodeState> nodes;
};

// One task's request. A job is `tasks` identical tasks that start together
// (a gang) or not at all.
struct TaskRequest {
  MilliGpu gpus = 0;   // whole GPUs are multiples of 1000; < 1000 is a fraction of one GPU
  MiB gpu_memory = 0;  // per-GPU memory floor for a fraction
  MilliCpu cpu = 0;
  MiB memory = 0;
};

struct JobRequest {
  JobId id = 0;
  std::string queue = "default";
  std::string user;
  int64_t priority = 0;  // within the class: higher first (sched/priority.h)
  TimeMs submit_time = 0;
  TaskRequest task;
  int tasks = 1;      // gang size (the number of tasks wanted now)
  int min_tasks = 0;  // elastic: fewest tasks it can run with (0: not elastic, = tasks)
  int max_tasks = 0;  // elastic: most tasks it can use (0: = tasks)
  // Orders before priority and decides who may preempt whom (sched/priority.h).
  // (Here, in what would be padding: the request stays the size it was.)
  model::PriorityClass priority_class = model::kDefaultPriorityClass;
  DurationMs time_limit = 0;  // 0: none (backfill treats it as unbounded)
  DurationMs expected_duration =
      -1;  // the true run time, known only to srtf-oracle and the simulator
  DurationMs attained_service = 0;  // GPU-milliseconds received so far (Tiresias' LAS)
  bool preemptible = true;
  // Added by sched: when the job last (re)entered the queue (submit or
  // preemption; 0: use submit_time), and the wall time of its last run
  // (Tiresias' starvation guard compares waiting time with it).
  TimeMs queued_since = 0;
  DurationMs last_run_time = 0;
  // Work done so far in milliseconds of run time at the requested size (the
  // simulator knows it exactly; the daemon may pass the time run). With
  // expected_duration it gives srtf-oracle the remaining time.
  DurationMs progress = 0;
  // GPU models the job may use (canonical names, GpuState::model); empty:
  // any. Every task of the job (a gang) goes on GPUs of these models.
  std::vector<std::string> gpu_models;
};

struct TaskPlacement {
  std::string node;
  std::vector<int> gpus;   // GPU indices on `node`
  MilliGpu gpu_share = 0;  // per GPU: 1000 for whole GPUs, less for a fraction
};

struct RunningJob {
  JobRequest request;
  std::vector<TaskPlacement> placements;  // one per task
  TimeMs start_time = 0;
};

struct SchedulerInput {
  TimeMs now = 0;
  const ClusterSnapshot* cluster = nullptr;
  std::vector<JobRequest> pending;  // in arrival order
  std::vector<RunningJob> running;
  // false: Decisions::waiting may be left incomplete, and the cycle may stop
  // as soon as no later job can start (the simulator does this to save time;
  // it rejects "never" jobs itself with CheckFeasible).
  bool explain_waiting = true;
};

struct Bind {
  JobId job = 0;
  std::vector<TaskPlacement> placements;  // one per task
};

struct Preempt {
  JobId job = 0;
  std::string reason;  // e.g. "reclaimed by queue research for job 42"
};

// Grow or shrink an elastic job to a new set of placements (checkpoint-restart).
struct Resize {
  JobId job = 0;
  std::vector<TaskPlacement> placements;
};

// What reads as a const std::string& and compares and concatenates like one
// (Derived::str() gives the text).
template <typename Derived>
class TextOps {
 public:
  operator const std::string&() const { return self().str(); }  // NOLINT
  bool empty() const { return self().str().empty(); }
  size_t find(const std::string& s, size_t pos = 0) const { return self().str().find(s, pos); }
  friend bool operator==(const Derived& a, const Derived& b) { return a.str() == b.str(); }
  friend bool operator==(const Derived& a, const std::string& b) { return a.str() == b; }
  friend bool operator==(const Derived& a, const char* b) { return a.str() == b; }
  friend std::string operator+(const std::string& a, const Derived& b) { return a + b.str(); }
  friend std::string operator+(const char* a, const Derived& b) { return a + b.str(); }
  friend std::string operator+(const Derived& a, const std::string& b) { return a.str() + b; }
  friend std::string operator+(const Derived& a, const char* b) { return a.str() + b; }
  friend std::ostream& operator<<(std::ostream& os, const Derived& t) { return os << t.str(); }

 protected:
  static const std::string& Empty() {
    static const std::string empty;
    return empty;
  }

 private:
  const Derived& self() const { return static_cast<const Derived&>(*this); }
};

// Immutable text that many values share: most of 100,000 waiting jobs wait
// for the same reason, so a cycle builds each reason once and every value
// holding it shares it.
class SharedText : public TextOps<SharedText> {
 public:
  SharedText() = default;
  SharedText(std::string text)
      : text_(std::make_shared<const std::string>(std::move(text))) {}  // NOLINT
  SharedText(const char* text) : SharedText(std::string(text)) {}       // NOLINT
  const std::string& str() const { return text_ ? *text_ : Empty(); }
  const std::shared_ptr<const std::string>& shared() const { return text_; }

 private:
  std::shared_ptr<const std::string> text_;
};

// Text held by a Decisions (Decisions::texts), referred to by its waits:
// 8 bytes to copy, nothing to count or free. Valid while the Decisions it
// came from, or a copy of it, lives.
class TextRef : public TextOps<TextRef> {
 public:
  TextRef() = default;
  explicit TextRef(const std::string* text) : text_(text) {}
  const std::string& str() const { return text_ ? *text_ : Empty(); }

 private:
  const std::string* text_ = nullptr;
};

// A job left waiting: 32 bytes, its plugin and reason shared with the other
// waits of the cycle (most of 100,000 wait for a few reasons) and held by
// the Decisions they came in (do not keep a Wait past it).
struct Wait {
  JobId job = 0;
  bool never = false;  // true: no cluster state would ever fit it ("infeasible")
  TextRef plugin;      // which plugin decided
  TextRef reason;
};

struct Decisions {
  std::vector<Bind> binds;
  std::vector<Preempt> preemptions;
  std::vector<Resize> resizes;
  std::vector<Wait> waiting;
  // The texts waiting's plugins and reasons refer to (copies share them).
  std::vector<std::shared_ptr<const std::string>> texts;
  // When the policy wants another cycle even if nothing else changes (its
  // priorities move with time, e.g. attained service); 0: only on changes.
  TimeMs recheck_at = 0;
};

struct SchedulerConfig {
  std::string policy = "fifo";
  // Policy-specific options (e.g. queue shares "queue.research.share" = "0.5").
  std::map<std::string, std::string> options;
  uint64_t seed = 1;
};

class Scheduler {
 public:
  virtual ~Scheduler() = default;

  // Builds the scheduler for config.policy; InvalidArgument names an unknown
  // policy or option and lists the known ones.
  static Result<std::unique_ptr<Scheduler>> Create(const SchedulerConfig& config);
  // Names of the registered policies.
  static std::vector<std::string> Policies();

  virtual const std::string& PolicyName() const = 0;

  // Runs one scheduling cycle. Not thread-safe: call from one thread.
  virtual Decisions Schedule(const SchedulerInput& input) = 0;

  // Whether `job` could ever run on `cluster` (on an empty cluster), without
  // running a cycle. Unschedulable status with the reason when it cannot.
  virtual Status CheckFeasible(const JobRequest& job, const ClusterSnapshot& cluster) const = 0;
};

}  // namespace berth::sched
