// The telemetry controller on a ManualClock over a real store and a fake
// inventory whose readings the test sets: sampler events become job events,
// an ended job's usage is saved to job_usage and read back after a restart,
// and the per-GPU live state reports a lost GPU as unhealthy.
#include "controllers/telemetry_controller.h"

#include <gtest/gtest.h>

#include <filesystem>

namespace berth::controllers {
namespace {

class ScriptedInventory final : public gpu::Inventory {
 public:
  std::string Describe() const override { return "scripted"; }
  std::vector<model::NodeInfo> Nodes() const override { return {}; }
  Result<std::vector<gpu::GpuSample>> Sample() override {
    std::lock_guard<std::mutex> l(mu_);
    return samples_;
  }
  void Set(int util, bool lost = false) {
    std::lock_guard<std::mutex> l(mu_);
    gpu::GpuSample s;
    s.node = "n1";
    s.index = 0;
    s.uuid = "GPU-test-0";
    s.model = "Test GPU";
    s.lost = lost;
    if (!lost) {
      s.util_percent = util;
      s.memory_total = 81920;
      s.memory_used = 2048;
      s.memory_free = 81920 - 2048;
    }
    samples_ = {s};
  }

 private:
  std::mutex mu_;
  std::vector<gpu::GpuSample> samples_;
};

struct Recorded {
  std::string type;
  model::JobId job;
};

class TelemetryControllerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (std::filesystem::temp_directory_path() / "berth-tel-XXXXXX").string();
    dir_ = ::mkdtemp(tmpl.data());
    auto s = store::Store::Open(dir_ + "/berth.db");
    ASSERT_TRUE(s.ok()) << s.status().message();
    store_ = std::move(*s);
    model::JobSpec spec;
    spec.name = "train";
    spec.user = "alice";
    spec.command = {"/bin/true"};
    auto id = store_->SubmitJob(spec, clock_.Now());
    ASSERT_TRUE(id.ok()) << id.status().message();
    job_ = *id;
    inventory_.Set(0);
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }
  std::unique_ptr<TelemetryController> Make() {
    TelemetrySource src;
    src.assignments = [this] {
      std::vector<gpu::Assignment> a;
      if (holding_) a.push_back({"n1", 0, job_, "alice", "default", kWholeGpu});
      return a;
    };
    src.process_groups = [] { return std::map<int, model::JobId>{}; };
    src.record_event = [this](const std::string& type, model::JobId job, const std::string&,
                              const nlohmann::json&) {
      events_.push_back({type, job});
    };
    TelemetryControllerOptions opts;
    opts.run_thread = false;
    opts.sampler.interval = kSecond;
    opts.sampler.idle_after = 3 * kSecond;
    return std::make_unique<TelemetryController>(*store_, inventory_, clock_, src, opts);
  }
  // Events of `type` about the test's job (any_job: about any job or none).
  int Count(const std::string& type, bool any_job = false) const {
    int n = 0;
    for (const auto& e : events_) n += e.type == type && (any_job || e.job == job_);
    return n;
  }

  std::string dir_;
  ManualClock clock_{1'000'000};
  ScriptedInventory inventory_;
  std::unique_ptr<store::Store> store_;
  model::JobId job_ = 0;
  bool holding_ = true;
  std::vector<Recorded> events_;
};

TEST_F(TelemetryControllerTest, IdleAllocationBecomesAJobEventOnce) {
  auto tc = Make();
  ASSERT_TRUE(tc->Start().ok());
  for (int i = 0; i < 6; ++i) {
    tc->RunOnce();
    clock_.Advance(kSecond);
  }
  EXPECT_EQ(Count("GpuIdle"), 1);
  inventory_.Set(90);
  tc->RunOnce();
  EXPECT_EQ(Count("GpuBusy"), 1);
  tc->Stop();
}

TEST_F(TelemetryControllerTest, EndedJobsUsageIsSavedAndSurvivesARestart) {
  {
    auto tc = Make();
    inventory_.Set(40);
    for (int i = 0; i < 3; ++i) {
      tc->RunOnce();
      clock_.Advance(kSecond);
    }
    auto live = tc->JobUsageJson(job_);
    ASSERT_FALSE(live.is_null());
    EXPECT_EQ(live["avgUtilization"], 40);
    auto none = store_->GetJobUsage(job_);
    ASSERT_TRUE(none.ok());
    EXPECT_FALSE(none->has_value()) << "saved while the job still holds its GPU";
    holding_ = false;
    tc->RunOnce();
    auto saved = store_->GetJobUsage(job_);
    ASSERT_TRUE(saved.ok());
    ASSERT_TRUE(saved->has_value());
    EXPECT_EQ((*saved)->peak_util, 40);
  }
  // A new controller (berthd restarted): the sampler knows nothing, the store does.
  auto tc = Make();
  auto j = tc->JobUsageJson(job_);
  ASSERT_FALSE(j.is_null());
  EXPECT_EQ(j["peakUtilization"], 40);
  EXPECT_TRUE(tc->JobUsageJson(job_ + 100).is_null());
}

TEST_F(TelemetryControllerTest, GpuStatesReportUtilizationAndLostGpus) {
  auto tc = Make();
  EXPECT_TRUE(tc->GpuJson("n1", 0).is_null());
  inventory_.Set(55);
  tc->RunOnce();
  auto states = tc->GpuStates();
  ASSERT_EQ(states.size(), 1u);
  EXPECT_TRUE(states[0].healthy);
  EXPECT_EQ(states[0].util_percent, 55);
  EXPECT_EQ(states[0].memory_used, 2048);
  EXPECT_EQ(tc->GpuJson("n1", 0)["utilization"], 55);

  clock_.Advance(kSecond);
  inventory_.Set(0, /*lost=*/true);
  tc->RunOnce();
  states = tc->GpuStates();
  ASSERT_EQ(states.size(), 1u);
  EXPECT_FALSE(states[0].healthy);
  EXPECT_EQ(states[0].reason, "lost");
  EXPECT_EQ(Count("GpuLost", /*any_job=*/true), 1);
}

}  // namespace
}  // namespace berth::controllers
