#include "sched/las_policy.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>
#include <unordered_set>

namespace berth::sched {

LasPolicy::LasPolicy(std::string name, LasOptions options)
    : Policy(std::move(name)), options_(std::move(options)) {}

DurationMs LasPolicy::Attained(const JobRequest& job) const {
  auto it = offset_.find(job.id);
  return it == offset_.end() ? job.attained_service
                             : std::max<DurationMs>(0, job.attained_service - it->second);
}

DurationMs LasPolicy::Executed(const JobRequest& job) {
  int64_t gpus = (job.task.gpus * job.tasks + kWholeGpu - 1) / kWholeGpu;
  return job.attained_service / std::max<int64_t>(1, gpus);
}

int LasPolicy::Level(DurationMs attained) const {
  return static_cast<int>(
      std::upper_bound(options_.thresholds.begin(), options_.thresholds.end(), attained) -
      options_.thresholds.begin());
}

void LasPolicy::BeginCycle(CycleContext& ctx) {
  pending_attained_.clear();
  pending_level_.clear();
  if (options_.promote_knob <= 0) return;
  if (options_.lease_mode) {
    for (const JobRequest& j : ctx.input->pending) {
      if (Level(j.attained_service) == 0 || Leased(j.id, ctx.now)) continue;
      TimeMs since = j.queued_since > 0 ? j.queued_since : j.submit_time;
      DurationMs waited = ctx.now - since;
      if (waited >= static_cast<DurationMs>(options_.promote_knob *
                                            std::max(j.last_run_time, options_.min_lease))) {
        lease_until_[j.id] = ctx.now + static_cast<DurationMs>(waited / options_.promote_knob);
      }
    }
    if (lease_until_.size() > 2 * (ctx.input->pending.size() + ctx.input->running.size()) + 64) {
      for (auto it = lease_until_.begin(); it != lease_until_.end();) {
        it = it->second <= ctx.now ? lease_until_.erase(it) : std::next(it);
      }
    }
    return;
  }
  const auto& pend = ctx.input->pending;
  pending_attained_.resize(pend.size());
  pending_level_.resize(pend.size());
  for (size_t i = 0; i < pend.size(); ++i) {
    const JobRequest& j = pend[i];
    DurationMs attained = Attained(j);
    pending_attained_[i] = attained;
    int level = Level(attained);
    pending_level_[i] = level;
    if (level == 0) continue;
    TimeMs since = j.queued_since > 0 ? j.queued_since : j.submit_time;
    if (ctx.now - since >= static_cast<DurationMs>(options_.promote_knob * Executed(j))) {
      offset_[j.id] = j.attained_service;  // promoted to the top level
      pending_attained_[i] = 0;
      pending_level_[i] = Level(0);
    }
  }
  if (offset_.size() > 4 * (ctx.input->pending.size() + ctx.input->running.size()) + 64) {
    std::unordered_set<JobId> live;
    for (const auto& j : ctx.input->pending) live.insert(j.id);
    for (const auto& r : ctx.input->running) live.insert(r.request.id);
    for (auto it = offset_.begin(); it != offset_.end();)
      it = live.count(it->first) ? std::next(it) : offset_.erase(it);
  }
}

PriorityKey LasPolicy::Key(const JobRequest& job, bool running, const CycleContext& ctx) const {
  if (options_.lease_mode && Leased(job.id, ctx.now)) return {PackKey0(job, 0), 0, job.submit_time};
  int i = running ? -1 : ctx.PendingIndex(job);
  const bool cached = i >= 0 && i < static_cast<int>(pending_attained_.size());
  DurationMs attained = cached ? pending_attained_[i] : Attained(job);
  int level = cached ? pending_level_[i] : Level(attained);
  // The last level is FIFO, as in Tiresias: the longest jobs are served in
  // arrival order rather than all deferred to the end.
  if (options_.least_attained_within_level &&
      level < static_cast<int>(options_.thresholds.size())) {
    return {PackKey0(job, level), attained, job.submit_time};
  }
  return {PackKey0(job, level), job.submit_time, job.id};
}

bool LasPolicy::MayPreempt(const JobView& job, const JobView& victim,
                           const CycleContext& ctx) const {
  // Only higher levels, of no higher precedence (the class is the job's).
  constexpr int64_t kLevelMask = (int64_t{1} << kLevelBits) - 1;
  if ((victim.key[0] >> kLevelBits) < (job.key[0] >> kLevelBits)) return false;
  if ((victim.key[0] & kLevelMask) <= (job.key[0] & kLevelMask)) return false;
  if (options_.min_run > 0 && ctx.now - victim.run->start_time < options_.min_run) return false;
  if (options_.lease_mode && Leased(victim.req->id, ctx.now)) return false;
  return true;
}

bool LasPolicy::VictimEligible(const JobView& victim, const CycleContext& ctx) const {
  if (options_.min_run > 0 && ctx.now - victim.run->start_time < options_.min_run) return false;
  if (options_.lease_mode && Leased(victim.req->id, ctx.now)) return false;
  return true;
}

TimeMs LasPolicy::RecheckAt(const CycleContext& ctx) const {
  if (ctx.input->pending.empty()) return 0;
  TimeMs next = std::numeric_limits<TimeMs>::max();
  for (const RunningJob& r : ctx.input->running) {
    DurationMs attained = Attained(r.request);
    int level = Level(attained);
    MilliGpu held = 0;
    for (const auto& p : r.placements) held += p.gpu_share * static_cast<MilliGpu>(p.gpus.size());
    if (level < static_cast<int>(options_.thresholds.size()) && held > 0) {
      DurationMs left = options_.thresholds[level] - attained;
      next = std::min(next, ctx.now + std::max<DurationMs>(1, left * kWholeGpu / held + 1));
    }
    if (options_.min_run > 0 && r.start_time + options_.min_run > ctx.now) {
      next = std::min(next, r.start_time + options_.min_run);
    }
  }
  if (options_.lease_mode) {
    for (const RunningJob& r : ctx.input->running) {
      auto it = lease_until_.find(r.request.id);
      if (it != lease_until_.end() && it->second > ctx.now) next = std::min(next, it->second);
    }
    for (const JobRequest& j : ctx.input->pending) {
      if (Level(j.attained_service) == 0 || Leased(j.id, ctx.now)) continue;
      TimeMs since = j.queued_since > 0 ? j.queued_since : j.submit_time;
      next = std::min(
          next, since + static_cast<DurationMs>(options_.promote_knob *
                                                std::max(j.last_run_time, options_.min_lease)));
    }
  } else if (options_.promote_knob > 0) {
    const auto& pend = ctx.input->pending;
    const bool cached = pending_attained_.size() == pend.size();
    for (size_t i = 0; i < pend.size(); ++i) {
      const JobRequest& j = pend[i];
      if ((cached ? pending_level_[i] : Level(Attained(j))) == 0) continue;
      TimeMs since = j.queued_since > 0 ? j.queued_since : j.submit_time;
      next = std::min(next, since + static_cast<DurationMs>(options_.promote_knob * Executed(j)));
    }
  }
  if (next == std::numeric_limits<TimeMs>::max()) return 0;
  return std::max(next, ctx.now + options_.recheck_floor);
}

namespace {

Result<std::vector<DurationMs>> ParseThresholds(const std::string& key, const std::string& text) {
  std::vector<DurationMs> out;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    try {
      size_t used = 0;
      double v = std::stod(item, &used);
      if (used != item.size() || v <= 0) throw std::invalid_argument("");
      out.push_back(static_cast<DurationMs>(std::llround(v * 1000)));
    } catch (const std::exception&) {
      return InvalidArgument("option " + key +
                             ": expected increasing GPU-seconds like 3600,36000, got \"" + text +
                             "\"");
    }
    if (out.size() > 1 && out.back() <= out[out.size() - 2]) {
      return InvalidArgument("option " + key + ": thresholds must increase, got \"" + text + "\"");
    }
  }
  return out;
}

}  // namespace

