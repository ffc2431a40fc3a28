#include "gpu/sampler.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "gpu/gpu_test_util.h"
#include "gpu/prometheus.h"

namespace berth::gpu {
namespace {

using nlohmann::json;
using testing::ChildGroup;
using testing::FakeDevice;
using testing::FakeInventory;
using testing::FakeNvmlConfig;
using testing::MakeSample;
using testing::TempDir;

std::vector<GpuEvent> OfType(const std::vector<GpuEvent>& events, GpuEventType t) {
  std::vector<GpuEvent> out;
  for (const auto& e : events) {
    if (e.type == t) out.push_back(e);
  }
  return out;
}

// The fake driver, a real child process group, and the sampler together.
class SamplerNvmlTest : public ::testing::Test {
 protected:
  SamplerNvmlTest() : config_(dir_.path()) {}

  void Start(const json& config) {
    config_.Write(config);
    NvmlOptions o;
    o.library_path = testing::FakeNvmlPath();
    o.node_name = "node-a";
    auto inv = MakeNvmlInventory(o);
    ASSERT_TRUE(inv.ok()) << inv.status().ToString();
    inventory_ = std::move(inv).value();
    sampler_ = std::make_unique<Sampler>(clock_, *inventory_);
  }

  TempDir dir_;
  FakeNvmlConfig config_;
  ManualClock clock_{1'700'000'000'000};
  std::unique_ptr<Inventory> inventory_;
  std::unique_ptr<Sampler> sampler_;
};

TEST_F(SamplerNvmlTest, AttributesProcessesToJobsByProcessGroup) {
  ChildGroup child;
  ASSERT_GT(child.pid(), 0);
  json d0 = FakeDevice(0, 60), d1 = FakeDevice(1, 0);
  d0["processes"] = {{{"pid", child.pid()}, {"used_memory_mib", 4096}}};
  ASSERT_NO_FATAL_FAILURE(Start({{"devices", {d0, d1}}}));
  sampler_->SetAssignments({{"node-a", 0, 7, "alice", "research", kWholeGpu},
                            {"node-a", 1, 8, "bob", "prod", kWholeGpu}});
  sampler_->SetProcessGroups({{child.pid(), 7}});

  auto events = sampler_->Tick();
  EXPECT_TRUE(OfType(events, GpuEventType::kViolation).empty());
  auto g0 = sampler_->Gpu({"node-a", 0});
  ASSERT_TRUE(g0.has_value());
  ASSERT_TRUE(g0->sample.processes.has_value());
  ASSERT_EQ(g0->sample.processes->size(), 1u);
  EXPECT_EQ(g0->sample.processes->at(0).pid, child.pid());
  EXPECT_EQ(g0->sample.processes->at(0).pgid, child.pid());
  EXPECT_EQ(g0->sample.processes->at(0).job, 7);
  ASSERT_EQ(g0->holders.size(), 1u);
  EXPECT_EQ(g0->holders[0].user, "alice");
  auto u7 = sampler_->Job(7);
  ASSERT_TRUE(u7.has_value());
  EXPECT_EQ(u7->peak_memory, 4096);
  EXPECT_EQ(u7->peak_util, 60);

  // The same process now also shows up on GPU 1, which job 8 holds.
  d1["processes"] = {{{"pid", child.pid()}, {"used_memory_mib", 512}}};
  config_.Write({{"devices", {d0, d1}}});
  clock_.Advance(kSecond);
  events = sampler_->Tick();
  auto v = OfType(events, GpuEventType::kViolation);
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].gpu, (GpuKey{"node-a", 1}));
  EXPECT_EQ(v[0].job, 7);
  EXPECT_EQ(v[0].pid, child.pid());
  EXPECT_EQ(v[0].holders, std::vector<model::JobId>{8});
  EXPECT_EQ(v[0].user, "alice");
  EXPECT_NE(v[0].message.find("held by job 8"), std::string::npos) << v[0].message;
  EXPECT_EQ(sampler_->Job(7)->violations, 1);
  EXPECT_EQ(sampler_->Job(7)->peak_memory, 4096 + 512);

