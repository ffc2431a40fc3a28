// CronPipeline schedules fired by the pipeline controller on a virtual clock
// (ManualClock). Step jobs go to a fake that records them in a real store
// and ends them (or not) through ordinary transitions, so the controller
// follows the same event log as in berthd.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "controllers/cron_controller.h"
#include "controllers/pipeline_controller.h"
#include "model/cron.h"

namespace berth::controllers {
namespace {

TimeMs Utc(int y, int mo, int d, int h = 0, int mi = 0) {
  return (model::DaysFromCivil(y, mo, d) * 86400 + h * 3600 + mi * 60) * 1000;
}

bool WaitUntil(const std::function<bool()>& cond) {
  for (int i = 0; i < 500; ++i) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return cond();
}

class CronTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (std::filesystem::temp_directory_path() / "berth-cron-XXXXXX").string();
    dir_ = ::mkdtemp(tmpl.data());
    auto s = store::Store::Open(dir_ + "/berth.db");
    ASSERT_TRUE(s.ok()) << s.status().message();
    store_ = std::move(*s);
    auto p = store::PipelineStore::Open(*store_, dir_ + "/berth.db");
    ASSERT_TRUE(p.ok());
    pstore_ = std::move(*p);
    StepJobs jobs;
    jobs.submit = [this](model::JobSpec spec) -> Result<model::Job> {
      TimeMs now = clock_.Now();
      ASSIGN_OR_RETURN(model::JobId id, store_->SubmitJob(spec, now));
      RETURN_IF_ERROR(store_->Transition(id, model::JobState::kPending, model::JobState::kScheduled,
                                         {}, "", "", now));
      RETURN_IF_ERROR(store_->Transition(id, model::JobState::kScheduled, model::JobState::kRunning,
                                         {}, "", "", now));
      if (finish_) {
        store::JobUpdate u;
        u.exit_code = 0;
        u.end_time = now;
        RETURN_IF_ERROR(store_->Transition(id, model::JobState::kRunning,
                                           model::JobState::kSucceeded, u, "JobExited", "", now));
      }
      return store_->GetJob(id);
    };
    jobs.cancel = [this](model::JobId id) {
      auto j = store_->GetJob(id);
      if (!j.ok() || model::IsTerminal(j->state)) return Status::Ok();
      return store_->Transition(id, j->state, model::JobState::kCancelled, {}, "JobCancelled", "",
                                clock_.Now());
    };
    PipelineControllerOptions opts;
    opts.artifact_root = dir_ + "/artifacts";
    ctl_ = std::make_unique<PipelineController>(*store_, *pstore_, jobs, clock_, opts);
    ASSERT_TRUE(ctl_->Start().ok());
    StartCron();
  }
  // A cron controller (a new one each call: a restart), wired to the
  // pipeline controller as berthd wires it.
  void StartCron() {
    cron_.reset();
    CronRuns runs;
    runs.submit = [this](const std::string& text, const std::map<std::string, std::string>& params,
                         const std::string& owner, const std::string& cron,
                         TimeMs t) -> Result<int64_t> {
      ASSIGN_OR_RETURN(auto run, ctl_->Submit(text, params, owner, cron, t));
      return run.id;
    };
    runs.active = [this](const std::string& cron) { return ctl_->ActiveRuns(cron); };
    runs.replace = [this](int64_t id, const std::string& why) { ctl_->Replace(id, why); };
    CronControllerOptions copts;
    copts.run_thread = false;
    cron_ = std::make_unique<CronController>(*pstore_, runs, clock_, copts);
    ctl_->AttachCron(cron_.get());
    ASSERT_TRUE(cron_->Start().ok());
  }
  void TearDown() override {
    cron_.reset();
    ctl_.reset();
    std::filesystem::remove_all(dir_);
  }
  std::vector<store::RunRecord> Runs(const std::string& cron) {
    auto all = pstore_->ListRuns(0, false, cron);
    EXPECT_TRUE(all.ok());
    return all.ok() ? *all : std::vector<store::RunRecord>{};
  }
  std::string Cron(const std::string& name, const std::string& schedule, const std::string& policy,
                   const std::string& tz = "UTC") {
    return "kind: CronPipeline\nmetadata: {name: " + name + "}\nspec:\n  schedule: '" + schedule +
           "'\n  timezone: " + tz + "\n  concurrencyPolicy: " + policy +
           "\n  pipeline: {kind: Pipeline, metadata: {name: p}, spec: {steps: [{name: a, command: "
           "[echo, hi]}]}}\n";
  }
  void Tick(DurationMs d) {
    clock_.Advance(d);
    ctl_->RunOnce();
    cron_->RunOnce();
  }

