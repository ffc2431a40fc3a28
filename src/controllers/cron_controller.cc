// The cron controller: schedules (kind: CronPipeline), create, suspend,
// delete, backfill and the tick that starts due runs.
#include "controllers/cron_controller.h"

#include <algorithm>

#include "common/log.h"

namespace berth::controllers {

CronController::CronController(store::PipelineStore& pstore, CronRuns runs, const Clock& clock,
                               CronControllerOptions options)
    : pstore_(pstore), runs_(std::move(runs)), clock_(clock), options_(options) {}

CronController::~CronController() { Stop(); }

Status CronController::Start() {
  {
    std::lock_guard<std::mutex> l(mu_);
    ASSIGN_OR_RETURN(auto crons, pstore_.ListCrons());
    crons_.clear();
    for (const auto& c : crons) {
      auto cs = LoadCron(c);
      if (cs.ok())
        crons_.emplace(c.name, std::move(*cs));
      else
        spdlog::warn("cron pipeline {}: {}", c.name, cs.status().message());
    }
    stop_ = false;
  }
  if (options_.run_thread && !thread_.joinable()) thread_ = std::thread([this] { Loop(); });
  return Status::Ok();
}

void CronController::Stop() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void CronController::Loop() {
  std::unique_lock<std::mutex> l(mu_);
  while (!stop_) {
    TickLocked();
    cv_.wait_for(l, std::chrono::milliseconds(options_.tick), [&] { return stop_; });
  }
}

void CronController::RunOnce() {
  std::lock_guard<std::mutex> l(mu_);
  TickLocked();
}

Result<CronController::CronState> CronController::LoadCron(const store::CronRecord& rec) {
  ASSIGN_OR_RETURN(auto spec, model::ParseCronPipelineSpec(rec.spec));
  ASSIGN_OR_RETURN(auto sched, model::CronSchedule::Parse(spec.schedule));
  ASSIGN_OR_RETURN(auto tz, model::TimeZone::Load(spec.timezone));
  return CronState{rec, std::move(spec), std::move(sched), std::move(tz), rec.owner};
}

Result<store::CronRecord> CronController::CreateCron(const std::string& text,
                                                     const std::string& user) {
  ASSIGN_OR_RETURN(auto spec, model::ParseCronPipelineSpec(text));
  const std::string& claimed = spec.pipeline_spec.user;
  if (!claimed.empty() && !user.empty() && claimed != user)
    return InvalidArgument("spec.pipeline.metadata.user: \"" + claimed +
                           "\" is not the caller (\"" + user +
                           "\"); berthd records who submits, so leave it out");
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

Result<std::vector<store::CronRecord>> CronController::ListCrons() {
  std::lock_guard<std::mutex> l(mu_);
  std::vector<store::CronRecord> out;
  for (const auto& [name, c] : crons_) out.push_back(c.rec);
  return out;
}

Result<store::CronRecord> CronController::GetCron(const std::string& name) {
  std::lock_guard<std::mutex> l(mu_);
  auto it = crons_.find(name);
  if (it == crons_.end()) return NotFound("cron pipeline " + name + " not found");
  return it->second.rec;
}

Result<store::CronRecord> CronController::SetCronSuspended(const std::string& name,
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

Status CronController::DeleteCron(const std::string& name) {
  std::lock_guard<std::mutex> l(mu_);
  RETURN_IF_ERROR(pstore_.DeleteCron(name));
  crons_.erase(name);
  return Status::Ok();
}

Result<TimeMs> CronController::NextFire(const std::string& name, TimeMs after) {
  std::lock_guard<std::mutex> l(mu_);
  auto it = crons_.find(name);
  if (it == crons_.end()) return NotFound("cron pipeline " + name + " not found");
  auto next = it->second.schedule.Next(after, it->second.tz);
  return next ? *next : 0;
}

Result<std::vector<int64_t>> CronController::Backfill(const std::string& name, TimeMs from,
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
                     runs_.submit(c.spec.pipeline_text, c.spec.parameters, c.owner, name, *t));
    ids.push_back(id);
  }
  return ids;
}

void CronController::TickLocked() {
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
    std::vector<int64_t> running = runs_.active(name);
    if (!running.empty() && c.spec.concurrency == model::ConcurrencyPolicy::kForbid) {
      spdlog::info("cron pipeline {}: skipping {}: a run is still active (Forbid)", name,
                   FormatTime(*due));
      continue;
    }
    if (c.spec.concurrency == model::ConcurrencyPolicy::kReplace)
      for (int64_t id : running) runs_.replace(id, "replaced by a newer scheduled run");
    auto id = runs_.submit(c.spec.pipeline_text, c.spec.parameters, c.owner, name, *due);
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
