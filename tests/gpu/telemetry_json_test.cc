#include "gpu/telemetry_json.h"

#include <gtest/gtest.h>

#include "gpu/gpu_test_util.h"

namespace berth::gpu {
namespace {

TEST(TelemetryJsonTest, UnknownReadingsAreNull) {
  GpuStatus g;
  g.time = 1'700'000'000'000;
  g.sample = testing::MakeSample("n", 1, 40, 2048);
  g.sample.power_mw.reset();
  g.sample.processes = std::vector<GpuProcess>{{123, std::nullopt, 123, 7}};
  g.holders = {{"n", 1, 7, "alice", "q", 500}};
  auto j = ToJson(g);
  EXPECT_EQ(j["index"], 1);
  EXPECT_EQ(j["utilPercent"], 40);
  EXPECT_EQ(j["memoryUsedMiB"], 2048);
  EXPECT_TRUE(j["powerMilliwatts"].is_null());
  EXPECT_TRUE(j["memUtilPercent"].is_null());
  EXPECT_EQ(j["processes"][0]["job"], 7);
  EXPECT_TRUE(j["processes"][0]["usedMemoryMiB"].is_null());
  EXPECT_EQ(j["holders"][0]["share"], "0.5");
  EXPECT_EQ(j["time"], "2023-11-14T22:13:20.000Z");

  EXPECT_EQ(j["health"]["fatal"], false);
  EXPECT_TRUE(j["health"]["fatalSince"].is_null());
  EXPECT_TRUE(j["health"]["eccDbeVolatile"].is_null());

  GpuSample no_procs = testing::MakeSample("n", 0, 1);
  EXPECT_TRUE(ToJson(no_procs)["processes"].is_null());
}

TEST(TelemetryJsonTest, JobUsageAndHistory) {
  JobUsage u;
  u.job = 4;
  u.util_samples = 3;
  u.util_sum = 100;
  u.idle_milli_gpu_ms = 2'000'000;
  auto j = ToJson(u);
  EXPECT_EQ(j["avgUtilPercent"], 33);
  EXPECT_DOUBLE_EQ(j["idleGpuSeconds"].get<double>(), 2.0);

  HistoryPoint p;
  p.time = 60'000;
  p.util = 10;
  auto h = ToJson(std::vector<HistoryPoint>{p});
  ASSERT_EQ(h.size(), 1u);
  EXPECT_EQ(h[0]["util"], 10);
  EXPECT_TRUE(h[0]["temperatureC"].is_null());
}

TEST(TelemetryJsonTest, HealthAndRecentUsage) {
  GpuHealth h;
  h.fatal = true;
  h.reason = "XID 79 (GPU has fallen off the bus)";
  h.fatal_since = 1'700'000'000'000;
  h.last_xid = 79;
  h.fatal_xid = 79;
  h.xid_count = 1;
  h.ecc_dbe_volatile = 0;
  h.throttle_reasons = 0x44;
  h.unavailable = {{kCheckRetiredPages, UnavailableReason::kNotSupported}};
  auto j = ToJson(h);
  EXPECT_EQ(j["fatal"], true);
  EXPECT_EQ(j["reason"], "XID 79 (GPU has fallen off the bus)");
  EXPECT_EQ(j["fatalSince"], "2023-11-14T22:13:20.000Z");
  EXPECT_EQ(j["lastXid"], 79);
  EXPECT_EQ(j["eccDbeVolatile"], 0);
  EXPECT_TRUE(j["rowRemapPending"].is_null());
  EXPECT_EQ(j["throttle"], nlohmann::json({"sw_power_cap", "hw_thermal"}));
  EXPECT_EQ(j["thermalThrottled"], true);
  EXPECT_EQ(j["unavailable"][0]["check"], "retired_pages");
  EXPECT_EQ(j["unavailable"][0]["reason"], "not_supported");
  EXPECT_EQ(j["unavailable"][0]["message"], "retired_pages: not supported by this GPU");

  RecentUsage r;
  EXPECT_TRUE(ToJson(r)["avgUtilPercent"].is_null());
  r.avg_util = 42.5;
  r.max_mem_used_mib = 1000;
  r.samples = 60;
  EXPECT_EQ(ToJson(r)["avgUtilPercent"], 42.5);
  EXPECT_EQ(ToJson(r)["maxMemoryUsedMiB"], 1000);
  EXPECT_EQ(ToJson(r)["samples"], 60);
}

}  // namespace
}  // namespace berth::gpu
