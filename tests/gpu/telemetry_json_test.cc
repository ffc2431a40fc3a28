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

}  // namespace
}  // namespace berth::gpu
