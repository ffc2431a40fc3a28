// Least-attained-service scheduling with discretized priority levels, the
// family behind `tiresias` and `dynamic`.
//
// A job's attained service is the GPU-time it has received (GPUs x time,
// Tiresias' "2D" age). Levels are cut at increasing thresholds; a job in a
// lower level always goes first and may preempt jobs in higher levels, never
// jobs in its own level. Within a level jobs go in arrival order (Tiresias) or
// least attained first (dynamic). A job that has waited more than
// `promote_knob` times the time it has run in all is promoted to the top level and its
// attained service counted from zero again (Tiresias' starvation guard).
// Class and priority come before the level (sched/priority.h): key[0] is
// Precedence() << 6 | level, and within a class a job preempts only jobs of
// no higher priority in a higher level.
#pragma once

#include <unordered_map>
#include <vector>

#include "sched/policy.h"

namespace berth::sched {

struct LasOptions {
  std::vector<DurationMs> thresholds;  // GPU-ms, increasing; levels = thresholds + 1
  bool least_attained_within_level = false;
  double promote_knob = 0;             // 0: no starvation guard
  DurationMs min_run = 0;              // a job that (re)started less than this ago is not preempted
  DurationMs recheck_floor = kSecond;  // the earliest next time-driven cycle
  // Lease mode (dynamic) instead of Tiresias' reset: a job of level >= 1
  // that has waited promote_knob x max(its last run, min_lease) gets a lease
  // of (time waited / promote_knob): top level and not preemptible until it
  // ends. Long jobs so get at least 1 / (1 + knob) of the time, in runs of at
  // least min_lease, which bounds their slowdown and the makespan.
  bool lease_mode = false;
  DurationMs min_lease = kHour;
};

class LasPolicy : public Policy {
 public:
  LasPolicy(std::string name, LasOptions options);

  bool UsesQueues() const override { return false; }
  void BeginCycle(CycleContext& ctx) override;
  PriorityKey Key(const JobRequest& job, bool running, const CycleContext& ctx) const override;
  bool Preempts() const override { return true; }
  bool KeyOrderedPreemption() const override { return true; }
  bool MayPreempt(const JobView& job, const JobView& victim,
                  const CycleContext& ctx) const override;
  bool VictimEligible(const JobView& victim, const CycleContext& ctx) const override;
  // MayPreempt reads the job only through key[0] (precedence and level); the victims
  // it allows (all of a higher level) lie within any same-level job's
  // VictimBound; Admit, NodeFilter and OnNoFit are the defaults.
  bool FailureClass(const JobView& job, const CycleContext& ctx,
                    std::pair<int64_t, int64_t>* cls) const override {
    *cls = {job.key[0], 0};
    return true;
  }
  bool UsesFailureClasses() const override { return true; }
  TimeMs RecheckAt(const CycleContext& ctx) const override;

  // Attained service counted since the job's last promotion.
  DurationMs Attained(const JobRequest& job) const;
  int Level(DurationMs attained) const;
  // Wall time the job has run in all (attained service over its GPUs).
  static DurationMs Executed(const JobRequest& job);

  static constexpr int kLevelBits = 6;  // levels <= 64
  static int64_t PackKey0(const JobRequest& job, int level) {
    return Precedence(job) << kLevelBits | level;
  }

 private:
  LasOptions options_;
  bool Leased(JobId id, TimeMs now) const {
    auto it = lease_until_.find(id);
    return it != lease_until_.end() && it->second > now;
  }
  std::unordered_map<JobId, DurationMs> offset_;  // attained service at promotion
  std::unordered_map<JobId, TimeMs> lease_until_;
  std::vector<DurationMs> pending_attained_;  // Attained() per pending job this cycle (reset mode)
  std::vector<int> pending_level_;            // and its Level()
};

}  // namespace berth::sched
