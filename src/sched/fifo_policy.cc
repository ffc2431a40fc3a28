// fifo: jobs start in arrival order; the first job that does not fit blocks
// every job behind it (no skipping, no preemption). The baseline every
// other policy is measured against.
#include "sched/policy.h"

namespace berth::sched {

namespace {

class FifoPolicy final : public Policy {
 public:
  FifoPolicy() : Policy("fifo") {}
  bool UsesQueues() const override { return false; }

  std::optional<Verdict> OnNoFit(const JobView& job, CycleContext& ctx) override {
    return Verdict{"fifo", "waiting behind job " + std::to_string(job.req->id) + ", first in line",
                   false};
  }
};

}  // namespace

Result<std::unique_ptr<Policy>> MakeFifoPolicy(PolicyOptions& options) {
  return std::unique_ptr<Policy>(new FifoPolicy());
}

}  // namespace berth::sched