  // Reported once while it persists.
  clock_.Advance(kSecond);
  EXPECT_TRUE(OfType(sampler_->Tick(), GpuEventType::kViolation).empty());

  // A job that holds no GPU at all still gets its violation counted.
  ChildGroup other;
  d1["processes"] = {{{"pid", other.pid()}, {"used_memory_mib", 64}}};
  config_.Write({{"devices", {d0, d1}}});
  sampler_->SetProcessGroups({{child.pid(), 7}, {other.pid(), 42}});
  clock_.Advance(kSecond);
  v = OfType(sampler_->Tick(), GpuEventType::kViolation);
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].job, 42);
  ASSERT_TRUE(sampler_->Job(42).has_value());
  EXPECT_EQ(sampler_->Job(42)->violations, 1);
  EXPECT_NE(RenderPrometheus(*sampler_).find(
                "berth_gpu_violations_total{job=\"42\",user=\"\",queue=\"\"} 1\n"),
            std::string::npos);
}

TEST_F(SamplerNvmlTest, ProcessOfNoJobIsNotAttributed) {
  ChildGroup child;
  json d0 = FakeDevice(0, 60);
  d0["processes"] = {{{"pid", child.pid()}, {"used_memory_mib", 100}},
                     {{"pid", 999999999}, {"used_memory_mib", 5}}};
  ASSERT_NO_FATAL_FAILURE(Start({{"devices", {d0}}}));
  sampler_->SetProcessGroups({{child.pid() + 100000, 3}});
  auto events = sampler_->Tick();
  EXPECT_TRUE(events.empty());
  auto g = sampler_->Gpu({"node-a", 0});
  ASSERT_EQ(g->sample.processes->size(), 2u);
  EXPECT_EQ(g->sample.processes->at(0).job, 0);
  EXPECT_EQ(g->sample.processes->at(1).pgid, 0);  // no such process
}

TEST_F(SamplerNvmlTest, ChangingUtilizationSeenAcrossTicksAndInMetrics) {
  ASSERT_NO_FATAL_FAILURE(Start({{"devices", {FakeDevice(0, 20)}}}));
  sampler_->SetAssignments({{"node-a", 0, 12, "carol", "default", kWholeGpu}});
  sampler_->Tick();
  std::string m1 = RenderPrometheus(*sampler_);
  EXPECT_NE(
      m1.find("DCGM_FI_DEV_GPU_UTIL{gpu=\"0\",UUID=\"GPU-00000000-1111-2222-3333-000000000000\","
              "modelName=\"NVIDIA H100 80GB HBM3\",Hostname=\"node-a\",job=\"12\",user=\"carol\","
              "queue=\"default\"} 20\n"),
      std::string::npos)
      << m1;

  config_.Write({{"devices", {FakeDevice(0, 85)}}});
  clock_.Advance(kSecond);
  sampler_->Tick();
  std::string m2 = RenderPrometheus(*sampler_);
  EXPECT_NE(m2.find("queue=\"default\"} 85\n"), std::string::npos) << m2;
  EXPECT_EQ(m2.find("queue=\"default\"} 20\n"), std::string::npos);

  auto fine = sampler_->FineHistory({"node-a", 0});
  ASSERT_EQ(fine.size(), 2u);
  EXPECT_EQ(fine[0].util, 20);
  EXPECT_EQ(fine[1].util, 85);
  EXPECT_EQ(fine[1].time - fine[0].time, kSecond);
  auto u = sampler_->Job(12);
  EXPECT_EQ(u->AvgUtil(), 53);  // (20 + 85) / 2 rounded
  EXPECT_EQ(u->peak_util, 85);
}

