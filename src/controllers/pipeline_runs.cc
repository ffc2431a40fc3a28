// The pipeline controller's run operations for the API: submit, read, list,
// cancel, suspend, resume, retry, resubmit and step logs.
#include <filesystem>

#include "common/log.h"
#include "controllers/pipeline_controller.h"
#include "controllers/pipeline_dirs.h"
#include "controllers/pipeline_internal.h"

namespace berth::controllers {

using nlohmann::json;
using store::NodeRecord;
using store::RunRecord;
using namespace pipeline_internal;
namespace fs = std::filesystem;

Result<int64_t> PipelineController::SubmitLocked(const std::string& spec_text,
                                                 const std::map<std::string, std::string>& params,
                                                 const std::string& user, const std::string& cron,
                                                 TimeMs scheduled_time) {
  ASSIGN_OR_RETURN(model::PipelineSpec spec, model::ParsePipelineSpec(spec_text));
  RETURN_IF_ERROR(model::CheckPipelineFanOut(spec, options_.max_fan_out));
  ASSIGN_OR_RETURN(auto resolved, model::ResolveParameters(spec, params));
  auto rs = std::make_unique<RunState>();
  RunRecord& r = rs->rec;
  r.name = spec.name;
  if (!spec.user.empty() && !user.empty() && spec.user != user)
    return InvalidArgument("metadata.user: \"" + spec.user + "\" is not the caller (\"" + user +
                           "\"); berthd records who submits, so leave metadata.user out");
  r.user = !user.empty() ? user : spec.user;
  // Steps run as the run's owner: one without an account here is refused now
  // rather than at its first step.
  std::optional<exec::TaskAccount> account;
  if (jobs_.account_for) {
    auto a = jobs_.account_for(r.user);
    if (!a.ok()) return InvalidArgument("metadata.user: " + a.status().message());
    account = *a;
  }
  r.state = model::RunState::kRunning;
  r.spec = spec_text;
  r.parameters = resolved;
  if (scheduled_time) r.parameters["@scheduledTime"] = FormatTime(scheduled_time);
  r.cron = cron;
  r.created = r.started = clock_.Now();
  for (const auto& s : spec.steps) {
    NodeRecord n;
    n.name = n.step = s.name;
    r.nodes[n.name] = n;
  }
  // The artifact directory is named after the id: the run, its directory and
  // its PipelineRunCreated event are written in one transaction.
  RETURN_IF_ERROR(pstore_.CreateRun(&r, clock_.Now(), [&](RunRecord& run) {
    run.artifact_dir = options_.artifact_root + "/run-" + std::to_string(run.id);
    return std::vector<store::NewEvent>{PipelineRunEvent("PipelineRunCreated", run, "")};
  }));
  rs->spec = std::move(spec);
  // Made beneath the artifact root without following links, and given to
  // the owner: berthd opens nothing in them by a path afterwards.
  const std::string run_name = "run-" + std::to_string(r.id);
  for (const char* sub : {"", "work", "artifacts"}) {
    std::vector<std::string> comps = {run_name};
    if (*sub) comps.push_back(sub);
    Status st = MakeDirsBeneath(options_.artifact_root, comps, account);
    if (!st.ok()) spdlog::warn("pipelines: run {}: {}", r.id, st.message());
  }
  int64_t id = r.id;
  Advance(*rs);
  active_[id] = std::move(rs);
  return id;
}

Result<RunRecord> PipelineController::Submit(const std::string& spec_text,
                                             const std::map<std::string, std::string>& params,
                                             const std::string& user, const std::string& cron,
                                             TimeMs scheduled_time) {
  int64_t id;
  {
    std::lock_guard<std::mutex> l(mu_);
    ASSIGN_OR_RETURN(id, SubmitLocked(spec_text, params, user, cron, scheduled_time));
  }
  return GetRun(id);
}

Result<RunRecord> PipelineController::Snapshot(int64_t id) {
  auto it = active_.find(id);
  if (it != active_.end()) return it->second->rec;
  return pstore_.GetRun(id);
}

Result<RunRecord> PipelineController::GetRun(int64_t id) {
  std::lock_guard<std::mutex> l(mu_);
  return Snapshot(id);
}

Result<std::vector<RunRecord>> PipelineController::ListRuns(int64_t limit) {
  std::lock_guard<std::mutex> l(mu_);
  ASSIGN_OR_RETURN(auto runs, pstore_.ListRuns(limit, false));
  for (auto& r : runs) {
    auto it = active_.find(r.id);
    if (it != active_.end()) r = it->second->rec;
  }
  return runs;
}

Result<RunRecord> PipelineController::Cancel(int64_t id) {
  std::lock_guard<std::mutex> l(mu_);
  auto it = active_.find(id);
  if (it == active_.end()) {
    ASSIGN_OR_RETURN(RunRecord r, pstore_.GetRun(id));
    return FailedPrecondition("pipeline run " + std::to_string(id) + " already ended (" +
                              model::ToString(r.state) + ")");
  }
  RunState& rs = *it->second;
  if (rs.rec.stopping.empty()) {
    rs.rec.stopping = "cancel";
    rs.rec.message = "cancelled";
    rs.changed = true;
    for (auto& [name, n] : rs.rec.nodes)
      if (n.state == model::StepState::kRunning && n.job_id && name != kExitNode)
        (void)jobs_.cancel(n.job_id);
    Event(rs, "PipelineRunCancelling", "");
  }
  Advance(rs);
  RunRecord out = rs.rec;
  if (RunTerminal(rs.rec.state)) active_.erase(it);
  return out;
}

Result<RunRecord> PipelineController::Suspend(int64_t id) {
  std::lock_guard<std::mutex> l(mu_);
  auto it = active_.find(id);
  if (it == active_.end())
    return FailedPrecondition("pipeline run " + std::to_string(id) + " is not running");
  it->second->rec.suspended = true;
  it->second->changed = true;
  Event(*it->second, "PipelineRunSuspended", "");
  Save(*it->second);
  return it->second->rec;
}

Result<RunRecord> PipelineController::Resume(int64_t id) {
  std::lock_guard<std::mutex> l(mu_);
  auto it = active_.find(id);
  if (it == active_.end())
    return FailedPrecondition("pipeline run " + std::to_string(id) + " is not running");
  it->second->rec.suspended = false;
  it->second->changed = true;
  Event(*it->second, "PipelineRunResumed", "");
  Advance(*it->second);
  return it->second->rec;
}

Result<RunRecord> PipelineController::Retry(int64_t id) {
  std::lock_guard<std::mutex> l(mu_);
  if (active_.count(id))
    return FailedPrecondition("pipeline run " + std::to_string(id) + " is still running");
  ASSIGN_OR_RETURN(RunRecord r, pstore_.GetRun(id));
  if (r.state != model::RunState::kFailed && r.state != model::RunState::kCancelled)
    return FailedPrecondition("pipeline run " + std::to_string(id) + " is " +
                              model::ToString(r.state) +
                              "; only Failed or Cancelled runs can be retried");
  ASSIGN_OR_RETURN(model::PipelineSpec spec, model::ParsePipelineSpec(r.spec));
  auto rs = std::make_unique<RunState>();
  rs->spec = std::move(spec);
  std::vector<std::string> all;
  for (auto& [name, n] : r.nodes) {
    all.push_back(name);
    bool redo = n.state == model::StepState::kFailed || n.state == model::StepState::kOmitted ||
                n.state == model::StepState::kCancelled || name == kExitNode;
    if (!redo) continue;
    bool expanded_group = n.index < 0 && n.outputs.contains("children");
    NodeRecord fresh;
    fresh.name = n.name;
    fresh.step = n.step;
    fresh.index = n.index;
    fresh.item = n.item;
    if (expanded_group) {
      fresh.state = model::StepState::kRunning;
      fresh.outputs["children"] = n.outputs["children"];
      fresh.start_time = n.start_time;
    }
    n = fresh;
  }
  r.state = model::RunState::kRunning;
  r.stopping = "";
  r.message = "";
  r.ended = 0;
  r.started = clock_.Now();
  rs->rec = std::move(r);
  rs->dirty.insert(all.begin(), all.end());
  rs->changed = true;
  Event(*rs, "PipelineRunRetried", "");
  Save(*rs);
  Advance(*rs);
  RunRecord out = rs->rec;
  if (!RunTerminal(out.state)) active_[id] = std::move(rs);
  return out;
}

Result<RunRecord> PipelineController::Resubmit(int64_t id, const std::string& user) {
  ASSIGN_OR_RETURN(RunRecord r, GetRun(id));
  std::map<std::string, std::string> params;
  for (const auto& [k, v] : r.parameters)
    if (k.empty() || k[0] != '@') params[k] = v;
  return Submit(r.spec, params, user, r.cron);
}

Result<exec::LogChunk> PipelineController::Logs(int64_t id, const std::string& node, int64_t offset,
                                                int64_t limit) {
  ASSIGN_OR_RETURN(RunRecord r, GetRun(id));
  auto it = r.nodes.find(node);
  if (it == r.nodes.end())
    return NotFound("pipeline run " + std::to_string(id) + " has no step " + node);
  if (!it->second.job_id) return exec::LogChunk{};
  ASSIGN_OR_RETURN(model::Job job, store_.GetJob(it->second.job_id));
  if (job.attempts == 0 || !jobs_.read_log) return exec::LogChunk{};
  return jobs_.read_log(job, offset, limit);
}

std::vector<int64_t> PipelineController::ActiveRuns(const std::string& cron) {
  std::lock_guard<std::mutex> l(mu_);
  std::vector<int64_t> out;
  for (auto& [id, rs] : active_)
    if (rs->rec.cron == cron && !RunTerminal(rs->rec.state)) out.push_back(id);
  return out;
}

void PipelineController::Replace(int64_t id, const std::string& why) {
  std::lock_guard<std::mutex> l(mu_);
  auto it = active_.find(id);
  if (it == active_.end()) return;
  RunState& rs = *it->second;
  if (!rs.rec.stopping.empty()) return;
  rs.rec.stopping = "cancel";
  rs.rec.message = why;
  rs.changed = true;
  for (auto& [name, n] : rs.rec.nodes)
    if (n.state == model::StepState::kRunning && n.job_id && name != kExitNode)
      (void)jobs_.cancel(n.job_id);
  Advance(rs);
  if (RunTerminal(rs.rec.state)) active_.erase(it);
}

namespace {
Status NoCron() { return Unavailable("cron pipelines are not available (no cron controller)"); }
}  // namespace

Result<store::CronRecord> PipelineController::CreateCron(const std::string& text,
                                                         const std::string& user) {
  if (!cron_) return NoCron();
  return cron_->CreateCron(text, user);
}
Result<std::vector<store::CronRecord>> PipelineController::ListCrons() {
  if (!cron_) return NoCron();
  return cron_->ListCrons();
}
Result<store::CronRecord> PipelineController::GetCron(const std::string& name) {
  if (!cron_) return NoCron();
  return cron_->GetCron(name);
}
Result<store::CronRecord> PipelineController::SetCronSuspended(const std::string& name,
                                                               bool suspended) {
  if (!cron_) return NoCron();
  return cron_->SetCronSuspended(name, suspended);
}
Status PipelineController::DeleteCron(const std::string& name) {
  if (!cron_) return NoCron();
  return cron_->DeleteCron(name);
}
Result<std::vector<int64_t>> PipelineController::Backfill(const std::string& name, TimeMs from,
                                                          TimeMs to) {
  if (!cron_) return NoCron();
  return cron_->Backfill(name, from, to);
}
Result<TimeMs> PipelineController::NextFire(const std::string& name, TimeMs after) {
  if (!cron_) return NoCron();
  return cron_->NextFire(name, after);
}

}  // namespace berth::controllers
