// Experiment state in berth.db (tables from migration 8): experiments with
// their suggestion state and current trial counts, their trials, and every
// metric value trials reported, per step.
//
// Reads use their own connection to the database the Store already
// migrated; every write goes through the Store's one writer (Store::Write),
// in one transaction with the events it is given. The experiment controller
// writes new trials together with the suggestion state that produced them
// (SaveExperiment), before it submits their jobs, so a crash never loses a
// trial nor suggests one twice. Thread-safe.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "store/sqlite_conn.h"
#include "store/store.h"

namespace berth::store {

struct TrialRecord {
  int64_t id = 0;  // 0, 1, 2, ... within the experiment
  // Pending (created, job not recorded yet), Running, Succeeded, Failed,
  // EarlyStopped, MetricsUnavailable, Killed.
  std::string state = "Pending";
  std::map<std::string, std::string> params;
  std::map<std::string, std::string> labels;  // the suggester's
  int64_t job_id = 0;
  std::optional<double> objective;
  std::map<std::string, double> metrics;  // each metric's value by its strategy
  TimeMs created = 0, ended = 0;
  std::string message;
};

struct ExperimentRecord {
  int64_t uid = 0;  // never reused: a deleted and recreated name gets a new one
  std::string name, owner;
  std::string spec;  // the Experiment document as submitted
  // Running, Succeeded, Failed, Stopped.
  std::string state = "Running";
  std::string message;
  TimeMs created = 0, ended = 0;
  int64_t seed = 0;
  std::string suggestion_state;  // tune::Suggestions::state of the last suggestion
  bool exhausted = false;
  int64_t parallel = 3, max_trials = 0, max_failed = -1;  // current counts
  int64_t best_trial = -1;
};

struct ObservationRecord {
  int64_t trial = 0;
  std::string metric;
  int64_t step = 0;
  double value = 0;
  TimeMs time = 0;
};

class ExperimentStore {
 public:
  static Result<std::unique_ptr<ExperimentStore>> Open(Store& store, const std::string& db_path,
                                                       int busy_timeout_ms = 5000);

  // Inserts the experiment (AlreadyExists for a name in use) and sets its
  // uid; durable when this returns.
  Status Create(ExperimentRecord* rec, const std::vector<NewEvent>& events, TimeMs now);
  // Writes the experiment's row and `trials` (inserted or replaced) with
  // `events`, in one transaction.
  Status Save(const ExperimentRecord& rec, const std::vector<TrialRecord>& trials,
              const std::vector<NewEvent>& events, TimeMs now);
  // Adds (or replaces, per trial, metric and step) observations; no event.
  Status AddObservations(int64_t uid, const std::vector<ObservationRecord>& obs, TimeMs now);
  // Removes the experiment, its trials and observations, with `events`.
  Status Delete(int64_t uid, const std::vector<NewEvent>& events, TimeMs now);

  Result<std::vector<ExperimentRecord>> List();
  Result<std::optional<ExperimentRecord>> Get(const std::string& name);
  Result<std::vector<TrialRecord>> Trials(int64_t uid);
  Result<std::vector<ObservationRecord>> Observations(int64_t uid, int64_t trial = -1);

 private:
  ExperimentStore(Store& store, std::unique_ptr<Conn> conn)
      : store_(store), conn_(std::move(conn)) {}
  Store& store_;
  std::mutex mu_;
  std::unique_ptr<Conn> conn_;
};

}  // namespace berth::store
