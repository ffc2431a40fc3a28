// fairshare: every queue is guaranteed a share of the GPUs (weights from
// queue.<name>.share, 1 for unlisted queues, split among the queues that want
// GPUs now). Idle share may be borrowed by any queue; a queue below its
// guarantee takes it back by preempting the newest jobs of queues above
// theirs. Queues furthest below their guarantee go first; within a queue,
// higher class, then higher priority first (sched/priority.h), then arrival
// order, and a higher-priority job may preempt a lower-priority job of its
// class in the same queue. A lower class is preempted in the job's own queue,
// or in another queue only as a reclaim (as above): shares keep holding.
#include <algorithm>
#include <limits>
#include <vector>

#include "sched/policy.h"
#include "sched/queue_shares.h"

namespace berth::sched {

namespace {

class FairSharePolicy final : public Policy {
 public:
  explicit FairSharePolicy(QueueShares shares) : Policy("fairshare"), shares_(std::move(shares)) {}

  void BeginCycle(CycleContext& ctx) override {
    shares_.Compute(ctx, ctx.state->capacity());
    const int nq = ctx.queues.size();
    min_running_priority_.assign(nq, std::numeric_limits<int64_t>::max());
    for (size_t i = 0; i < ctx.input->running.size(); ++i) {
      int64_t& m = min_running_priority_[ctx.running_queue[i]];
      m = std::min(m, ctx.input->running[i].request.priority);
    }
    // Per pending queue: its smallest request and highest priority.
    waiting_.assign(nq, Waiting{});
    min_need_ = std::numeric_limits<MilliGpu>::max();
    const auto& pend = ctx.input->pending;
    for (size_t i = 0; i < pend.size(); ++i) {
      const JobRequest& j = pend[i];
      Waiting& w = waiting_[ctx.pending_queue[i]];
      w.any = true;
      MilliGpu need = j.task.gpus * (j.min_tasks > 0 ? std::min(j.min_tasks, j.tasks) : j.tasks);
      w.min_need = std::min(w.min_need, need);
      w.max_priority = std::max(w.max_priority, j.priority);
      min_need_ = std::min(min_need_, need);
    }
    waiting_queues_.clear();
    for (int q = 0; q < nq; ++q) {
      if (waiting_[q].any) waiting_queues_.push_back(q);
    }
  }

  // No free GPUs for anyone and no queue that could reclaim or preempt by priority.
  bool Saturated(const CycleContext& ctx) const override {
    if (ctx.state->free_gpu() >= min_need_) return false;
    for (int q : waiting_queues_) {
      const Waiting& w = waiting_[q];
      if (min_running_priority_[q] < w.max_priority) return false;
      if (ctx.queue_usage[q] + w.min_need <= shares_.Guarantee(q)) return false;
    }
    return true;
  }

  bool MayPreemptAny(const JobView& job, const CycleContext& ctx) const override {
    int q = ctx.QueueOf(job);
    if (min_running_priority_[q] < job.req->priority) return true;
    return ctx.queue_usage[q] + job.Gpus() <= shares_.Guarantee(q);
  }

  PriorityKey Key(const JobRequest& job, bool running, const CycleContext& ctx) const override {
    int q = ctx.QueueOf(job);
    int64_t ratio = ctx.Usage(q) * 1000 / std::max<MilliGpu>(1, shares_.Guarantee(q));
    return {ratio, Precedence(job), job.submit_time};
  }

  bool Preempts() const override { return true; }

  bool MayPreempt(const JobView& job, const JobView& victim,
                  const CycleContext& ctx) const override {
    int q = ctx.QueueOf(job);
    int vq = ctx.QueueOf(victim);
    if (q == vq) return victim.req->priority < job.req->priority;
    return Reclaims(q, job, vq, ctx);
  }

  bool MayPreemptLowerClass(const JobView& job, const JobView& victim,
                            const CycleContext& ctx) const override {
    int q = ctx.QueueOf(job);
    int vq = ctx.QueueOf(victim);
    return q == vq || Reclaims(q, job, vq, ctx);
  }

  // Every answer above depends on the job only through its queue, class, priority and request.
  bool FailureClass(const JobView& job, const CycleContext& ctx,
                    std::pair<int64_t, int64_t>* cls) const override {
    *cls = {ctx.QueueOf(job), Precedence(*job.req)};
    return true;
  }
  bool UsesFailureClasses() const override { return true; }

 private:
  // Reclaim: the job's queue stays within its guarantee, the victim's is above its own.
  bool Reclaims(int q, const JobView& job, int vq, const CycleContext& ctx) const {
    return ctx.queue_usage[q] + job.Gpus() <= shares_.Guarantee(q) &&
           ctx.queue_usage[vq] > shares_.Guarantee(vq);
  }

  QueueShares shares_;
  std::vector<int64_t> min_running_priority_;  // per queue index (max: nothing running)
  struct Waiting {
    bool any = false;
    MilliGpu min_need = std::numeric_limits<MilliGpu>::max();
    int64_t max_priority = std::numeric_limits<int64_t>::min();
  };
  std::vector<Waiting> waiting_;  // per queue index
  std::vector<int> waiting_queues_;
  MilliGpu min_need_ = 0;
};

}  // namespace

Result<std::unique_ptr<Policy>> MakeFairSharePolicy(PolicyOptions& options) {
  ASSIGN_OR_RETURN(QueueShares shares, QueueShares::FromOptions(options, true));
  return std::unique_ptr<Policy>(new FairSharePolicy(std::move(shares)));
}

}  // namespace berth::sched
