// static: the cluster cut into fixed per-queue quotas (queue.<name>.share, a
// fraction of all GPUs), as teams owning "their" servers. A queue never uses
// more than its quota, even when the rest of the cluster is idle; within it
// jobs go in arrival order, and a job that cannot start holds back the rest
// of its queue (each queue is its own fifo). No preemption. A queue with nothing running may always start
// one job, even one larger than its quota, so no job waits forever.
#include <limits>
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
    // Each queue is a fifo: in arrival order, only the jobs that fit in what
    // is left of its quota (and the first that does not) can be tried.
    const auto& pend = ctx.input->pending;
    bool arrival_order = true;
    for (size_t i = 1; i < pend.size() && arrival_order; ++i) {
      arrival_order = pend[i - 1].submit_time < pend[i].submit_time ||
                      (pend[i - 1].submit_time == pend[i].submit_time && pend[i - 1].id < pend[i].id);
    }
    if (!arrival_order) {  // the shortcut needs the input in arrival order
      may_start_.assign(pend.size(), true);
      return;
    }
    may_start_.assign(ctx.input->pending.size(), false);
    std::unordered_map<std::string, MilliGpu> room;
    std::unordered_map<std::string, bool> done;
    for (size_t i = 0; i < ctx.input->pending.size(); ++i) {
      const JobRequest& j = ctx.input->pending[i];
      bool& d = done[j.queue];
      if (d) continue;
      auto it = room.find(j.queue);
      if (it == room.end()) {
        MilliGpu used = ctx.queue_usage.count(j.queue) ? ctx.queue_usage.at(j.queue) : 0;
        it = room.emplace(j.queue, used == 0 ? std::numeric_limits<MilliGpu>::max() / 4
                                             : shares_.Guarantee(j.queue) - used).first;
      }
      may_start_[i] = true;
      MilliGpu need = j.task.gpus * j.tasks;
      if (need > it->second) {
        d = true;
      } else {
        it->second = it->second == std::numeric_limits<MilliGpu>::max() / 4 ? shares_.Guarantee(j.queue) - need
                                                                              : it->second - need;
      }
    }
  }

  bool MayStartThisCycle(size_t index, const CycleContext& ctx) const override { return may_start_[index]; }

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
  std::vector<bool> may_start_;                      // per pending job, this cycle
};

}  // namespace

Result<std::unique_ptr<Policy>> MakeStaticPolicy(PolicyOptions& options) {
  ASSIGN_OR_RETURN(QueueShares shares, QueueShares::FromOptions(options, false));
  return std::unique_ptr<Policy>(new StaticPolicy(std::move(shares)));
}

}  // namespace berth::sched
