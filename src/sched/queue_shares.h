// Per-queue shares for the static and fairshare policies, from options
// "queue.<name>.share" = a fraction of the cluster's GPUs (static) or a
// weight (fairshare). Queues without a share split what is left equally.
#pragma once

#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include "sched/policy.h"

namespace berth::sched {

class QueueShares {
 public:
  // Reads queue.*.share options; InvalidArgument names a bad one.
  static Result<QueueShares> FromOptions(PolicyOptions& options, bool weights);

  // Milli-GPU each queue seen in `ctx` (pending or running) is guaranteed.
  void Compute(const CycleContext& ctx, MilliGpu capacity);
  // By queue index of the cycle (ctx.queues).
  MilliGpu Guarantee(int queue) const { return queue < 0 ? 0 : guarantee_[queue]; }

 private:
  std::map<std::string, double> given_;
  bool weights_ = false;
  std::vector<MilliGpu> guarantee_;
};

}  // namespace berth::sched
