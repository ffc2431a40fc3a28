// fairshare: every queue is guaranteed a share of the GPUs (weights from
// queue.<name>.share, 1 for unlisted queues, split among the queues that want
// GPUs now). Idle share may be borrowed by any queue; a queue below its
// guarantee takes it back by preempting the newest jobs of queues above
// theirs. Queues furthest below their guarantee go first; within a queue,
// higher priority first, then arrival order, and a higher-priority job may
// preempt a lower-priority job of the same queue.
#include <algorithm>
#include <limits>
#include <unordered_map>

#include "sched/policy.h"
#include "sched/queue_shares.h"

namespace berth::sched {

namespace {

class FairSharePolicy final : public Policy {
 public:
  explicit FairSharePolicy(QueueShares shares) : Policy("fairshare"), shares_(std::move(shares)) {}

  void BeginCycle(CycleContext& ctx) override {
    shares_.Compute(ctx, ctx.state->capacity());
    last_now_ = -1;
    min_running_priority_.clear();
    for (const RunningJob& r : ctx.input->running) {
      auto [it, fresh] = min_running_priority_.emplace(r.request.queue, r.request.priority);
      if (!fresh) it->second = std::min(it->second, r.request.priority);
    }
    // Per pending queue: its smallest request and highest priority.
    waiting_.clear();
    min_need_ = std::numeric_limits<MilliGpu>::max();
    Waiting* last = nullptr;
    const std::string* last_name = nullptr;
    for (const JobRequest& j : ctx.input->pending) {
      if (last_name == nullptr || *last_name != j.queue) {
        last = &waiting_.emplace(j.queue, Waiting{}).first->second;
        last_name = &j.queue;
      }
      MilliGpu need = j.task.gpus * (j.min_tasks > 0 ? std::min(j.min_tasks, j.tasks) : j.tasks);
      last->min_need = std::min(last->min_need, need);
      last->max_priority = std::max(last->max_priority, j.priority);
      min_need_ = std::min(min_need_, need);
    }
  }

  // No free GPUs for anyone and no queue that could reclaim or preempt by priority.
  bool Saturated(const CycleContext& ctx) const override {
    if (ctx.state->free_gpu() >= min_need_) return false;
    for (const auto& [q, w] : waiting_) {
      auto it = min_running_priority_.find(q);
      if (it != min_running_priority_.end() && it->second < w.max_priority) return false;
      auto u = ctx.queue_usage.find(q);
      MilliGpu used = u == ctx.queue_usage.end() ? 0 : u->second;
      if (used + w.min_need <= shares_.Guarantee(q)) return false;
    }
    return true;
  }

  bool MayPreemptAny(const JobView& job, const CycleContext& ctx) const override {
    const std::string& q = job.req->queue;
    auto it = min_running_priority_.find(q);
    if (it != min_running_priority_.end() && it->second < job.req->priority) return true;
    auto u = ctx.queue_usage.find(q);
    MilliGpu used = u == ctx.queue_usage.end() ? 0 : u->second;
    return used + job.Gpus() <= shares_.Guarantee(q);
  }

  PriorityKey Key(const JobRequest& job, bool running, const CycleContext& ctx) const override {
    // Jobs of one queue tend to come in runs: remember the last queue's ratio.
    if (job.queue != last_queue_ || ctx.now != last_now_) {
      auto it = ctx.queue_usage.find(job.queue);
      MilliGpu used = it == ctx.queue_usage.end() ? 0 : it->second;
      last_ratio_ = used * 1000 / std::max<MilliGpu>(1, shares_.Guarantee(job.queue));
      last_queue_ = job.queue;
      last_now_ = ctx.now;
    }
    return {last_ratio_, -job.priority, job.submit_time};
  }

  bool Preempts() const override { return true; }

  bool MayPreempt(const JobView& job, const JobView& victim, const CycleContext& ctx) const override {
    const std::string& q = job.req->queue;
    const std::string& vq = victim.req->queue;
    if (q == vq) return victim.req->priority < job.req->priority;
    auto usage = [&](const std::string& name) {
      auto it = ctx.queue_usage.find(name);
      return it == ctx.queue_usage.end() ? MilliGpu{0} : it->second;
    };
    // Reclaim: the job's queue stays within its guarantee, the victim's is above its own.
    return usage(q) + job.Gpus() <= shares_.Guarantee(q) && usage(vq) > shares_.Guarantee(vq);
  }

 private:
  QueueShares shares_;
  std::unordered_map<std::string, int64_t> min_running_priority_;
  struct Waiting {
    MilliGpu min_need = std::numeric_limits<MilliGpu>::max();
    int64_t max_priority = std::numeric_limits<int64_t>::min();
  };
  std::unordered_map<std::string, Waiting> waiting_;
  MilliGpu min_need_ = 0;
  mutable std::string last_queue_;
  mutable TimeMs last_now_ = -1;
  mutable int64_t last_ratio_ = 0;
};

}  // namespace

Result<std::unique_ptr<Policy>> MakeFairSharePolicy(PolicyOptions& options) {
  ASSIGN_OR_RETURN(QueueShares shares, QueueShares::FromOptions(options, true));
  return std::unique_ptr<Policy>(new FairSharePolicy(std::move(shares)));
}

}  // namespace berth::sched