  std::string dir_;
  ManualClock clock_{Utc(2026, 1, 1, 0, 0) + 30 * kSecond};
  bool finish_ = true;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<store::PipelineStore> pstore_;
  std::unique_ptr<PipelineController> ctl_;
  std::unique_ptr<CronController> cron_;
};

TEST_F(CronTest, FiresOnTheVirtualClockWithoutCatchingUpAndBackfillsOnRequest) {
  ASSERT_TRUE(ctl_->CreateCron(Cron("every5", "*/5 * * * *", "Allow"), "alice").ok());
  Tick(0);
  EXPECT_EQ(Runs("every5").size(), 0u);
  Tick(4 * kMinute);  // 00:04:30
  EXPECT_EQ(Runs("every5").size(), 0u);
  Tick(1 * kMinute);  // 00:05:30: the 00:05 fire
  auto runs = Runs("every5");
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0].parameters["@scheduledTime"], "2026-01-01T00:05:00.000Z");
  // The schedule's creator owns its runs and their step jobs.
  EXPECT_EQ(runs[0].user, "alice");
  auto run = pstore_->GetRun(runs[0].id);
  ASSERT_TRUE(run.ok());
  auto step = store_->GetJob(run->nodes["a"].job_id);
  ASSERT_TRUE(step.ok());
  EXPECT_EQ(step->spec.user, "alice");
  // Its step job ends at once (fake): the run succeeds through the event log.
  ASSERT_TRUE(WaitUntil([&] {
    ctl_->RunOnce();
    return Runs("every5")[0].state == model::RunState::kSucceeded;
  }));
  Tick(20 * kMinute);  // 00:25:30: four fire times passed; only the latest runs
  runs = Runs("every5");
  ASSERT_EQ(runs.size(), 2u);
  EXPECT_EQ(runs[0].parameters["@scheduledTime"], "2026-01-01T00:25:00.000Z");
  auto ids = ctl_->Backfill("every5", Utc(2026, 1, 1, 0, 0), Utc(2026, 1, 1, 0, 20));
  ASSERT_TRUE(ids.ok()) << ids.status().message();
  EXPECT_EQ(ids->size(), 5u);  // 00:00, 00:05, 00:10, 00:15, 00:20
  EXPECT_EQ(Runs("every5").size(), 7u);
  for (const auto& r : Runs("every5")) EXPECT_EQ(r.user, "alice") << "run " << r.id;
}

TEST_F(CronTest, ForbidSkipsWhileARunIsActiveAndReplaceCancelsIt) {
  finish_ = false;  // step jobs keep running
  ASSERT_TRUE(ctl_->CreateCron(Cron("forbid", "*/5 * * * *", "Forbid"), "alice").ok());
  ASSERT_TRUE(ctl_->CreateCron(Cron("replace", "*/5 * * * *", "Replace"), "alice").ok());
  Tick(5 * kMinute);
  ASSERT_EQ(Runs("forbid").size(), 1u);
  ASSERT_EQ(Runs("replace").size(), 1u);
  Tick(5 * kMinute);
  EXPECT_EQ(Runs("forbid").size(), 1u);  // skipped: the first is still running
  auto replaced = Runs("replace");
  ASSERT_EQ(replaced.size(), 2u);
  ASSERT_TRUE(WaitUntil([&] {
    ctl_->RunOnce();
    return Runs("replace")[1].state == model::RunState::kCancelled;
  }));
  EXPECT_EQ(Runs("replace")[0].state, model::RunState::kRunning);
  // Suspended schedules do not fire.
  ASSERT_TRUE(ctl_->SetCronSuspended("forbid", true).ok());
  ASSERT_TRUE(ctl_->SetCronSuspended("replace", true).ok());
  Tick(10 * kMinute);
  EXPECT_EQ(Runs("replace").size(), 2u);
}

