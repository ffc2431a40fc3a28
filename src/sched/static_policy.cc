// static: the cluster cut into fixed per-queue quotas (queue.<name>.share, a
// fraction of all GPUs), as teams owning "their" servers. A queue never uses
// more than its quota, even when the rest of the cluster is idle; within it
// jobs go in arrival order, and a job that cannot start holds back the rest
// of its queue (each queue is its own fifo). No preemption. A queue with nothing running may always start
// one job, even one larger than its quota, so no job waits forever.
#include <unordered_set>

#include "sched/policy.h"
#include "sched/queue_shares.h"

namespace berth::sched {

namespace {

class StaticPolicy final : public Policy {
 public:
  explicit StaticPolicy(QueueShares shares) : Policy("static"), shares_(std::move(shares)) {}

  void BeginCycle(CycleContext& ctx) override {
    shares_.Compute(ctx, ctx.state->capacity());
    closed_.clear();
    std::unordered_set<std::string> queues;
    const std::string* last = nullptr;
    for (const auto& j : ctx.input->pending) {
      if (last == nullptr || *last != j.queue) queues.insert(j.queue);
      last = &j.queue;
    }
    pending_queues_ = queues.size();
  }

  bool Saturated(const CycleContext& ctx) const override { return closed_.size() >= pending_queues_; }

  std::optional<Verdict> OnNoFit(const JobView& job, CycleContext& ctx) override {
    closed_.insert(job.req->queue);
    return std::nullopt;
  }

  std::optional<Verdict> Admit(const JobView& job, CycleContext& ctx) override {
    const std::string& q = job.req->queue;
    if (closed_.count(q)) {
      if (!ctx.input->explain_waiting) return Verdict{"static", "", false};
      return Verdict{"static", "queue " + q + " waits behind its first job", false};
    }
    MilliGpu used = ctx.queue_usage[q];
    MilliGpu quota = shares_.Guarantee(q);
    if (used == 0 || used + job.Gpus() <= quota) return std::nullopt;
    closed_.insert(q);
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
  std::unordered_set<std::string> closed_;  // queues whose head cannot start this cycle
  size_t pending_queues_ = 0;
};

}  // namespace

Result<std::unique_ptr<Policy>> MakeStaticPolicy(PolicyOptions& options) {
  ASSIGN_OR_RETURN(QueueShares shares, QueueShares::FromOptions(options, false));
  return std::unique_ptr<Policy>(new StaticPolicy(std::move(shares)));
}

}  // namespace berth::sched
