// The experiment controller: start, the loop, and what the API asks of it.
#include "controllers/experiment_controller.h"

#include <filesystem>
#include <functional>

#include "common/log.h"

namespace berth::controllers {

ExperimentController::ExperimentController(store::Store& store, store::ExperimentStore& estore,
                                           TrialJobs jobs, const Clock& clock,
                                           ExperimentControllerOptions options)
    : store_(store),
      estore_(estore),
      jobs_(std::move(jobs)),
      clock_(clock),
      options_(std::move(options)) {}

ExperimentController::~ExperimentController() { Stop(); }

Result<std::unique_ptr<ExperimentController::Exp>> ExperimentController::Load(
    const store::ExperimentRecord& rec) {
  auto e = std::make_unique<Exp>();
  e->rec = rec;
  ASSIGN_OR_RETURN(e->spec, model::ParseExperimentSpec(rec.spec));
  ASSIGN_OR_RETURN(e->trials, estore_.Trials(rec.uid));
  // Trial ids are dense from 0; a gap would be a damaged store.
  for (size_t i = 0; i < e->trials.size(); ++i)
    if (e->trials[i].id != static_cast<int64_t>(i))
      return Internal("experiment " + rec.name + ": trial ids are not dense");
  ASSIGN_OR_RETURN(auto obs, estore_.Observations(rec.uid));
  for (const auto& o : obs) e->obs[o.trial][o.metric][o.step] = o.value;
  return e;
}

Status ExperimentController::Start() {
  {
    std::lock_guard<std::mutex> l(mu_);
    ASSIGN_OR_RETURN(auto all, estore_.List());
    active_.clear();
    for (const auto& rec : all) {
      if (rec.state != "Running") continue;
      auto e = Load(rec);
      if (!e.ok()) {
        spdlog::warn("experiment {}: {}", rec.name, e.status().message());
        continue;
      }
      Reconcile(**e);
      active_[rec.name] = std::move(*e);
    }
    stop_ = false;
  }
  if (options_.run_thread && !thread_.joinable()) thread_ = std::thread([this] { Loop(); });
  return Status::Ok();
}

void ExperimentController::Stop() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

void ExperimentController::Loop() {
  for (;;) {
    int64_t seen = store_.LastEventSeq();
    {
      std::lock_guard<std::mutex> l(mu_);
      if (stop_) return;
      PassLocked();
    }
    // Woken by any event (a trial's job ended, an API call) or the tick.
    store_.WaitForEvent(seen, options_.tick);
  }
}

void ExperimentController::RunOnce() {
  std::lock_guard<std::mutex> l(mu_);
  PassLocked();
}

void ExperimentController::PassLocked() {
  for (auto it = active_.begin(); it != active_.end();) {
    Exp& e = *it->second;
    // An ended experiment stays only until its trials' jobs are asked to stop.
    if (e.rec.state == "Running")
      Step(e);
    else
      CancelJobs(e);
    if (e.rec.state != "Running" && e.to_cancel.empty())
      it = active_.erase(it);
    else
      ++it;
  }
}

Result<ExperimentController::Exp*> ExperimentController::FindLocked(const std::string& name,
                                                                    std::unique_ptr<Exp>* holder) {
  auto it = active_.find(name);
  if (it != active_.end()) return it->second.get();
  ASSIGN_OR_RETURN(auto rec, estore_.Get(name));
  if (!rec) return NotFound("experiment " + name + " not found");
  auto e = Load(*rec);
  if (!e.ok()) {
    // A document this build no longer accepts: still shown and deletable.
    auto x = std::make_unique<Exp>();
    x->rec = *rec;
    auto trials = estore_.Trials(rec->uid);
    if (trials.ok()) x->trials = std::move(*trials);
    *holder = std::move(x);
    return holder->get();
  }
  *holder = std::move(*e);
  return holder->get();
}

Status ExperimentController::ApplyCounts(store::ExperimentRecord& rec, const TrialCounts& c) {
  if (c.parallel) {
    if (*c.parallel < 1 || *c.parallel > model::kMaxParallelTrials)
      return InvalidArgument("parallelTrialCount: must be 1 to " +
                             std::to_string(model::kMaxParallelTrials));
    rec.parallel = *c.parallel;
  }
  if (c.max_trials) {
    if (*c.max_trials < 0 || *c.max_trials > model::kMaxTrialCount)
      return InvalidArgument("maxTrialCount: must be 0 (no limit) to " +
                             std::to_string(model::kMaxTrialCount));
    rec.max_trials = *c.max_trials;
  }
  if (c.max_failed) {
    if (*c.max_failed < -1 || *c.max_failed > model::kMaxTrialCount)
      return InvalidArgument("maxFailedTrialCount: must be 0 to " +
                             std::to_string(model::kMaxTrialCount) + " (or -1: no limit)");
    rec.max_failed = *c.max_failed;
  }
  return Status::Ok();
}

Result<nlohmann::json> ExperimentController::Create(const std::string& text,
                                                    const std::string& user) {
  ASSIGN_OR_RETURN(auto spec, model::ParseExperimentSpec(text));
  if (!spec.user.empty() && !user.empty() && spec.user != user)
    return InvalidArgument("metadata.user: \"" + spec.user + "\" is not the caller (\"" + user +
                           "\"); berthd records who submits, so leave it out");
  std::lock_guard<std::mutex> l(mu_);
  store::ExperimentRecord rec;
  rec.name = spec.name;
  rec.owner = user;
  rec.spec = text;
  rec.created = clock_.Now();
  rec.seed = static_cast<int64_t>(std::hash<std::string>{}(spec.name) ^
                                  static_cast<uint64_t>(rec.created)) &
             0x7fffffffffffffffLL;
  rec.parallel = spec.parallel_trials;
  rec.max_trials = spec.max_trials;
  rec.max_failed = spec.max_failed_trials;
  store::NewEvent ev;
  ev.type = "ExperimentCreated";
  ev.message = "experiment " + spec.name + " created by " + user + " (" + spec.algorithm + ", " +
               std::to_string(spec.parallel_trials) + " in parallel)";
  ev.data = {{"experiment", spec.name}};
  RETURN_IF_ERROR(estore_.Create(&rec, {ev}, rec.created));
  auto e = std::make_unique<Exp>();
  e->rec = rec;
  e->spec = std::move(spec);
  nlohmann::json out = ExperimentRecordJson(e->rec, &e->spec, e->trials, false);
  active_[rec.name] = std::move(e);
  return out;
}

Result<nlohmann::json> ExperimentController::List() {
  std::lock_guard<std::mutex> l(mu_);
  ASSIGN_OR_RETURN(auto all, estore_.List());
  nlohmann::json items = nlohmann::json::array();
  for (const auto& rec : all) {
    auto it = active_.find(rec.name);
    if (it != active_.end()) {
      items.push_back(
          ExperimentRecordJson(it->second->rec, &it->second->spec, it->second->trials, false));
      continue;
    }
    auto trials = estore_.Trials(rec.uid);
    auto spec = model::ParseExperimentSpec(rec.spec);
    items.push_back(ExperimentRecordJson(rec, spec.ok() ? &*spec : nullptr,
                                         trials.ok() ? *trials : std::vector<store::TrialRecord>{},
                                         false));
  }
  return nlohmann::json{{"items", items}};
}

Result<nlohmann::json> ExperimentController::Get(const std::string& name) {
  std::lock_guard<std::mutex> l(mu_);
  std::unique_ptr<Exp> holder;
  ASSIGN_OR_RETURN(Exp * e, FindLocked(name, &holder));
  bool parsed = !e->spec.name.empty();
  nlohmann::json out = ExperimentRecordJson(e->rec, parsed ? &e->spec : nullptr, e->trials, true);
  // Every reported value, per trial and metric, by step (the curves).
  for (auto& t : out["trials"]) {
    auto o = e->obs.find(t["id"].get<int64_t>());
    if (o == e->obs.end()) continue;
    nlohmann::json curves = nlohmann::json::object();
    for (const auto& [metric, steps] : o->second) {
      nlohmann::json pts = nlohmann::json::array();
      for (const auto& [step, v] : steps) pts.push_back({step, v});
      curves[metric] = pts;
    }
    t["observations"] = curves;
  }
  return out;
}

Result<nlohmann::json> ExperimentController::StopExperiment(const std::string& name) {
  std::lock_guard<std::mutex> l(mu_);
  auto it = active_.find(name);
  if (it == active_.end() || it->second->rec.state != "Running") {
    ASSIGN_OR_RETURN(auto rec, estore_.Get(name));
    if (!rec) return NotFound("experiment " + name + " not found");
    return FailedPrecondition("experiment " + name + " is not running (" + rec->state + ")");
  }
  Exp& e = *it->second;
  EndExperiment(e, "Stopped", "stopped by request");
  return ExperimentRecordJson(e.rec, &e.spec, e.trials, false);
}

Result<nlohmann::json> ExperimentController::Resume(const std::string& name,
                                                    const TrialCounts& counts) {
  std::lock_guard<std::mutex> l(mu_);
  auto it = active_.find(name);
  if (it != active_.end() && it->second->rec.state == "Running")
    return FailedPrecondition("experiment " + name + " is already running");
  ASSIGN_OR_RETURN(auto rec, estore_.Get(name));
  if (!rec) return NotFound("experiment " + name + " not found");
  ASSIGN_OR_RETURN(auto e, Load(*rec));
  if (e->spec.resume_policy == "Never")
    return FailedPrecondition("experiment " + name + " has resumePolicy Never");
  RETURN_IF_ERROR(ApplyCounts(e->rec, counts));
  int64_t created = static_cast<int64_t>(e->trials.size());
  if (e->rec.max_trials > 0 && created >= e->rec.max_trials && !counts.max_trials)
    return FailedPrecondition("experiment " + name + " already ran its maxTrialCount (" +
                              std::to_string(e->rec.max_trials) +
                              ") trials: raise it to resume (--max-trials)");
  e->rec.state = "Running";
  e->rec.message = "resumed";
  e->rec.ended = 0;
  for (const auto& t : e->trials)
    if (t.job_id && t.state != "Pending" && t.state != "Running") e->to_cancel.insert(t.id);
  Status st = estore_.Save(e->rec, {}, {Event(*e, "ExperimentResumed", "resumed")}, clock_.Now());
  if (!st.ok()) return st;
  nlohmann::json out = ExperimentRecordJson(e->rec, &e->spec, e->trials, false);
  active_[name] = std::move(e);
  return out;
}

Result<nlohmann::json> ExperimentController::SetCounts(const std::string& name,
                                                       const TrialCounts& counts) {
  std::lock_guard<std::mutex> l(mu_);
  std::unique_ptr<Exp> holder;
  ASSIGN_OR_RETURN(Exp * e, FindLocked(name, &holder));
  store::ExperimentRecord rec = e->rec;
  RETURN_IF_ERROR(ApplyCounts(rec, counts));
  RETURN_IF_ERROR(
      estore_.Save(rec, {},
                   {Event(*e, "ExperimentUpdated",
                          "parallelTrialCount " + std::to_string(rec.parallel) +
                              ", maxTrialCount " + std::to_string(rec.max_trials) +
                              ", maxFailedTrialCount " + std::to_string(rec.max_failed))},
                   clock_.Now()));
  e->rec = rec;
  return ExperimentRecordJson(e->rec, e->spec.name.empty() ? nullptr : &e->spec, e->trials, false);
}

Status ExperimentController::Delete(const std::string& name) {
  std::lock_guard<std::mutex> l(mu_);
  std::unique_ptr<Exp> holder;
  ASSIGN_OR_RETURN(Exp * e, FindLocked(name, &holder));
  for (const auto& t : e->trials)
    if (t.job_id) e->to_cancel.insert(t.id);
  CancelJobs(*e);
  RETURN_IF_ERROR(
      estore_.Delete(e->rec.uid, {Event(*e, "ExperimentDeleted", "deleted")}, clock_.Now()));
  std::error_code ec;
  if (!options_.metrics_root.empty())
    std::filesystem::remove_all(options_.metrics_root + "/exp-" + std::to_string(e->rec.uid), ec);
  active_.erase(name);
  return Status::Ok();
}

Status ExperimentController::Report(const std::string& name, int64_t trial,
                                    const std::string& caller, std::optional<int64_t> step,
                                    const std::map<std::string, double>& metrics) {
  std::lock_guard<std::mutex> l(mu_);
  auto it = active_.find(name);
  if (it == active_.end()) {
    ASSIGN_OR_RETURN(auto rec, estore_.Get(name));
    if (!rec) return NotFound("experiment " + name + " not found");
    return FailedPrecondition("experiment " + name + " is not running (" + rec->state + ")");
  }
  Exp& e = *it->second;
  if (!caller.empty() && caller != e.rec.owner)
    return PermissionDenied("experiment " + name + " is " + e.rec.owner + "'s, not " + caller +
                            "'s");
  if (trial < 0 || trial >= static_cast<int64_t>(e.trials.size()))
    return NotFound("experiment " + name + " has no trial " + std::to_string(trial));
  auto& t = e.trials[static_cast<size_t>(trial)];
  if (t.state != "Running" && t.state != "Pending")
    return FailedPrecondition("trial " + std::to_string(trial) + " has ended (" + t.state + ")");
  std::vector<store::ObservationRecord> add;
  TimeMs now = clock_.Now();
  auto& per = e.obs[trial];
  for (const auto& [metric, v] : metrics) {
    if (!e.spec.strategies.count(metric)) continue;  // not a metric of the experiment
    auto& slot = per[metric];
    int64_t s = step ? *step : (slot.empty() ? 0 : slot.rbegin()->first + 1);
    slot[s] = v;
    add.push_back({trial, metric, s, v, now});
  }
  RETURN_IF_ERROR(estore_.AddObservations(e.rec.uid, add, now));
  UpdateValues(e, t);
  if (!add.empty()) e.pushed.insert(trial);
  return Status::Ok();
}

Result<std::string> ExperimentController::Owner(const std::string& name) {
  std::lock_guard<std::mutex> l(mu_);
  auto it = active_.find(name);
  if (it != active_.end()) return it->second->rec.owner;
  ASSIGN_OR_RETURN(auto rec, estore_.Get(name));
  if (!rec) return NotFound("experiment " + name + " not found");
  return rec->owner;
}

}  // namespace berth::controllers
