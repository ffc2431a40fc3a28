// The training controller on its own, behind its narrow interface: a
// recording TrainingHost stands in for the job controller, the FakeExecutor
// runs the workers on a ManualClock. Shows what the training unit asks of
// the job controller (which transitions, in which order) when a gang starts,
// when a worker fails, and when a resize is refused or granted.
#include <gtest/gtest.h>

#include <filesystem>

#include "controllers/training_controller.h"
#include "exec/fake_executor.h"

namespace berth::controllers {
namespace {

using model::JobState;
using nlohmann::json;

class RecordingHost final : public TrainingHost {
 public:
  model::Job job;
  StopIntent intent = StopIntent::kNone;
  bool active = true;
  std::vector<std::string> calls;
  TrainingController* training = nullptr;

  JobRef FindJob(model::JobId id) override {
    if (!active || id != job.id) return {};
    return {&job, &intent};
  }
  bool MoveJob(model::JobId, JobState to, store::JobUpdate, const std::string& type,
               const std::string&, const json&) override {
    calls.push_back("Move " + type);
    job.state = to;
    return true;
  }
  void RequeueJob(model::JobId, const store::JobUpdate&, const std::string& type,
                  const std::string&, const json&, const std::string&) override {
    calls.push_back("Requeue " + type);
    job.state = JobState::kPending;
  }
  void FinishJob(model::JobId id, JobState to, const store::JobUpdate&, const std::string& type,
                 const std::string&, const json&) override {
    calls.push_back("Finish " + type);
    job.state = to;
    active = false;
    training->Forget(id, std::nullopt);
  }
  bool RequestJobStop(model::JobId, StopIntent i, const std::string& type, const std::string&,
                      const json&, store::JobAnnotation) override {
    calls.push_back("RequestStop " + type);
    intent = i;
    return true;
  }
  void CountPreemption() override { calls.push_back("CountPreemption"); }
  void HoldersChanged() override {}
  void WriteJob(store::StateOp op) override { writes.push_back(std::move(op)); }
  void AfterCommitOf(std::function<void()> fn) override { fn(); }  // nothing waits to commit here
  std::vector<store::StateOp>
      writes;  // statuses and events, as the job controller would queue them
};

class TrainingUnitTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (std::filesystem::temp_directory_path() / "berth-tu-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    store::StoreOptions so;
    so.synchronous = "OFF";
    so.state_synchronous = "OFF";
    auto st = store::Store::Open(dir_ + "/berth.db", so);
    ASSERT_TRUE(st.ok()) << st.status().ToString();
    store_ = std::move(*st);
    gpu::DeclaredOptions d;
    d.node_name = "n1";
    d.gpus = 4;
    inventory_ = gpu::MakeDeclaredInventory(d);
  }
  void TearDown() override {
    training_.reset();
    exec_.reset();
    store_.reset();
    std::filesystem::remove_all(dir_);
  }
  // A two-worker training job, bound (Scheduled) on GPUs 0 and 1, and the
  // training unit with the fake's `rules`.
  void Open(const json& rules, int backoff_limit) {
    auto parsed = exec::ParseFakeRules(rules);
    ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
    exec::FakeExecutorOptions eo;
    eo.rules = std::move(*parsed);
    // Events are handed over after Poll, as the job controller's queue does.
    exec_ = std::make_unique<exec::FakeExecutor>(
        std::move(eo), clock_, [this](const exec::TaskEvent& ev) { events_.push_back(ev); });
    training_ = std::make_unique<TrainingController>(*store_, *exec_, *inventory_, clock_, host_,
                                                     TrainingOptions{});
    host_.training = training_.get();
    model::JobSpec spec;
    spec.name = "ddp";
    spec.user = "alice";
    spec.command = {"train"};
    spec.termination_grace = 10 * kSecond;
    spec.training.emplace();
    spec.training->workers = 2;
    spec.training->backoff_limit = backoff_limit;
    auto id = store_->SubmitJob(spec, clock_.Now());
    ASSERT_TRUE(id.ok()) << id.status().ToString();
    auto job = store_->GetJob(*id);
    ASSERT_TRUE(job.ok());
    host_.job = *job;
    training_->Add(host_.job);
    host_.job.state = JobState::kScheduled;
    host_.job.attempts = 1;
    for (int g = 0; g < 2; ++g) {
      model::Placement w;
      w.node = "n1";
      w.gpus = {g};
      host_.job.placement.workers.push_back(w);
    }
    host_.job.placement.node = "n1";
  }
  void Advance(DurationMs d) {
    clock_.Advance(d);
    do {
      exec_->Poll();
      std::vector<exec::TaskEvent> batch;
      batch.swap(events_);
      for (const exec::TaskEvent& ev : batch)
        if (host_.active) training_->OnTaskEvent(host_.job.id, ev);
    } while (!events_.empty());
  }

