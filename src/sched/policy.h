// The extension points a policy implements, in the spirit of the Kubernetes
// scheduling framework. The framework (framework.cc) runs one cycle:
//
//   QueueSort  Key(): every pending and running job gets a priority key;
//              pending jobs are tried lowest key first, running jobs with
//              the highest key are the first preemption victims.
//   PreFilter  Admit(): may hold a job back before placement (quota, backfill
//              reservation, head-of-line blocking) with its plugin and reason.
//   Filter     NodeFilter(): which nodes the job may use (all by default).
//   Score      the placement core's order (ClusterState): consolidation on the
//              fewest nodes, best-fit, NVLink neighbours, fractions packed.
//   Reserve /  Reserve()/Unreserve(): accounting when a placement is taken or
//   Unreserve  given back (per-queue usage by default).
//   Permit     gangs: every task placed or none (built in; plugin "gang").
//   PostFilter MayPreempt(): when a job does not fit, which running jobs of
//              its own priority class may be preempted (or elastic jobs shrunk
//              below their request) for it; MayPreemptLowerClass(): which of
//              a lower class (the matrix in sched/priority.h decides which
//              classes, for every policy).
//   OnNoFit()  what a job that could not be placed means for later jobs.
//
// Borrowed elastic capacity (an elastic job's tasks above its minimum: it got
// them because they were idle) is always given back before anything is
// preempted, whatever the policy.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "sched/cluster_state.h"
#include "sched/priority.h"
#include "sched/scheduler.h"

namespace berth::sched {

// Lower runs first; compared lexicographically.
using PriorityKey = std::array<int64_t, 3>;

struct JobView {
  const JobRequest* req = nullptr;
  const RunningJob* run = nullptr;  // set for running jobs
  PriorityKey key{};
  int order = 0;          // position in the input (arrival order for pending jobs)
  bool may_start = true;  // pending: tried in this cycle (Policy::MayStartThisCycle)

  bool running() const { return run != nullptr; }
  // Milli-GPU the job holds (running) or asks for now (pending).
  MilliGpu Gpus() const;
};

// Queue names to small dense indices. A cycle's jobs name few queues, often
// in runs: a lookup checks the last hit, then a small open-addressed table
// keyed by the name's first 8 bytes and length (names of up to 8 bytes need
// no other comparison); past 64 queues it hashes the names.
class QueueIndex {
 public:
  void Clear();
  // The queue's index, added if new.
  int Find(const std::string& queue);
  // The queue's index, or -1.
  int Lookup(const std::string& queue) const;
  const std::string& name(int i) const { return names_[i]; }
  int size() const { return static_cast<int>(names_.size()); }

 private:
  static constexpr size_t kSlots = 128;
  static uint64_t Prefix(const std::string& s);
  static size_t Slot(uint64_t prefix) { return (prefix * 0x9E3779B97F4A7C15ull) >> 57; }  // 0..127
  bool Is(int i, const std::string& queue, uint64_t prefix) const;
  int Scan(const std::string& queue, uint64_t prefix) const;
  std::vector<std::string> names_;
  std::vector<uint64_t> prefixes_;            // Prefix() of each name
  std::array<int16_t, kSlots> table_{};       // index + 1, 0: empty
  std::unordered_map<std::string, int> map_;  // once there are many queues
  mutable int last_ = -1;
};

struct CycleContext {
  TimeMs now = 0;
  const SchedulerInput* input = nullptr;
  ClusterState* state = nullptr;
  Rng* rng = nullptr;
  // Every queue named by a pending or running job of the cycle, and each
  // job's queue index (by position in input.pending / input.running).
  QueueIndex queues;
  std::vector<int> pending_queue;
  std::vector<int> running_queue;
  // Milli-GPU allocated per queue index, updated by Reserve/Unreserve during the cycle.
  std::vector<MilliGpu> queue_usage;

