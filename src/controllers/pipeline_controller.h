// The pipeline controller runs Pipeline runs: each step becomes an ordinary
// Job (submitted through the job controller, so GPU steps go through the one
// scheduler), labelled with the run and the step. Its own thread follows the
// store's event log from a cursor persisted in the store and advances the
// runs whose step jobs ended; run and node state live in the pipeline tables
// and every change is one transaction, so a restarted daemon rebuilds the
// runs from the store, reconciles them with the jobs' states and goes on.
//
// Threading: every public method may be called from any thread; one mutex
// serialises them with the controller thread.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "controllers/controller.h"
#include "controllers/cron_controller.h"
#include "controllers/pipeline_engine.h"
#include "exec/executor.h"
#include "model/cron.h"
#include "model/job.h"
#include "model/pipeline.h"
#include "store/pipeline_store.h"
#include "store/store.h"

namespace berth::controllers {

// How the controller runs step jobs (the JobController in berthd; fakes in tests).
struct StepJobs {
  std::function<Result<model::Job>(model::JobSpec)> submit;
  std::function<Status(model::JobId)> cancel;
  // A page of a job's stdout and stderr (its latest attempt), read through
  // the executor that ran it.
  std::function<Result<exec::LogChunk>(const model::Job&, int64_t offset, int64_t limit)> read_log;
  // The account a step of `user` runs as (exec::Executor::AccountFor):
  // nullopt when every task runs as berthd's own user; an error refuses the
  // run at submit. Unset: nullopt.
  std::function<Result<std::optional<exec::TaskAccount>>(const std::string& user)> account_for;
  // What the step's supervisor collected of its outputs, as the step's owner
  // (exec::Executor::ReadStepOutputs, JSON text).
  std::function<Result<std::string>(const model::Job&)> read_outputs;
};

struct PipelineControllerOptions {
  // Runs' artifact and work directories: <artifact_root>/run-<id>/ (may be an NFS mount).
  std::string artifact_root;
  // Longest sleep between passes (timers: retries' backoff, timeouts).
  DurationMs tick = 200;
  // The most children of one fan-out step (berthd's pipelines.maxFanOut).
  int64_t max_fan_out = model::kDefaultMaxFanOut;
};

// A PipelineRun* event about `rec`, its message naming the run ("pipeline run
// 3 (ml) failed: DETAIL").
store::NewEvent PipelineRunEvent(const std::string& type, const store::RunRecord& rec,
                                 const std::string& detail);

class PipelineController : public Controller {
 public:
  PipelineController(store::Store& store, store::PipelineStore& pstore, StepJobs jobs,
                     const Clock& clock, PipelineControllerOptions options);
  ~PipelineController() override;

  std::string_view Name() const override { return "pipelines"; }

  // Loads the active runs and schedules, reconciles them with their jobs'
  // states and starts the controller thread.
  Status Start() override;
  void Stop() override;

  // Validates the document, resolves the parameters and stores a new run
  // (durable when this returns); its first steps start on the next pass.
  // `user` owns the run and every step job; the document's metadata.user
  // must be empty or the same (InvalidArgument otherwise).
  Result<store::RunRecord> Submit(const std::string& spec_text,
                                  const std::map<std::string, std::string>& params,
                                  const std::string& user, const std::string& cron = "",
                                  TimeMs scheduled_time = 0);
  Result<store::RunRecord> GetRun(int64_t id);
  Result<std::vector<store::RunRecord>> ListRuns(int64_t limit);
  // Cancel stops the running steps and skips the rest; the exit handler still runs.
  Result<store::RunRecord> Cancel(int64_t id);
  // Suspend starts no new step until Resume; running steps go on.
  Result<store::RunRecord> Suspend(int64_t id);
  Result<store::RunRecord> Resume(int64_t id);
  // Retries a Failed or Cancelled run from its failed steps, keeping the ones that succeeded.
  Result<store::RunRecord> Retry(int64_t id);
  // A new run of the same document and parameters, owned by `user`.
  Result<store::RunRecord> Resubmit(int64_t id, const std::string& user);
  // A step's (or fan-out child's) output log.
  Result<exec::LogChunk> Logs(int64_t id, const std::string& node, int64_t offset, int64_t limit);

