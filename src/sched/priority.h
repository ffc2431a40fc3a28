// Priority classes and priorities, the same for every policy (see
// docs/scheduling.md, "Priority classes and preemption").
//
// Ordering: within a queue, a job of a higher class goes before one of a
// lower class, and within a class a higher priority goes first; only then
// does the policy's own order (arrival, attained service, remaining time)
// decide. Policies that order queues among themselves (fairshare: the queue
// furthest below its share first; static: each queue its own line) keep that
// order above the class. Precedence() is the one number every policy's key
// carries for it.
//
// Preemption: ClassPreemption() is the matrix every policy consults through
// the framework before its own rule (Policy::MayPreempt):
//
//   preemptor \ victim   interactive   batch    scavenger
//   interactive          policy        yes      yes
//   batch                no            policy   yes
//   scavenger            no            no       no
//
// "yes": a lower class is preempted when the job has no room otherwise, under
// every policy, even those that never preempt by their own rule (subject to
// Policy::MayPreemptLowerClass, where queue shares and quotas keep holding);
// "policy": within a class the policy's own rule decides, and it never lets a
// job preempt one of higher priority (priority orders a class; it is not
// itself a licence to preempt); "no": never. The victim's grace is its
// terminationGracePeriodSeconds, at most 30 s for a scavenger
// (model::PreemptionGrace).
#pragma once

#include <algorithm>
#include <cstdint>

#include "sched/scheduler.h"

namespace berth::sched {

using model::PriorityClass;

// Priorities are clamped to model's bounds here (a stored job from before
// the bounds may hold more): 2 * 2^20 values per class.
inline constexpr int kPriorityBits = 21;
inline constexpr int64_t kPrecedenceLimit = int64_t{3} << kPriorityBits;  // Precedence() < this

// The job's place by class, then priority: smaller goes first. 0 for the
// highest priority interactive job, below kPrecedenceLimit (2^23).
inline int64_t Precedence(const JobRequest& job) {
  int64_t p = std::clamp<int64_t>(job.priority, model::kMinPriority, model::kMaxPriority);
  int64_t cls =
      static_cast<int64_t>(PriorityClass::kInteractive) - static_cast<int64_t>(job.priority_class);
  return (cls << kPriorityBits) + (model::kMaxPriority - p);
}

enum class ClassRule : uint8_t {
  kNever,       // the job may not preempt the victim
  kPolicy,      // same class: the policy's own rule decides
  kLowerClass,  // the victim's class is lower: preempted when needed
};

// The preemption matrix above.
inline ClassRule ClassPreemption(PriorityClass job, PriorityClass victim) {
  if (job == PriorityClass::kScavenger) return ClassRule::kNever;
  if (job == victim) return ClassRule::kPolicy;
  return job > victim ? ClassRule::kLowerClass : ClassRule::kNever;
}

}  // namespace berth::sched
