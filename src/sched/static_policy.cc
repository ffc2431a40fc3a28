// static: the cluster cut into fixed per-queue quotas (queue.<name>.share, a
// fraction of all GPUs), as teams owning "their" servers. A queue never uses
// more than its quota, even when the rest of the cluster is idle; within it
// jobs go in arrival order, and a job that cannot start holds back the rest
// of its queue (each queue is its own fifo). No preemption. A queue with nothing running may always
// start one job, even one larger than its quota, so no job waits forever. Within a queue, class and
// priority order its line (sched/priority.h), and a job may preempt a lower class only within its
// own queue's quota (its quota check leaves out what the queue's jobs of lower classes hold).
#include <array>
#include <limits>
#include <vector>

#include "sched/policy.h"
#include "sched/queue_shares.h"

namespace berth::sched {

namespace {

class StaticPolicy final : public Policy {
 public:
  explicit StaticPolicy(QueueShares shares) : Policy("static"), shares_(std::move(shares)) {}

  void BeginCycle(CycleContext& ctx) override {
    shares_.Compute(ctx, ctx.state->capacity());
    const int nq = ctx.queues.size();
    closed_.assign(nq, false);
    behind_.assign(nq, SharedText());
    left_.assign(nq, 0);
    for (int q : ctx.pending_queue) ++left_[q];
    class_usage_.assign(nq, {});
    int min_running_class = 3;
    for (size_t i = 0; i < ctx.input->running.size(); ++i) {
      const RunningJob& r = ctx.input->running[i];
      const int c = static_cast<int>(r.request.priority_class);
      class_usage_[ctx.running_queue[i]][c] +=
          r.request.task.gpus * static_cast<MilliGpu>(r.placements.size());
      min_running_class = std::min(min_running_class, c);
    }
    open_ = 0;
    for (int q = 0; q < nq; ++q) open_ += left_[q] > 0 ? 1 : 0;
    // Each queue is a fifo: in arrival order, only the jobs that fit in what
    // is left of its quota (and the first that does not) can be tried.
    const auto& pend = ctx.input->pending;
    may_start_.clear();
    // A cycle that explains every wait tries every job (MayStartThisCycle is not asked).
    if (ctx.input->explain_waiting) return;
    // (and one class and priority for all, none above a running job's: key
    // order is arrival order and the quota check counts every running job)
    bool arrival_order =
        pend.empty() || static_cast<int>(pend[0].priority_class) <= min_running_class;
    for (size_t i = 1; i < pend.size() && arrival_order; ++i) {
      arrival_order =
          pend[i - 1].submit_time < pend[i].submit_time ||
          (pend[i - 1].submit_time == pend[i].submit_time && pend[i - 1].id < pend[i].id);
      arrival_order = arrival_order && pend[i].priority == pend[0].priority &&
                      pend[i].priority_class == pend[0].priority_class;
    }
    if (!arrival_order) {  // the shortcut needs the input in arrival order
      may_start_.assign(pend.size(), true);
      return;
    }
    may_start_.assign(pend.size(), false);
    constexpr MilliGpu kUnset = std::numeric_limits<MilliGpu>::max() / 4;
    std::vector<MilliGpu> room(nq, std::numeric_limits<MilliGpu>::min());  // min: not computed yet
    std::vector<bool> done(nq, false);
    int open = nq;
    for (size_t i = 0; i < pend.size() && open > 0; ++i) {
      const JobRequest& j = pend[i];
      int q = ctx.pending_queue[i];
      if (done[q]) continue;
      MilliGpu& r = room[q];
      if (r == std::numeric_limits<MilliGpu>::min()) {
        MilliGpu used = ctx.queue_usage[q];
        r = used == 0 ? kUnset : shares_.Guarantee(q) - used;
      }
      may_start_[i] = true;
      MilliGpu need = j.task.gpus * j.tasks;
      if (need > r) {
        done[q] = true;
        --open;
      } else {
        r = r == kUnset ? shares_.Guarantee(q) - need : r - need;
      }
    }
  }

  bool MayStartThisCycle(size_t index, const CycleContext& ctx) const override {
    return may_start_[index];
  }

  // Every queue with pending jobs is closed or has had all its jobs tried.
  bool Saturated(const CycleContext& ctx) const override { return open_ <= 0; }

  std::optional<Verdict> OnNoFit(const JobView& job, CycleContext& ctx) override {
    Close(ctx.QueueOf(job));
    return std::nullopt;
  }

  std::optional<Verdict> Admit(const JobView& job, CycleContext& ctx) override {
    int q = ctx.QueueOf(job);
    if (--left_[q] == 0 && !closed_[q]) --open_;
    const std::string& name = job.req->queue;
    if (closed_[q]) {
      if (!ctx.input->explain_waiting) return Verdict{"static", {}, false};
      if (behind_[q].empty()) behind_[q] = "queue " + name + " waits behind its first job";
      return Verdict{"static", behind_[q], false};
    }
    MilliGpu used = ctx.queue_usage[q];
    MilliGpu quota = shares_.Guarantee(q);
    if (used == 0 || used - UsageBelow(q, job.req->priority_class) + job.Gpus() <= quota)
      return std::nullopt;
    Close(q);
    if (!ctx.input->explain_waiting) return Verdict{"static", {}, false};
    return Verdict{"static",
                   "queue " + name + " uses " + FormatMilli(used) + " of its quota of " +
                       FormatMilli(quota) + " GPUs",
                   false};
  }

  void Reserve(const JobRequest& job, MilliGpu amount, CycleContext& ctx) override {
    Policy::Reserve(job, amount, ctx);
    int q = ctx.QueueOf(job);
    if (q >= 0) class_usage_[q][static_cast<int>(job.priority_class)] += amount;
  }
  void Unreserve(const JobRequest& job, MilliGpu amount, CycleContext& ctx) override {
    Reserve(job, -amount, ctx);
  }

  bool MayPreemptLowerClass(const JobView& job, const JobView& victim,
                            const CycleContext& ctx) const override {
    return ctx.QueueOf(job) == ctx.QueueOf(victim);
  }

  bool MayGrow(const JobRequest& job, MilliGpu extra, CycleContext& ctx) override {
    int q = ctx.QueueOf(job);
    return ctx.Usage(q) + extra <= shares_.Guarantee(q);
  }

 private:
  // Milli-GPU the queue's jobs of classes below `c` hold (the matrix may preempt them).
  MilliGpu UsageBelow(int q, PriorityClass c) const {
    MilliGpu below = 0;
    for (int k = 0; k < static_cast<int>(c); ++k) below += class_usage_[q][k];
    return below;
  }

  void Close(int q) {
    if (closed_[q]) return;
    closed_[q] = true;
    if (left_[q] > 0) --open_;
  }

  QueueShares shares_;
  std::vector<bool> closed_;        // per queue index: its head cannot start this cycle
  std::vector<SharedText> behind_;  // per queue index: the reason of the jobs behind its head
  std::vector<int> left_;           // per queue index: pending jobs not yet tried
  int open_ = 0;                    // queues neither closed nor fully tried
  std::vector<bool> may_start_;     // per pending job, this cycle
  std::vector<std::array<MilliGpu, 3>> class_usage_;  // per queue index and priority class
};

}  // namespace

Result<std::unique_ptr<Policy>> MakeStaticPolicy(PolicyOptions& options) {
  ASSIGN_OR_RETURN(QueueShares shares, QueueShares::FromOptions(options, false));
  return std::unique_ptr<Policy>(new StaticPolicy(std::move(shares)));
}

}  // namespace berth::sched
