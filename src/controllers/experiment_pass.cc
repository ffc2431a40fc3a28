// The experiment controller's pass over one running experiment: its trials'
// jobs and metrics, early stopping, the experiment's end, new suggestions.
#include <fcntl.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "common/log.h"
#include "controllers/experiment_controller.h"

namespace berth::controllers {
namespace {

bool Ended(const std::string& state) { return state != "Pending" && state != "Running"; }

tune::TrialState TuneState(const store::TrialRecord& t) {
  if (t.state == "Pending") return tune::TrialState::kPending;
  if (t.state == "Running") return tune::TrialState::kRunning;
  if (t.state == "Succeeded") return tune::TrialState::kSucceeded;
  if (t.state == "Failed") return tune::TrialState::kFailed;
  if (t.state == "EarlyStopped") return tune::TrialState::kEarlyStopped;
  // Killed (stopped with its experiment): its last value counts, if any.
  if (t.state == "Killed" && t.objective) return tune::TrialState::kEarlyStopped;
  return tune::TrialState::kMetricsUnavailable;
}

bool Better(tune::Goal g, double a, double b) { return g == tune::Goal::kMaximize ? a > b : a < b; }

// Reads what `path` has past `*offset`, up to its last complete line.
std::string ReadNewLines(const std::string& path, int64_t* offset) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return "";
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = ::pread(fd, buf, sizeof buf, *offset + static_cast<int64_t>(out.size()));
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > (64u << 20)) break;  // a pass reads at most 64 MiB of a file
  }
  ::close(fd);
  size_t nl = out.rfind('\n');
  if (nl == std::string::npos) return "";
  out.resize(nl + 1);
  *offset += static_cast<int64_t>(out.size());
  return out;
}

}  // namespace

std::string ExperimentController::TrialDir(const Exp& e, int64_t trial) const {
  return options_.metrics_root + "/exp-" + std::to_string(e.rec.uid) + "/trial-" +
         std::to_string(trial);
}

std::string ExperimentController::MetricsPath(const Exp& e, int64_t trial) const {
  const auto& c = e.spec.collector;
  if (c.kind == model::CollectorKind::kStdOut) return TrialDir(e, trial) + "/stdout-metrics.jsonl";
  if (c.kind == model::CollectorKind::kFile)
    return c.path.empty() ? TrialDir(e, trial) + "/metrics.jsonl" : c.path;
  return "";
}

store::NewEvent ExperimentController::Event(const Exp& e, const std::string& type,
                                            const std::string& message, int64_t job) const {
  store::NewEvent ev;
  ev.type = type;
  ev.job = job;
  ev.message = "experiment " + e.rec.name + ": " + message;
  ev.data = {{"experiment", e.rec.name}, {"experimentUid", e.rec.uid}};
  return ev;
}

void ExperimentController::SaveTrials(Exp& e, const std::vector<int64_t>& ids,
                                      std::vector<store::NewEvent> events) {
  std::vector<store::TrialRecord> rows;
  for (int64_t id : ids) rows.push_back(e.trials[static_cast<size_t>(id)]);
  Status st = estore_.Save(e.rec, rows, events, clock_.Now());
  if (!st.ok()) spdlog::warn("experiment {}: {}", e.rec.name, st.message());
}

tune::History ExperimentController::MakeHistory(const Exp& e) const {
  tune::History h;
  h.goal = e.spec.goal;
  h.space = e.spec.space;
  h.state = e.rec.suggestion_state;
  for (const auto& t : e.trials) {
    tune::Trial tt;
    tt.id = t.id;
    tt.params = t.params;
    tt.labels = t.labels;
    tt.state = TuneState(t);
    tt.objective = t.objective;
    auto o = e.obs.find(t.id);
    if (o != e.obs.end()) {
      auto m = o->second.find(e.spec.objective_metric);
      if (m != o->second.end())
        for (const auto& [step, v] : m->second) tt.intermediate.push_back({step, v});
    }
    h.trials.push_back(std::move(tt));
  }
  return h;
}