  int QueueOf(const JobView& j) const {
    return j.running() ? running_queue[j.order] : pending_queue[j.order];
  }
  // The position of `j` in input.pending if it is one of them (by address), or -1.
  int PendingIndex(const JobRequest& j) const {
    const auto& p = input->pending;
    std::less<const JobRequest*> before;
    if (p.empty() || before(&j, p.data()) || !before(&j, p.data() + p.size())) return -1;
    return static_cast<int>(&j - p.data());
  }
  // For a job of input.pending (found by address), or any other.
  int QueueOf(const JobRequest& j) const {
    int i = pending_queue.size() == input->pending.size() ? PendingIndex(j) : -1;
    return i >= 0 ? pending_queue[i] : queues.Lookup(j.queue);
  }
  MilliGpu Usage(int queue) const { return queue < 0 ? 0 : queue_usage[queue]; }
  void AddUsage(const JobRequest& j, MilliGpu amount) {
    int q = QueueOf(j);
    if (q >= 0) queue_usage[q] += amount;
  }
};

struct Verdict {
  std::string plugin;
  SharedText reason;  // a policy that gives many jobs one reason builds it once and returns copies
  bool never = false;
};

class Policy {
 public:
  explicit Policy(std::string name) : name_(std::move(name)) {}
  virtual ~Policy() = default;
  const std::string& name() const { return name_; }

  // Whether the policy reads queues (CycleContext::queues, queue_usage); if
  // not, the cycle does not index them.
  virtual bool UsesQueues() const { return true; }
  // Once per cycle, after running jobs are reserved and before keys are computed.
  virtual void BeginCycle(CycleContext& ctx) {}
  // QueueSort. Every key orders by Precedence() (class, then priority)
  // within a queue, above the policy's own order. Default: precedence, then
  // arrival order (submit time, then id).
  virtual PriorityKey Key(const JobRequest& job, bool running, const CycleContext& ctx) const {
    return {Precedence(job), job.submit_time, job.id};
  }
  // PreFilter: nullopt lets the job try placement.
  virtual std::optional<Verdict> Admit(const JobView& job, CycleContext& ctx) {
    return std::nullopt;
  }
  // Filter: a node predicate for this job, or nullptr for every node.
  virtual const std::function<bool(int)>* NodeFilter(const JobView& job, CycleContext& ctx) {
    return nullptr;
  }
  // Reserve / Unreserve: called for every placement taken or given back.
  virtual void Reserve(const JobRequest& job, MilliGpu amount, CycleContext& ctx) {
    ctx.AddUsage(job, amount);
  }
  virtual void Unreserve(const JobRequest& job, MilliGpu amount, CycleContext& ctx) {
    ctx.AddUsage(job, -amount);
  }
  // Whether an elastic job may take `extra` more milli-GPU of idle capacity.
  virtual bool MayGrow(const JobRequest& job, MilliGpu extra, CycleContext& ctx) { return true; }
  // PostFilter: whether `victim`, of the job's own priority class, may lose
  // GPUs so that `job` starts (asked only if Preempts(); never for a
  // scavenger job). Must not allow a victim of higher priority in the job's queue.
  virtual bool MayPreempt(const JobView& job, const JobView& victim,
                          const CycleContext& ctx) const {
    return false;
  }
  // Whether `victim`, of a class the matrix (ClassPreemption) lets `job`
  // preempt, may lose GPUs so that `job` starts, under every policy
  // (preemptive or not). Policies with queue shares or quotas narrow it.
  virtual bool MayPreemptLowerClass(const JobView& job, const JobView& victim,
                                    const CycleContext& ctx) const {
    return true;
  }
  // False if MayPreempt refuses `victim` for every job this cycle (checked
  // once a cycle, so that reclaims skip it).
  virtual bool VictimEligible(const JobView& victim, const CycleContext& ctx) const { return true; }
  // Cheap pre-check: false if MayPreempt would refuse every victim for `job`
  // (victims of a lower class are the framework's to find).
  virtual bool MayPreemptAny(const JobView& job, const CycleContext& ctx) const { return true; }
  // True if MayPreempt only ever allows victims whose key is higher than the
  // job's (lets the framework skip hopeless preemption searches quickly).
  // Victims of a lower class have higher keys under every policy that says so.
  virtual bool KeyOrderedPreemption() const { return false; }
  virtual bool Preempts() const { return false; }
  // Whether pending job `index` (of input.pending) could start in this cycle
  // at all. Jobs that cannot are left out of a cycle that explains nothing.
  virtual bool MayStartThisCycle(size_t index, const CycleContext& ctx) const { return true; }
  // True once no later pending job can be admitted this cycle (lets a cycle
  // that explains nothing stop early).
  virtual bool Saturated(const CycleContext& ctx) const { return false; }
  // When to run another cycle even if nothing changes (Decisions::recheck_at); 0: never.
  virtual TimeMs RecheckAt(const CycleContext& ctx) const { return 0; }
  // After `job` found no place (even with preemption). Returns a verdict to
  // block every later job (head-of-line), or nullopt to go on with the next.
  virtual std::optional<Verdict> OnNoFit(const JobView& job, CycleContext& ctx) {
    return std::nullopt;
  }
  // A promise that lets the framework skip jobs bound to fail: pending jobs
  // of one class (*cls equal) with equal requests get the same answers from
  // Admit, NodeFilter, MayPreemptAny, MayPreempt and OnNoFit as long as
  // nothing is placed, so once one of them fails to place and to preempt,
  // the others are not tried until a job is placed. false: no promise.
  // The framework asks once a cycle per pending job it may try (after
  // BeginCycle and the job's key): a job's class must not change within a
  // cycle. A job of a failed class and request is skipped without asking
  // Admit or OnNoFit. Jobs of different Precedence() must not share a class.
  virtual bool FailureClass(const JobView& job, const CycleContext& ctx,
                            std::pair<int64_t, int64_t>* cls) const {
    return false;
  }
  // Whether FailureClass ever returns true (if not, the cycle does not ask it).
  virtual bool UsesFailureClasses() const { return false; }