TEST_F(SamplerNvmlTest, LostAndNotSupportedThroughTheSampler) {
  json d1 = FakeDevice(1, 50);
  d1["not_supported"] = {"power"};
  ASSERT_NO_FATAL_FAILURE(Start({{"devices", {FakeDevice(0, 30), d1}}}));
  auto events = sampler_->Tick();
  EXPECT_TRUE(events.empty());
  std::string m = RenderPrometheus(*sampler_);
  EXPECT_NE(m.find("DCGM_FI_DEV_POWER_USAGE{gpu=\"0\""), std::string::npos);
  EXPECT_EQ(m.find("DCGM_FI_DEV_POWER_USAGE{gpu=\"1\""), std::string::npos) << m;
  EXPECT_NE(m.find("DCGM_FI_DEV_GPU_UTIL{gpu=\"1\""), std::string::npos);

  json lost = FakeDevice(0, 30);
  lost["lost"] = true;
  config_.Write({{"devices", {lost, d1}}});
  clock_.Advance(kSecond);
  events = sampler_->Tick();
  auto l = OfType(events, GpuEventType::kGpuLost);
  ASSERT_EQ(l.size(), 1u);
  EXPECT_EQ(l[0].gpu.index, 0);
  m = RenderPrometheus(*sampler_);
  EXPECT_NE(m.find("berth_gpu_up{gpu=\"0\",UUID=\"GPU-00000000-1111-2222-3333-000000000000\","
                   "modelName=\"NVIDIA H100 80GB HBM3\",Hostname=\"node-a\"} 0\n"),
            std::string::npos)
      << m;
  EXPECT_EQ(m.find("DCGM_FI_DEV_GPU_UTIL{gpu=\"0\""), std::string::npos);

  clock_.Advance(kSecond);
  EXPECT_TRUE(sampler_->Tick().empty());  // reported once

  config_.Write({{"devices", {FakeDevice(0, 30), d1}}});
  clock_.Advance(kSecond);
  events = sampler_->Tick();
  ASSERT_EQ(OfType(events, GpuEventType::kGpuRecovered).size(), 1u);
}

// The daemon ticks on one thread while API handlers read on others.
TEST_F(SamplerNvmlTest, ReadersRunWhileTicking) {
  ASSERT_NO_FATAL_FAILURE(Start({{"devices", {FakeDevice(0, 20), FakeDevice(1, 90)}}}));
  std::atomic<bool> done{false};
  std::thread ticker([&] {
    for (int i = 0; i < 300; ++i) {
      clock_.Advance(kSecond);
      sampler_->SetAssignments({{"node-a", i % 2, 1 + i % 5, "u", "q", kWholeGpu}});
      sampler_->Tick();
    }
    done = true;
  });
  size_t renders = 0;
  while (!done) {
    std::string m = RenderPrometheus(*sampler_);
    EXPECT_NE(m.find("# TYPE DCGM_FI_DEV_GPU_UTIL gauge"), std::string::npos);
    sampler_->History({"node-a", 0}, 0);
    inventory_->Nodes();
    ++renders;
  }
  ticker.join();
  EXPECT_GT(renders, 0u);
  EXPECT_EQ(sampler_->FineHistory({"node-a", 1}).size(), 300u);
  EXPECT_EQ(sampler_->Jobs().size(), 5u);
}

// Idle allocations, usage and history with a data-driven inventory.
class SamplerTest : public ::testing::Test {
 protected:
  SamplerTest() {
    inv_.Set({MakeSample("n", 0, 2), MakeSample("n", 1, 90)});
    SamplerOptions o;
    o.idle_util_percent = 5;
    o.idle_after = kMinute;
    sampler_ = std::make_unique<Sampler>(clock_, inv_, o);
  }

  // Ticks once a second for `seconds`; returns all events.
  std::vector<GpuEvent> Run(int seconds) {
    std::vector<GpuEvent> all;
    for (int i = 0; i < seconds; ++i) {
      clock_.Advance(kSecond);
      auto e = sampler_->Tick();
      all.insert(all.end(), e.begin(), e.end());
    }
    return all;
  }

  ManualClock clock_{0};
  FakeInventory inv_;
  std::unique_ptr<Sampler> sampler_;
};

