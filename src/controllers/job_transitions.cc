// The job controller's transitions: a job's state changes (Move, and Requeue
// and Finish built on it), stop requests recorded with their event
// (RequestStop), and the same for the training controller (TrainingHost).
// Each changes the in-memory view at once and queues its store write; Flush
// commits a pass's writes in one transaction before anything that depends on
// them (a task's start or stop) happens, and keeps retrying them, in order,
// while the store refuses (another process holds its write lock).
#include <algorithm>

#include "common/log.h"
#include "controllers/job_controller.h"

namespace berth::controllers {

using model::JobState;

namespace {

const char* IntentName(StopIntent i) {
  switch (i) {
    case StopIntent::kCancel:
      return "cancel";
    case StopIntent::kPreempt:
    case StopIntent::kResize:
    case StopIntent::kDrain:
      return "preempt";
    case StopIntent::kEnd:
      return "cancel";
    default:
      return "";
  }
}

}  // namespace

bool JobController::Move(Active& a, JobState to, store::JobUpdate update, const std::string& type,
                         const std::string& message, const nlohmann::json& data) {
  TimeMs now = clock_.Now();
  JobState from = a.job.state;
  a.running_request.reset();
  if (!update.message) update.message = message;
  if (to == JobState::kPreempted && (from == JobState::kRunning || from == JobState::kScheduled)) {
    // The attempt ends in a requeue: keep what it received, so a preempted
    // job does not look new to least-attained-service policies.
    TimeMs end = update.end_time && *update.end_time > 0 ? *update.end_time : now;
    DurationMs run = a.job.start_time > 0 ? std::max<DurationMs>(0, end - a.job.start_time) : 0;
    int64_t tasks = std::max<int64_t>(1, static_cast<int64_t>(a.job.placement.workers.size()));
    update.attained_service =
        a.job.attained_service +
        run * std::max<MilliGpu>(a.job.spec.resources.gpus, 0) * tasks / kWholeGpu;
    update.last_run_time = run;
  }
  if (to == JobState::kPending && from == JobState::kPreempted) update.queued_since = now;
  // A training job's status is written with each of its transitions.
  if (a.job.spec.training && !update.annotation.training_status)
    if (const nlohmann::json* status = training_.StatusForTransition(a.job.id))
      update.annotation.training_status = *status;
  if (!model::IsValidTransition(from, to)) {
    spdlog::error("job {}: {} -> {}: the job state machine does not allow it", a.job.id,
                  model::JobStateName(from), model::JobStateName(to));
    return false;
  }
  a.job.state = to;
  auto& from_count = counts_[{model::JobStateName(from), a.job.spec.queue}];
  if (--from_count <= 0) counts_.erase({model::JobStateName(from), a.job.spec.queue});
  counts_[{model::JobStateName(to), a.job.spec.queue}]++;
  bool was_bound = from == JobState::kScheduled || from == JobState::kRunning;
  bool is_bound = to == JobState::kScheduled || to == JobState::kRunning;
  if (is_bound)
    bound_.insert(a.job.id);
  else
    bound_.erase(a.job.id);
  if (was_bound != is_bound || from == JobState::kPending) capacity_changed_ = true;
  holders_dirty_ = true;
  if (update.schedule_time) a.job.schedule_time = *update.schedule_time;
  if (update.start_time) a.job.start_time = *update.start_time;
  if (update.end_time) a.job.end_time = *update.end_time;
  if (update.exit_code) a.job.exit_code = *update.exit_code;
  if (update.clear_exit_code) a.job.exit_code.reset();
  if (update.placement) a.job.placement = *update.placement;
  if (update.clear_placement) a.job.placement = {};
  if (update.attempts) a.job.attempts = *update.attempts;
  if (update.attained_service) a.job.attained_service = *update.attained_service;
  if (update.last_run_time) a.job.last_run_time = *update.last_run_time;
  if (update.queued_since) a.job.queued_since = *update.queued_since;
  if (to != JobState::kScheduled && to != JobState::kRunning) {
    a.job.stop_reason.clear();
    a.job.stop_deadline = 0;
  }
  if (update.annotation.cleanup_at) a.job.cleanup_at = *update.annotation.cleanup_at;
  a.job.message = *update.message;
  if (from == JobState::kPending && to != JobState::kPending) PendingRemove(a);
  if (to == JobState::kPending && from != JobState::kPending) PendingAdd(a);
  // Committed with the pass's other writes (Flush), before anything that
  // depends on it happens; retried, never dropped, while the store refuses.
  store::StateOp op;
  op.kind = store::StateOp::Kind::kTransition;
  op.job = a.job.id;
  op.from = from;
  op.to = to;
  op.update = std::move(update);
  op.type = type;
  op.message = message;
  op.now = now;
  op.data = data;
  outbox_.push_back(std::move(op));
  return true;
}

bool JobController::Flush() {
  training_.FlushStatuses();
  while (true) {
    if (!outbox_.empty()) {
      std::vector<Status> refused;
      Status st = store_.Commit(outbox_, &refused);
      if (!st.ok()) {
        TimeMs now = clock_.Now();
        if (!store_blocked_) {
          blocked_since_ = MonotonicNanos();
          spdlog::warn(
              "the store refused {} state change(s): {}; they are kept and retried, and no job "
              "is scheduled until they are committed",
              outbox_.size(), st.ToString());
        }
        store_blocked_ = true;
        retry_backoff_ = std::clamp<DurationMs>(retry_backoff_ * 2, 10, 1000);
        retry_at_ = now + retry_backoff_;
        dirty_ = true;  // a cycle once they are in
        return false;
      }
      for (size_t i = 0; i < refused.size(); ++i) {
        if (refused[i].ok()) continue;
        const store::StateOp& op = outbox_[i];
        spdlog::error(
            "job {}: {} refused by the store: {}", op.job,
            op.kind == store::StateOp::Kind::kTransition
                ? std::string(model::JobStateName(op.from)) + " -> " + model::JobStateName(op.to)
                : op.type,
            refused[i].ToString());
      }
      if (store_blocked_)
        spdlog::info("the store accepts writes again after {:.1f} s: {} state change(s) committed",
                     (MonotonicNanos() - blocked_since_) / 1e9, outbox_.size());
      outbox_.clear();
      store_blocked_ = false;
      retry_backoff_ = 0;
      retry_at_ = 0;
    }
    if (after_commit_.empty()) return true;
    std::vector<std::function<void()>> actions;
    actions.swap(after_commit_);
    for (auto& fn : actions) fn();
    training_.FlushStatuses();
  }
}

void JobController::Requeue(Active& a, const store::JobUpdate& ended, const std::string& type,
                            const std::string& message, const nlohmann::json& data,
                            const std::string& requeue_message) {
  if (!Move(a, JobState::kPreempted, ended, type, message, data)) return;
  store::JobUpdate q;
  q.clear_placement = true;
  q.clear_exit_code = true;
  q.end_time = 0;
  q.start_time = 0;
  q.schedule_time = 0;
  Move(a, JobState::kPending, q, "JobRequeued", requeue_message);
}

void JobController::Finish(Active& a, JobState to, const store::JobUpdate& update,
                           const std::string& type, const std::string& message,
                           const nlohmann::json& data) {
  JobId id = a.job.id;
  std::string queue = a.job.spec.queue;
  store::JobUpdate u = update;
  if (a.job.spec.training && a.job.spec.training->ttl_after_finished >= 0) {
    // ttlSecondsAfterFinished: clean up then (written with the final
    // transition, so a restart does not forget it).
    u.annotation.cleanup_at = clock_.Now() + a.job.spec.training->ttl_after_finished;
  }
  if (!Move(a, to, u, type, message, data)) return;
  {
    std::lock_guard<std::mutex> l(mu_);
    stats_.finished_by_state_queue[{model::JobStateName(to), queue}]++;
    waiting_reason_.erase(id);
  }
  auto& c = counts_[{model::JobStateName(to), queue}];
  if (--c <= 0) counts_.erase({model::JobStateName(to), queue});
  bool training = a.job.spec.training.has_value();
  active_.erase(id);
  if (training) training_.Forget(id, u.annotation.cleanup_at);
}

bool JobController::RequestStop(Active& a, StopIntent intent, const std::string& type,
                                const std::string& message, const nlohmann::json& data,
                                store::JobAnnotation annotation) {
  TimeMs now = clock_.Now();
  annotation.stop_reason = IntentName(intent);
  annotation.stop_deadline =
      now + (intent == StopIntent::kPreempt
                 ? model::PreemptionGrace(a.job.spec.priority_class, a.job.spec.termination_grace)
                 : a.job.spec.termination_grace);
  store::StateOp op;
  op.kind = store::StateOp::Kind::kAnnotate;
  op.job = a.job.id;
  op.annotation = annotation;
  op.type = type;
  op.message = message;
  op.now = now;
  op.data = data;
  outbox_.push_back(std::move(op));
  a.intent = intent;
  a.job.stop_reason = *annotation.stop_reason;
  a.job.stop_deadline = *annotation.stop_deadline;
  return true;
}

// TrainingHost: the training controller's transitions, on this thread.
TrainingHost::JobRef JobController::FindJob(JobId id) {
  auto it = active_.find(id);
  if (it == active_.end()) return {};
  return {&it->second.job, &it->second.intent};
}

bool JobController::MoveJob(JobId id, JobState to, store::JobUpdate update, const std::string& type,
                            const std::string& message, const nlohmann::json& data) {
  auto it = active_.find(id);
  return it != active_.end() && Move(it->second, to, std::move(update), type, message, data);
}

void JobController::RequeueJob(JobId id, const store::JobUpdate& ended, const std::string& type,
                               const std::string& message, const nlohmann::json& data,
                               const std::string& requeue_message) {
  auto it = active_.find(id);
  if (it != active_.end()) Requeue(it->second, ended, type, message, data, requeue_message);
}

void JobController::FinishJob(JobId id, JobState to, const store::JobUpdate& update,
                              const std::string& type, const std::string& message,
                              const nlohmann::json& data) {
  auto it = active_.find(id);
  if (it != active_.end()) Finish(it->second, to, update, type, message, data);
}

bool JobController::RequestJobStop(JobId id, StopIntent intent, const std::string& type,
                                   const std::string& message, const nlohmann::json& data,
                                   store::JobAnnotation annotation) {
  auto it = active_.find(id);
  return it != active_.end() &&
         RequestStop(it->second, intent, type, message, data, std::move(annotation));
}

void JobController::CountPreemption() {
  std::lock_guard<std::mutex> l(mu_);
  stats_.preemptions++;
}

}  // namespace berth::controllers
