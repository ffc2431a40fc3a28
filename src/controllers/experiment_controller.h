// The experiment controller runs Experiments (kind: Experiment, Katib's
// v1beta1 fields; docs/experiments.md): it keeps parallelTrialCount trials
// running, asks the experiment's algorithm (src/tune) for new parameters,
// runs each trial as an ordinary job (through the job controller, so trials
// share the one scheduler and may be preemptible scavenger work), collects
// the trials' metrics, stops trials the early stopper picks, and ends the
// experiment on its goal, maxTrialCount, maxFailedTrialCount or an exhausted
// search.
//
// Level-triggered: each pass reads every active trial's job from the store
// and its metrics from its collector's file, and acts on the difference.
// The store is the truth (store/experiment_store.h): new trials are written
// together with the suggestion state that produced them before their jobs
// are submitted, and a job is labelled with its experiment and trial, so a
// restarted daemon finds the job of a trial whose id it never recorded and
// neither loses a trial nor suggests one twice. Woken by the store's event
// log (a job ended, an API call) or its tick.
//
// Files: experiment_controller.cc (start, API methods), experiment_pass.cc
// (the pass: trials' jobs, metrics, early stopping, the end, suggestions),
// experiment_json.cc (the API forms).
//
// Threading: every public method may be called from any thread; one mutex
// serialises them with the controller thread. The controller calls the job
// controller (TrialJobs) under its lock; the job controller never calls back.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "controllers/controller.h"
#include "model/experiment.h"
#include "model/job.h"
#include "store/experiment_store.h"
#include "store/store.h"
#include "tune/suggester.h"

namespace berth::controllers {

// How the controller runs trial jobs (the JobController in berthd).
struct TrialJobs {
  std::function<Result<model::Job>(model::JobSpec)> submit;
  std::function<Status(model::JobId)> cancel;
};

struct ExperimentControllerOptions {
  // Trials' metric files: <metrics_root>/exp-<uid>/trial-<id>/.
  std::string metrics_root;
  // Longest sleep between passes.
  DurationMs tick = 200;
  // false: Start runs no thread; the caller drives passes with RunOnce.
  bool run_thread = true;
};

// The counts a running experiment may change (resume may raise them too).
struct TrialCounts {
  std::optional<int64_t> parallel, max_trials, max_failed;
};

class ExperimentController : public Controller {
 public:
  ExperimentController(store::Store& store, store::ExperimentStore& estore, TrialJobs jobs,
                       const Clock& clock, ExperimentControllerOptions options);
  ~ExperimentController() override;

  std::string_view Name() const override { return "experiments"; }
  // Loads the running experiments, finds the jobs of trials created just
  // before a crash, and starts the thread.
  Status Start() override;
  void Stop() override;
  void RunOnce() override;

  // Parses and stores a new experiment owned by `user`; its first trials
  // start on the next pass. Returns its API form.
  Result<nlohmann::json> Create(const std::string& text, const std::string& user);
  // {items: [...]} without trials; one with its trials (sorted by id).
  Result<nlohmann::json> List();
  Result<nlohmann::json> Get(const std::string& name);
  // Stops the experiment and every trial still running (state Stopped).
  Result<nlohmann::json> StopExperiment(const std::string& name);
  // A Stopped, Succeeded or Failed experiment runs again, keeping every
  // trial; `counts` replace the current ones first.
  Result<nlohmann::json> Resume(const std::string& name, const TrialCounts& counts);
  // Changes the counts of an experiment (running or not).
  Result<nlohmann::json> SetCounts(const std::string& name, const TrialCounts& counts);
  // Stops its trials and removes the experiment with its trials and metrics.
  Status Delete(const std::string& name);
  // Pushed metrics of trial `trial` (the SDK's berth.report): `caller` must
  // own the experiment. FailedPrecondition once the trial has ended.
  Status Report(const std::string& name, int64_t trial, const std::string& caller,
                std::optional<int64_t> step, const std::map<std::string, double>& metrics);
  // The owner of experiment `name` (NotFound when none).
  Result<std::string> Owner(const std::string& name);

 private:
  struct Exp {
    store::ExperimentRecord rec;
    model::ExperimentSpec spec;
    std::vector<store::TrialRecord> trials;  // by id
    // trial -> metric -> step -> value
    std::map<int64_t, std::map<std::string, std::map<int64_t, double>>> obs;
    std::map<int64_t, int64_t> offsets;  // bytes of a trial's metric file already read
    std::map<int64_t, model::MetricParser> parsers;
    std::set<int64_t> to_cancel;  // ended trials whose job may still run
    std::set<int64_t> pushed;     // trials with pushed values the early stopper has not seen
  };

  void Loop();
  void PassLocked();
  // experiment_pass.cc
  void Step(Exp& e);
  void Reconcile(Exp& e);
  bool CollectMetrics(Exp& e, store::TrialRecord& t);
  void FinishTrial(Exp& e, store::TrialRecord& t, const model::Job& job);
  void EndTrial(Exp& e, store::TrialRecord& t, const std::string& state, const std::string& message,
                std::vector<store::NewEvent>* events);
  void UpdateValues(Exp& e, store::TrialRecord& t);
  void UpdateBest(Exp& e);
  bool MaybeEnd(Exp& e);
  void EndExperiment(Exp& e, const std::string& state, const std::string& message);
  void Suggest(Exp& e);
  void SubmitTrial(Exp& e, store::TrialRecord& t);
  void CancelJobs(Exp& e);
  void SaveTrials(Exp& e, const std::vector<int64_t>& ids, std::vector<store::NewEvent> events);
  tune::History MakeHistory(const Exp& e) const;
  std::string TrialDir(const Exp& e, int64_t trial) const;
  std::string MetricsPath(const Exp& e, int64_t trial) const;
  store::NewEvent Event(const Exp& e, const std::string& type, const std::string& message,
                        int64_t job = 0) const;
  // experiment_controller.cc
  Result<std::unique_ptr<Exp>> Load(const store::ExperimentRecord& rec);
  Result<Exp*> FindLocked(const std::string& name, std::unique_ptr<Exp>* holder);
  Status ApplyCounts(store::ExperimentRecord& rec, const TrialCounts& c);

  store::Store& store_;
  store::ExperimentStore& estore_;
  TrialJobs jobs_;
  const Clock& clock_;
  ExperimentControllerOptions options_;

  std::mutex mu_;
  std::map<std::string, std::unique_ptr<Exp>> active_;  // Running experiments by name
  bool stop_ = false;
  std::thread thread_;
};

// The API forms (experiment_json.cc).
// {name, uid, owner, state, message, created, ended, algorithm, objective,
//  parallelTrialCount, maxTrialCount, maxFailedTrialCount, trialCounts,
//  currentOptimalTrial, spec, trials (when asked)}.
nlohmann::json ExperimentRecordJson(const store::ExperimentRecord& rec,
                                    const model::ExperimentSpec* spec,
                                    const std::vector<store::TrialRecord>& trials,
                                    bool with_trials);
// {id, name, state, jobId, parameters, labels, objective, metrics, created, ended, message}.
nlohmann::json TrialJson(const std::string& experiment, const store::TrialRecord& t);
// A trial's job name: "<experiment>-trial-<id>".
std::string TrialName(const std::string& experiment, int64_t id);

}  // namespace berth::controllers
