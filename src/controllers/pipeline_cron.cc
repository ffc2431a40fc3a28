// The pipeline controller's cron schedules (kind: CronPipeline): create,
// suspend, delete, backfill and the tick that starts due runs.
#include "controllers/pipeline_controller.h"

#include "common/log.h"
#include "controllers/pipeline_internal.h"

namespace berth::controllers {

using nlohmann::json;
using store::NodeRecord;
using store::RunRecord;
using namespace pipeline_internal;

Result<PipelineController::CronState> PipelineController::LoadCron(const store::CronRecord& rec) {
  ASSIGN_OR_RETURN(auto spec, model::ParseCronPipelineSpec(rec.spec));
  ASSIGN_OR_RETURN(auto sched, model::CronSchedule::Parse(spec.schedule));
  ASSIGN_OR_RETURN(auto tz, model::TimeZone::Load(spec.timezone));
  return CronState{rec, std::move(spec), std::move(sched), std::move(tz), rec.owner};
}

Result<store::CronRecord> PipelineController::CreateCron(const std::string& text,
                                                        const std::string& user) {
  ASSIGN_OR_RETURN(auto spec, model::ParseCronPipelineSpec(text));
  const std::string& claimed = spec.pipeline_spec.user;
  if (!claimed.empty() && !user.empty() && claimed != user)
    return InvalidArgument("spec.pipeline.metadata.user: \"" + claimed + "\" is not the caller (\"" +
                           user + "\"); berthd records who submits, so leave it out");
  std::lock_guard<std::mutex> l(mu_);
  store::CronRecord rec;
  rec.name = spec.name;
  rec.spec = text;
  rec.suspended = spec.suspend;
  rec.created = clock_.Now();
  rec.last_time = rec.created;
  rec.owner = user;
  auto old = crons_.find(spec.name);
  if (old != crons_.end()) {
    rec.last_time = std::max(old->second.rec.last_time, rec.created);
    rec.last_fired = old->second.rec.last_fired;
  }
  ASSIGN_OR_RETURN(CronState cs, LoadCron(rec));
  RETURN_IF_ERROR(pstore_.PutCron(rec));
  crons_.erase(spec.name);
  crons_.emplace(spec.name, std::move(cs));
  return rec;
}

Result<std::vector<store::CronRecord>> PipelineController::ListCrons() {
  std::lock_guard<std::mutex> l(mu_);
  std::vector<store::CronRecord> out;
  for (const auto& [name, c] : crons_) out.push_back(c.rec);
  return out;
}

Result<store::CronRecord> PipelineController::GetCron(const std::string& name) {
  std::lock_guard<std::mutex> l(mu_);
  auto it = crons_.find(name);
  if (it == crons_.end()) return NotFound("cron pipeline " + name + " not found");
  return it->second.rec;
}

Result<store::CronRecord> PipelineController::SetCronSuspended(const std::string& name,
                                                               bool suspended) {
  std::lock_guard<std::mutex> l(mu_);
  auto it = crons_.find(name);
  if (it == crons_.end()) return NotFound("cron pipeline " + name + " not found");
  it->second.rec.suspended = suspended;
  // Resuming does not catch up on the times missed while suspended.
  if (!suspended) it->second.rec.last_time = std::max(it->second.rec.last_time, clock_.Now());
  RETURN_IF_ERROR(pstore_.PutCron(it->second.rec));
  return it->second.rec;
}

Status PipelineController::DeleteCron(const std::string& name) {
  std::lock_guard<std::mutex> l(mu_);
  RETURN_IF_ERROR(pstore_.DeleteCron(name));
  crons_.erase(name);
  return Status::Ok();
}

Result<TimeMs> PipelineController::NextFire(const std::string& name, TimeMs after) {
  std::lock_guard<std::mutex> l(mu_);
  auto it = crons_.find(name);
  if (it == crons_.end()) return NotFound("cron pipeline " + name + " not found");
  auto next = it->second.schedule.Next(after, it->second.tz);
  return next ? *next : 0;
}

Result<std::vector<int64_t>> PipelineController::Backfill(const std::string& name, TimeMs from,
                                                          TimeMs to) {
  std::lock_guard<std::mutex> l(mu_);
  auto it = crons_.find(name);
  if (it == crons_.end()) return NotFound("cron pipeline " + name + " not found");
  if (to < from) return InvalidArgument("backfill: the end is before the start");
  std::vector<int64_t> ids;
  const CronState& c = it->second;
  for (auto t = c.schedule.Next(from - 1, c.tz); t && *t <= to; t = c.schedule.Next(*t, c.tz)) {
    if (ids.size() >= 1000)
      return InvalidArgument("backfill: more than 1000 fire times in the range");
    ASSIGN_OR_RETURN(int64_t id,
                     SubmitLocked(c.spec.pipeline_text, c.spec.parameters, c.owner, name, *t));
    ids.push_back(id);
  }
  return ids;
}

void PipelineController::CronTickLocked() {
  TimeMs now = clock_.Now();
  for (auto& [name, c] : crons_) {
    if (c.rec.suspended) continue;
    // The latest fire time in (last_time, now]; missed earlier ones are not
    // caught up (use Backfill for that).
    std::optional<TimeMs> due;
    for (auto t = c.schedule.Next(c.rec.last_time, c.tz); t && *t <= now;
         t = c.schedule.Next(*t, c.tz))
      due = t;
    if (!due) continue;
    c.rec.last_time = *due;
    Status st = pstore_.PutCron(c.rec);
    if (!st.ok()) spdlog::warn("cron pipeline {}: {}", name, st.message());
    std::vector<int64_t> running;
    for (auto& [id, rs] : active_)
      if (rs->rec.cron == name && !RunTerminal(rs->rec.state)) running.push_back(id);
    if (!running.empty() && c.spec.concurrency == model::ConcurrencyPolicy::kForbid) {
      spdlog::info("cron pipeline {}: skipping {}: a run is still active (Forbid)", name,
                   FormatTime(*due));
      continue;
    }
    if (c.spec.concurrency == model::ConcurrencyPolicy::kReplace) {
      for (int64_t id : running) {
        RunState& rs = *active_[id];
        if (!rs.rec.stopping.empty()) continue;
        rs.rec.stopping = "cancel";
        rs.rec.message = "replaced by a newer scheduled run";
        rs.changed = true;
        for (auto& [nn, n] : rs.rec.nodes)
          if (n.state == "Running" && n.job_id && nn != kExitNode) (void)jobs_.cancel(n.job_id);
        Advance(rs);
      }
    }
    auto id = SubmitLocked(c.spec.pipeline_text, c.spec.parameters, c.owner, name, *due);
    if (!id.ok()) {
      spdlog::warn("cron pipeline {}: {}", name, id.status().message());
      continue;
    }
    c.rec.last_fired = *due;
    st = pstore_.PutCron(c.rec);
    if (!st.ok()) spdlog::warn("cron pipeline {}: {}", name, st.message());
  }
}

}  // namespace berth::controllers
