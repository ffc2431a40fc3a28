// GPU health through the fake driver (the real dlopen path): each fatal
// condition, the checks a GPU or an older driver cannot do, the DCGM health
// metrics, and the recent-usage window.
#include <gtest/gtest.h>

#include "gpu/gpu_test_util.h"
#include "gpu/prometheus.h"
#include "gpu/sampler.h"

namespace berth::gpu {
namespace {

using nlohmann::json;
using testing::FakeDevice;
using testing::FakeInventory;
using testing::FakeNvmlConfig;
using testing::FakeNvmlNoHealthPath;
using testing::FakeNvmlPath;
using testing::MakeSample;
using testing::TempDir;

bool HasUnavailable(const GpuHealth& h, HealthCheck c, UnavailableReason r) {
  for (const auto& u : h.unavailable) {
    if (u.check == c && u.reason == r) return true;
  }
  return false;
}

std::vector<GpuEvent> OfType(const std::vector<GpuEvent>& events, GpuEventType t) {
  std::vector<GpuEvent> out;
  for (const auto& e : events) {
    if (e.type == t) out.push_back(e);
  }
  return out;
}

class HealthTest : public ::testing::Test {
 protected:
  HealthTest() : config_(dir_.path()) {}

  // Writes `devices`, loads `lib` and makes a sampler with health events on.
  void Start(const json& devices, const std::string& lib = FakeNvmlPath(),
             SamplerOptions o = HealthOptions()) {
    // {d0} alone is d0 itself to nlohmann::json, not a list of one.
    config_.Write({{"devices", devices.is_array() ? devices : json::array({devices})}});
    NvmlOptions n;
    n.library_path = lib;
    n.node_name = "node-a";
    auto inv = MakeNvmlInventory(n);
    ASSERT_TRUE(inv.ok()) << inv.status().ToString();
    inventory_ = std::move(inv).value();
    sampler_ = std::make_unique<Sampler>(clock_, *inventory_, o);
  }

  static SamplerOptions HealthOptions() {
    SamplerOptions o;
    o.health_events = true;
    o.pgid_of = [](int pid) { return pid; };
    return o;
  }

  std::vector<GpuEvent> Tick() {
    clock_.Advance(kSecond);
    return sampler_->Tick();
  }

  GpuHealth H(int index) {
    auto h = sampler_->Health(GpuKey{"node-a", index});
    EXPECT_TRUE(h.has_value());
    return h.value_or(GpuHealth{});
  }

