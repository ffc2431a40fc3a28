// srtf-oracle: shortest remaining GPU-time first, preemptive, with the true
// durations (JobRequest::expected_duration) that only a simulator knows. An
// upper bound for non-clairvoyant policies, not something to deploy. Jobs
// without a known duration go last, in arrival order.
#include <limits>

#include "sched/policy.h"

namespace berth::sched {

namespace {

class SrtfOraclePolicy final : public Policy {
 public:
  SrtfOraclePolicy() : Policy("srtf-oracle") {}
  bool UsesQueues() const override { return false; }

  PriorityKey Key(const JobRequest& job, bool running, const CycleContext& ctx) const override {
    if (job.expected_duration < 0) return {std::numeric_limits<int64_t>::max(), job.submit_time, job.id};
    DurationMs left = std::max<DurationMs>(0, job.expected_duration - job.progress);
    // Remaining GPU-seconds: the GPUs the job asked for times its time left.
    int64_t gpus = (job.task.gpus * job.tasks + kWholeGpu - 1) / kWholeGpu;
    return {left / kSecond * std::max<int64_t>(1, gpus), job.submit_time, job.id};
  }
  bool Preempts() const override { return true; }
  bool KeyOrderedPreemption() const override { return true; }
  bool MayPreempt(const JobView& job, const JobView& victim, const CycleContext& ctx) const override {
    return victim.key[0] > job.key[0];
  }
};

}  // namespace

Result<std::unique_ptr<Policy>> MakeSrtfOraclePolicy(PolicyOptions& options) {
  return std::unique_ptr<Policy>(new SrtfOraclePolicy());
}

}  // namespace berth::sched
