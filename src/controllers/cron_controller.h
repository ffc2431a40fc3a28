// The cron controller runs CronPipeline schedules: it keeps each schedule
// (its row in pipeline_crons is the truth), and when a fire time comes it
// starts a run through the pipeline controller, honouring the schedule's
// concurrencyPolicy (Allow, Forbid: skip while a run of it is active,
// Replace: stop the active runs first). Backfill starts one run per missed
// fire time in a range.
//
// Level-triggered: each pass starts the latest due fire time of every
// schedule after its last_time (missed earlier ones are not caught up), and
// last_time is saved before the run starts, so a restarted daemon neither
// repeats nor loses a fire time. Woken by its tick (options.tick).
//
// Threading: every public method may be called from any thread. The
// controller calls the pipeline controller (CronRuns) while holding its own
// lock; the pipeline controller never calls back into it under its lock.
#pragma once

#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "controllers/controller.h"
#include "model/cron.h"
#include "model/pipeline.h"
#include "store/pipeline_store.h"

namespace berth::controllers {

// What the cron controller needs of the pipeline controller.
struct CronRuns {
  // Starts a run of `pipeline_text` for `owner`, made by schedule `cron` for
  // `scheduled_time`; returns its id.
  std::function<Result<int64_t>(
      const std::string& pipeline_text, const std::map<std::string, std::string>& params,
      const std::string& owner, const std::string& cron, TimeMs scheduled_time)>
      submit;
  // The runs of schedule `cron` that have not ended.
  std::function<std::vector<int64_t>(const std::string& cron)> active;
  // Stops run `id` (concurrencyPolicy Replace), saying why.
  std::function<void(int64_t id, const std::string& why)> replace;
};

struct CronControllerOptions {
  // Longest sleep between passes.
  DurationMs tick = 200;
  // false: Start runs no thread; the caller drives passes with RunOnce.
  bool run_thread = true;
};

class CronController : public Controller {
 public:
  CronController(store::PipelineStore& pstore, CronRuns runs, const Clock& clock,
                 CronControllerOptions options = {});
  ~CronController() override;

  std::string_view Name() const override { return "cron"; }
  // Loads the schedules from the store and starts the thread.
  Status Start() override;
  void Stop() override;
  // Starts the runs that are due now.
  void RunOnce() override;

  // Create replaces a schedule of the same name; `user` owns the schedule
  // and the runs it starts.
  Result<store::CronRecord> CreateCron(const std::string& text, const std::string& user);
  Result<std::vector<store::CronRecord>> ListCrons();
  Result<store::CronRecord> GetCron(const std::string& name);
  Result<store::CronRecord> SetCronSuspended(const std::string& name, bool suspended);
  Status DeleteCron(const std::string& name);
  // Starts one run per fire time in [from, to] (catch-up of missed runs).
  Result<std::vector<int64_t>> Backfill(const std::string& name, TimeMs from, TimeMs to);
  // The next fire time of a schedule after `after` (0 if it never fires).
  Result<TimeMs> NextFire(const std::string& name, TimeMs after);

 private:
  struct CronState {
    store::CronRecord rec;
    model::CronPipelineSpec spec;
    model::CronSchedule schedule;
    model::TimeZone tz;
    std::string owner;  // who created the schedule: owns its runs
  };

  void Loop();
  void TickLocked();
  Result<CronState> LoadCron(const store::CronRecord& rec);

  store::PipelineStore& pstore_;
  CronRuns runs_;
  const Clock& clock_;
  CronControllerOptions options_;

  std::mutex mu_;  // guards everything below
  std::condition_variable cv_;
  std::map<std::string, CronState> crons_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace berth::controllers
