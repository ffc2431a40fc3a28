// The job controller's side of the live GPU state (live_state.h, issue 12):
// each cycle's snapshot gets health, drains, utilization and measured
// memory; jobs on a GPU that is no longer healthy are stopped and requeued
// with their attained service (a training gang restarts on healthy GPUs);
// idle jobs are stopped (idlePolicy stop) or reclaimed for waiting jobs
// (idlePolicy reclaim); fractions over their memory are stopped where their
// queue enforces it.
#include <algorithm>

#include "common/log.h"
#include "controllers/job_controller.h"

namespace berth::controllers {

using model::JobState;

const char* IdlePolicyName(IdlePolicy p) {
  switch (p) {
    case IdlePolicy::kReport:
      return "report";
    case IdlePolicy::kReclaim:
      return "reclaim";
    case IdlePolicy::kStop:
      return "stop";
  }
  return "report";
}

Result<IdlePolicy> ParseIdlePolicy(const std::string& s, const std::string& field) {
  if (s == "report") return IdlePolicy::kReport;
  if (s == "reclaim") return IdlePolicy::kReclaim;
  if (s == "stop") return IdlePolicy::kStop;
  return InvalidArgument(field + ": \"" + s + "\" is not an idle policy (report, reclaim, stop)");
}

IdleVerdict CombineIdle(const std::vector<const IdleSignal*>& signals, const model::Job& job,
                        const IdleRule& rule, TimeMs now) {
  IdleVerdict out;
  for (const IdleSignal* s : signals) {
    IdleVerdict v = s->Check(job, rule, now);
    if (!v.known) continue;
    if (!v.idle) return v;  // busy by one signal: not idle
    out.known = true;
    out.idle = true;
    out.why += (out.why.empty() ? "" : "; ") + v.why;
  }
  return out;
}

namespace {

std::string Describe(const model::Placement& p, int gpu) {
  return "GPU " + std::to_string(gpu) + " on " + p.node;
}

std::vector<const model::Placement*> Parts(const model::Job& j) {
  std::vector<const model::Placement*> parts;
  if (j.placement.workers.empty()) parts.push_back(&j.placement);
  for (const model::Placement& w : j.placement.workers) parts.push_back(&w);
  return parts;
}

}  // namespace

void JobController::ReportMemoryExceeded(JobId job, const std::string& message) {
  {
    std::lock_guard<std::mutex> l(mu_);
    memory_reports_.push_back({job, message});
    poked_ = true;
  }
  cv_.notify_one();
}

void JobController::Poke() {
  {
    std::lock_guard<std::mutex> l(mu_);
    poked_ = true;
  }
  cv_.notify_one();
}

std::string JobController::StopMessage(JobId id) {
  auto it = active_.find(id);
  return it == active_.end() ? "" : it->second.live_reason;
}

std::string JobController::StopEventType(JobId id) {
  auto it = active_.find(id);
  return it == active_.end() ? "" : it->second.live_event;
}

bool JobController::StopLive(Active& a, StopIntent intent, const std::string& type,
                             const std::string& message, const nlohmann::json& data,
                             DurationMs grace) {
  if (!RequestStop(a, intent, type, message, data)) return false;
  if (a.job.spec.training) {
    training_.Stop(a.job.id, grace);
    return true;
  }
  Status st = executor_.Stop({a.job.id, 0, a.job.attempts}, grace);
  if (!st.ok()) spdlog::warn("job {}: stop ({}) failed: {}", a.job.id, type, st.ToString());
  return true;
}

const sched::ClusterSnapshot& JobController::LiveSnapshot(sched::ClusterSnapshot& fresh) {
  const LiveHooks& live = options_.live;
  if (!live.fill_snapshot) {
    if (options_.static_inventory) return static_snapshot_;
    fresh = Snapshot();
    return fresh;
  }
  fresh = options_.static_inventory ? static_snapshot_ : Snapshot();
  live.fill_snapshot(fresh);
  TimeMs now = clock_.Now();

  std::map<std::pair<std::string, int>, bool> healthy;
  std::set<std::string> nodes;
  for (const sched::NodeState& n : fresh.nodes) {
    nodes.insert(n.name);
    for (const sched::GpuState& g : n.gpus) healthy[{n.name, g.index}] = g.healthy;
  }

  std::vector<std::pair<JobId, std::string>> memory;
  {
    std::lock_guard<std::mutex> l(mu_);
    memory.swap(memory_reports_);
  }
  std::map<JobId, std::string> over_memory(memory.begin(), memory.end());

  for (JobId id : std::vector<JobId>(bound_.begin(), bound_.end())) {
    auto it = active_.find(id);
    if (it == active_.end() || it->second.intent != StopIntent::kNone) continue;
    Active& a = it->second;
    const model::Job& j = a.job;
    const QueueLivePolicy& q = live.For(j.spec.queue);
    const DurationMs grace =
        model::PreemptionGrace(j.spec.priority_class, j.spec.termination_grace);

    // 1. On a GPU that is drained or lost: stop, then requeue (HandleTaskEvent, training End).
    std::string sick;
    for (const model::Placement* p : Parts(j)) {
      if (!nodes.count(p->node)) continue;
      for (int g : p->gpus) {
        // Unhealthy, or gone from the inventory (a lost GPU is dropped from it).
        auto h = healthy.find({p->node, g});
        if ((h == healthy.end() || !h->second) && sick.empty()) sick = Describe(*p, g);
      }
    }
    if (!sick.empty()) {
      a.live_reason = sick + " was drained (no longer healthy)";
      a.live_event = "GpuDrained";
      StopLive(a, StopIntent::kDrain, "JobEvicting",
               a.live_reason + ": stopping the job to requeue it on healthy GPUs",
               nlohmann::json{{"reason", "GpuDrained"}, {"gpu", sick}}, grace);
      continue;
    }

    // 2. A fraction over its memory, in a queue that enforces it.
    auto m = over_memory.find(id);
    if (m != over_memory.end() && q.enforce) {
      a.live_reason =
          "GpuMemoryExceeded: " + m->second + " (queue " + j.spec.queue + " enforces gpuMemory)";
      a.live_event = "GpuMemoryExceeded";
      StopLive(a, StopIntent::kEnd, "JobStopping", a.live_reason,
               nlohmann::json{{"reason", "GpuMemoryExceeded"}}, j.spec.termination_grace);
      continue;
    }

    // 3. idlePolicy stop.
    if (q.idle == IdlePolicy::kStop && j.state == JobState::kRunning) {
      IdleVerdict v = CombineIdle(live.idle_signals, j, {q.idle_util_percent, q.idle_after}, now);
      if (v.known && v.idle) {
        a.live_reason = "IdleTimeout: " + v.why + " (queue " + j.spec.queue + ", idlePolicy stop)";
        a.live_event = "IdleTimeout";
        StopLive(a, StopIntent::kEnd, "JobStopping", a.live_reason,
                 nlohmann::json{{"reason", "IdleTimeout"}}, j.spec.termination_grace);
      }
    }
  }
  return fresh;
}

void JobController::ReclaimIdle(const sched::Decisions& d, const sched::ClusterSnapshot& snap) {
  const LiveHooks& live = options_.live;
  if (!live.fill_snapshot || live.idle_signals.empty()) return;
  TimeMs now = clock_.Now();
  // Candidates: running, not being stopped, in a reclaim queue, not
  // interactive, idle by every signal that knows.
  struct Candidate {
    Active* a;
    std::string why;
  };
  std::vector<Candidate> idle;
  std::set<std::pair<std::string, int>> busy;  // GPUs held by anyone else
  for (JobId id : bound_) {
    Active& a = active_.at(id);
    const model::Job& j = a.job;
    const QueueLivePolicy& q = live.For(j.spec.queue);
    bool candidate = a.intent == StopIntent::kNone && j.state == JobState::kRunning &&
                     q.idle == IdlePolicy::kReclaim &&
                     j.spec.priority_class != model::PriorityClass::kInteractive;
    IdleVerdict v;
    if (candidate) v = CombineIdle(live.idle_signals, j, {q.idle_util_percent, q.idle_after}, now);
    if (candidate && v.known && v.idle) {
      idle.push_back({&a, v.why});
      continue;
    }
    for (const model::Placement* p : Parts(j))
      for (int g : p->gpus) busy.insert({p->node, g});
  }
  if (idle.empty()) return;

  // The GPUs free now plus those of the idle jobs chosen so far; a waiting
  // job that fits there (and not on the free ones alone) gets them.
  auto view = [&](const std::set<std::pair<std::string, int>>& taken) {
    sched::ClusterSnapshot v = snap;
    for (sched::NodeState& n : v.nodes)
      for (sched::GpuState& g : n.gpus)
        if (taken.count({n.name, g.index})) g.healthy = false;
    return v;
  };
  std::set<std::pair<std::string, int>> taken = busy;
  for (const Candidate& c : idle)
    for (const model::Placement* p : Parts(c.a->job))
      for (int g : p->gpus) taken.insert({p->node, g});
  std::map<JobId, const sched::JobRequest*> pending;
  for (const sched::JobRequest& r : pending_requests_) pending[r.id] = &r;

  for (const sched::Wait& w : d.waiting) {
    if (w.never) continue;
    auto pr = pending.find(w.job);
    if (pr == pending.end()) continue;
    const sched::JobRequest& req = *pr->second;
    if (req.task.gpus <= 0) continue;
    if (scheduler_.CheckFeasible(req, view(taken)).ok()) continue;  // waits for something else
    std::set<std::pair<std::string, int>> t = taken;
    std::vector<Candidate*> chosen;
    for (Candidate& c : idle) {
      for (const model::Placement* p : Parts(c.a->job))
        for (int g : p->gpus) t.erase({p->node, g});
      chosen.push_back(&c);
      if (scheduler_.CheckFeasible(req, view(t)).ok()) break;
    }
    if (!scheduler_.CheckFeasible(req, view(t)).ok()) continue;  // even all idle GPUs are too few
    for (Candidate* c : chosen) {
      Active& a = *c->a;
      const DurationMs grace =
          model::PreemptionGrace(a.job.spec.priority_class, a.job.spec.termination_grace);
      if (!StopLive(a, StopIntent::kPreempt, "JobPreempting",
                    "reclaimed while idle (" + c->why + ") for waiting job " +
                        std::to_string(req.id) + " (queue " + a.job.spec.queue +
                        ", idlePolicy reclaim)",
                    nlohmann::json{{"reason", "IdleReclaim"}, {"for", req.id}}, grace))
        continue;
    }
    return;  // one waiting job per cycle; the next cycle looks again
  }
}

}  // namespace berth::controllers