  // For the cron controller (CronRuns): the runs of schedule `cron` that
  // have not ended, and stopping one for a newer run (concurrencyPolicy
  // Replace; no event, the newer run's PipelineRunCreated says it).
  std::vector<int64_t> ActiveRuns(const std::string& cron);
  void Replace(int64_t id, const std::string& why);

  // Cron schedules, forwarded to the cron controller attached here (the API
  // routes reach schedules through the pipeline controller; Unavailable
  // when none is attached).
  void AttachCron(CronController* cron) { cron_ = cron; }
  Result<store::CronRecord> CreateCron(const std::string& text, const std::string& user);
  Result<std::vector<store::CronRecord>> ListCrons();
  Result<store::CronRecord> GetCron(const std::string& name);
  Result<store::CronRecord> SetCronSuspended(const std::string& name, bool suspended);
  Status DeleteCron(const std::string& name);
  Result<std::vector<int64_t>> Backfill(const std::string& name, TimeMs from, TimeMs to);
  Result<TimeMs> NextFire(const std::string& name, TimeMs after);

  // Runs one pass now (events, timers): for tests on a ManualClock.
  void RunOnce() override;

 private:
  struct RunState {
    store::RunRecord rec;
    model::PipelineSpec spec;
    std::set<std::string> dirty;  // nodes to save
    bool changed = false;         // the run row changed
    // Launched nodes whose jobs are not submitted yet: submitted together
    // (concurrently, so the store group-commits them) at the end of a pass.
    std::vector<std::pair<std::string, model::JobSpec>> to_submit;
    // The last transition of each node reported as a PipelineStep* event.
    std::map<std::string, std::string> announced;
    // Events about the run, committed by the next Save with its changes.
    std::vector<store::NewEvent> events;
  };
  void Loop();
  void PassLocked();
  void ProcessEventsLocked();
  void OnJobEnded(RunState& rs, const std::string& node, const model::Job& job);
  void Advance(RunState& rs);
  bool AdvanceOnce(RunState& rs);
  void Launch(RunState& rs, store::NodeRecord& node, const model::StepSpec& step);
  void FailOrRetry(RunState& rs, store::NodeRecord& node, const model::StepSpec& step,
                   const std::string& message, bool process_ran);
  // Where output artifact `artifact` of node `n` goes, relative to the
  // artifact root: run-<id>/artifacts/<node>/<artifact>.
  static std::string ArtifactName(const RunState& rs, const store::NodeRecord& n,
                                  const std::string& artifact);
  Status CollectOutputs(RunState& rs, store::NodeRecord& node, const model::StepSpec& step,
                        const model::Job& job);
  void FlushSubmits(RunState& rs);
  // Carries out one of the engine's actions on the run (launches, memo
  // lookups, job cancels, the run's end with its event).
  void Apply(RunState& rs, const pipeline_engine::Action& a, TimeMs now);
  void Save(RunState& rs);
  Result<int64_t> SubmitLocked(const std::string& spec_text,
                               const std::map<std::string, std::string>& params,
                               const std::string& user, const std::string& cron,
                               TimeMs scheduled_time);
  Result<store::RunRecord> Snapshot(int64_t id);
  // Queues a PipelineRun* event for the next Save (same transaction); its
  // message names the run ("pipeline run 3 (ml) failed: ...").
  void Event(RunState& rs, const std::string& type, const std::string& detail);
  // Queues PipelineStep* events for the nodes among `names` whose state changed.
  void AnnounceSteps(RunState& rs, const std::vector<std::string>& names);
  const model::StepSpec* StepOf(const RunState& rs, const store::NodeRecord& n) const;

  store::Store& store_;
  store::PipelineStore& pstore_;
  StepJobs jobs_;
  const Clock& clock_;
  PipelineControllerOptions options_;

  std::mutex mu_;
  std::map<int64_t, std::unique_ptr<RunState>> active_;
  std::map<model::JobId, std::pair<int64_t, std::string>> job_index_;
  CronController* cron_ = nullptr;
  int64_t cursor_ = 0;
  int64_t saved_cursor_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// The API form of a run: {id, name, user, state, ..., nodes: [{name, step,
// state, jobId, exitCode, startTime, endTime, gpus, dependencies, ...}]} with
// nodes in a topological order (fan-out children after their step).
nlohmann::json RunToJson(const store::RunRecord& run);
nlohmann::json CronToJson(const store::CronRecord& cron, TimeMs next_fire);

}  // namespace berth::controllers