// Each metric's value by its strategy, the objective among them.
void ExperimentController::UpdateValues(Exp& e, store::TrialRecord& t) {
  auto o = e.obs.find(t.id);
  if (o == e.obs.end()) return;
  for (const auto& [metric, steps] : o->second) {
    if (steps.empty()) continue;
    auto st = e.spec.strategies.find(metric);
    if (st == e.spec.strategies.end()) continue;
    double v = steps.rbegin()->second;
    if (st->second != model::MetricStrategy::kLatest)
      for (const auto& [step, x] : steps)
        v = st->second == model::MetricStrategy::kMax ? std::max(v, x) : std::min(v, x);
    t.metrics[metric] = v;
    if (metric == e.spec.objective_metric) t.objective = v;
  }
}

// New lines of the trial's metric file into the store and the view; true
// when the objective got a new value.
bool ExperimentController::CollectMetrics(Exp& e, store::TrialRecord& t) {
  std::string path = MetricsPath(e, t.id);
  if (path.empty()) return false;
  std::string text = ReadNewLines(path, &e.offsets[t.id]);
  if (text.empty()) return false;
  std::vector<std::string> names = {e.spec.objective_metric};
  names.insert(names.end(), e.spec.additional_metrics.begin(), e.spec.additional_metrics.end());
  bool json_lines =
      e.spec.collector.kind == model::CollectorKind::kStdOut || e.spec.collector.json_lines;
  auto p = e.parsers.find(t.id);
  if (p == e.parsers.end())
    p = e.parsers.emplace(t.id, model::MetricParser(names, json_lines, e.spec.collector.regex))
            .first;
  std::vector<store::ObservationRecord> add;
  bool objective = false;
  TimeMs now = clock_.Now();
  for (const auto& r : p->second.Lines(text)) {
    auto& slot = e.obs[t.id][r.name];
    auto it = slot.find(r.step);
    if (it != slot.end() && it->second == r.value) continue;
    slot[r.step] = r.value;
    add.push_back({t.id, r.name, r.step, r.value, now});
    if (r.name == e.spec.objective_metric) objective = true;
  }
  Status st = estore_.AddObservations(e.rec.uid, add, now);
  if (!st.ok()) spdlog::warn("experiment {}: {}", e.rec.name, st.message());
  UpdateValues(e, t);
  return objective;
}

void ExperimentController::EndTrial(Exp& e, store::TrialRecord& t, const std::string& state,
                                    const std::string& message,
                                    std::vector<store::NewEvent>* events) {
  UpdateValues(e, t);
  t.state = state;
  t.message = message;
  t.ended = clock_.Now();
  std::string what = "trial " + std::to_string(t.id) + " " + state;
  if (t.objective)
    what += " (" + e.spec.objective_metric + " " + std::to_string(*t.objective) + ")";
  if (!message.empty()) what += ": " + message;
  auto ev = Event(e, "Trial" + state, what, t.job_id);
  ev.data["trial"] = t.id;
  events->push_back(std::move(ev));
}

void ExperimentController::FinishTrial(Exp& e, store::TrialRecord& t, const model::Job& job) {
  CollectMetrics(e, t);
  std::vector<store::NewEvent> events;
  const auto& sc = e.spec.success_condition;
  const auto& fc = e.spec.failure_condition;
  bool cancelled = job.state == model::JobState::kCancelled;
  bool success =
      !cancelled && (sc.any.empty() ? job.state == model::JobState::kSucceeded : sc.Holds(job));
  bool failure = !fc.any.empty() && fc.Holds(job);
  std::string detail = job.message;
  if (detail.empty() && job.exit_code) detail = "exit code " + std::to_string(*job.exit_code);
  if (cancelled)
    EndTrial(e, t, "Killed", "its job was cancelled", &events);
  else if (success && !failure && t.objective)
    EndTrial(e, t, "Succeeded", "", &events);
  else if (success && !failure)
    EndTrial(e, t, "MetricsUnavailable",
             "the trial ended without reporting " + e.spec.objective_metric, &events);
  else
    EndTrial(e, t, "Failed",
             "job " + std::to_string(job.id) + " " + model::JobStateName(job.state) +
                 (detail.empty() ? "" : ": " + detail),
             &events);
  SaveTrials(e, {t.id}, std::move(events));
}

