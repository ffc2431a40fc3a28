// backfill: EASY backfilling (Lifka, 1995; Mu'alem and Feitelson, 2001).
// Jobs go in arrival order. The first job that does not fit gets a
// reservation: the earliest time enough GPUs free up as running jobs end
// (the "shadow time"). A later job may start now only if it fits and either
// ends before the shadow time or uses only GPUs the reserved job will not
// need then ("extra" GPUs). Run-time estimates are the job's time limit, or
// its expected duration when the caller knows it (the simulator: perfect
// estimates); a running job without either never ends for the reservation.
// Counting GPUs, not their nodes, is EASY's usual approximation.
#include <algorithm>
#include <limits>

#include "sched/policy.h"

namespace berth::sched {

namespace {

constexpr TimeMs kForever = std::numeric_limits<TimeMs>::max();

DurationMs Estimate(const JobRequest& job) {
  if (job.time_limit > 0) return job.time_limit;
  if (job.expected_duration >= 0) return job.expected_duration;
  return -1;
}

class BackfillPolicy final : public Policy {
 public:
  BackfillPolicy() : Policy("backfill") {}
  bool UsesQueues() const override { return false; }

  void BeginCycle(CycleContext& ctx) override {
    reserved_ = 0;
    shadow_ = kForever;
    delay_reason_ = {};
    extra_ = 0;
    use_extra_ = false;
    min_need_ = std::numeric_limits<MilliGpu>::max();
    min_est_ = kForever;
    for (const JobRequest& j : ctx.input->pending) {
      min_need_ = std::min(
          min_need_, j.task.gpus * (j.min_tasks > 0 ? std::min(j.min_tasks, j.tasks) : j.tasks));
      DurationMs est = Estimate(j);
      if (est >= 0) min_est_ = std::min<TimeMs>(min_est_, est);
    }
  }

  // Nothing left can start: too few free GPUs for the smallest job, or a
  // reservation that no remaining job could finish before nor fit beside.
  bool Saturated(const CycleContext& ctx) const override {
    if (ctx.state->free_gpu() < min_need_) return true;
    if (reserved_ == 0 || extra_ >= min_need_) return false;
    return shadow_ == kForever || min_est_ == kForever || ctx.now + min_est_ > shadow_;
  }

  std::optional<Verdict> Admit(const JobView& job, CycleContext& ctx) override {
    use_extra_ = false;
    if (reserved_ == 0) return std::nullopt;
    DurationMs est = Estimate(*job.req);
    if (est >= 0 && shadow_ != kForever && ctx.now + est <= shadow_) return std::nullopt;
    if (job.Gpus() <= extra_) {
      use_extra_ = true;
      return std::nullopt;
    }
    if (!ctx.input->explain_waiting) return Verdict{"backfill", {}, false};
    if (delay_reason_.empty()) {  // one text for every job the reservation holds back
      delay_reason_ = "would delay job " + std::to_string(reserved_) + ", reserved to start " +
                      (shadow_ == kForever ? std::string("when running jobs end")
                                           : "in " + FormatDuration(shadow_ - ctx.now));
    }
    return Verdict{"backfill", delay_reason_, false};
  }

  void Reserve(const JobRequest& job, MilliGpu amount, CycleContext& ctx) override {
    Policy::Reserve(job, amount, ctx);
    if (use_extra_) extra_ -= amount;
    use_extra_ = false;
  }

  std::optional<Verdict> OnNoFit(const JobView& job, CycleContext& ctx) override {
    use_extra_ = false;
    if (reserved_ != 0) return std::nullopt;
    reserved_ = job.req->id;
    delay_reason_ = {};
    // Replay running jobs' ends on the free count until the job fits.
    std::vector<std::pair<TimeMs, MilliGpu>> ends;
    for (const RunningJob& r : ctx.input->running) {
      DurationMs est = Estimate(r.request);
      TimeMs end = kForever;
      if (r.request.time_limit > 0) {
        end = r.start_time + r.request.time_limit;
      } else if (est >= 0) {
        end = ctx.now + std::max<DurationMs>(0, est - r.request.progress);
      }
      MilliGpu held = 0;
      for (const auto& p : r.placements) held += p.gpu_share * static_cast<MilliGpu>(p.gpus.size());
      ends.push_back({end, held});
    }
    std::sort(ends.begin(), ends.end());
    MilliGpu free = ctx.state->free_gpu();
    MilliGpu need = job.Gpus();
    for (const auto& [end, held] : ends) {
      if (free >= need || end == kForever) break;
      free += held;
      shadow_ = end;
    }
    if (free < need) shadow_ = kForever;
    extra_ = free >= need ? free - need : 0;
    // Jobs placed this cycle before the reservation also hold GPUs at shadow time.
    return std::nullopt;
  }

 private:
  JobId reserved_ = 0;
  SharedText delay_reason_;  // built at the first job the reservation holds back
  TimeMs shadow_ = kForever;
  MilliGpu extra_ = 0;
  bool use_extra_ = false;
  MilliGpu min_need_ = 0;
  TimeMs min_est_ = kForever;
};

}  // namespace

Result<std::unique_ptr<Policy>> MakeBackfillPolicy(PolicyOptions& options) {
  return std::unique_ptr<Policy>(new BackfillPolicy());
}

}  // namespace berth::sched
