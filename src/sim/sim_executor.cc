#include "sim/sim_executor.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>

namespace berth::sim {

SimExecutor::SimExecutor(const SimExecutorOptions& options, const std::vector<const TraceJob*>& jobs)
    : options_(options), jobs_(jobs) {
  base_.resize(jobs.size());
  states_.resize(jobs.size());
  for (size_t i = 0; i < jobs.size(); ++i) {
    sched::JobRequest& r = base_[i];
    r.id = static_cast<sched::JobId>(i + 1);
    r.queue = jobs[i]->queue;
    r.submit_time = jobs[i]->submit;
    r.task.gpus = kWholeGpu;
    r.tasks = jobs[i]->gpus;
    r.expected_duration = jobs[i]->duration;
    states_[i].remaining = static_cast<double>(jobs[i]->duration);
  }
}

void SimExecutor::Submit(int i, TimeMs now) {
  SimJobState& s = states_[i];
  s.phase = SimJobState::kPending;
  s.slot = static_cast<int>(in_.pending.size());
  in_.pending.push_back(base_[i]);
  in_.pending.back().queued_since = now;
  pending_ids_.push_back(i);
  ++pending_count_;
}

void SimExecutor::Reject(int i) { states_[i].phase = SimJobState::kRejected; }

MilliGpu SimExecutor::Held(const std::vector<sched::TaskPlacement>& ps) {
  MilliGpu m = 0;
  for (const auto& p : ps) m += p.gpu_share * static_cast<MilliGpu>(p.gpus.size());
  return m;
}

double SimExecutor::Rate(const sched::JobRequest& req, const std::vector<sched::TaskPlacement>& ps) const {
  if (ps.empty()) return 0;
  std::set<std::string> nodes;
  int gpus = 0;
  for (const auto& p : ps) {
    nodes.insert(p.node);
    gpus += static_cast<int>(p.gpus.size());
  }
  int min_nodes = std::max(1, (gpus + options_.gpus_per_node - 1) / options_.gpus_per_node);
  double rate = static_cast<double>(ps.size()) / std::max(1, req.tasks);
  if (static_cast<int>(nodes.size()) > min_nodes) rate /= options_.spread_slowdown;
  return rate;
}

void SimExecutor::Account(int i, TimeMs now) {
  SimJobState& s = states_[i];
  if (s.phase != SimJobState::kRunning || now <= s.last_update) return;
  sched::RunningJob& rj = Running(i);
  s.gpu_ms += static_cast<double>(Held(rj.placements)) / kWholeGpu * static_cast<double>(now - s.last_update);
  TimeMs from = std::max(s.last_update, s.productive_from);
  if (now > from) s.remaining = std::max(0.0, s.remaining - static_cast<double>(now - from) * s.rate);
  s.last_update = now;
  rj.request.attained_service = static_cast<DurationMs>(s.gpu_ms);
  rj.request.progress = jobs_[i]->duration - static_cast<DurationMs>(s.remaining);
}

void SimExecutor::ScheduleCompletion(int i, TimeMs now) {
  SimJobState& s = states_[i];
  ++s.epoch;
  if (s.rate <= 0) return;
  TimeMs from = std::max(now, s.productive_from);
  TimeMs done = from + static_cast<TimeMs>(std::ceil(s.remaining / s.rate));
  completions_.push({done, i, s.epoch});
}

TimeMs SimExecutor::NextCompletion() {
  while (!completions_.empty()) {
    auto [t, i, epoch] = completions_.top();
    if (states_[i].phase == SimJobState::kRunning && states_[i].epoch == epoch) return t;
    completions_.pop();
  }
  return std::numeric_limits<TimeMs>::max();
}

void SimExecutor::RemoveRunning(int i) {
  SimJobState& s = states_[i];
  allocated_ -= Held(in_.running[s.slot].placements);
  int last = static_cast<int>(in_.running.size()) - 1;
  if (s.slot != last) {
    in_.running[s.slot] = std::move(in_.running[last]);
    running_ids_[s.slot] = running_ids_[last];
    states_[running_ids_[s.slot]].slot = s.slot;
  }
  in_.running.pop_back();
  running_ids_.pop_back();
  s.slot = -1;
}

int SimExecutor::CompleteUntil(TimeMs now) {
  int done = 0;
  while (NextCompletion() <= now) {
    auto [t, i, epoch] = completions_.top();
    completions_.pop();
    Account(i, t);
    SimJobState& s = states_[i];
    s.remaining = 0;
    s.end = t;
    RemoveRunning(i);
    s.phase = SimJobState::kDone;
    ++done;
  }
  return done;
}

void SimExecutor::Prepare(TimeMs now) {
  for (int i : running_ids_) Account(i, now);
}

void SimExecutor::Apply(TimeMs now, const sched::Decisions& d) {
  for (const sched::Preempt& p : d.preemptions) {
    int i = static_cast<int>(p.job - 1);
    if (i < 0 || i >= static_cast<int>(states_.size()) || states_[i].phase != SimJobState::kRunning) continue;
    Account(i, now);
    SimJobState& s = states_[i];
    sched::JobRequest req = std::move(Running(i).request);
    RemoveRunning(i);
    req.queued_since = now;
    req.last_run_time = now - s.run_start;
    s.phase = SimJobState::kPending;
    s.rate = 0;
    ++s.epoch;
    s.slot = static_cast<int>(in_.pending.size());
    in_.pending.push_back(std::move(req));
    pending_ids_.push_back(i);
    ++pending_count_;
    ++preemptions_;
  }
  for (const sched::Resize& r : d.resizes) {
    int i = static_cast<int>(r.job - 1);
    if (i < 0 || i >= static_cast<int>(states_.size()) || states_[i].phase != SimJobState::kRunning) continue;
    Account(i, now);
    SimJobState& s = states_[i];
    sched::RunningJob& rj = Running(i);
    allocated_ += Held(r.placements) - Held(rj.placements);
    rj.placements = r.placements;
    s.productive_from = now + options_.restart_penalty;
    s.rate = Rate(rj.request, rj.placements);
    ScheduleCompletion(i, now);
    ++resizes_;
  }
  for (const sched::Bind& b : d.binds) {
    int i = static_cast<int>(b.job - 1);
    if (i < 0 || i >= static_cast<int>(states_.size()) || states_[i].phase != SimJobState::kPending) continue;
    SimJobState& s = states_[i];
    sched::RunningJob rj;
    rj.request = std::move(in_.pending[s.slot]);
    pending_ids_[s.slot] = -1;
    --pending_count_;
    rj.placements = b.placements;
    rj.start_time = now;
    allocated_ += Held(rj.placements);
    s.phase = SimJobState::kRunning;
    s.run_start = now;
    s.last_update = now;
    s.productive_from = now + (s.starts > 0 ? options_.restart_penalty : 0);
    if (s.first_start < 0) s.first_start = now;
    ++s.starts;
    s.rate = Rate(rj.request, rj.placements);
    s.slot = static_cast<int>(in_.running.size());
    in_.running.push_back(std::move(rj));
    running_ids_.push_back(i);
    ScheduleCompletion(i, now);
  }
  if (pending_count_ != static_cast<int>(in_.pending.size())) {
    size_t w = 0;
    for (size_t r = 0; r < in_.pending.size(); ++r) {
      if (pending_ids_[r] < 0) continue;
      if (w != r) {
        in_.pending[w] = std::move(in_.pending[r]);
        pending_ids_[w] = pending_ids_[r];
      }
      states_[pending_ids_[w]].slot = static_cast<int>(w);
      ++w;
    }
    in_.pending.resize(w);
    pending_ids_.resize(w);
  }
}

}  // namespace berth::sim