// After a restart: trials written just before a crash, whose job id was
// never recorded, and ended trials whose job may still run.
void ExperimentController::Reconcile(Exp& e) {
  bool need_jobs = false;
  for (const auto& t : e.trials)
    if (t.state == "Pending" && t.job_id == 0) need_jobs = true;
  std::map<int64_t, model::JobId> found;
  if (need_jobs) {
    store::JobFilter f;
    f.user = e.rec.owner;
    auto jobs = store_.ListJobs(f);
    if (jobs.ok())
      for (const auto& j : *jobs) {
        auto u = j.spec.labels.find("berth.experiment-uid");
        auto tr = j.spec.labels.find("berth.trial");
        if (u != j.spec.labels.end() && tr != j.spec.labels.end() &&
            u->second == std::to_string(e.rec.uid))
          found[std::atoll(tr->second.c_str())] = j.id;
      }
  }
  std::vector<int64_t> changed;
  for (auto& t : e.trials) {
    if (t.state == "Pending" && t.job_id == 0 && found.count(t.id)) {
      t.job_id = found[t.id];
      t.state = "Running";
      changed.push_back(t.id);
    }
    if (Ended(t.state) && t.job_id) e.to_cancel.insert(t.id);
  }
  if (!changed.empty()) SaveTrials(e, changed, {});
}

void ExperimentController::SubmitTrial(Exp& e, store::TrialRecord& t) {
  std::string name = TrialName(e.rec.name, t.id);
  auto spec = model::MakeTrialJob(e.spec, t.params, name);
  if (spec.ok()) {
    spec->user = e.rec.owner;
    spec->labels["berth.experiment"] = e.rec.name;
    spec->labels["berth.experiment-uid"] = std::to_string(e.rec.uid);
    spec->labels["berth.trial"] = std::to_string(t.id);
    std::string dir = TrialDir(e, t.id);
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (::geteuid() == 0) {  // a task run as its owner writes its metrics and checkpoints here
      if (const passwd* pw = ::getpwnam(e.rec.owner.c_str()))
        (void)!::chown(dir.c_str(), pw->pw_uid, pw->pw_gid);
    }
    spec->env["BERTH_EXPERIMENT"] = e.rec.name;
    spec->env["BERTH_TRIAL_ID"] = std::to_string(t.id);
    spec->env["BERTH_TRIAL_NAME"] = name;
    spec->env["BERTH_METRICS_FILE"] = e.spec.collector.kind == model::CollectorKind::kFile
                                          ? MetricsPath(e, t.id)
                                          : dir + "/metrics.jsonl";
    if (e.spec.collector.kind == model::CollectorKind::kStdOut) {
      std::string names = e.spec.objective_metric;
      for (const auto& m : e.spec.additional_metrics) names += "," + m;
      spec->env["BERTH_METRICS_STDOUT_FILE"] = MetricsPath(e, t.id);
      spec->env["BERTH_METRICS_REGEX"] = e.spec.collector.regex;
      spec->env["BERTH_METRICS_NAMES"] = names;
    }
    if (!spec->training && !spec->env.count("BERTH_CHECKPOINT_DIR")) {
      std::filesystem::create_directories(dir + "/checkpoint", ec);
      if (::geteuid() == 0)
        if (const passwd* pw = ::getpwnam(e.rec.owner.c_str()))
          (void)!::chown((dir + "/checkpoint").c_str(), pw->pw_uid, pw->pw_gid);
      spec->env["BERTH_CHECKPOINT_DIR"] = dir + "/checkpoint";
    }
  }
  Result<model::Job> job = spec.ok() ? jobs_.submit(*spec) : Result<model::Job>(spec.status());
  std::vector<store::NewEvent> events;
  if (job.ok()) {
    t.job_id = job->id;
    t.state = "Running";
  } else {
    EndTrial(e, t, "Failed", "its job was refused: " + job.status().message(), &events);
  }
  SaveTrials(e, {t.id}, std::move(events));
}

