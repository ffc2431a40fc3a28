// static: the cluster cut into fixed per-queue quotas (queue.<name>.share, a
// fraction of all GPUs), as teams owning "their" servers. A queue never uses
// more than its quota, even when the rest of the cluster is idle; within it
// jobs go in arrival order, and a job that cannot start holds back the rest
// of its queue (each queue is its own fifo). No preemption. A queue with nothing running may always start
// one job, even one larger than its quota, so no job waits forever.
#include <unordered_map>
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
    left_.clear();
    int* count = nullptr;
    const std::string* last = nullptr;
    for (const auto& j : ctx.input->pending) {
      if (last == nullptr || *last != j.queue) count = &left_[j.queue];
      last = &j.queue;
      ++*count;
    }
    open_ = static_cast<int>(left_.size());
  }

  // Every queue with pending jobs is closed or has had all its jobs tried.
  bool Saturated(const CycleContext& ctx) const override { return open_ <= 0; }

  std::optional<Verdict> OnNoFit(const JobView& job, CycleContext& ctx) override {
    Close(job.req->queue);
    return std::nullopt;
  }

  std::optional<Verdict> Admit(const JobView& job, CycleContext& ctx) override {
    const std::string& q = job.req->queue;
    auto it = left_.find(q);
    if (it != left_.end() && --it->second == 0 && !closed_.count(q)) --open_;
    if (closed_.count(q)) {
      if (!ctx.input->explain_waiting) return Verdict{"static", "", false};
      return Verdict{"static", "queue " + q + " waits behind its first job", false};
    }
    MilliGpu used = ctx.queue_usage[q];
    MilliGpu quota = shares_.Guarantee(q);
    if (used == 0 || used + job.Gpus() <= quota) return std::nullopt;
    Close(q);
    if (!ctx.input->explain_waiting) return Verdict{"static", "", false};
    return Verdict{"static", "queue " + q + " uses " + FormatMilli(used) + " of its quota of " + FormatMilli(quota) +
                                 " GPUs",
                   false};
  }

  bool MayGrow(const JobRequest& job, MilliGpu extra, CycleContext& ctx) override {
    return ctx.queue_usage[job.queue] + extra <= shares_.Guarantee(job.queue);
  }

 private:
  void Close(const std::string& q) {
    if (!closed_.insert(q).second) return;
    auto it = left_.find(q);
    if (it != left_.end() && it->second > 0) --open_;
  }

  QueueShares shares_;
  std::unordered_set<std::string> closed_;           // queues whose head cannot start this cycle
  std::unordered_map<std::string, int> left_;        // pending jobs per queue not yet tried
  int open_ = 0;                                     // queues neither closed nor fully tried
};

}  // namespace

Result<std::unique_ptr<Policy>> MakeStaticPolicy(PolicyOptions& options) {
  ASSIGN_OR_RETURN(QueueShares shares, QueueShares::FromOptions(options, false));
  return std::unique_ptr<Policy>(new StaticPolicy(std::move(shares)));
}

}  // namespace berth::sched