TEST_F(SamplerTest, IdleAllocationRaisesOneEventAndCountsIdleSeconds) {
  sampler_->SetAssignments(
      {{"n", 0, 1, "alice", "q", kWholeGpu}, {"n", 1, 2, "bob", "q", kWholeGpu}});
  sampler_->Tick();       // t=0: both jobs seen
  auto events = Run(59);  // t=59 s: idle for 59 s, not yet a minute
  EXPECT_TRUE(events.empty());
  EXPECT_EQ(sampler_->Job(1)->idle_milli_gpu_ms, 0);
  EXPECT_EQ(sampler_->Gpu({"n", 0})->idle_for, 59 * kSecond);

  events = Run(1);  // t=60 s
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].type, GpuEventType::kIdleAllocation);
  EXPECT_EQ(events[0].job, 1);
  EXPECT_EQ(events[0].user, "alice");
  EXPECT_EQ(events[0].gpu, (GpuKey{"n", 0}));
  EXPECT_EQ(events[0].idle_for, kMinute);
  EXPECT_DOUBLE_EQ(sampler_->Job(1)->IdleGpuSeconds(), 60.0);

  events = Run(30);  // no repeat; the spell keeps counting
  EXPECT_TRUE(events.empty());
  EXPECT_DOUBLE_EQ(sampler_->Job(1)->IdleGpuSeconds(), 90.0);
  EXPECT_DOUBLE_EQ(sampler_->Job(1)->AllocatedGpuSeconds(), 90.0);
  EXPECT_DOUBLE_EQ(sampler_->Job(2)->IdleGpuSeconds(), 0.0);  // busy GPU

  inv_.SetUtil(0, 40);
  events = Run(1);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].type, GpuEventType::kIdleEnded);
  EXPECT_EQ(events[0].job, 1);
  EXPECT_DOUBLE_EQ(sampler_->Job(1)->IdleGpuSeconds(), 90.0);

  std::string m = RenderPrometheus(*sampler_);
  EXPECT_NE(
      m.find("# TYPE berth_gpu_idle_allocated_seconds_total counter\n"
             "berth_gpu_idle_allocated_seconds_total{job=\"1\",user=\"alice\",queue=\"q\"} 90\n"
             "berth_gpu_idle_allocated_seconds_total{job=\"2\",user=\"bob\",queue=\"q\"} 0\n"),
      std::string::npos)
      << m;
}

TEST_F(SamplerTest, ShortDipsAreNotIdle) {
  sampler_->SetAssignments({{"n", 0, 1, "alice", "q", kWholeGpu}});
  for (int round = 0; round < 5; ++round) {
    inv_.SetUtil(0, 1);
    EXPECT_TRUE(Run(50).empty());
    inv_.SetUtil(0, 70);
    EXPECT_TRUE(Run(5).empty());
  }
  EXPECT_EQ(sampler_->Job(1)->idle_milli_gpu_ms, 0);
}

TEST_F(SamplerTest, IdleCountsFromAssignmentNotFromWhenTheGpuWentIdle) {
  Run(600);  // GPU 0 idle and unheld for 10 minutes
  sampler_->SetAssignments({{"n", 0, 1, "alice", "q", 500}});  // half a GPU
  // The holder is first seen at the next tick (t=601 s); its spell starts there.
  auto events = Run(60);
  EXPECT_TRUE(events.empty());
  events = Run(1);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].idle_for, kMinute);
  // Share-weighted: half a GPU idle for 60 s.
  EXPECT_DOUBLE_EQ(sampler_->Job(1)->IdleGpuSeconds(), 30.0);

  sampler_->SetAssignments({});
  events = Run(1);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].type, GpuEventType::kIdleEnded);
  EXPECT_FALSE(sampler_->Job(1)->active);
  sampler_->ForgetJob(1);
  EXPECT_FALSE(sampler_->Job(1).has_value());
}

TEST_F(SamplerTest, UnknownUtilizationIsNeverIdle) {
  inv_.SetUtil(0, std::nullopt);
  sampler_->SetAssignments({{"n", 0, 1, "alice", "q", kWholeGpu}});
  EXPECT_TRUE(Run(120).empty());
  EXPECT_EQ(sampler_->Job(1)->util_samples, 0);
}

TEST_F(SamplerTest, GapsAreCapped) {
  sampler_->SetAssignments({{"n", 1, 2, "bob", "q", kWholeGpu}});
  sampler_->Tick();
  clock_.Advance(kHour);  // the daemon was stopped
  sampler_->Tick();
  EXPECT_DOUBLE_EQ(sampler_->Job(2)->AllocatedGpuSeconds(), 10.0);  // max_gap
}

