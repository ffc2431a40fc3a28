// srtf-oracle: shortest remaining GPU-time first, preemptive, with the true
// durations (JobRequest::expected_duration) that only a simulator knows. An
// upper bound for non-clairvoyant policies, not something to deploy. Jobs
// without a known duration go last, in arrival order. Class and priority
// come first (sched/priority.h): key[0] is Precedence() above the remaining
// GPU-seconds (40 bits, about 35,000 GPU-years), and within a class a job
// preempts only jobs of no higher priority with more left.
#include <limits>

#include "sched/policy.h"

namespace berth::sched {

namespace {

class SrtfOraclePolicy final : public Policy {
 public:
  SrtfOraclePolicy() : Policy("srtf-oracle") {}
  bool UsesQueues() const override { return false; }

  PriorityKey Key(const JobRequest& job, bool running, const CycleContext& ctx) const override {
    const int64_t rank = Precedence(job) << kLeftBits;
    if (job.expected_duration < 0) return {rank | kLeftMask, job.submit_time, job.id};
    DurationMs left = std::max<DurationMs>(0, job.expected_duration - job.progress);
    // Remaining GPU-seconds: the GPUs the job asked for times its time left.
    int64_t gpus = (job.task.gpus * job.tasks + kWholeGpu - 1) / kWholeGpu;
    int64_t work = 0;
    if (__builtin_mul_overflow(left / kSecond, std::max<int64_t>(1, gpus), &work) ||
        work > kLeftMask)
      work = kLeftMask;
    return {rank | work, job.submit_time, job.id};
  }
  bool Preempts() const override { return true; }
  bool KeyOrderedPreemption() const override { return true; }
  bool MayPreempt(const JobView& job, const JobView& victim,
                  const CycleContext& ctx) const override {
    // (same class: the victim's precedence no better, its work left larger)
    return (victim.key[0] >> kLeftBits) >= (job.key[0] >> kLeftBits) &&
           (victim.key[0] & kLeftMask) > (job.key[0] & kLeftMask);
  }

 private:
  static constexpr int kLeftBits = 40;
  static constexpr int64_t kLeftMask = (int64_t{1} << kLeftBits) - 1;
  static_assert(((kPrecedenceLimit - 1) >> (63 - kLeftBits)) == 0,
                "precedence and work fit in 63 bits");
};

}  // namespace

Result<std::unique_ptr<Policy>> MakeSrtfOraclePolicy(PolicyOptions& options) {
  return std::unique_ptr<Policy>(new SrtfOraclePolicy());
}

}  // namespace berth::sched
