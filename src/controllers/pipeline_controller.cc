#include "controllers/pipeline_controller.h"

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/log.h"
#include "controllers/pipeline_dirs.h"
#include "controllers/pipeline_internal.h"
#include "exec/step_files.h"

namespace berth::controllers {
namespace {

using namespace pipeline_internal;

using nlohmann::json;
using store::NodeRecord;
using store::RunRecord;
namespace fs = std::filesystem;

}  // namespace

PipelineController::PipelineController(store::Store& store, store::PipelineStore& pstore,
                                       StepJobs jobs, const Clock& clock,
                                       PipelineControllerOptions options)
    : store_(store),
      pstore_(pstore),
      jobs_(std::move(jobs)),
      clock_(clock),
      options_(std::move(options)) {}

PipelineController::~PipelineController() { Stop(); }

Status PipelineController::Start() {
  std::lock_guard<std::mutex> l(mu_);
  std::error_code ec;
  fs::create_directories(options_.artifact_root, ec);
  if (ec) return IoError("artifact root " + options_.artifact_root + ": " + ec.message());
  // Absolute and without a trailing '/': step inputs are recognised by it.
  options_.artifact_root = fs::absolute(options_.artifact_root, ec).lexically_normal().string();
  while (options_.artifact_root.size() > 1 && options_.artifact_root.back() == '/')
    options_.artifact_root.pop_back();
  ASSIGN_OR_RETURN(int64_t cursor, pstore_.GetCursor());
  cursor_ = cursor > 0 ? cursor : store_.LastEventSeq();
  saved_cursor_ = cursor_;
  ASSIGN_OR_RETURN(auto runs, pstore_.ListRuns(0, true));
  for (const auto& r : runs) {
    ASSIGN_OR_RETURN(RunRecord full, pstore_.GetRun(r.id));
    auto spec = model::ParsePipelineSpec(full.spec);
    auto rs = std::make_unique<RunState>();
    rs->rec = std::move(full);
    if (!spec.ok()) {
      rs->rec.state = model::RunState::kFailed;
      rs->rec.message = "spec no longer valid: " + spec.status().message();
      rs->rec.ended = clock_.Now();
      Save(*rs);
      continue;
    }
    rs->spec = std::move(*spec);
    for (auto& [name, n] : rs->rec.nodes)
      if (n.state == model::StepState::kRunning && n.job_id)
        job_index_[n.job_id] = {rs->rec.id, name};
    active_[rs->rec.id] = std::move(rs);
  }
  // Jobs that ended while the daemon was down: their events may be before the cursor.
  for (auto& [id, rs] : active_) {
    for (auto& [name, n] : rs->rec.nodes) {
      if (n.state != model::StepState::kRunning || !n.job_id) continue;
      auto job = store_.GetJob(n.job_id);
      if (job.ok() && model::IsTerminal(job->state)) OnJobEnded(*rs, name, *job);
    }
    Advance(*rs);
  }
  stop_ = false;
  thread_ = std::thread([this] { Loop(); });
  return Status::Ok();
}

void PipelineController::Stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

void PipelineController::Loop() {
  while (!stop_) {
    int64_t seen;
    {
      std::lock_guard<std::mutex> l(mu_);
      PassLocked();
      seen = cursor_;
    }
    store_.WaitForEvent(seen, options_.tick);
  }
}

void PipelineController::RunOnce() {
  std::lock_guard<std::mutex> l(mu_);
  PassLocked();
}

void PipelineController::PassLocked() {
  ProcessEventsLocked();
  for (auto it = active_.begin(); it != active_.end();) {
    RunState& rs = *it->second;
    // Timers: retries' backoff and timeouts are checked on every pass.
    Advance(rs);
    if (RunTerminal(rs.rec.state))
      it = active_.erase(it);
    else
      ++it;
  }
}

void PipelineController::ProcessEventsLocked() {
  for (;;) {
    auto events = store_.EventsSince(cursor_, 4096);
    if (!events.ok() || events->empty()) return;
    bool relevant = false;
    for (const auto& e : *events) {
      cursor_ = e.seq;
      if (!e.job) continue;
      auto it = job_index_.find(e.job);
      if (it == job_index_.end()) continue;
      relevant = true;
      auto run = active_.find(it->second.first);
      if (run == active_.end()) continue;
      if (e.type == "JobStarted") {
        auto n = run->second->rec.nodes.find(it->second.second);
        if (n != run->second->rec.nodes.end()) {
          n->second.start_time = e.time;
          run->second->dirty.insert(n->first);
        }
        continue;
      }
      if (e.state != "Succeeded" && e.state != "Failed" && e.state != "Cancelled") continue;
      auto job = store_.GetJob(e.job);
      if (!job.ok() || !model::IsTerminal(job->state)) continue;
      // A copy: OnJobEnded erases the job_index_ entry that holds the name.
      std::string node = it->second.second;
      OnJobEnded(*run->second, node, *job);
    }
    for (auto& [id, rs] : active_) Save(*rs);
    // The cursor only saves re-reading events after a restart (Start
    // reconciles running steps with their jobs anyway), so it is written
    // when pipeline jobs moved or every 10,000 events, not on every event.
    if (relevant || cursor_ - saved_cursor_ >= 10000) {
      Status st = pstore_.PutCursor(cursor_);
      if (st.ok())
        saved_cursor_ = cursor_;
      else
        spdlog::warn("pipelines: {}", st.message());
    }
    if (events->size() < 4096) return;
  }
}

const model::StepSpec* PipelineController::StepOf(const RunState& rs, const NodeRecord& n) const {
  if (n.name == kExitNode && rs.spec.on_exit) return &*rs.spec.on_exit;
  return rs.spec.Step(n.step);
}

void PipelineController::OnJobEnded(RunState& rs, const std::string& name, const model::Job& job) {
  job_index_.erase(job.id);
  auto it = rs.rec.nodes.find(name);
  if (it == rs.rec.nodes.end()) return;
  NodeRecord& n = it->second;
  if (n.state != model::StepState::kRunning || n.job_id != job.id) return;
  const model::StepSpec* step = StepOf(rs, n);
  rs.dirty.insert(name);
  n.end_time = job.end_time ? job.end_time : clock_.Now();
  if (job.start_time) n.start_time = job.start_time;
  if (job.exit_code)
    n.exit_code = *job.exit_code;
  else
    n.exit_code.reset();
  std::string gpus;
  for (int g : job.placement.gpus) gpus += (gpus.empty() ? "" : ",") + std::to_string(g);
  n.gpus = gpus;
  if (!step) {
    n.state = model::StepState::kFailed;
    n.message = "step spec missing";
    return;
  }
  if (job.state == model::JobState::kSucceeded) {
    Status st = CollectOutputs(rs, n, *step, job);
    if (!st.ok()) return FailOrRetry(rs, n, *step, st.message(), true);
    n.state = model::StepState::kSucceeded;
    n.message = "";
    if (!step->memoize_key.empty() && n.outputs.contains("memoKey")) {
      Status ms = pstore_.PutMemo(n.outputs["memoKey"].get<std::string>(), n.outputs, clock_.Now(),
                                  rs.rec.id, n.name);
      if (!ms.ok()) spdlog::warn("pipelines: memo: {}", ms.message());
    }
    return;
  }
  if (!rs.rec.stopping.empty() || job.state == model::JobState::kCancelled) {
    n.state = job.state == model::JobState::kCancelled ? model::StepState::kCancelled
                                                       : model::StepState::kFailed;
    n.message = rs.rec.stopping == "timeout" ? "pipeline timeout" : job.message;
    if (n.message.empty())
      n.message = job.state == model::JobState::kCancelled ? "cancelled" : "failed";
    if (rs.rec.stopping.empty()) return FailOrRetry(rs, n, *step, "job cancelled", false);
    return;
  }
  // The job's own message already says how it ended ("exited with code 4",
  // "killed by SIGKILL"); the exit code alone only when it has none.
  std::string msg = job.message;
  if (msg.empty() && job.exit_code) msg = "exit code " + std::to_string(*job.exit_code);
  // A task that could not be started (command not found, bad working
  // directory) ends without ever having run (no start time) and with exit
  // code 127: that is an error (retryPolicy OnError), not a failure of a
  // process that ran (OnFailure).
  bool process_ran = job.exit_code.has_value() && job.start_time > 0;
  FailOrRetry(rs, n, *step, msg.empty() ? "failed" : msg, process_ran);
}

void PipelineController::FailOrRetry(RunState& rs, NodeRecord& n, const model::StepSpec& step,
                                     const std::string& message, bool process_ran) {
  rs.dirty.insert(n.name);
  if (auto at =
          pipeline_engine::RetryAt(step, n, process_ran, !rs.rec.stopping.empty(), clock_.Now())) {
    n.state = model::StepState::kPending;
    n.job_id = 0;
    n.next_at = *at;
    n.message = "attempt " + std::to_string(n.attempts) + " failed (" + message + "); retrying";
    return;
  }
  n.state = model::StepState::kFailed;
  n.message = message;
  if (!n.end_time) n.end_time = clock_.Now();
}

void PipelineController::Launch(RunState& rs, NodeRecord& n, const model::StepSpec& step) {
  rs.dirty.insert(n.name);
  n.attempts++;
  n.next_at = 0;
  n.exit_code.reset();
  auto lookup = pipeline_engine::Lookup(rs.rec, n);
  auto sub = [&](const std::string& field, const std::string& text) -> Result<std::string> {
    auto r = model::Substitute(text, lookup);
    if (!r.ok())
      return InvalidArgument(field + ": " + r.status().message() + " (not produced at run time)");
    return r;
  };
  auto fail = [&](const std::string& msg) {
    n.state = model::StepState::kFailed;
    n.message = msg;
    n.start_time = n.end_time = clock_.Now();
  };
  model::JobSpec js;
  if (!step.script.empty()) {
    auto s = sub("script", step.script);
    if (!s.ok()) return fail(s.status().message());
    js.command = {"/bin/sh", "-c", *s};
  } else {
    for (size_t i = 0; i < step.command.size(); ++i) {
      auto s = sub("command[" + std::to_string(i) + "]", step.command[i]);
      if (!s.ok()) return fail(s.status().message());
      js.command.push_back(*s);
    }
  }
  for (const auto& [k, v] : step.env) {
    auto s = sub("env." + k, v);
    if (!s.ok()) return fail(s.status().message());
    js.env[k] = *s;
  }
  // The step's files are the business of its supervisor, which handles them
  // as the step's owner (exec/step_files.h): berthd only names them.
  exec::StepFiles files;
  files.artifact_root = options_.artifact_root;
  const std::string run_name = "run-" + std::to_string(rs.rec.id);
  std::string workdir = rs.rec.artifact_dir + "/work/" + n.name;
  if (!step.working_dir.empty()) {
    auto s = sub("workingDir", step.working_dir);
    if (!s.ok()) return fail(s.status().message());
    workdir = *s;
  } else {
    std::optional<exec::TaskAccount> account;
    if (jobs_.account_for) {
      auto a = jobs_.account_for(rs.rec.user);
      if (!a.ok()) return fail(a.status().message());
      account = *a;
    }
    Status st = MakeDirsBeneath(options_.artifact_root, {run_name, "work", n.name}, account);
    if (!st.ok()) return fail("working directory: " + st.message());
  }
  files.work_dir = workdir;
  const std::string root_prefix = options_.artifact_root + "/";
  for (const auto& a : step.input_artifacts) {
    auto src = sub("inputs.artifacts." + a.name, a.from);
    if (!src.ok()) return fail(src.status().message());
    std::string from = src->rfind(root_prefix, 0) == 0 ? src->substr(root_prefix.size()) : "";
    if (from.empty() || !model::CheckStepPath(from, "from").ok())
      return fail("inputs.artifacts." + a.name + ": " + *src +
                  " is not an artifact of a pipeline run here");
    files.inputs.push_back({a.name, from, a.path});
  }
  for (const auto& p : step.output_parameters)
    if (!p.stdout) files.parameters.push_back({p.name, p.path});
  for (const auto& a : step.output_artifacts)
    files.artifacts.push_back({a.name, a.path, ArtifactName(rs, n, a.name)});
  if (!files.inputs.empty() || files.HasOutputs())
    js.env[exec::kStepFilesEnv] = exec::StepFilesToJson(files);
  js.name = rs.rec.name + "-" + std::to_string(rs.rec.id) + "-" + n.name;
  for (char& c : js.name)
    if (c == '(' || c == ')') c = '-';
  while (!js.name.empty() && js.name.back() == '-') js.name.pop_back();
  js.user = rs.rec.user;
  js.queue = step.queue;
  js.priority = step.priority;
  js.priority_class = step.priority_class;
  js.working_dir = workdir;
  js.resources = step.resources;
  js.time_limit = step.timeout;
  js.env["BERTH_PIPELINE_RUN"] = std::to_string(rs.rec.id);
  js.env["BERTH_PIPELINE_STEP"] = n.step;
  js.env["BERTH_PIPELINE_NODE"] = n.name;
  js.env["BERTH_ARTIFACT_DIR"] = rs.rec.artifact_dir;
  js.labels["berth.pipeline/run"] = std::to_string(rs.rec.id);
  js.labels["berth.pipeline/step"] = n.step;
  js.labels["berth.pipeline/node"] = n.name;
  n.state = model::StepState::kRunning;
  n.job_id = 0;  // set by FlushSubmits at the end of this pass
  n.start_time = 0;
  n.end_time = 0;
  n.message = "";
  rs.to_submit.emplace_back(n.name, std::move(js));
}

void PipelineController::FlushSubmits(RunState& rs) {
  if (rs.to_submit.empty()) return;
  auto batch = std::move(rs.to_submit);
  rs.to_submit.clear();
  std::vector<std::optional<Result<model::Job>>> results(batch.size());
  if (batch.size() == 1) {
    results[0] = jobs_.submit(batch[0].second);
  } else {
    std::atomic<size_t> next{0};
    std::vector<std::thread> workers;
    size_t n = std::min<size_t>(batch.size(), 32);
    for (size_t w = 0; w < n; ++w)
      workers.emplace_back([&] {
        for (size_t i; (i = next++) < batch.size();) results[i] = jobs_.submit(batch[i].second);
      });
    for (auto& t : workers) t.join();
  }
  for (size_t i = 0; i < batch.size(); ++i) {
    NodeRecord& node = rs.rec.nodes[batch[i].first];
    rs.dirty.insert(node.name);
    const Result<model::Job>& job = *results[i];
    if (!job.ok()) {
      node.start_time = node.end_time = clock_.Now();
      const model::StepSpec* step = StepOf(rs, node);
      node.state = model::StepState::kFailed;
      if (step) FailOrRetry(rs, node, *step, "submit: " + job.status().message(), false);
      continue;
    }
    node.job_id = job->id;
    job_index_[job->id] = {rs.rec.id, node.name};
  }
}

void PipelineController::Advance(RunState& rs) {
  for (int i = 0; i < 1000; ++i) {
    bool more = AdvanceOnce(rs);
    FlushSubmits(rs);
    if (!more) break;
  }
  Save(rs);
}

// One step of the engine, applied; true if it decided anything (which may let more happen).
bool PipelineController::AdvanceOnce(RunState& rs) {
  TimeMs now = clock_.Now();
  std::vector<pipeline_engine::Action> actions =
      pipeline_engine::Step({rs.rec, rs.spec, options_.max_fan_out}, now);
  for (const auto& a : actions) Apply(rs, a, now);
  return !actions.empty();
}

void PipelineController::Apply(RunState& rs, const pipeline_engine::Action& a, TimeMs now) {
  using Kind = pipeline_engine::Action::Kind;
  switch (a.kind) {
    case Kind::kTimeout:
      rs.rec.stopping = "timeout";
      rs.rec.message = a.message;
      rs.changed = true;
      return;
    case Kind::kCancelJob:
      (void)jobs_.cancel(a.job);
      return;
    case Kind::kFinishRun:
      rs.rec.state = a.run_state;
      rs.rec.message = a.message;
      rs.rec.ended = now;
      rs.changed = true;
      Event(rs, std::string("PipelineRun") + model::ToString(rs.rec.state), rs.rec.message);
      Save(rs);
      return;
    case Kind::kSetNode:
    case Kind::kExpand:
    case Kind::kLaunch:
      break;
  }
  NodeRecord& n = rs.rec.nodes[a.node];
  if (n.name.empty()) n.name = n.step = a.node;
  rs.dirty.insert(a.node);
  if (a.kind == Kind::kSetNode) {
    if (a.started) n.start_time = now;
    if (a.outputs.is_object())
      for (auto it = a.outputs.begin(); it != a.outputs.end(); ++it)
        n.outputs[it.key()] = it.value();
    n.state = a.state;
    n.message = a.message;
    if (!n.end_time) n.end_time = now;
    return;
  }
  if (a.kind == Kind::kExpand) {
    n.state = model::StepState::kRunning;
    n.start_time = now;
    n.outputs["children"] = a.items.size();
    for (size_t i = 0; i < a.items.size(); ++i) {
      NodeRecord c;
      c.name = ChildName(n.step, static_cast<int64_t>(i));
      c.step = n.step;
      c.index = static_cast<int64_t>(i);
      c.item = a.items[i].dump();
      rs.dirty.insert(c.name);
      rs.rec.nodes[c.name] = std::move(c);
    }
    return;
  }
  // kLaunch
  const model::StepSpec* step = StepOf(rs, n);
  if (!step) {
    n.state = model::StepState::kFailed;
    n.message = "step spec missing";
    if (!n.end_time) n.end_time = now;
    return;
  }
  // Memoization: a recent enough success under the same key is reused.
  if (a.node != kExitNode && !step->memoize_key.empty()) {
    auto key = model::Substitute(step->memoize_key, pipeline_engine::Lookup(rs.rec, n));
    if (key.ok()) {
      auto hit = pstore_.GetMemo(*key);
      if (hit.ok() && *hit &&
          (step->memoize_max_age <= 0 || now - (*hit)->second <= step->memoize_max_age)) {
        n.outputs = (*hit)->first;
        n.cached = true;
        n.start_time = now;
        n.state = model::StepState::kSucceeded;
        n.message = "memoized result reused";
        if (!n.end_time) n.end_time = now;
        return;
      }
      n.outputs["memoKey"] = *key;
    }
  }
  Launch(rs, n, *step);
}

void PipelineController::Save(RunState& rs) {
  if (rs.dirty.empty() && !rs.changed && rs.events.empty()) return;
  std::vector<std::string> names(rs.dirty.begin(), rs.dirty.end());
  AnnounceSteps(rs, names);
  // The run's changes and its events in one transaction; on failure both
  // stay pending for the next Save.
  Status st = pstore_.SaveRun(rs.rec, names, rs.events, clock_.Now());
  if (!st.ok()) {
    spdlog::error("pipelines: run {}: {}", rs.rec.id, st.message());
    return;
  }
  rs.dirty.clear();
  rs.changed = false;
  rs.events.clear();
}

}  // namespace berth::controllers
