// static: the cluster cut into fixed per-queue quotas (queue.<name>.share, a
// fraction of all GPUs), as teams owning "their" servers. A queue never uses
// more than its quota, even when the rest of the cluster is idle; within it
// jobs go in arrival order, and a job that does not fit lets smaller ones
// behind it go. No preemption. A queue with nothing running may always start
// one job, even one larger than its quota, so no job waits forever.
#include "sched/policy.h"
#include "sched/queue_shares.h"

namespace berth::sched {

namespace {

class StaticPolicy final : public Policy {
 public:
  explicit StaticPolicy(QueueShares shares) : Policy("static"), shares_(std::move(shares)) {}

  void BeginCycle(CycleContext& ctx) override { shares_.Compute(ctx, ctx.state->capacity()); }

  std::optional<Verdict> Admit(const JobView& job, CycleContext& ctx) override {
    const std::string& q = job.req->queue;
    MilliGpu used = ctx.queue_usage[q];
    MilliGpu quota = shares_.Guarantee(q);
    if (used == 0 || used + job.Gpus() <= quota) return std::nullopt;
    if (!ctx.input->explain_waiting) return Verdict{"static", "", false};
    return Verdict{"static", "queue " + q + " uses " + FormatMilli(used) + " of its quota of " + FormatMilli(quota) +
                                 " GPUs",
                   false};
  }

  bool MayGrow(const JobRequest& job, MilliGpu extra, CycleContext& ctx) override {
    return ctx.queue_usage[job.queue] + extra <= shares_.Guarantee(job.queue);
  }

 private:
  QueueShares shares_;
};

}  // namespace

Result<std::unique_ptr<Policy>> MakeStaticPolicy(PolicyOptions& options) {
  ASSIGN_OR_RETURN(QueueShares shares, QueueShares::FromOptions(options, false));
  return std::unique_ptr<Policy>(new StaticPolicy(std::move(shares)));
}

}  // namespace berth::sched