void ExperimentController::UpdateBest(Exp& e) {
  int64_t best = -1;
  for (const auto& t : e.trials) {
    if (!t.objective || (t.state != "Succeeded" && t.state != "EarlyStopped")) continue;
    if (best < 0 ||
        Better(e.spec.goal, *t.objective, *e.trials[static_cast<size_t>(best)].objective))
      best = t.id;
  }
  e.rec.best_trial = best;
}

void ExperimentController::CancelJobs(Exp& e) {
  for (auto it = e.to_cancel.begin(); it != e.to_cancel.end();) {
    const auto& t = e.trials[static_cast<size_t>(*it)];
    auto job = store_.GetJob(t.job_id);
    // Asked once: the job controller carries a stop through (and again after a restart).
    if (job.ok() && !model::IsTerminal(job->state) && job->stop_reason != "cancel") {
      Status st = jobs_.cancel(t.job_id);
      if (!st.ok() && st.code() != StatusCode::kFailedPrecondition) {
        ++it;
        continue;
      }
    }
    it = e.to_cancel.erase(it);
  }
}

void ExperimentController::EndExperiment(Exp& e, const std::string& state,
                                         const std::string& message) {
  std::vector<store::NewEvent> events;
  std::vector<int64_t> ids;
  for (auto& t : e.trials) {
    if (Ended(t.state)) continue;
    EndTrial(e, t, "Killed",
             "the experiment " + (state == "Stopped" ? std::string("was stopped") : "ended"),
             &events);
    ids.push_back(t.id);
    if (t.job_id) e.to_cancel.insert(t.id);
  }
  UpdateBest(e);
  e.rec.state = state;
  e.rec.message = message;
  e.rec.ended = clock_.Now();
  events.push_back(Event(e, "Experiment" + state, message));
  SaveTrials(e, ids, std::move(events));
  CancelJobs(e);
}

bool ExperimentController::MaybeEnd(Exp& e) {
  int64_t active = 0, failed = 0;
  for (const auto& t : e.trials) {
    if (!Ended(t.state)) ++active;
    if (t.state == "Failed") ++failed;
  }
  if (e.spec.goal_value && e.rec.best_trial >= 0) {
    double best = *e.trials[static_cast<size_t>(e.rec.best_trial)].objective;
    bool reached = e.spec.goal == tune::Goal::kMaximize ? best >= *e.spec.goal_value
                                                        : best <= *e.spec.goal_value;
    if (reached) {
      EndExperiment(e, "Succeeded",
                    "goal reached: trial " + std::to_string(e.rec.best_trial) + " has " +
                        e.spec.objective_metric + " " + std::to_string(best));
      return true;
    }
  }
  if (e.rec.max_failed >= 0 && failed > e.rec.max_failed) {
    EndExperiment(e, "Failed",
                  std::to_string(failed) + " trials failed, more than maxFailedTrialCount " +
                      std::to_string(e.rec.max_failed));
    return true;
  }
  int64_t created = static_cast<int64_t>(e.trials.size());
  bool done_creating = (e.rec.max_trials > 0 && created >= e.rec.max_trials) || e.rec.exhausted;
  if (done_creating && active == 0) {
    EndExperiment(e, "Succeeded",
                  e.rec.exhausted
                      ? "the search space is exhausted"
                      : "maxTrialCount (" + std::to_string(e.rec.max_trials) + ") trials ran");
    return true;
  }
  return false;
}

