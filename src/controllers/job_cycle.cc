// The job controller's scheduling cycle: the scheduler's input built from the
// active jobs, its decisions turned into binds, preemptions and resizes, and
// a bound task started on its executor.
#include <algorithm>

#include "common/log.h"
#include "controllers/job_controller.h"
#include "model/node.h"

namespace berth::controllers {

using model::JobState;

sched::JobRequest JobController::ToRequest(const Job& job) const {
  sched::JobRequest r;
  r.id = job.id;
  r.queue = job.spec.queue;
  r.user = job.spec.user;
  r.priority = job.spec.priority;
  r.priority_class = job.spec.priority_class;
  r.submit_time = job.submit_time;
  r.task.gpus = job.spec.resources.gpus;
  r.task.gpu_memory = job.spec.resources.gpu_memory;
  r.task.cpu = job.spec.resources.cpu;
  r.task.memory = job.spec.resources.memory;
  r.tasks = 1;
  if (job.spec.training) {
    const model::TrainingSpec& t = *job.spec.training;
    r.tasks = t.MaxWorkers();
    if (t.IsElastic()) {
      r.min_tasks = t.MinWorkers();
      r.max_tasks = t.MaxWorkers();
    }
  }
  r.time_limit = job.spec.time_limit;
  r.gpu_models = job.spec.resources.gpu_models;
  r.attained_service = job.attained_service;
  r.last_run_time = job.last_run_time;
  r.queued_since = job.queued_since;
  if (options_.request_hook) options_.request_hook(job, r);
  return r;
}

sched::ClusterSnapshot JobController::Snapshot() const {
  sched::ClusterSnapshot snap;
  for (const model::NodeInfo& n : inventory_.Nodes()) {
    sched::NodeState ns;
    ns.name = n.name;
    ns.cpu = n.cpu;
    ns.memory = n.memory;
    for (const model::GpuInfo& g : n.gpus) {
      sched::GpuState gs;
      gs.index = g.index;
      gs.uuid = g.uuid;
      gs.memory = g.memory;
      gs.nvlink_peers = g.nvlink_peers;
      gs.model = model::CanonicalGpuModel(g.model);
      ns.gpus.push_back(gs);
    }
    snap.nodes.push_back(std::move(ns));
  }
  return snap;
}

void JobController::RunCycle() {
  if (!dirty_) return;
  dirty_ = false;
  capacity_changed_ = false;
  last_cycle_ = clock_.Now();
  sched::ClusterSnapshot fresh;
  const sched::ClusterSnapshot& snap = LiveSnapshot(fresh);
  std::map<std::pair<std::string, int>, JobId> releasing;  // (node, gpu) -> job being stopped
  sched::SchedulerInput input;
  input.now = clock_.Now();
  input.cluster = &snap;
  input.explain_waiting = options_.explain_waiting;
  if (pending_rebuild_) {
    pending_rebuild_ = false;
    pending_requests_.clear();
    pending_owners_.clear();
    pending_holes_ = 0;
    for (auto& [id, a] : active_) {
      a.pending_slot = -1;
      if (a.job.state == JobState::kPending) PendingAdd(a);
    }
  } else if (pending_holes_ > 0) {
    size_t w = 0;
    for (size_t r = 0; r < pending_owners_.size(); ++r) {
      if (!pending_owners_[r]) continue;
      if (w != r) {
        pending_requests_[w] = std::move(pending_requests_[r]);
        pending_owners_[w] = pending_owners_[r];
      }
      pending_owners_[w]->pending_slot = static_cast<int>(w);
      ++w;
    }
    pending_requests_.resize(w);
    pending_owners_.resize(w);
    pending_holes_ = 0;
  }
  // Lent to the scheduler for the cycle, taken back before its decisions
  // are applied (which move jobs out of Pending).
  input.pending.swap(pending_requests_);
  std::vector<Active*> running_owners;  // per entry of input.running
  input.running.reserve(bound_.size());
  running_owners.reserve(bound_.size());
  for (JobId id : bound_) {
    Active& a = active_.at(id);
    const Job& j = a.job;
    if (a.intent != StopIntent::kNone) {
      // Being stopped (preempted, resized, cancelled): the scheduler plans
      // with its GPUs free, so it does not pick more victims for the same
      // need, but nothing is started on them until the job lets go.
      for (const sched::TaskPlacement& tp : TaskPlacements(j))
        for (int g : tp.gpus) releasing[{tp.node, g}] = j.id;
      continue;
    }
    // Built once per state (Move drops it); only the service moves with time.
    if (!a.running_request) {
      sched::RunningJob r;
      r.request = ToRequest(j);
      r.request.preemptible = true;
      r.start_time = j.start_time ? j.start_time : j.schedule_time;
      r.placements = TaskPlacements(j);
      a.running_request = std::move(r);
    } else if (options_.request_hook) {
      options_.request_hook(j, a.running_request->request);
    }
    sched::RunningJob& r = *a.running_request;
    r.request.attained_service =
        j.attained_service + std::max<DurationMs>(0, input.now - r.start_time) *
                                 std::max<MilliGpu>(j.spec.resources.gpus, 0) *
                                 static_cast<int64_t>(r.placements.size()) / kWholeGpu;
    input.running.push_back(std::move(r));
    running_owners.push_back(&a);
  }
  if (input.pending.empty() && input.running.empty()) {
    input.pending.swap(pending_requests_);
    jobs_waiting_ = false;
    std::lock_guard<std::mutex> l(mu_);
    stats_.cycles++;
    return;
  }
  sched::Decisions d = scheduler_.Schedule(input);
  input.pending.swap(pending_requests_);
  for (size_t i = 0; i < running_owners.size(); ++i)
    *running_owners[i]->running_request = std::move(input.running[i]);
  jobs_waiting_ = !d.waiting.empty();
  recheck_at_ = d.recheck_at;
  if (jobs_waiting_) ReclaimIdle(d, snap);

  for (const sched::Preempt& p : d.preemptions) {
    auto it = active_.find(p.job);
    if (it == active_.end() || it->second.intent != StopIntent::kNone) continue;
    Active& a = it->second;
    if (!RequestStop(a, StopIntent::kPreempt, "JobPreempting", p.reason)) continue;
    for (const sched::TaskPlacement& tp : TaskPlacements(a.job))
      for (int g : tp.gpus) releasing[{tp.node, g}] = a.job.id;
    const DurationMs grace =
        model::PreemptionGrace(a.job.spec.priority_class, a.job.spec.termination_grace);
    // Sent once the request is recorded, so a restart requeues the victim.
    if (a.job.spec.training) {
      AfterCommit([this, id = a.job.id, grace] { training_.Stop(id, grace); });
      continue;
    }
    AfterCommit([this, key = exec::TaskKey{a.job.id, 0, a.job.attempts}, grace] {
      Status st = executor_.Stop(key, grace);
      if (!st.ok()) spdlog::warn("job {}: stop for preemption failed: {}", key.job, st.ToString());
    });
  }
  for (const sched::Resize& rz : d.resizes) {
    auto it = active_.find(rz.job);
    if (it == active_.end() || !it->second.job.spec.training) continue;
    // The GPUs it holds now are released when the gang has stopped.
    std::vector<sched::TaskPlacement> held = TaskPlacements(it->second.job);
    if (!training_.Resize(rz.job, static_cast<int>(rz.placements.size()))) continue;
    for (const sched::TaskPlacement& tp : held)
      for (int g : tp.gpus) releasing[{tp.node, g}] = rz.job;
  }
  for (const sched::Bind& b : d.binds) {
    auto it = active_.find(b.job);
    if (it == active_.end() || it->second.job.state != JobState::kPending || b.placements.empty())
      continue;
    Active& a = it->second;
    std::string held;
    for (const sched::TaskPlacement& tp : b.placements) {
      for (int g : tp.gpus) {
        auto r = releasing.find({tp.node, g});
        if (r != releasing.end() && held.empty())
          held = "waiting for job " + std::to_string(r->second) + " to release GPU " +
                 std::to_string(g) + " on " + tp.node + " (it is being stopped)";
      }
    }
    if (!held.empty()) {
      // Bound again by the cycle that runs when that job has ended.
      jobs_waiting_ = true;
      std::lock_guard<std::mutex> l(mu_);
      waiting_reason_[a.job.id] = held;
      continue;
    }
    auto to_placement = [&](const sched::TaskPlacement& tp) {
      model::Placement pl;
      pl.node = tp.node;
      pl.gpus = tp.gpus;
      pl.gpu_share = tp.gpu_share;
      for (const sched::NodeState& n : snap.nodes) {
        if (n.name != pl.node) continue;
        for (int g : pl.gpus) {
          for (const sched::GpuState& gs : n.gpus)
            if (gs.index == g) pl.gpu_uuids.push_back(gs.uuid);
        }
      }
      return pl;
    };
    model::Placement pl = to_placement(b.placements[0]);
    if (a.job.spec.training) {
      for (const sched::TaskPlacement& tp : b.placements) pl.workers.push_back(to_placement(tp));
    }
    store::JobUpdate u;
    u.schedule_time = input.now;
    u.placement = pl;
    u.attempts = a.job.attempts + 1;
    std::string where = pl.node;
    if (a.job.spec.training) {
      where = std::to_string(pl.workers.size()) + " worker(s):";
      for (size_t r = 0; r < pl.workers.size(); ++r) {
        where += (r ? "; " : " ") + pl.workers[r].node;
        for (size_t i = 0; i < pl.workers[r].gpus.size(); ++i)
          where += (i ? "," : " GPU ") + std::to_string(pl.workers[r].gpus[i]);
      }
    } else if (!pl.gpus.empty()) {
      where += " GPU";
      for (size_t i = 0; i < pl.gpus.size(); ++i)
        where += (i ? "," : " ") + std::to_string(pl.gpus[i]);
    }
    nlohmann::json data = {{"node", pl.node}, {"gpus", pl.gpus}, {"attempt", a.job.attempts + 1}};
    if (!Move(a, JobState::kScheduled, u, "JobScheduled", "scheduled on " + where, data)) continue;
    {
      std::lock_guard<std::mutex> l(mu_);
      double wait_s = (input.now - a.job.submit_time) / 1000.0;
      size_t bucket = 0;
      while (bucket < stats_.wait_bounds.size() && wait_s > stats_.wait_bounds[bucket]) ++bucket;
      stats_.wait_counts[bucket]++;
      stats_.wait_sum += wait_s;
      stats_.wait_count++;
      waiting_reason_.erase(a.job.id);
    }
    StartAfterCommit(a.job.id);
  }
  std::lock_guard<std::mutex> l(mu_);
  for (const sched::Wait& w : d.waiting) {
    waiting_reason_[w.job] = (w.never ? "cannot run on this cluster: " : "") + w.reason +
                             (w.plugin.empty() ? "" : " [" + w.plugin + "]");
  }
  stats_.cycles++;
}

void JobController::StartAfterCommit(JobId id) {
  // The binding is committed before the task starts: a restart then finds
  // the job Scheduled and reattaches to its task instead of starting it twice.
  AfterCommit([this, id, attempt = active_.at(id).job.attempts] {
    auto it = active_.find(id);
    if (it == active_.end() || it->second.job.attempts != attempt ||
        it->second.job.state != JobState::kScheduled)
      return;
    StartTask(it->second);
  });
}

void JobController::StartTask(Active& a) {
  if (a.job.spec.training) return training_.Launch(a.job.id);
  const Job& j = a.job;
  exec::TaskSpec t;
  t.key = {j.id, 0, j.attempts};
  t.user = j.spec.user;
  t.argv = j.spec.command;
  t.env = options_.task_env;
  for (const auto& [k, v] : j.spec.env) t.env[k] = v;
  // GPU indices are NVML's (PCI bus order); make CUDA number them the same way.
  t.env["CUDA_DEVICE_ORDER"] = "PCI_BUS_ID";
  t.env["BERTH_JOB_NAME"] = j.spec.name;
  t.env["BERTH_USER"] = j.spec.user;
  t.env["BERTH_QUEUE"] = j.spec.queue;
  if (options_.task_env_for)
    for (auto& [k, v] : options_.task_env_for(j)) t.env[k] = std::move(v);
  t.working_dir = j.spec.working_dir;
  t.node = j.placement.node;
  t.gpus = j.placement.gpus;
  t.gpu_uuids = j.placement.gpu_uuids;
  t.gpu_share = j.placement.gpu_share;
  t.cpu_limit = j.spec.resources.cpu;
  t.memory_limit = j.spec.resources.memory;
  t.time_limit = j.spec.time_limit;
  t.termination_grace = j.spec.termination_grace;
  Status st = executor_.Start(t);
  if (!st.ok()) {
    store::JobUpdate u;
    u.end_time = clock_.Now();
    u.exit_code = 127;
    Finish(a, JobState::kFailed, u, "JobFailed", "failed to start: " + st.message(), nullptr);
  }
}

std::vector<sched::TaskPlacement> JobController::TaskPlacements(const Job& j) const {
  std::vector<sched::TaskPlacement> out;
  std::vector<const model::Placement*> parts;
  if (j.placement.workers.empty()) parts.push_back(&j.placement);
  for (const model::Placement& w : j.placement.workers) parts.push_back(&w);
  for (const model::Placement* p : parts) {
    sched::TaskPlacement tp;
    tp.node = p->node;
    tp.gpus = p->gpus;
    tp.gpu_share = p->gpu_share;
    out.push_back(std::move(tp));
  }
  return out;
}

TimeMs JobController::RecheckTime() const {
  // Time-driven cycles take at most about a fifth of the controller's time.
  return std::max(recheck_at_,
                  last_cycle_ + std::max(options_.min_recheck_interval, 4 * last_cycle_cost_));
}

TimeMs JobController::NextTimer() const {
  if (store_blocked_) return retry_at_;  // nothing else happens until the store takes the writes
  TimeMs next = training_.NextTimer();   // gang deadlines, clean-ups
  if (recheck_at_ > 0) next = next == 0 ? RecheckTime() : std::min(next, RecheckTime());
  return next;
}

}  // namespace berth::controllers