TEST_F(SamplerTest, ReadFailureIsAnEvent) {
  inv_.Fail("driver went away");
  auto events = sampler_->Tick();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].type, GpuEventType::kReadFailed);
  EXPECT_NE(events[0].message.find("driver went away"), std::string::npos);
  EXPECT_STREQ(GpuEventTypeName(events[0].type), "read_failed");
}

TEST_F(SamplerTest, FinishedJobsAreBounded) {
  SamplerOptions o;
  o.max_finished_jobs = 2;
  Sampler s(clock_, inv_, o);
  for (model::JobId j = 1; j <= 4; ++j) {
    s.SetAssignments({{"n", 1, j, "u", "q", kWholeGpu}});
    clock_.Advance(kSecond);
    s.Tick();
  }
  s.SetAssignments({});
  clock_.Advance(kSecond);
  s.Tick();
  auto jobs = s.Jobs();
  ASSERT_EQ(jobs.size(), 2u);  // jobs 1 and 2 were dropped
  EXPECT_EQ(jobs[0].job, 3);
  EXPECT_EQ(jobs[1].job, 4);
}

TEST_F(SamplerTest, HistoryDownsamplesToMinutes) {
  // Utilization = seconds into the minute (0..59): mean 29.5 -> 30, peak 59.
  sampler_->Tick();
  for (int t = 1; t <= 20 * 60; ++t) {
    clock_.Set(t * kSecond);
    inv_.SetUtil(0, t % 60);
    sampler_->Tick();
  }
  GpuKey k{"n", 0};
  auto fine = sampler_->FineHistory(k);
  ASSERT_EQ(fine.size(), 900u);  // 15 minutes of seconds, fixed
  EXPECT_EQ(fine.front().time, (20 * 60 - 899) * kSecond);
  EXPECT_EQ(fine.back().time, 20 * 60 * kSecond);
  EXPECT_EQ(fine.back().util, 0);
  auto coarse = sampler_->CoarseHistory(k);
  ASSERT_EQ(coarse.size(), 21u);  // minutes 0..19 closed, minute 20 open
  for (int m = 0; m < 20; ++m) {
    EXPECT_EQ(coarse[m].time, m * kMinute);
    EXPECT_EQ(coarse[m].samples, 60);
    EXPECT_EQ(coarse[m].util, 30) << m;
    EXPECT_EQ(coarse[m].util_max, 59);
    EXPECT_EQ(coarse[m].memory_used, 1000);
  }
  EXPECT_EQ(coarse[20].samples, 1);
  // Recent ranges come from fine points, older ones from coarse.
  EXPECT_EQ(sampler_->History(k, 19 * kMinute).size(), 61u);
  EXPECT_EQ(sampler_->History(k, 0).size(), 21u);
}

TEST(GpuHistoryTest, CoarseRingKeeps24Hours) {
  GpuHistory h;
  GpuSample s = MakeSample("n", 0, 50);
  for (int m = 0; m < 25 * 60; ++m) h.Add(m * kMinute, s);
  auto coarse = h.Coarse();
  ASSERT_EQ(coarse.size(), 1441u);  // 1440 closed minutes + the open one
  EXPECT_EQ(coarse.front().time, (25 * 60 - 1441) * kMinute);
  EXPECT_EQ(h.Fine().size(), 900u);
}

TEST(GpuHistoryTest, SamplesInOneStepMerge) {
  GpuHistory h;
  h.Add(1000, MakeSample("n", 0, 10));
  h.Add(1500, MakeSample("n", 0, 30));
  h.Add(2100, MakeSample("n", 0, 90));
  auto fine = h.Fine();
  ASSERT_EQ(fine.size(), 2u);
  EXPECT_EQ(fine[0].time, 1000);
  EXPECT_EQ(fine[0].util, 20);
  EXPECT_EQ(fine[0].util_max, 30);
  EXPECT_EQ(fine[0].samples, 2);
  GpuSample unknown = MakeSample("n", 0, 0);
  unknown.util_percent.reset();
  h.Add(3000, unknown);
  EXPECT_EQ(h.Fine().back().util, -1);
  EXPECT_EQ(h.Fine().back().memory_used, 1000);
}

}  // namespace
}  // namespace berth::gpu