void ExperimentController::Suggest(Exp& e) {
  if (e.rec.exhausted) return;
  int64_t active = 0;
  for (const auto& t : e.trials)
    if (!Ended(t.state)) ++active;
  int64_t created = static_cast<int64_t>(e.trials.size());
  int64_t want = e.rec.parallel - active;
  if (e.rec.max_trials > 0) want = std::min(want, e.rec.max_trials - created);
  if (want <= 0) return;
  auto suggester = tune::MakeSuggester(e.spec.algorithm, e.spec.algorithm_settings, e.spec.space);
  if (!suggester.ok()) {
    EndExperiment(e, "Failed", suggester.status().message());
    return;
  }
  auto s = (*suggester)
               ->Suggest(MakeHistory(e), static_cast<int>(want),
                         static_cast<uint64_t>(e.rec.seed) + static_cast<uint64_t>(created));
  if (!s.ok()) {
    EndExperiment(e, "Failed", "algorithm " + e.spec.algorithm + ": " + s.status().message());
    return;
  }
  // The new trials and the state that produced them, in one transaction,
  // before any of their jobs exists.
  e.rec.suggestion_state = s->state;
  e.rec.exhausted = s->exhausted;
  std::vector<int64_t> ids;
  std::vector<store::NewEvent> events;
  TimeMs now = clock_.Now();
  for (auto& sg : s->trials) {
    if (static_cast<int64_t>(ids.size()) >= want) break;
    store::TrialRecord t;
    t.id = static_cast<int64_t>(e.trials.size());
    t.params = sg.params;
    t.labels = sg.labels;
    t.created = now;
    std::string p;
    for (const auto& [k, v] : t.params) p += (p.empty() ? "" : ", ") + k + "=" + v;
    auto ev = Event(e, "TrialCreated", "trial " + std::to_string(t.id) + " (" + p + ")");
    ev.data["trial"] = t.id;
    events.push_back(std::move(ev));
    ids.push_back(t.id);
    e.trials.push_back(std::move(t));
  }
  SaveTrials(e, ids, std::move(events));
  for (int64_t id : ids) SubmitTrial(e, e.trials[static_cast<size_t>(id)]);
}

void ExperimentController::Step(Exp& e) {
  CancelJobs(e);
  std::unique_ptr<tune::EarlyStopper> stopper;
  if (!e.spec.early_stopping.empty()) {
    auto s = tune::MakeEarlyStopper(e.spec.early_stopping, e.spec.early_stopping_settings);
    if (s.ok()) stopper = std::move(*s);
  }
  for (auto& t : e.trials) {
    if (t.state == "Pending" && t.job_id == 0) {
      SubmitTrial(e, t);  // created before a crash, its job never submitted
      continue;
    }
    if (t.state != "Running") continue;
    auto job = store_.GetJob(t.job_id);
    if (!job.ok()) {
      std::vector<store::NewEvent> events;
      EndTrial(e, t, "Failed", "its job " + std::to_string(t.job_id) + " is gone", &events);
      SaveTrials(e, {t.id}, std::move(events));
      continue;
    }
    if (model::IsTerminal(job->state)) {
      FinishTrial(e, t, *job);
      continue;
    }
    bool fresh = CollectMetrics(e, t);
    fresh = e.pushed.erase(t.id) > 0 || fresh;
    if (fresh && stopper && stopper->ShouldStop(MakeHistory(e), t.id)) {
      std::vector<store::NewEvent> events;
      EndTrial(e, t, "EarlyStopped", "stopped by " + e.spec.early_stopping, &events);
      e.to_cancel.insert(t.id);
      SaveTrials(e, {t.id}, std::move(events));
    }
  }
  CancelJobs(e);
  int64_t before = e.rec.best_trial;
  UpdateBest(e);
  if (before != e.rec.best_trial) SaveTrials(e, {}, {});
  if (MaybeEnd(e)) return;
  Suggest(e);
}

}  // namespace berth::controllers
