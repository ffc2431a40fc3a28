#include "sim/sim_executor.h"

#include <algorithm>
#include <cmath>

namespace berth::sim {

SimExecutor::SimExecutor(SimExecutorOptions options, const Clock& clock, exec::TaskEventSink sink)
    : options_(options), clock_(clock), sink_(std::move(sink)) {}

void SimExecutor::AddJob(model::JobId id, DurationMs duration, int tasks) {
  if (id <= 0) return;
  if (static_cast<size_t>(id) >= jobs_.size()) jobs_.resize(static_cast<size_t>(id) + 1);
  JobRecord& j = jobs_[id];
  j = JobRecord{};
  j.duration = std::max<DurationMs>(0, duration);
  j.tasks = std::max(1, tasks);
  j.remaining = static_cast<double>(j.duration);
}

SimExecutor::JobRecord* SimExecutor::Find(model::JobId id) {
  if (id <= 0 || static_cast<size_t>(id) >= jobs_.size() || jobs_[id].tasks == 0) return nullptr;
  return &jobs_[id];
}

const SimExecutor::JobRecord* SimExecutor::Record(model::JobId id) const {
  if (id <= 0 || static_cast<size_t>(id) >= jobs_.size()) return nullptr;
  return &jobs_[id];
}

void SimExecutor::Push(TimeMs at, Kind kind, model::JobId job, int attempt, uint64_t epoch,
                       int task) {
  events_.push({at, seq_++, kind, job, attempt, epoch, task});
}

void SimExecutor::Account(JobRecord& j, TimeMs now) {
  if (j.phase != JobRecord::kRunning || now <= j.last_update) return;
  TimeMs from = std::max(j.last_update, j.productive_from);
  if (now > from)
    j.remaining = std::max(0.0, j.remaining - static_cast<double>(now - from) * j.rate);
  j.last_update = now;
}

void SimExecutor::Release(JobRecord& j, TimeMs now) {
  j.gpu_ms += static_cast<double>(j.held) / kWholeGpu * static_cast<double>(now - j.held_since);
  allocated_ -= j.held;
  j.held = 0;
  j.phase = JobRecord::kIdle;
  ++j.epoch;
}

DurationMs SimExecutor::Progress(model::JobId id) const {
  const JobRecord* j = Record(id);
  if (!j || j->tasks == 0) return 0;
  double remaining = j->remaining;
  TimeMs now = clock_.Now();
  if (j->phase == JobRecord::kRunning && now > j->last_update) {
    TimeMs from = std::max(j->last_update, j->productive_from);
    if (now > from)
      remaining = std::max(0.0, remaining - static_cast<double>(now - from) * j->rate);
  }
  return j->duration - static_cast<DurationMs>(remaining);
}

Status SimExecutor::Start(const exec::TaskSpec& spec) {
  JobRecord* jp = Find(spec.key.job);
  if (!jp)
    return InvalidArgument("sim executor: job " + std::to_string(spec.key.job) +
                           " was not declared");
  JobRecord& j = *jp;
  if (spec.key.task < 0 || spec.key.task >= j.tasks)
    return InvalidArgument("sim executor: " + spec.key.ToString() + ": task out of the job's " +
                           std::to_string(j.tasks) + " task(s)");
  const TimeMs now = clock_.Now();
  if (spec.key.attempt != j.attempt) {
    if (j.phase != JobRecord::kIdle)
      Release(j, now);  // an earlier attempt the controller gave up on
    j.attempt = spec.key.attempt;
    j.started_tasks = 0;
    j.nodes.clear();
    j.attempt_gpus = 0;
  }
  ++j.started_tasks;
  if (std::find(j.nodes.begin(), j.nodes.end(), spec.node) == j.nodes.end())
    j.nodes.push_back(spec.node);
  MilliGpu share = spec.gpu_share > 0 ? spec.gpu_share : kWholeGpu;
  MilliGpu held = share * static_cast<MilliGpu>(spec.gpus.size());
  if (j.held == 0) j.held_since = now;
  j.held += held;
  allocated_ += held;
  j.attempt_gpus += static_cast<int>(spec.gpus.size());
  Push(now, Kind::kStarted, spec.key.job, spec.key.attempt, 0, spec.key.task);
  if (j.started_tasks < j.tasks) return Status::Ok();
  // The whole gang is up: it runs.
  j.phase = JobRecord::kRunning;
  j.productive_from = now + (j.starts > 0 ? options_.restart_penalty : 0);
  j.last_update = now;
  if (j.first_start < 0) j.first_start = now;
  ++j.starts;
  int min_nodes =
      std::max(1, (j.attempt_gpus + options_.gpus_per_node - 1) / options_.gpus_per_node);
  j.rate = static_cast<int>(j.nodes.size()) > min_nodes ? 1.0 / options_.spread_slowdown : 1.0;
  ++j.epoch;
  TimeMs done = j.productive_from + static_cast<TimeMs>(std::ceil(j.remaining / j.rate));
  Push(done, Kind::kExit, spec.key.job, j.attempt, j.epoch, -1);
  return Status::Ok();
}

Status SimExecutor::Stop(const exec::TaskKey& key, DurationMs grace) {
  JobRecord* jp = Find(key.job);
  if (!jp) return NotFound("sim executor: no task " + key.ToString());
  JobRecord& j = *jp;
  if (key.attempt != j.attempt || j.phase != JobRecord::kRunning)
    return Status::Ok();  // ended or stopping
  const TimeMs now = clock_.Now();
  Account(j, now);  // progress up to the SIGTERM is checkpointed
  j.phase = JobRecord::kStopping;
  ++j.epoch;
  bool killed = grace < options_.stop_time;
  Push(now + std::max<DurationMs>(0, killed ? grace : options_.stop_time), Kind::kStopExit, key.job,
       j.attempt, j.epoch, killed ? 1 : 0);
  return Status::Ok();
}

void SimExecutor::Recover(const std::vector<exec::TaskKey>& known) {
  for (const exec::TaskKey& k : known) {
    exec::TaskEvent ev;
    ev.key = k;
    ev.type = exec::TaskEventType::kLost;
    ev.time = clock_.Now();
    ev.message = "a simulation keeps no task across runs";
    recovered_.push_back(std::move(ev));
  }
}

Result<exec::LogChunk> SimExecutor::ReadLog(const exec::TaskKey&, int64_t offset, int64_t) const {
  exec::LogChunk c;
  c.start = c.next = c.end = std::max<int64_t>(0, offset);
  return c;
}

Result<int> SimExecutor::RemoveJobFiles(model::JobId) { return 0; }

TimeMs SimExecutor::NextDue() {
  if (!recovered_.empty()) return clock_.Now();
  while (!events_.empty()) {
    const auto& [t, seq, kind, job, attempt, epoch, task] = events_.top();
    if (kind == Kind::kStarted) return t;
    const JobRecord& j = jobs_[job];
    if (j.attempt == attempt && j.epoch == epoch) return t;
    events_.pop();  // superseded (stopped before its exit)
  }
  return 0;
}

int SimExecutor::Poll() {
  const TimeMs now = clock_.Now();
  int delivered = 0;
  std::vector<exec::TaskEvent> out;
  out.swap(recovered_);
  for (const exec::TaskEvent& ev : out) sink_(ev);
  delivered += static_cast<int>(out.size());
  while (true) {
    TimeMs due = NextDue();
    if (due == 0 || due > now) break;
    auto [t, seq, kind, job, attempt, epoch, task] = events_.top();
    events_.pop();
    exec::TaskEvent ev;
    ev.time = t;
    if (kind == Kind::kStarted) {
      ev.key = {job, task, attempt};
      ev.type = exec::TaskEventType::kStarted;
      sink_(ev);
      ++delivered;
      continue;
    }
    JobRecord& j = jobs_[job];
    const int tasks = j.tasks;
    ev.type = exec::TaskEventType::kExited;
    if (kind == Kind::kExit) {
      Account(j, t);
      j.remaining = 0;
      j.end = t;
      ev.exit_code = 0;
    } else if (task == 1) {  // killed at the end of the grace
      ev.exit_code = 137;
      ev.signal = 9;
    } else {
      ev.exit_code = 143;
      ev.signal = 15;
      ev.message = "stopped after SIGTERM";
    }
    Release(j, t);
    // Highest rank first: a gang's worker 0 is the last to be reported.
    for (int r = tasks - 1; r >= 0; --r) {
      ev.key = {job, r, attempt};
      sink_(ev);
      ++delivered;
    }
  }
  return delivered;
}

}  // namespace berth::sim