  std::string dir_;
  ManualClock clock_{1'800'000'000'000};
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<gpu::Inventory> inventory_;
  std::unique_ptr<exec::FakeExecutor> exec_;
  std::unique_ptr<TrainingController> training_;
  RecordingHost host_;
  std::vector<exec::TaskEvent> events_;
};

TEST_F(TrainingUnitTest, AFailedWorkerStopsTheGangAndAsksForARestartThenAFailure) {
  Open(json::array({{{"match", {{"task", 1}}}, {"runMs", 5000}, {"exitCode", 3}},
                    {{"match", {{"task", 0}}}, {"termDelayMs", 1000}}}),
       /*backoff_limit=*/1);
  training_->Launch(host_.job.id);
  Advance(0);
  EXPECT_EQ(host_.calls, std::vector<std::string>{"Move JobStarted"});
  Advance(5000);  // worker 1 fails; worker 0 is asked to stop
  EXPECT_EQ(host_.calls.size(), 1u) << "the gang ends only when every worker has";
  Advance(1000);  // worker 0 exits on SIGTERM
  EXPECT_EQ(host_.calls.back(), "Requeue TrainingRestart");
  // The status the requeue's transitions carry counts the restart.
  const json* status = training_->StatusForTransition(host_.job.id);
  ASSERT_NE(status, nullptr);
  EXPECT_EQ((*status)["restarts"], 1);
  EXPECT_EQ((*status)["lastFailure"], "worker 1 exited with code 3");

  // The next attempt fails the same way: backoffLimit 1 is used up.
  host_.job.state = JobState::kScheduled;
  host_.job.attempts = 2;
  training_->Launch(host_.job.id);
  Advance(0);
  Advance(5000);
  Advance(1000);
  EXPECT_EQ(host_.calls.back(), "Finish JobFailed");
  EXPECT_FALSE(host_.active);
}

TEST_F(TrainingUnitTest, ResizeIsRefusedUnlessTheGangRunsAndIsRecordedAsAStop) {
  Open(json::array({{{"match", {{"task", 0}}}, {"termDelayMs", 100}},
                    {{"match", {{"task", 1}}}, {"termDelayMs", 100}}}),
       /*backoff_limit=*/3);
  EXPECT_FALSE(training_->Resize(host_.job.id, 3)) << "not running yet";
  training_->Launch(host_.job.id);
  Advance(0);
  ASSERT_EQ(host_.job.state, JobState::kRunning);
  EXPECT_FALSE(training_->Resize(host_.job.id, 2)) << "already that size";
  EXPECT_TRUE(training_->Resize(host_.job.id, 3));
  EXPECT_EQ(host_.calls.back(), "RequestStop TrainingGrowing");
  EXPECT_FALSE(training_->Resize(host_.job.id, 4)) << "a resize is already under way";
  Advance(100);  // both workers checkpoint and exit
  EXPECT_EQ(host_.calls.back(), "Requeue TrainingResized");
  EXPECT_EQ(host_.intent, StopIntent::kNone) << "the requeue clears the stop";
}

}  // namespace
}  // namespace berth::controllers