 private:
  std::string name_;
};

// Options given to a policy factory. Get* mark a key as known; Check()
// rejects keys nobody asked for, naming them and the known ones.
class PolicyOptions {
 public:
  explicit PolicyOptions(const std::map<std::string, std::string>& options) : options_(options) {}
  Result<double> GetDouble(const std::string& key, double fallback);
  Result<int64_t> GetInt(const std::string& key, int64_t fallback);
  std::string GetString(const std::string& key, const std::string& fallback);
  // Keys with `prefix` (e.g. "queue."), all counted as known.
  std::map<std::string, std::string> WithPrefix(const std::string& prefix);
  Status Check(const std::string& policy) const;

 private:
  const std::map<std::string, std::string>& options_;
  std::vector<std::string> known_;
  std::vector<std::string> prefixes_;
};

using PolicyFactory = std::function<Result<std::unique_ptr<Policy>>(PolicyOptions&)>;

// Registers a policy by name, next to the built-in ones (tests register
// fakes this way). Thread-safe. Returns false if the name is taken.
bool RegisterPolicy(const std::string& name, PolicyFactory factory);

// The built-in policies' factories (policies/*.cc); the registry lists them.
Result<std::unique_ptr<Policy>> MakeFifoPolicy(PolicyOptions& options);
Result<std::unique_ptr<Policy>> MakeBackfillPolicy(PolicyOptions& options);
Result<std::unique_ptr<Policy>> MakeTiresiasPolicy(PolicyOptions& options);
Result<std::unique_ptr<Policy>> MakeStaticPolicy(PolicyOptions& options);
Result<std::unique_ptr<Policy>> MakeFairSharePolicy(PolicyOptions& options);
Result<std::unique_ptr<Policy>> MakeSrtfOraclePolicy(PolicyOptions& options);
Result<std::unique_ptr<Policy>> MakeDynamicPolicy(PolicyOptions& options);

}  // namespace berth::sched
