// The training controller: see training_controller.h.
#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <set>

#include "common/log.h"
#include "common/net.h"
#include "controllers/pipeline_dirs.h"
#include "controllers/training_controller.h"
#include "exec/run_files.h"

namespace berth::controllers {

using model::Job;
using model::JobId;
using model::JobState;

namespace {

std::string DescribeExit(int code) {
  if (code > 128 && code < 128 + 65) {
    const char* d = sigabbrev_np(code - 128);
    if (d)
      return "was killed by SIG" + std::string(d) + " (exit code " + std::to_string(code) + ")";
  }
  return "exited with code " + std::to_string(code);
}

}  // namespace

TrainingController::TrainingController(store::Store& store, exec::Executor& executor,
                                       const gpu::Inventory& inventory, const Clock& clock,
                                       TrainingHost& host, TrainingOptions options)
    : store_(store),
      executor_(executor),
      inventory_(inventory),
      clock_(clock),
      host_(host),
      options_(std::move(options)) {}

void TrainingController::Add(const Job& job) {
  Gang& g = gangs_[job.id];
  g.status = {{"restarts", 0},
              {"resizes", 0},
              {"worldSizeHistory", nlohmann::json::array()},
              {"workers", nlohmann::json::array()}};
  SaveStatus(job, g);
}

void TrainingController::Restore(const Job& job) {
  Gang& g = gangs_[job.id];
  auto saved_status = store_.GetTrainingStatus(job.id);
  if (!saved_status.ok())
    spdlog::warn("job {}: ignoring its unreadable training status: {}", job.id,
                 saved_status.status().ToString());
  else if (*saved_status)
    g.status = std::move(**saved_status);
  if (!g.status.is_object()) g.status = nlohmann::json::object();
  g.workers.resize(job.placement.workers.size());
  for (Worker& w : g.workers) w.state = job.state == JobState::kRunning ? "Running" : "Pending";
}

Status TrainingController::LoadCleanups() {
  ASSIGN_OR_RETURN(auto cleanups, store_.ListCleanups());
  for (const auto& [id, at] : cleanups) cleanup_at_[id] = at;
  return Status::Ok();
}

void TrainingController::Forget(JobId id, std::optional<TimeMs> cleanup_at) {
  gangs_.erase(id);
  status_dirty_.erase(id);
  deadlines_.erase(id);
  if (cleanup_at) cleanup_at_[id] = *cleanup_at;
}

const nlohmann::json* TrainingController::StatusForTransition(JobId id) {
  auto it = gangs_.find(id);
  TrainingHost::JobRef ref = host_.FindJob(id);
  if (it == gangs_.end() || !ref.job || !it->second.status.is_object()) return nullptr;
  status_dirty_.erase(id);  // the transition writes it
  return &UpdateStatus(*ref.job, it->second);
}

void TrainingController::FlushStatuses() {
  for (JobId id : status_dirty_) {
    auto it = gangs_.find(id);
    TrainingHost::JobRef ref = host_.FindJob(id);
    if (it == gangs_.end() || !ref.job) continue;
    store::StateOp op;
    op.kind = store::StateOp::Kind::kAnnotate;
    op.job = id;
    op.annotation.training_status = UpdateStatus(*ref.job, it->second);
    op.now = clock_.Now();
    host_.WriteJob(std::move(op));
  }
  status_dirty_.clear();
}

void TrainingController::ProcessGroups(JobId id, std::map<int, JobId>& groups) const {
  auto it = gangs_.find(id);
  if (it == gangs_.end()) return;
  for (const Worker& w : it->second.workers)
    if (w.pid > 0) groups[w.pid] = id;
}

bool TrainingController::Resize(JobId id, int to) {
  TrainingHost::JobRef ref = host_.FindJob(id);
  auto it = gangs_.find(id);
  if (!ref.job || it == gangs_.end() || *ref.intent != StopIntent::kNone ||
      !ref.job->spec.training || it->second.failing || ref.job->state != JobState::kRunning)
    return false;
  const Job& job = *ref.job;
  Gang& g = it->second;
  const model::TrainingSpec& t = *job.spec.training;
  int resizes = g.status.value("resizes", 0);
  if (t.elastic.max_restarts >= 0 && resizes >= t.elastic.max_restarts) return false;
  int from = static_cast<int>(g.workers.size());
  if (to == from || to < t.MinWorkers()) return false;
  nlohmann::json before = g.status;
  g.status["resizes"] = resizes + 1;
  g.status["pendingResize"] = to;
  store::JobAnnotation with_status;
  with_status.training_status = UpdateStatus(job, g);
  status_dirty_.erase(id);
  if (!host_.RequestJobStop(id, StopIntent::kResize,
                            to > from ? "TrainingGrowing" : "TrainingShrinking",
                            "resizing from " + std::to_string(from) + " to " + std::to_string(to) +
                                " worker(s): SIGTERM (checkpoint), then relaunch",
                            {{"from", from}, {"to", to}}, with_status)) {
    g.status = std::move(before);
    return false;
  }
  // Sent once the resize is recorded, so a restart knows why the gang stopped.
  const DurationMs grace = job.spec.termination_grace;
  host_.AfterCommitOf([this, id, grace] { Stop(id, grace); });
  return true;
}

void TrainingController::Stop(JobId id, DurationMs grace) {
  TrainingHost::JobRef ref = host_.FindJob(id);
  auto it = gangs_.find(id);
  if (!ref.job || it == gangs_.end()) return;
  StopWorkers(*ref.job, it->second, grace);
}

void TrainingController::RunTimers(TimeMs now) {
  RunDeadlines(now);
  RunCleanups(now);
}

TimeMs TrainingController::NextTimer() const {
  TimeMs next = 0;
  for (const auto& [id, at] : cleanup_at_) next = next == 0 ? at : std::min(next, at);
  for (const auto& [id, at] : deadlines_) next = next == 0 ? at : std::min(next, at);
  return next;
}

std::string TrainingController::CheckpointDir(JobId id) const {
  if (options_.checkpoint_root.empty()) return std::string();
  return options_.checkpoint_root + "/job-" + std::to_string(id);
}

const nlohmann::json& TrainingController::UpdateStatus(const Job& job, Gang& g) {
  nlohmann::json workers = nlohmann::json::array();
  for (size_t r = 0; r < g.workers.size(); ++r) {
    const Worker& w = g.workers[r];
    nlohmann::json x = {{"rank", r}, {"state", w.state}};
    if (r < job.placement.workers.size()) {
      x["node"] = job.placement.workers[r].node;
      x["gpus"] = job.placement.workers[r].gpus;
    }
    if (w.exit_code) x["exitCode"] = *w.exit_code;
    workers.push_back(std::move(x));
  }
  g.status["workers"] = workers;
  g.status["worldSize"] = g.workers.size();
  const model::TrainingSpec& t = *job.spec.training;
  g.status["restartsLeft"] = std::max(0, t.backoff_limit - g.status.value("restarts", 0));
  return g.status;
}

void TrainingController::SaveStatus(const Job& job, Gang& /*g*/) {
  // Written at the end of the pass (FlushStatuses) or with the job's next
  // transition, whichever comes first: one write for a whole gang's starts.
  status_dirty_.insert(job.id);
}

void TrainingController::RecordEvent(JobId id, const std::string& type, const std::string& message,
                                     const nlohmann::json& data) {
  store::StateOp op;
  op.kind = store::StateOp::Kind::kEvent;
  op.job = id;
  op.type = type;
  op.message = message;
  op.now = clock_.Now();
  op.data = data;
  host_.WriteJob(std::move(op));
}

void TrainingController::Launch(JobId id) {
  TrainingHost::JobRef ref = host_.FindJob(id);
  if (!ref.job || !ref.job->spec.training) return;
  const Job& j = *ref.job;
  Gang& a = gangs_[id];
  const model::TrainingSpec& t = *j.spec.training;
  const std::vector<model::Placement>& ws = j.placement.workers;
  int n = static_cast<int>(ws.size());
  a.workers.assign(n, Worker{});
  a.failing = false;
  a.finishing = false;
  deadlines_.erase(j.id);
  a.failed_rank = -1;
  a.failed_code = 0;
  a.failure.clear();
  a.unstarted_lost = false;

  std::map<std::string, std::string> addresses;
  for (const model::NodeInfo& node : inventory_.Nodes()) addresses[node.name] = node.address;
  bool local = executor_.Name() == "local";
  std::string master = local ? "127.0.0.1" : addresses[ws[0].node];
  if (master.empty()) master = ws[0].node;
  // A port free now and not handed to another live gang (whose master may
  // not have bound it yet).
  std::set<int> taken;
  for (const auto& [other_id, other] : gangs_)
    if (other_id != j.id && other.status.is_object())
      taken.insert(other.status.value("masterPort", 0));
  int port = 0;
  for (int tries = 0; local && tries < 16 && (port == 0 || taken.count(port)); ++tries)
    port = FreeTcpPort();
  if (port == 0 || taken.count(port)) {
    port = 29500 + static_cast<int>(j.id % 1000);
    while (taken.count(port)) ++port;
  }
  // Node ranks in order of first appearance; local ranks within a node.
  std::map<std::string, int> node_rank, on_node;
  for (const model::Placement& w : ws) {
    if (!node_rank.count(w.node)) node_rank.emplace(w.node, static_cast<int>(node_rank.size()));
    on_node[w.node]++;
  }
  std::string ckpt = CheckpointDir(j.id);
  if (!ckpt.empty()) {
    // The workers write there: made beneath the checkpoint root without
    // following links, and the owner's when tasks run as their owner.
    std::error_code ec;
    std::filesystem::create_directories(options_.checkpoint_root, ec);
    auto account = executor_.AccountFor(j.spec.user);
    Status st = ec ? IoError(ec.message())
                   : MakeDirsBeneath(options_.checkpoint_root, {"job-" + std::to_string(j.id)},
                                     account.ok() ? *account : std::nullopt);
    if (!st.ok())
      spdlog::warn("job {}: cannot create checkpoint dir {}: {}", j.id, ckpt, st.message());
  }

  nlohmann::json hist = a.status.value("worldSizeHistory", nlohmann::json::array());
  hist.push_back({{"time", clock_.Now()}, {"attempt", j.attempts}, {"worldSize", n}});
  a.status["worldSizeHistory"] = hist;
  a.status.erase("pendingResize");
  a.status["masterAddr"] = master;
  a.status["masterPort"] = port;
  SaveStatus(j, a);

  // activeDeadlineSeconds counts from the first launch, across restarts.
  DurationMs time_limit = j.spec.time_limit;
  if (t.active_deadline > 0) {
    TimeMs first = a.status.value("firstStart", clock_.Now());
    a.status["firstStart"] = first;
    DurationMs left = std::max<DurationMs>(kSecond, t.active_deadline - (clock_.Now() - first));
    time_limit = time_limit > 0 ? std::min(time_limit, left) : left;
  }
  int procs = t.procs_per_worker;
  std::map<std::string, std::string> job_env;
  if (options_.task_env_for) job_env = options_.task_env_for(j);
  std::map<std::string, int> seen;
  for (int r = 0; r < n; ++r) {
    const model::Placement& w = ws[r];
    exec::TaskSpec ts;
    ts.key = {j.id, r, j.attempts};
    ts.user = j.spec.user;
    ts.argv = j.spec.command;
    ts.env = options_.task_env;
    for (const auto& [k, v] : j.spec.env) ts.env[k] = v;
    int local_rank = seen[w.node]++;
    ts.env["CUDA_DEVICE_ORDER"] = "PCI_BUS_ID";
    ts.env["BERTH_JOB_NAME"] = j.spec.name;
    ts.env["BERTH_USER"] = j.spec.user;
    ts.env["BERTH_QUEUE"] = j.spec.queue;
    for (const auto& [k, v] : job_env) ts.env[k] = v;
    if (!ckpt.empty()) ts.env["BERTH_CHECKPOINT_DIR"] = ckpt;
    ts.env["BERTH_WORLD_SIZE"] = std::to_string(n);
    ts.env["BERTH_WORKER_RANK"] = std::to_string(r);
    ts.env["BERTH_RESTARTS"] = std::to_string(a.status.value("restarts", 0));
    ts.env["MASTER_ADDR"] = master;
    ts.env["MASTER_PORT"] = std::to_string(port);
    ts.env["WORLD_SIZE"] = std::to_string(n * procs);
    ts.env["RANK"] = std::to_string(r * procs);
    ts.env["LOCAL_RANK"] = std::to_string(procs == 1 ? local_rank : 0);
    ts.env["LOCAL_WORLD_SIZE"] = std::to_string(procs == 1 ? on_node[w.node] : procs);
    ts.env["NODE_RANK"] = std::to_string(node_rank[w.node]);
    ts.env["PET_NNODES"] = std::to_string(n);
    ts.env["PET_NODE_RANK"] = std::to_string(r);
    ts.env["PET_NPROC_PER_NODE"] = std::to_string(procs);
    ts.env["PET_MASTER_ADDR"] = master;
    ts.env["PET_MASTER_PORT"] = std::to_string(port);
    ts.working_dir = j.spec.working_dir;
    ts.node = w.node;
    ts.gpus = w.gpus;
    ts.gpu_uuids = w.gpu_uuids;
    ts.gpu_share = w.gpu_share;
    ts.cpu_limit = j.spec.resources.cpu;
    ts.memory_limit = j.spec.resources.memory;
    ts.time_limit = time_limit;
    ts.termination_grace = j.spec.termination_grace;
    Status st = executor_.Start(ts);
    if (!st.ok()) {
      // Report it as this worker's start failure: the gang logic stops the rest.
      exec::TaskEvent ev;
      ev.key = ts.key;
      ev.type = exec::TaskEventType::kStartFailed;
      ev.time = clock_.Now();
      ev.exit_code = 127;
      ev.message = st.message();
      for (int rest = r + 1; rest < n; ++rest) {
        a.workers[rest].ended = true;
        a.workers[rest].state = "NotStarted";
      }
      OnTaskEvent(id, ev);  // may end the job (and erase `a`)
      return;
    }
  }
}

void TrainingController::StopWorkers(const Job& job, Gang& g, DurationMs grace) {
  for (size_t r = 0; r < g.workers.size(); ++r) {
    if (g.workers[r].ended) continue;
    Status st = executor_.Stop({job.id, static_cast<int>(r), job.attempts}, grace);
    if (!st.ok()) spdlog::warn("job {} worker {}: stop failed: {}", job.id, r, st.ToString());
  }
}

void TrainingController::OnTaskEvent(JobId id, const exec::TaskEvent& ev) {
  TrainingHost::JobRef ref = host_.FindJob(id);
  auto it = gangs_.find(id);
  if (!ref.job || it == gangs_.end()) return;
  const Job& job = *ref.job;
  Gang& a = it->second;
  if (ev.key.attempt != job.attempts) return;  // stale attempt
  if (job.state != JobState::kScheduled && job.state != JobState::kRunning) return;
  if (ev.key.task < 0 || ev.key.task >= static_cast<int>(a.workers.size())) return;
  Worker& w = a.workers[ev.key.task];
  host_.HoldersChanged();
  if (ev.type == exec::TaskEventType::kStarted) {
    if (w.ended) return;
    w.state = "Running";
    try {
      w.pid = ev.external_id.empty() ? 0 : std::stoi(ev.external_id);
    } catch (const std::exception&) {
      w.pid = 0;
    }
    if (job.state == JobState::kScheduled) {
      store::JobUpdate u;
      u.start_time = ev.time ? ev.time : clock_.Now();
      host_.MoveJob(id, JobState::kRunning, u, "JobStarted",
                    "running " + std::to_string(a.workers.size()) + " worker(s)",
                    {{"attempt", ev.key.attempt}, {"worker", ev.key.task}});  // with the status
    } else {
      SaveStatus(job, a);
    }
    return;
  }
  if (w.ended) return;
  w.ended = true;
  int code = ev.exit_code.value_or(ev.signal ? 128 + ev.signal : -1);
  if (ev.type == exec::TaskEventType::kStartFailed && !ev.exit_code) code = 127;
  if (ev.type == exec::TaskEventType::kLost && job.state == JobState::kScheduled &&
      w.state == "Pending")
    a.unstarted_lost = true;
  w.exit_code = code;
  w.state = code == 0 ? "Succeeded" : a.finishing ? "Stopped" : "Failed";
  if (code != 0 && *ref.intent == StopIntent::kNone && !a.failing && !a.unstarted_lost &&
      !a.finishing) {
    a.failing = true;
    a.failed_rank = ev.key.task;
    a.failed_code = code;
    a.failure =
        "worker " + std::to_string(ev.key.task) + " " +
        (ev.type == exec::TaskEventType::kStartFailed ? "failed to start (" + ev.message + ")"
         : ev.type == exec::TaskEventType::kLost      ? "was lost (" + ev.message + ")"
                                                      : DescribeExit(code));
    RecordEvent(job.id, "TrainingWorkerFailed", a.failure + "; stopping the gang",
                {{"worker", ev.key.task}, {"exitCode", code}});
    StopWorkers(job, a, job.spec.termination_grace);
  }
  bool all = true;
  for (const Worker& x : a.workers) all = all && x.ended;
  if (!all && ev.key.task == 0 && code == 0 && *ref.intent == StopIntent::kNone && !a.failing &&
      job.spec.training->success_policy == model::SuccessPolicy::kWorker0 &&
      !deadlines_.count(job.id)) {
    DurationMs grace = job.spec.termination_grace;
    deadlines_[job.id] = clock_.Now() + grace;
    RecordEvent(job.id, "TrainingFinishing",
                "worker 0 succeeded; the other workers have " + std::to_string(grace / kSecond) +
                    "s to exit (successPolicy Worker0)",
                nullptr);
  }
  if (all) {
    deadlines_.erase(job.id);
    End(id);  // its transition carries the status
  } else {
    SaveStatus(job, a);
  }
}

void TrainingController::RunCleanups(TimeMs now) {
  for (auto it = cleanup_at_.begin(); it != cleanup_at_.end();) {
    if (it->second > now) {
      ++it;
      continue;
    }
    JobId id = it->first;
    it = cleanup_at_.erase(it);
    // Every attempt's run directories (logs, status) and the checkpoints.
    int removed = 0;
    if (auto r = executor_.RemoveJobFiles(id); r.ok()) {
      removed = *r;
    } else {
      spdlog::warn("job {}: {}", id, r.status().ToString());
    }
    // Through the root's descriptor, following no link the workers made.
    if (!CheckpointDir(id).empty()) {
      int root = ::open(options_.checkpoint_root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      if (root >= 0) {
        Status rs = exec::RemoveTreeAt(root, "job-" + std::to_string(id));
        if (!rs.ok()) spdlog::warn("job {}: checkpoints: {}", id, rs.message());
        ::close(root);
      }
    }
    // The status's cleanedUp, the event and the end of the pending clean-up
    // in one transaction.
    store::JobAnnotation done;
    done.cleanup_at = 0;
    auto saved = store_.GetTrainingStatus(id);
    if (saved.ok() && *saved && (*saved)->is_object()) {
      (**saved)["cleanedUp"] = now;
      done.training_status = std::move(**saved);
    }
    Status st = store_.Annotate(id, done, "TrainingCleanedUp",
                                "ttlSecondsAfterFinished elapsed: removed " +
                                    std::to_string(removed) + " run director" +
                                    (removed == 1 ? "y" : "ies") + " (logs) and the checkpoints",
                                now);
    if (!st.ok()) spdlog::warn("job {}: could not record its clean-up: {}", id, st.ToString());
  }
}

void TrainingController::RunDeadlines(TimeMs now) {
  for (auto it = deadlines_.begin(); it != deadlines_.end();) {
    if (it->second > now) {
      ++it;
      continue;
    }
    JobId id = it->first;
    it = deadlines_.erase(it);
    TrainingHost::JobRef ref = host_.FindJob(id);
    auto g = gangs_.find(id);
    if (!ref.job || g == gangs_.end() || *ref.intent != StopIntent::kNone || g->second.failing ||
        (ref.job->state != JobState::kScheduled && ref.job->state != JobState::kRunning))
      continue;
    Gang& act = g->second;
    act.finishing = true;
    std::string ranks;
    for (size_t r = 0; r < act.workers.size(); ++r)
      if (!act.workers[r].ended) ranks += (ranks.empty() ? "" : ", ") + std::to_string(r);
    RecordEvent(id, "TrainingStragglersStopped",
                "worker 0 succeeded " + std::to_string(ref.job->spec.termination_grace / kSecond) +
                    "s ago; stopping worker(s) " + ranks + " (successPolicy Worker0)",
                nullptr);
    StopWorkers(*ref.job, act, ref.job->spec.termination_grace);
  }
}

void TrainingController::End(JobId id) {
  TrainingHost::JobRef ref = host_.FindJob(id);
  auto it = gangs_.find(id);
  if (!ref.job || it == gangs_.end()) return;
  Gang& a = it->second;
  StopIntent& intent = *ref.intent;
  const model::TrainingSpec& t = *ref.job->spec.training;
  TimeMs now = clock_.Now();
  auto requeue = [&](const std::string& type, const std::string& msg, const nlohmann::json& data) {
    store::JobUpdate ended;
    ended.end_time = now;
    host_.RequeueJob(id, ended, type, msg, data, msg);
  };
  if (intent == StopIntent::kCancel) {
    store::JobUpdate u;
    u.end_time = now;
    host_.FinishJob(id, JobState::kCancelled, u, "JobCancelled", "cancelled", nullptr);
    return;
  }
  if (intent == StopIntent::kDrain) {
    // A GPU of the gang was drained: relaunched on healthy GPUs, counted as
    // a restart (not against backoffLimit: the job did not fail).
    intent = StopIntent::kNone;
    int restarts = a.status.value("restarts", 0);
    a.status["restarts"] = restarts + 1;  // saved with the requeue's transitions
    std::string why = host_.StopMessage(id);
    requeue("TrainingRestart",
            (why.empty() ? std::string("a GPU of the gang was drained") : why) +
                "; restarting the gang on healthy GPUs",
            nlohmann::json{{"reason", "GpuDrained"}, {"restarts", restarts + 1}});
    host_.CountPreemption();
    return;
  }
  if (intent == StopIntent::kEnd) {
    store::JobUpdate u;
    u.end_time = now;
    std::string type = host_.StopEventType(id);
    host_.FinishJob(id, JobState::kFailed, u, type.empty() ? "JobFailed" : type,
                    host_.StopMessage(id), nlohmann::json{{"reason", type}});
    return;
  }
  if (intent == StopIntent::kPreempt || intent == StopIntent::kResize) {
    bool resize = intent == StopIntent::kResize;
    intent = StopIntent::kNone;  // the requeue's transition clears the stored stop
    requeue(resize ? "TrainingResized" : "JobPreempted",
            resize ? "checkpointed for an elastic resize; relaunching" : "preempted; requeued",
            nullptr);
    if (!resize) host_.CountPreemption();
    return;
  }
  if (a.unstarted_lost && !a.failing) {
    requeue("JobLost", "workers were never started; requeued", nullptr);
    return;
  }
  if (!a.failing) {
    store::JobUpdate u;
    u.end_time = now;
    u.exit_code = 0;
    int stopped = 0;
    for (const Worker& w : a.workers) stopped += w.state == "Stopped" ? 1 : 0;
    host_.FinishJob(
        id, JobState::kSucceeded, u, "JobExited",
        stopped == 0 ? "all " + std::to_string(a.workers.size()) + " worker(s) exited with code 0"
                     : "worker 0 succeeded; " + std::to_string(stopped) +
                           " worker(s) still running after the grace period were stopped",
        nullptr);
    return;
  }
  int restarts = a.status.value("restarts", 0);
  int left = t.backoff_limit - restarts;
  bool retryable = model::IsRetryable(t, a.failed_code);
  bool past_deadline = t.active_deadline > 0 && a.status.contains("firstStart") &&
                       now - a.status.value("firstStart", now) >= t.active_deadline;
  if (past_deadline) retryable = false;
  nlohmann::json data = {{"worker", a.failed_rank}, {"exitCode", a.failed_code}};
  a.status["lastFailure"] = a.failure;
  if (retryable && left > 0) {
    a.status["restarts"] = restarts + 1;  // saved with the requeue's transitions
    data["restartsLeft"] = left - 1;
    requeue("TrainingRestart",
            a.failure + "; restarting the gang (" + std::to_string(left - 1) + " restart(s) left)",
            data);
    return;
  }
  std::string why =
      past_deadline
          ? "activeDeadlineSeconds " + std::to_string(t.active_deadline / kSecond) + " exceeded"
      : !retryable ? (t.restart_policy == model::RestartPolicy::kNever
                          ? "restartPolicy Never"
                          : "its exit code is not retried under restartPolicy ExitCode")
                   : "backoffLimit " + std::to_string(t.backoff_limit) + " reached";
  store::JobUpdate u;  // the status (lastFailure) is saved with the transition
  u.end_time = now;
  u.exit_code = a.failed_code;
  data["restartsLeft"] = std::max(0, left);
  host_.FinishJob(
      id, JobState::kFailed, u, "JobFailed",
      a.failure + "; " + why + " (" + std::to_string(std::max(0, left)) + " restart(s) left)",
      data);
}

}  // namespace berth::controllers