// lastScheduleTime is the fire time of the latest run the schedule started:
// none at creation or after a resume, not a backfill, and it is stored.
TEST_F(CronTest, LastScheduleTimeIsTheLatestFiring) {
  auto last = [&](const std::string& name) {
    auto c = ctl_->GetCron(name);
    EXPECT_TRUE(c.ok());
    return c.ok() ? CronToJson(*c, 0)["lastScheduleTime"] : nlohmann::json("missing");
  };
  ASSERT_TRUE(ctl_->CreateCron(Cron("every5", "*/5 * * * *", "Allow"), "alice").ok());
  Tick(0);
  EXPECT_TRUE(last("every5").is_null());
  ASSERT_TRUE(ctl_->SetCronSuspended("every5", true).ok());
  ASSERT_TRUE(ctl_->SetCronSuspended("every5", false).ok());
  EXPECT_TRUE(last("every5").is_null());
  ASSERT_TRUE(ctl_->Backfill("every5", Utc(2025, 12, 31, 23, 50), Utc(2025, 12, 31, 23, 55)).ok());
  EXPECT_TRUE(last("every5").is_null());
  Tick(5 * kMinute);  // 00:05:30: the 00:05 fire
  EXPECT_EQ(last("every5"), "2026-01-01T00:05:00.000Z");
  // Replacing the document keeps it, and the store has it.
  ASSERT_TRUE(ctl_->CreateCron(Cron("every5", "*/10 * * * *", "Allow"), "alice").ok());
  EXPECT_EQ(last("every5"), "2026-01-01T00:05:00.000Z");
  auto stored = pstore_->GetCron("every5");
  ASSERT_TRUE(stored.ok() && stored->has_value());
  EXPECT_EQ((*stored)->last_fired, Utc(2026, 1, 1, 0, 5));
  // Its owner is a column of the schedule, not a meta key.
  EXPECT_EQ((*stored)->owner, "alice");
  auto meta = store_->ListMeta("pipelines.");
  ASSERT_TRUE(meta.ok());
  EXPECT_TRUE(meta->empty());
}

TEST_F(CronTest, TimeZoneOfTheSchedule) {
  ASSERT_TRUE(
      ctl_->CreateCron(Cron("berlin", "0 9 * * *", "Allow", "Europe/Berlin"), "alice").ok());
  auto next = ctl_->NextFire("berlin", Utc(2026, 7, 1));
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(*next, Utc(2026, 7, 1, 7));  // 09:00 CEST
  Tick(7 * kHour + 59 * kMinute);        // 07:59:30 UTC = 08:59:30 CET
  EXPECT_EQ(Runs("berlin").size(), 0u);
  Tick(kMinute);  // 09:00:30 CET
  EXPECT_EQ(Runs("berlin").size(), 1u);
}

// The cron controller is rebuilt from the store: a restarted one knows the
// schedules and fires the next due time once, not again the one already fired.
TEST_F(CronTest, RestartedCronControllerRebuildsSchedulesFromTheStore) {
  ASSERT_TRUE(ctl_->CreateCron(Cron("every5", "*/5 * * * *", "Allow"), "alice").ok());
  Tick(5 * kMinute);  // 00:05:30: the 00:05 fire
  ASSERT_EQ(Runs("every5").size(), 1u);
  StartCron();
  auto c = cron_->GetCron("every5");
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->owner, "alice");
  Tick(kMinute);  // 00:06:30: nothing new is due
  EXPECT_EQ(Runs("every5").size(), 1u);
  Tick(4 * kMinute);  // 00:10:30
  EXPECT_EQ(Runs("every5").size(), 2u);
}

}  // namespace
}  // namespace berth::controllers