// Tiresias (Gu et al., NSDI'19) discretized 2D-LAS: K queues cut at GPU-time
// thresholds, FIFO within a queue, preemption only across queues, and the
// PROMOTEKNOB starvation guard. Defaults: 2 queues at 1 GPU-hour, knob 8.
Result<std::unique_ptr<Policy>> MakeTiresiasPolicy(PolicyOptions& options) {
  LasOptions o;
  std::string th = options.GetString("thresholds", "3600");
  ASSIGN_OR_RETURN(o.thresholds, ParseThresholds("thresholds", th));
  ASSIGN_OR_RETURN(o.promote_knob, options.GetDouble("promote_knob", 8));
  o.least_attained_within_level = false;
  return std::unique_ptr<Policy>(new LasPolicy("tiresias", o));
}

// dynamic, Berth's default: 12 finely spaced LAS levels (geometric, from
// 5 GPU-minutes by x2, up to 85 GPU-hours), least attained first within a
// level but FIFO in the last one, Tiresias' starvation guard with knob 2
// (guard=lease: the lease variant, measured worse), and no preemption of a
// job in its first 5 minutes (a restart costs about 30 s). Placement (consolidation, best-fit,
// fractions), backfilling around jobs that do not fit yet and elastic grow/shrink come from the
// core.
Result<std::unique_ptr<Policy>> MakeDynamicPolicy(PolicyOptions& options) {
  LasOptions o;
  ASSIGN_OR_RETURN(double base, options.GetDouble("base_gpu_s", 300));
  ASSIGN_OR_RETURN(double factor, options.GetDouble("factor", 2));
  ASSIGN_OR_RETURN(int64_t levels, options.GetInt("levels", 12));
  ASSIGN_OR_RETURN(o.promote_knob, options.GetDouble("promote_knob", 2));
  ASSIGN_OR_RETURN(double min_run_s, options.GetDouble("min_run_s", 300));
  ASSIGN_OR_RETURN(double min_lease_s, options.GetDouble("min_lease_s", 3600));
  std::string guard = options.GetString("guard", "reset");
  if (guard != "lease" && guard != "reset")
    return InvalidArgument("option guard: expected lease or reset, got \"" + guard + "\"");
  o.lease_mode = guard == "lease";
  o.min_lease = static_cast<DurationMs>(min_lease_s * 1000);
  if (base <= 0 || factor <= 1 || levels < 1 || levels > 64) {
    return InvalidArgument("options base_gpu_s > 0, factor > 1 and 1 <= levels <= 64 required");
  }
  double t = base;
  for (int64_t i = 0; i + 1 < levels; ++i, t *= factor)
    o.thresholds.push_back(static_cast<DurationMs>(t * 1000));
  o.least_attained_within_level = true;
  o.min_run = static_cast<DurationMs>(min_run_s * 1000);
  return std::unique_ptr<Policy>(new LasPolicy("dynamic", o));
}

}  // namespace berth::sched