  TempDir dir_;
  FakeNvmlConfig config_;
  ManualClock clock_{1'700'000'000'000};
  std::unique_ptr<Inventory> inventory_;
  std::unique_ptr<Sampler> sampler_;
};

TEST_F(HealthTest, FatalXidFromTheEventApiDrainsOnlyThatGpu) {
  json d0 = FakeDevice(0), d1 = FakeDevice(1), d2 = FakeDevice(2);
  d0["xids"] = {{0, 79}};
  d1["xids"] = {{0, 94}};     // contained ECC: not fatal
  d2["xids"] = {{3600, 79}};  // not due yet (an hour after nvmlInit)
  Start({d0, d1, d2});
  auto events = Tick();

  GpuHealth h0 = H(0);
  EXPECT_TRUE(h0.fatal);
  EXPECT_NE(h0.reason.find("XID 79 (GPU has fallen off the bus)"), std::string::npos) << h0.reason;
  EXPECT_EQ(h0.last_xid, 79);
  EXPECT_EQ(h0.xid_count, 1);
  EXPECT_EQ(h0.fatal_since, clock_.Now());
  GpuHealth h1 = H(1);
  EXPECT_FALSE(h1.fatal) << h1.reason;
  EXPECT_EQ(h1.last_xid, 94);
  GpuHealth h2 = H(2);
  EXPECT_FALSE(h2.fatal);
  EXPECT_EQ(h2.last_xid, 0);
  EXPECT_TRUE(h2.unavailable.empty());

  auto xids = OfType(events, GpuEventType::kXid);
  ASSERT_EQ(xids.size(), 2u);
  EXPECT_EQ(xids[0].xid, 79);
  EXPECT_EQ(xids[0].gpu.index, 0);
  EXPECT_EQ(xids[1].xid, 94);
  auto fatal = OfType(events, GpuEventType::kHealthFatal);
  ASSERT_EQ(fatal.size(), 1u);
  EXPECT_EQ(fatal[0].gpu.index, 0);

  // An event is delivered once; the fatal XID stays until cleared.
  events = Tick();
  EXPECT_TRUE(OfType(events, GpuEventType::kXid).empty());
  EXPECT_EQ(H(0).xid_count, 1);
  EXPECT_TRUE(H(0).fatal);
  sampler_->ClearHealth(GpuKey{"node-a", 0});
  events = Tick();
  EXPECT_FALSE(H(0).fatal);
  EXPECT_EQ(OfType(events, GpuEventType::kHealthOk).size(), 1u);
  EXPECT_EQ(H(0).last_xid, 79);  // the counter keeps the last one, as DCGM's does

  // The XID at t = 3600 s becomes due when the config says it is now.
  d2["xids"] = {{0, 79}};
  config_.Write({{"devices", {d0, d1, d2}}});
  Tick();
  EXPECT_TRUE(H(2).fatal);
  EXPECT_FALSE(H(0).fatal);  // its (0, 79) was delivered already
}

TEST_F(HealthTest, EveryDefaultFatalXidIsFatalAndOthersAreNot) {
  std::vector<int> xids(DefaultFatalXids().begin(), DefaultFatalXids().end());
  xids.push_back(13);  // graphics engine exception: the application's problem
  xids.push_back(31);  // page fault
  xids.push_back(63);  // row remap recorded, pending reset
  json ds = json::array();
  for (size_t i = 0; i < xids.size(); ++i) {
    ds.push_back(FakeDevice(static_cast<int>(i)));
    ds.back()["xids"] = {{0, xids[i]}};
  }
  Start(ds);
  Tick();
  for (size_t i = 0; i < xids.size(); ++i) {
    bool want = DefaultFatalXids().count(xids[i]) > 0;
    GpuHealth h = H(static_cast<int>(i));
    EXPECT_EQ(h.fatal, want) << "XID " << xids[i] << ": " << h.reason;
    EXPECT_EQ(h.last_xid, xids[i]);
  }
}

TEST_F(HealthTest, DoubleBitEccAndRemapFailureAreFatalPendingIsNot) {
  json d0 = FakeDevice(0), d1 = FakeDevice(1), d2 = FakeDevice(2), d3 = FakeDevice(3);
  d0["ecc_dbe_volatile"] = {{0, 0}, {3600, 2}};  // errors an hour in
  d1["row_remap_failure"] = true;
  d2["row_remap_pending"] = true;
  d3["retired_pages_pending"] = true;
  d3["ecc_sbe_volatile"] = 12;  // single-bit: corrected, harmless
  Start({d0, d1, d2, d3});
  Tick();
  EXPECT_FALSE(H(0).fatal);
  EXPECT_EQ(H(0).ecc_dbe_volatile, 0u);
  EXPECT_TRUE(H(1).fatal);
  EXPECT_NE(H(1).reason.find("row remapping failed"), std::string::npos);
  EXPECT_FALSE(H(2).fatal);
  EXPECT_EQ(H(2).row_remap_pending, true);
  EXPECT_EQ(H(2).row_remap_failure, false);
  EXPECT_FALSE(H(3).fatal);
  EXPECT_EQ(H(3).retired_pages_pending, true);

  d0["ecc_dbe_volatile"] = 2;
  config_.Write({{"devices", {d0, d1, d2, d3}}});
  auto events = Tick();
  EXPECT_TRUE(H(0).fatal);
  EXPECT_NE(H(0).reason.find("2 volatile double-bit ECC error(s)"), std::string::npos)
      << H(0).reason;
  EXPECT_EQ(OfType(events, GpuEventType::kHealthFatal).size(), 1u);
}

TEST_F(HealthTest, DoubleBitEccCanBeMadeNonFatal) {
  json d0 = FakeDevice(0);
  d0["ecc_dbe_volatile"] = 1;
  SamplerOptions o = HealthOptions();
  o.ecc_dbe_fatal = false;
  Start({d0}, FakeNvmlPath(), o);
  Tick();
  EXPECT_FALSE(H(0).fatal);
  EXPECT_EQ(H(0).ecc_dbe_volatile, 1u);
}

TEST_F(HealthTest, LostDeviceIsFatalUntilItAnswers) {
  json d0 = FakeDevice(0), d1 = FakeDevice(1);
  d1["throttle_reasons"] = 0x40;
  Start({d0, d1});
  Tick();
  EXPECT_FALSE(H(1).fatal);
  d1["lost"] = true;
  config_.Write({{"devices", {d0, d1}}});
  auto events = Tick();
  EXPECT_TRUE(H(1).lost);
  EXPECT_TRUE(H(1).fatal);
  EXPECT_NE(H(1).reason.find("GPU is lost"), std::string::npos);
  EXPECT_EQ(H(1).throttle_reasons, 0x40u);  // the last reading stands
  EXPECT_EQ(OfType(events, GpuEventType::kHealthFatal).size(), 1u);
  EXPECT_EQ(OfType(events, GpuEventType::kGpuLost).size(), 1u);
  d1["lost"] = false;
  config_.Write({{"devices", {d0, d1}}});
  events = Tick();
  EXPECT_FALSE(H(1).fatal);
  EXPECT_EQ(OfType(events, GpuEventType::kHealthOk).size(), 1u);
}

TEST_F(HealthTest, ThrottleReasonsAreDecoded) {
  json d0 = FakeDevice(0), d1 = FakeDevice(1);
  d0["throttle_reasons"] = 0x40 | 0x04;  // hw thermal + sw power cap
  d1["throttle_reasons"] = 0x01;         // idle
  Start({d0, d1});
  Tick();
  EXPECT_TRUE(H(0).thermal_throttled());
  EXPECT_TRUE(H(0).power_throttled());
  EXPECT_FALSE(H(0).fatal);
  EXPECT_FALSE(H(1).thermal_throttled());
  EXPECT_FALSE(H(1).power_throttled());
  EXPECT_EQ(ThrottleReasonNames(0x44), "sw_power_cap,hw_thermal");
}

TEST_F(HealthTest, NotSupportedChecksAreUnavailableOnThatGpuOnly) {
  json consumer = FakeDevice(0), dc = FakeDevice(1);
  consumer["name"] = "NVIDIA GeForce RTX 4090";
  consumer["not_supported"] = {"ecc", "row_remap", "retired_pages", "events"};
  consumer["xids"] = {{0, 79}};  // registration failed: never delivered
  consumer["ecc_dbe_volatile"] = 5;
  Start({consumer, dc});
  Tick();
  GpuHealth c = H(0);
  for (HealthCheck k : {kCheckXidEvents, kCheckEccDbe, kCheckRowRemap, kCheckRetiredPages}) {
    EXPECT_TRUE(HasUnavailable(c, k, UnavailableReason::kNotSupported)) << HealthCheckName(k);
  }
  EXPECT_EQ(c.unavailable.size(), 4u);
  EXPECT_FALSE(c.fatal) << c.reason;
  EXPECT_FALSE(c.ecc_dbe_volatile.has_value());
  EXPECT_EQ(c.unavailable[0].Describe(), "xid_events: not supported by this GPU");
  EXPECT_TRUE(H(1).unavailable.empty());
  // Loss is still seen by polling.
  consumer["lost"] = true;
  config_.Write({{"devices", {consumer, dc}}});
  Tick();
  EXPECT_TRUE(H(0).fatal);
}

TEST_F(HealthTest, OlderDriverWithoutHealthApiFallsBackToPollingForLoss) {
  json d0 = FakeDevice(0), d1 = FakeDevice(1);
  d0["xids"] = {{0, 79}};  // the driver has no event API: nobody can see it
  d0["ecc_dbe_volatile"] = 3;
  d1["throttle_reasons"] = 0x20;
  Start({d0, d1}, FakeNvmlNoHealthPath());
  Tick();
  GpuHealth h = H(0);
  for (HealthCheck k : {kCheckXidEvents, kCheckEccDbe, kCheckRowRemap, kCheckRetiredPages}) {
    EXPECT_TRUE(HasUnavailable(h, k, UnavailableReason::kMissingFunction)) << HealthCheckName(k);
  }
  EXPECT_EQ(h.unavailable.size(), 4u);  // throttle reasons are still read
  EXPECT_EQ(h.unavailable[1].Describe(),
            "ecc_dbe_volatile: function missing from the NVML library (older driver)");
  EXPECT_FALSE(h.fatal);
  EXPECT_EQ(h.last_xid, 0);
  EXPECT_TRUE(H(1).thermal_throttled());

  d0["lost"] = {{0, 1}};
  config_.Write({{"devices", {d0, d1}}});
  auto events = Tick();
  EXPECT_TRUE(H(0).lost);
  EXPECT_TRUE(H(0).fatal);
  EXPECT_EQ(OfType(events, GpuEventType::kHealthFatal).size(), 1u);

  std::string m = RenderPrometheus(*sampler_);
  EXPECT_NE(m.find("berth_gpu_check_unavailable{gpu=\"0\",UUID=\"GPU-00000000-1111-2222-3333-"
                   "000000000000\",modelName=\"NVIDIA H100 80GB HBM3\",Hostname=\"node-a\","
                   "check=\"xid_events\",reason=\"missing_function\"} 1"),
            std::string::npos)
      << m;
  EXPECT_EQ(m.find("DCGM_FI_DEV_XID_ERRORS{"), std::string::npos) << m;
  EXPECT_EQ(m.find("DCGM_FI_DEV_ECC_DBE_VOL_TOTAL{"), std::string::npos) << m;
  EXPECT_NE(m.find("berth_gpu_health{gpu=\"0\""), std::string::npos);
}

TEST_F(HealthTest, HealthEventsAreOffByDefault) {
  json d0 = FakeDevice(0);
  d0["xids"] = {{0, 79}};
  SamplerOptions o = HealthOptions();
  o.health_events = false;
  Start({d0}, FakeNvmlPath(), o);
  auto events = Tick();
  EXPECT_TRUE(events.empty());
  EXPECT_TRUE(H(0).fatal);  // the state is there all the same
}

TEST_F(HealthTest, MetricsHaveTheDcgmNames) {
  json d0 = FakeDevice(0), d1 = FakeDevice(1);
  d0["xids"] = {{0, 79}};
  d0["ecc_dbe_volatile"] = 2;
  d0["row_remap_pending"] = true;
  d0["retired_pages_pending"] = true;
  d0["throttle_reasons"] = 0x44;
  d1["not_supported"] = {"ecc"};
  Start({d0, d1});
  Tick();
  std::string m = RenderPrometheus(*sampler_);
  const std::string l0 =
      "{gpu=\"0\",UUID=\"GPU-00000000-1111-2222-3333-000000000000\",modelName=\"NVIDIA H100 80GB "
      "HBM3\",Hostname=\"node-a\"}";
  for (const std::string& line : std::vector<std::string>{
           "DCGM_FI_DEV_XID_ERRORS" + l0 + " 79", "DCGM_FI_DEV_ECC_DBE_VOL_TOTAL" + l0 + " 2",
           "DCGM_FI_DEV_RETIRED_PENDING" + l0 + " 1", "DCGM_FI_DEV_ROW_REMAP_PENDING" + l0 + " 1",
           "DCGM_FI_DEV_ROW_REMAP_FAILURE" + l0 + " 0",
           "DCGM_FI_DEV_CLOCK_THROTTLE_REASONS" + l0 + " 68", "berth_gpu_health" + l0 + " 0",
           "# TYPE DCGM_FI_DEV_ECC_DBE_VOL_TOTAL counter", "# TYPE DCGM_FI_DEV_XID_ERRORS gauge"}) {
    EXPECT_NE(m.find(line + "\n"), std::string::npos) << line << "\n" << m;
  }
  EXPECT_NE(m.find("DCGM_FI_DEV_XID_ERRORS{gpu=\"1\""), std::string::npos);
  EXPECT_EQ(m.find("DCGM_FI_DEV_ECC_DBE_VOL_TOTAL{gpu=\"1\""), std::string::npos);
  EXPECT_NE(m.find("check=\"ecc_dbe_volatile\",reason=\"not_supported\"} 1"), std::string::npos);
  EXPECT_NE(m.find("berth_gpu_health{gpu=\"1\""), std::string::npos);
}

TEST_F(HealthTest, PerProcessMemoryIsKeptPerGpu) {
  json d0 = FakeDevice(0);
  d0["processes"] = {{{"pid", 4242}, {"used_memory_mib", {{0, 1000}, {3600, 9000}}}},
                     {{"pid", 4343}, {"used_memory_mib", nullptr}}};
  Start({d0});
  sampler_->SetProcessGroups({{4242, 7}});
  Tick();
  auto procs = sampler_->Processes(GpuKey{"node-a", 0});
  ASSERT_EQ(procs.size(), 2u);
  EXPECT_EQ(procs[0].pid, 4242);
  EXPECT_EQ(procs[0].used_memory, 1000);
  EXPECT_EQ(procs[0].job, 7);
  EXPECT_EQ(procs[1].pid, 4343);
  EXPECT_FALSE(procs[1].used_memory.has_value());
  EXPECT_TRUE(sampler_->Processes(GpuKey{"node-a", 5}).empty());
}

// Declared GPUs read nothing: every check is unavailable ("not_read").
TEST(HealthDeclaredTest, DeclaredGpusHaveEveryCheckUnavailable) {
  ManualClock clock(0);
  FakeInventory inv;
  inv.Set({MakeSample("n", 0, 50)});
  Sampler s(clock, inv);
  clock.Advance(kSecond);
  s.Tick();
  auto h = s.Health(GpuKey{"n", 0});
  ASSERT_TRUE(h);
  EXPECT_EQ(h->unavailable.size(), AllHealthChecks().size());
  EXPECT_EQ(h->unavailable[0].reason, UnavailableReason::kNotRead);
  EXPECT_FALSE(h->fatal);
}

TEST(RecentUsageTest, SummaryWeightsBySamplesAndSkipsUnknown) {
  std::vector<HistoryPoint> pts(4);
  pts[0].util = 10, pts[0].samples = 1, pts[0].memory_max = 100;
  pts[1].util = 40, pts[1].samples = 2, pts[1].memory_max = 300;
  pts[2].util = -1, pts[2].samples = 1, pts[2].memory_max = -1;  // nothing known
  pts[3].util = 100, pts[3].samples = 1, pts[3].memory_max = 200;
  RecentUsage r = SummarizeRecent(pts);
  EXPECT_EQ(r.samples, 4);
  ASSERT_TRUE(r.avg_util);
  EXPECT_DOUBLE_EQ(*r.avg_util, (10 + 80 + 100) / 4.0);
  EXPECT_EQ(r.max_mem_used_mib, 300);
  RecentUsage none = SummarizeRecent({});
  EXPECT_FALSE(none.avg_util);
  EXPECT_FALSE(none.max_mem_used_mib);
  EXPECT_EQ(none.samples, 0);
}

TEST(RecentUsageTest, WindowCoversTheLastNSecondsOfTicks) {
  ManualClock clock(1'700'000'000'000);
  FakeInventory inv;
  inv.Set({MakeSample("n", 0, 10, 1000), MakeSample("n", 1, 0, 500)});
  inv.SetUtil(1, std::nullopt);  // GPU 1 reports no utilization
  Sampler s(clock, inv);
  for (int i = 0; i < 30; ++i) {  // 30 s at 10 %, 1000 MiB
    clock.Advance(kSecond);
    s.Tick();
  }
  inv.Set({MakeSample("n", 0, 90, 3000), MakeSample("n", 1, 0, 500)});
  inv.SetUtil(1, std::nullopt);
  for (int i = 0; i < 30; ++i) {  // then 30 s at 90 %, 3000 MiB
    clock.Advance(kSecond);
    s.Tick();
  }
  RecentUsage last30 = s.Recent(GpuKey{"n", 0}, 30 * kSecond);
  EXPECT_EQ(last30.samples, 30);
  EXPECT_DOUBLE_EQ(last30.avg_util.value_or(-1), 90);
  EXPECT_EQ(last30.max_mem_used_mib, 3000);
  RecentUsage last60 = s.Recent(GpuKey{"n", 0}, 60 * kSecond);
  EXPECT_EQ(last60.samples, 60);
  EXPECT_DOUBLE_EQ(last60.avg_util.value_or(-1), 50);
  RecentUsage last40 = s.Recent(GpuKey{"n", 0}, 40 * kSecond);
  EXPECT_EQ(last40.samples, 40);
  EXPECT_DOUBLE_EQ(last40.avg_util.value_or(-1), (10 * 10 + 30 * 90) / 40.0);
  // A brief dip does not make a busy GPU look idle over the window.
  inv.SetUtil(0, 0);
  clock.Advance(kSecond);
  s.Tick();
  EXPECT_GT(s.Recent(GpuKey{"n", 0}, 60 * kSecond).avg_util.value_or(0), 45);

  auto all = s.Recent(30 * kSecond);
  ASSERT_EQ(all.size(), 2u);
  const GpuKey k1{"n", 1};
  EXPECT_FALSE(all[k1].avg_util);
  EXPECT_EQ(all[k1].samples, 0);
  EXPECT_EQ(all[k1].max_mem_used_mib, 500);
  EXPECT_EQ(s.Recent(GpuKey{"n", 9}, kMinute).samples, 0);
}

}  // namespace
}  // namespace berth::gpu
