#include "controllers/job_controller.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "common/log.h"

namespace berth::controllers {

using model::JobState;

namespace {

std::string SignalName(int sig) {
  const char* d = sigabbrev_np(sig);
  return d ? std::string("SIG") + d : "signal " + std::to_string(sig);
}

bool IsExecutable(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0;
}

}  // namespace

JobController::JobController(store::Store& store, sched::Scheduler& scheduler,
                             exec::Executor& executor, const gpu::Inventory& inventory,
                             const Clock& clock, JobControllerOptions options)
    : store_(store),
      scheduler_(scheduler),
      executor_(executor),
      inventory_(inventory),
      clock_(clock),
      options_(std::move(options)),
      training_(
          store, executor, inventory, clock, *this,
          TrainingOptions{options_.task_env, options_.task_env_for, options_.checkpoint_root}) {}

JobController::~JobController() { Stop(); }

Status JobController::Start() {
  if (options_.static_inventory) static_snapshot_ = Snapshot();
  ASSIGN_OR_RETURN(std::vector<Job> jobs, store_.ListActiveJobs());
  std::vector<exec::TaskKey> known;
  // Stops that were requested before the daemon stopped: sent again (an
  // idempotent stop that keeps the original deadline) in case the daemon
  // stopped between recording the request and sending it.
  std::vector<std::pair<exec::TaskKey, DurationMs>> restops;
  TimeMs start_now = clock_.Now();
  for (Job& job : jobs) {
    Active a;
    a.job = std::move(job);
    bool bound = a.job.state == JobState::kScheduled || a.job.state == JobState::kRunning;
    if (bound && !a.job.stop_reason.empty())
      a.intent = a.job.stop_reason == "cancel" ? StopIntent::kCancel : StopIntent::kPreempt;
    counts_[{model::JobStateName(a.job.state), a.job.spec.queue}]++;
    if (bound) bound_.insert(a.job.id);
    if (a.job.spec.training) training_.Restore(a.job);
    if (a.intent != StopIntent::kNone) {
      DurationMs left = std::max<DurationMs>(0, a.job.stop_deadline - start_now);
      int tasks = a.job.spec.training ? static_cast<int>(a.job.placement.workers.size()) : 1;
      for (int r = 0; r < tasks; ++r) restops.push_back({{a.job.id, r, a.job.attempts}, left});
    }
    active_[a.job.id] = std::move(a);
  }
  int pending = 0, live = 0;
  for (auto& [id, a] : active_) {
    if (a.job.state == JobState::kPreempted) {
      // The daemon stopped between the two halves of a requeue.
      store::JobUpdate u;
      u.clear_placement = true;
      Move(a, JobState::kPending, u, "JobRequeued", "requeued after preemption");
    }
    if ((a.job.state == JobState::kScheduled || a.job.state == JobState::kRunning) &&
        a.job.spec.training) {
      for (size_t r = 0; r < a.job.placement.workers.size(); ++r)
        known.push_back({id, static_cast<int>(r), a.job.attempts});
      ++live;
    } else if (a.job.state == JobState::kScheduled || a.job.state == JobState::kRunning) {
      known.push_back({id, 0, a.job.attempts});
      ++live;
      // The task's pid, from its JobStarted event, for GPU process attribution.
      if (a.job.state == JobState::kRunning) {
        auto evs = store_.EventsSince(0, 1000000, id);
        if (evs.ok()) {
          for (const auto& e : *evs) {
            if (e.type == "JobStarted" && e.data.is_object() && e.data.contains("externalId")) {
              try {
                a.pid = std::stoi(e.data["externalId"].get<std::string>());
              } catch (const std::exception&) {
              }
            }
          }
        }
      }
    } else if (a.job.state == JobState::kPending) {
      ++pending;
    }
  }
  RETURN_IF_ERROR(training_.LoadCleanups());
  if (!Flush()) spdlog::warn("the recovered jobs' requeues wait for the store (retried)");
  spdlog::info("recovered {} active job(s) from the store: {} pending, {} scheduled or running",
               active_.size(), pending, live);
  PublishHolders();
  stop_ = false;
  last_resync_ = clock_.Now();
  if (options_.run_thread) thread_ = std::thread([this] { Loop(); });
  // Reattach after the thread runs so the events it reports are handled.
  executor_.Recover(known);
  for (const auto& [key, grace] : restops) {
    Status st = executor_.Stop(key, grace);
    if (!st.ok()) spdlog::debug("{}: stop again after restart: {}", key.ToString(), st.ToString());
  }
  return Status::Ok();
}

void JobController::Stop() {
  {
    std::lock_guard<std::mutex> l(mu_);
    if (stop_ && !thread_.joinable()) return;
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

Status JobController::CheckCommand(const JobSpec& spec) const {
  const std::string& cmd = spec.command[0];
  if (cmd.find('/') != std::string::npos) {
    std::string path = cmd;
    if (cmd[0] != '/' && !spec.working_dir.empty()) path = spec.working_dir + "/" + cmd;
    if (cmd[0] != '/' && spec.working_dir.empty()) return Status::Ok();  // relative to the run dir
    if (!IsExecutable(path))
      return InvalidArgument("spec.command: \"" + cmd + "\" is not an executable file");
    return Status::Ok();
  }
  std::string path_var;
  auto it = spec.env.find("PATH");
  if (it != spec.env.end()) {
    path_var = it->second;
  } else if (const char* p = std::getenv("PATH")) {
    path_var = p;
  }
  size_t start = 0;
  while (start <= path_var.size()) {
    size_t end = path_var.find(':', start);
    if (end == std::string::npos) end = path_var.size();
    std::string dir = path_var.substr(start, end - start);
    if (dir.empty()) dir = ".";
    if (IsExecutable(dir + "/" + cmd)) return Status::Ok();
    start = end + 1;
  }
  return InvalidArgument("spec.command: command not found: \"" + cmd +
                         "\" (not in PATH=" + path_var + ")");
}

Result<Job> JobController::Submit(JobSpec spec, bool durable) {
  RETURN_IF_ERROR(model::ValidateJobSpec(spec));
  // Tasks run as their owner: a job whose owner is no account here is
  // refused now rather than failing at its start.
  if (auto account = executor_.AccountFor(spec.user); !account.ok())
    return InvalidArgument("metadata.user: " + account.status().message());
  if (!spec.working_dir.empty() && options_.check_commands_locally) {
    struct stat st;
    if (::stat(spec.working_dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
      return InvalidArgument("spec.workingDir: \"" + spec.working_dir + "\" is not a directory");
  }
  if (options_.check_commands_locally) RETURN_IF_ERROR(CheckCommand(spec));
  Job probe;
  probe.spec = spec;
  sched::ClusterSnapshot fresh;
  const sched::ClusterSnapshot& snap =
      options_.static_inventory ? static_snapshot_ : (fresh = Snapshot());
  Status feasible = scheduler_.CheckFeasible(ToRequest(probe), snap);
  if (!feasible.ok()) return Unschedulable(feasible.message());

  Job job;
  job.submit_time = clock_.Now();
  job.spec = std::move(spec);
  store::SubmitOptions so;
  so.durable = durable;
  // Hand the job to the controller thread as soon as it is committed, so
  // that scheduling and starting it overlap the fsync that makes it durable.
  // A job committed but not yet on disk is lost on power loss together with
  // everything that followed it in the log, its task included.
  so.on_committed = [&](JobId id) {
    Input in;
    in.kind = Input::kSubmitted;
    in.job = job;
    in.job.id = id;
    {
      std::lock_guard<std::mutex> l(mu_);
      inputs_.push_back(std::move(in));
    }
    cv_.notify_one();
  };
  ASSIGN_OR_RETURN(JobId id, store_.SubmitJob(job.spec, job.submit_time, so));
  job.id = id;
  return job;
}

Result<Job> JobController::Cancel(JobId id) {
  auto reply = std::make_shared<std::promise<Result<Job>>>();
  auto fut = reply->get_future();
  {
    std::lock_guard<std::mutex> l(mu_);
    if (stop_) return Unavailable("the daemon is shutting down");
    Input in;
    in.kind = Input::kCancel;
    in.id = id;
    in.reply = reply;
    inputs_.push_back(std::move(in));
  }
  cv_.notify_one();
  if (!options_.run_thread) RunOnce();  // no controller thread: answer it here
  return fut.get();
}

void JobController::OnTaskEvent(const exec::TaskEvent& event) {
  {
    std::lock_guard<std::mutex> l(mu_);
    Input in;
    in.kind = Input::kTaskEvent;
    in.event = event;
    inputs_.push_back(std::move(in));
  }
  cv_.notify_one();
}

bool JobController::WaitIdle(DurationMs timeout_ms) {
  std::unique_lock<std::mutex> l(mu_);
  return idle_cv_.wait_for(l, std::chrono::milliseconds(timeout_ms),
                           [&] { return inputs_.empty() && !busy_ && !dirty_; });
}

std::string JobController::WaitingReason(JobId id) const {
  std::lock_guard<std::mutex> l(mu_);
  auto it = waiting_reason_.find(id);
  return it == waiting_reason_.end() ? "" : it->second;
}

std::map<int, JobId> JobController::ProcessGroups() const {
  std::lock_guard<std::mutex> l(mu_);
  return process_groups_;
}

void JobController::RecordEvent(const std::string& type, JobId job, const std::string& message,
                                const nlohmann::json& data) {
  Status st = store_.AppendEvent(type, job, message, clock_.Now(), data);
  if (!st.ok()) spdlog::warn("could not record {} for job {}: {}", type, job, st.ToString());
}

std::vector<JobController::GpuHolder> JobController::GpuHolders() const {
  std::lock_guard<std::mutex> l(mu_);
  return holders_;
}

JobController::Stats JobController::GetStats() const {
  std::lock_guard<std::mutex> l(mu_);
  return stats_;
}

void JobController::Loop() {
  std::unique_lock<std::mutex> l(mu_);
  while (true) {
    DurationMs wait = options_.resync_interval;
    TimeMs timer = NextTimer();
    if (timer > 0) wait = std::min<DurationMs>(wait, std::max<DurationMs>(0, timer - clock_.Now()));
    if (dirty_ && !store_blocked_)
      wait = std::max<DurationMs>(0, last_cycle_ + batch_window_ - clock_.Now());
    cv_.wait_for(l, std::chrono::milliseconds(wait),
                 [&] { return stop_ || !inputs_.empty() || poked_; });
    if (stop_) break;
    l.unlock();
    RunOnce();
    l.lock();
  }
  // Answer any cancel still waiting so no API thread hangs.
  for (Input& in : inputs_) {
    if (in.reply) in.reply->set_value(Unavailable("the daemon is shutting down"));
  }
  inputs_.clear();
  busy_ = false;
  idle_cv_.notify_all();
}

void JobController::RunOnce() {
  std::deque<Input> batch;
  {
    std::lock_guard<std::mutex> l(mu_);
    batch.swap(inputs_);
    busy_ = true;
    if (poked_) {
      poked_ = false;
      dirty_ = true;
      capacity_changed_ = true;
    }
  }
  for (const Input& in : batch) Handle(in);
  TimeMs now = clock_.Now();
  if (store_blocked_) {
    // Writes the store refused earlier come first; while it still refuses,
    // nothing is bound (a start needs its binding committed first).
    bool retry = now >= retry_at_ && Flush();
    if (!retry) {
      for (const Input& in : batch)
        if (in.kind != Input::kTaskEvent || in.event.type != exec::TaskEventType::kStarted)
          dirty_ = true;
      if (holders_dirty_ && options_.publish_holders) PublishHolders();
      std::lock_guard<std::mutex> l(mu_);
      busy_ = false;
      return;
    }
  }
  // A task that reports it started changes nothing a cycle looks at (its
  // GPUs were taken when it was bound): only other input wakes the scheduler.
  for (const Input& in : batch)
    if (in.kind != Input::kTaskEvent || in.event.type != exec::TaskEventType::kStarted)
      dirty_ = true;
  if (recheck_at_ > 0 && now >= RecheckTime()) {
    // The policy's priorities moved (attained service crossed a threshold).
    recheck_at_ = 0;
    dirty_ = true;
    capacity_changed_ = true;
  }
  training_.RunTimers(now);  // gang deadlines, clean-ups
  if (now - last_resync_ >= options_.resync_interval) {
    dirty_ = true;
    capacity_changed_ = true;
    last_resync_ = now;
  }
  // Only submissions while others already wait: batch them (see
  // submit_batch_window); anything else runs a cycle now.
  bool defer = dirty_ && !capacity_changed_ && jobs_waiting_ && now < last_cycle_ + batch_window_;
  if (!defer) {
    // Cycles are O(pending jobs): when they get costly, batch longer so
    // that scheduling takes at most about a fifth of this thread's time.
    int64_t t0 = MonotonicNanos();
    RunCycle();
    DurationMs cost = options_.adapt_to_cycle_cost ? (MonotonicNanos() - t0) / 1'000'000 : 0;
    last_cycle_cost_ = cost;
    batch_window_ = std::min<DurationMs>(std::max(options_.submit_batch_window, 4 * cost), 200);
  }
  Flush();  // the pass's writes, one transaction; then the starts and stops they allow
  if (holders_dirty_ && options_.publish_holders) PublishHolders();
  std::lock_guard<std::mutex> l(mu_);
  busy_ = false;
  if (inputs_.empty() && !dirty_) idle_cv_.notify_all();
}

void JobController::Handle(const Input& in) {
  switch (in.kind) {
    case Input::kSubmitted: {
      Active a;
      a.job = in.job;
      if (a.job.spec.training) training_.Add(a.job);
      counts_[{model::JobStateName(a.job.state), a.job.spec.queue}]++;
      JobId id = a.job.id;
      Active& added = active_[id] = std::move(a);
      if (added.job.state == JobState::kPending) PendingAdd(added);
      holders_dirty_ = true;
      break;
    }
    case Input::kCancel:
      in.reply->set_value(HandleCancel(in.id));
      break;
    case Input::kTaskEvent:
      HandleTaskEvent(in.event);
      break;
  }
}

void JobController::PendingAdd(Active& a) {
  if (pending_rebuild_ || a.pending_slot >= 0) return;
  a.pending_slot = static_cast<int>(pending_requests_.size());
  pending_requests_.push_back(ToRequest(a.job));
  pending_owners_.push_back(&a);
}

void JobController::PendingRemove(Active& a) {
  if (pending_rebuild_ || a.pending_slot < 0) return;
  pending_owners_[a.pending_slot] = nullptr;
  ++pending_holes_;
  a.pending_slot = -1;
}

TimeMs JobController::NextWakeup() const {
  TimeMs next = NextTimer();
  if (store_blocked_) return next;
  auto take = [&](TimeMs t) { next = next == 0 ? t : std::min(next, t); };
  if (dirty_) take(last_cycle_ + batch_window_);
  take(last_resync_ + options_.resync_interval);
  return next;
}

Result<Job> JobController::HandleCancel(JobId id) {
  auto it = active_.find(id);
  if (it == active_.end()) {
    ASSIGN_OR_RETURN(Job job, store_.GetJob(id));
    return FailedPrecondition("job " + std::to_string(id) + " already ended (" +
                              model::JobStateName(job.state) + ")");
  }
  Active& a = it->second;
  // Answered from the store once the change is committed; while the store
  // refuses writes, from the controller's view (the change is queued and
  // committed when the store takes it).
  if (a.job.state == JobState::kPending) {
    store::JobUpdate u;
    u.end_time = clock_.Now();
    Job view = a.job;
    Finish(a, JobState::kCancelled, u, "JobCancelled", "cancelled while pending", nullptr);
    if (Flush()) return store_.GetJob(id);
    view.state = JobState::kCancelled;
    view.end_time = *u.end_time;
    view.message = "cancelled while pending (the store is busy: recorded when it takes writes)";
    return view;
  }
  const DurationMs grace = a.job.spec.termination_grace;
  if (a.intent != StopIntent::kCancel && a.job.spec.training) {
    if (!RequestStop(a, StopIntent::kCancel, "JobCancelRequested", "stopping all workers"))
      return Internal("job " + std::to_string(id) + ": could not record the cancellation");
    AfterCommit([this, id, grace] { training_.Stop(id, grace); });
  } else if (a.intent != StopIntent::kCancel) {
    if (!RequestStop(a, StopIntent::kCancel, "JobCancelRequested",
                     "stopping: SIGTERM now, SIGKILL after " + FormatDuration(grace)))
      return Internal("job " + std::to_string(id) + ": could not record the cancellation");
    AfterCommit([this, key = exec::TaskKey{id, 0, a.job.attempts}, grace] {
      Status st = executor_.Stop(key, grace);
      if (!st.ok()) spdlog::warn("job {}: stop failed: {}", key.job, st.ToString());
    });
  }
  Job view = a.job;
  if (Flush()) {
    ASSIGN_OR_RETURN(view, store_.GetJob(id));
    view.message = "cancelling";
  } else {
    view.message = "cancelling (the store is busy: recorded and sent when it takes writes)";
  }
  return view;
}

void JobController::HandleTaskEvent(const exec::TaskEvent& ev) {
  auto it = active_.find(ev.key.job);
  if (it == active_.end()) return;  // a late report for a job that already ended
  Active& a = it->second;
  if (a.job.spec.training) return training_.OnTaskEvent(a.job.id, ev);
  if (ev.key.attempt != a.job.attempts || ev.key.task != 0) return;  // stale attempt
  TimeMs now = clock_.Now();
  nlohmann::json data = {{"attempt", ev.key.attempt}};
  if (!ev.external_id.empty()) data["externalId"] = ev.external_id;

  switch (ev.type) {
    case exec::TaskEventType::kStarted: {
      if (a.job.state != JobState::kScheduled) return;
      try {
        a.pid = ev.external_id.empty() ? 0 : std::stoi(ev.external_id);
      } catch (const std::exception&) {
        a.pid = 0;
      }
      store::JobUpdate u;
      u.start_time = ev.time ? ev.time : now;
      Move(a, JobState::kRunning, u, "JobStarted",
           "running" + (ev.external_id.empty() ? std::string() : " as pid " + ev.external_id),
           data);
      return;
    }
    case exec::TaskEventType::kExited:
    case exec::TaskEventType::kStartFailed:
    case exec::TaskEventType::kLost:
      break;
  }
  if (a.job.state != JobState::kScheduled && a.job.state != JobState::kRunning) return;

  store::JobUpdate u;
  u.end_time = ev.time ? ev.time : now;
  if (ev.exit_code) {
    u.exit_code = *ev.exit_code;
    data["exitCode"] = *ev.exit_code;
  }
  if (ev.signal) data["signal"] = ev.signal;

  if (a.intent == StopIntent::kPreempt) {
    Requeue(a, u, "JobPreempted", "preempted" + (ev.message.empty() ? "" : ": " + ev.message), data,
            "requeued after preemption");
    a.intent = StopIntent::kNone;
    std::lock_guard<std::mutex> l(mu_);
    stats_.preemptions++;
    return;
  }
  if (a.intent == StopIntent::kCancel) {
    Finish(a, JobState::kCancelled, u, "JobCancelled", "cancelled", data);
    return;
  }
  if (a.intent == StopIntent::kDrain) {  // its GPU was drained (job_live.cc)
    Requeue(a, u, "JobPreempted", "stopped: " + a.live_reason, data, "requeued: " + a.live_reason);
    a.intent = StopIntent::kNone;
    std::lock_guard<std::mutex> l(mu_);
    stats_.preemptions++;
    return;
  }
  if (a.intent == StopIntent::kEnd) {  // IdleTimeout, GpuMemoryExceeded (job_live.cc)
    data["reason"] = a.live_event;
    Finish(a, JobState::kFailed, u, a.live_event, a.live_reason, data);
    return;
  }
  if (ev.type == exec::TaskEventType::kStartFailed) {
    if (!u.exit_code) u.exit_code = 127;
    Finish(a, JobState::kFailed, u, "JobFailed", "failed to start: " + ev.message, data);
    return;
  }
  if (ev.type == exec::TaskEventType::kLost) {
    if (a.job.state == JobState::kScheduled) {
      // Bound but never started (the daemon stopped in between): requeue.
      Requeue(a, {}, "JobLost", "task was never started: " + ev.message, data,
              "requeued: its task was never started");
      return;
    }
    if (ev.node_failed) {
      // Its node failed (an engine's report): run it again, elsewhere if need be.
      Requeue(a, u, "JobLost", "lost: " + ev.message, data, "requeued: its node failed");
      return;
    }
    Finish(a, JobState::kFailed, u, "JobLost", "lost: " + ev.message, data);
    return;
  }
  std::string msg;
  JobState to;
  if (ev.signal) {
    to = JobState::kFailed;
    msg = "killed by " + SignalName(ev.signal);
  } else if (ev.exit_code && *ev.exit_code == 0) {
    to = JobState::kSucceeded;
    msg = "exited with code 0";
  } else {
    to = JobState::kFailed;
    msg = "exited with code " + std::to_string(ev.exit_code.value_or(-1));
  }
  if (!ev.message.empty()) msg += " (" + ev.message + ")";
  Finish(a, to, u, "JobExited", msg, data);
}

void JobController::PublishHolders() {
  holders_dirty_ = false;
  std::vector<GpuHolder> holders;
  std::map<int, JobId> groups;
  int64_t allocated = 0;
  for (JobId id : bound_) {
    const Active& a = active_.at(id);
    const Job& j = a.job;
    if (a.pid > 0) groups[a.pid] = id;
    if (j.spec.training) training_.ProcessGroups(id, groups);
    std::vector<const model::Placement*> parts;
    if (j.placement.workers.empty()) parts.push_back(&j.placement);
    for (const model::Placement& w : j.placement.workers) parts.push_back(&w);
    for (const model::Placement* p : parts) {
      for (int g : p->gpus) {
        holders.push_back({p->node, g, j.id, j.spec.user, j.spec.queue, j.spec.name, p->gpu_share,
                           j.spec.resources.gpu_memory});
        allocated += p->gpu_share;
      }
    }
  }
  int64_t total = 0;
  for (const model::NodeInfo& n : inventory_.Nodes())
    total += static_cast<int64_t>(n.gpus.size()) * kWholeGpu;
  std::lock_guard<std::mutex> l(mu_);
  holders_ = std::move(holders);
  process_groups_ = std::move(groups);
  stats_.active_by_state_queue = counts_;
  stats_.gpus_allocated_milli = allocated;
  stats_.gpus_total_milli = total;
}

}  // namespace berth::controllers
