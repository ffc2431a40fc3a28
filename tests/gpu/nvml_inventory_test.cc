// NvmlInventory against the fake driver, loaded through the real dlopen path.
#include <gtest/gtest.h>

#include "gpu/gpu_test_util.h"
#include "gpu/inventory.h"

namespace berth::gpu {
namespace {

using nlohmann::json;
using testing::FakeDevice;
using testing::FakeNvmlConfig;
using testing::FakeNvmlPath;
using testing::TempDir;

class NvmlInventoryTest : public ::testing::Test {
 protected:
  NvmlInventoryTest() : config_(dir_.path()) {}

  std::unique_ptr<Inventory> Make(const std::string& lib = FakeNvmlPath()) {
    NvmlOptions o;
    o.library_path = lib;
    o.node_name = "node-a";
    auto inv = MakeNvmlInventory(o);
    EXPECT_TRUE(inv.ok()) << inv.status().ToString();
    return inv.ok() ? std::move(inv).value() : nullptr;
  }

  TempDir dir_;
  FakeNvmlConfig config_;
};

TEST_F(NvmlInventoryTest, DiscoversDevicesThroughDlopen) {
  json d0 = FakeDevice(0), d1 = FakeDevice(1), d2 = FakeDevice(2);
  d0["nvlink_peers"] = {1};
  d1["nvlink_peers"] = {0};
  config_.Write({{"devices", {d0, d1, d2}}});
  auto inv = Make();
  ASSERT_NE(inv, nullptr);
  auto nodes = inv->Nodes();
  ASSERT_EQ(nodes.size(), 1u);
  EXPECT_EQ(nodes[0].name, "node-a");
  ASSERT_EQ(nodes[0].gpus.size(), 3u);
  EXPECT_EQ(nodes[0].gpus[1].index, 1);
  EXPECT_EQ(nodes[0].gpus[1].uuid, "GPU-00000000-1111-2222-3333-000000000001");
  EXPECT_EQ(nodes[0].gpus[1].model, "NVIDIA H100 80GB HBM3");
  EXPECT_EQ(nodes[0].gpus[1].memory, 81559);
  EXPECT_EQ(nodes[0].gpus[0].nvlink_peers, std::vector<int>{1});
  EXPECT_EQ(nodes[0].gpus[1].nvlink_peers, std::vector<int>{0});
  EXPECT_TRUE(nodes[0].gpus[2].nvlink_peers.empty());
  EXPECT_NE(inv->Describe().find("nvml: 3 GPU(s)"), std::string::npos) << inv->Describe();
}

TEST_F(NvmlInventoryTest, NvSwitchJoinsAllSwitchedGpus) {
  json ds = json::array();
  for (int i = 0; i < 4; ++i) {
    ds.push_back(FakeDevice(i));
    ds.back()["nvswitch"] = i < 3;
  }
  config_.Write({{"devices", ds}});
  auto inv = Make();
  ASSERT_NE(inv, nullptr);
  auto gpus = inv->Nodes()[0].gpus;
  EXPECT_EQ(gpus[0].nvlink_peers, (std::vector<int>{1, 2}));
  EXPECT_EQ(gpus[2].nvlink_peers, (std::vector<int>{0, 1}));
  EXPECT_TRUE(gpus[3].nvlink_peers.empty());
}

TEST_F(NvmlInventoryTest, SamplesEveryReading) {
  json d = FakeDevice(0, 42);
  d["memory_utilization"] = 7;
  d["processes"] = {{{"pid", 1234}, {"used_memory_mib", 2048}},
                    {{"pid", 1235}, {"used_memory_mib", nullptr}}};
  config_.Write({{"devices", {d}}});
  auto inv = Make();
  ASSERT_NE(inv, nullptr);
  auto samples = inv->Sample();
  ASSERT_TRUE(samples.ok()) << samples.status().ToString();
  ASSERT_EQ(samples->size(), 1u);
  const GpuSample& s = (*samples)[0];
  EXPECT_EQ(s.node, "node-a");
  EXPECT_EQ(s.pci_bus_id, "00000000:10:00.0");
  EXPECT_FALSE(s.lost);
  EXPECT_EQ(s.util_percent, 42);
  EXPECT_EQ(s.mem_util_percent, 7);
  EXPECT_EQ(s.memory_total, 81559);
  EXPECT_EQ(s.memory_used, 2048);  // the fake sums its processes
  EXPECT_EQ(s.memory_free, 81559 - 2048);
  EXPECT_EQ(s.temperature_c, 40);
  EXPECT_EQ(s.power_mw, 70000);
  EXPECT_EQ(s.sm_clock_mhz, 1980);
  EXPECT_EQ(s.mig_enabled, false);
  ASSERT_TRUE(s.processes.has_value());
  ASSERT_EQ(s.processes->size(), 2u);
  EXPECT_EQ((*s.processes)[0].pid, 1234);
  EXPECT_EQ((*s.processes)[0].used_memory, 2048);
  EXPECT_FALSE((*s.processes)[1].used_memory.has_value());  // NVML_VALUE_NOT_AVAILABLE
  EXPECT_TRUE(s.errors.empty());
}

TEST_F(NvmlInventoryTest, ManyProcessesGrowTheBuffer) {
  json d = FakeDevice(0);
  for (int i = 0; i < 50; ++i)
    d["processes"].push_back({{"pid", 5000 + i}, {"used_memory_mib", 10}});
  config_.Write({{"devices", {d}}});
  auto inv = Make();
  ASSERT_NE(inv, nullptr);
  auto samples = inv->Sample();
  ASSERT_TRUE(samples.ok());
  ASSERT_TRUE((*samples)[0].processes.has_value());
  EXPECT_EQ((*samples)[0].processes->size(), 50u);
  EXPECT_EQ((*samples)[0].processes->back().pid, 5049);
}

TEST_F(NvmlInventoryTest, FallsBackToV1ProcessQuery) {
  json d = FakeDevice(0);
  d["processes"] = {{{"pid", 77}, {"used_memory_mib", 300}}};
  config_.Write({{"devices", {d}}});
  auto inv = Make(testing::FakeNvmlV1Path());
  ASSERT_NE(inv, nullptr);
  auto samples = inv->Sample();
  ASSERT_TRUE(samples.ok());
  ASSERT_TRUE((*samples)[0].processes.has_value());
  ASSERT_EQ((*samples)[0].processes->size(), 1u);
  EXPECT_EQ((*samples)[0].processes->at(0).pid, 77);
  EXPECT_EQ((*samples)[0].processes->at(0).used_memory, 300);
}

TEST_F(NvmlInventoryTest, NotSupportedFieldsAreAbsentNotZero) {
  json d = FakeDevice(0, 30);
  d["not_supported"] = {"power", "temperature", "processes"};
  config_.Write({{"devices", {d}}});
  auto inv = Make();
  ASSERT_NE(inv, nullptr);
  for (int round = 0; round < 2; ++round) {  // the second round uses the remembered answer
    auto samples = inv->Sample();
    ASSERT_TRUE(samples.ok());
    const GpuSample& s = (*samples)[0];
    EXPECT_FALSE(s.power_mw.has_value());
    EXPECT_FALSE(s.temperature_c.has_value());
    EXPECT_FALSE(s.processes.has_value());
    EXPECT_EQ(s.util_percent, 30);
    EXPECT_TRUE(s.errors.empty()) << s.errors[0];
    EXPECT_FALSE(s.lost);
  }
}

TEST_F(NvmlInventoryTest, OtherErrorsAreReported) {
  json d = FakeDevice(0, 30);
  d["errors"] = {{"power", 4}};  // NVML_ERROR_NO_PERMISSION
  config_.Write({{"devices", {d}}});
  auto inv = Make();
  ASSERT_NE(inv, nullptr);
  auto samples = inv->Sample();
  ASSERT_TRUE(samples.ok());
  const GpuSample& s = (*samples)[0];
  EXPECT_FALSE(s.power_mw.has_value());
  ASSERT_EQ(s.errors.size(), 1u);
  EXPECT_EQ(s.errors[0], "power: Insufficient Permissions (4)");
  EXPECT_EQ(s.temperature_c, 40);
}

TEST_F(NvmlInventoryTest, DeviceLostMidRunAndBack) {
  config_.Write({{"devices", {FakeDevice(0, 10), FakeDevice(1, 20)}}});
  auto inv = Make();
  ASSERT_NE(inv, nullptr);
  ASSERT_EQ(inv->Nodes()[0].gpus.size(), 2u);

  json lost = FakeDevice(1, 20);
  lost["lost"] = true;
  config_.Write({{"devices", {FakeDevice(0, 10), lost}}});
  auto samples = inv->Sample();
  ASSERT_TRUE(samples.ok());
  EXPECT_FALSE((*samples)[0].lost);
  EXPECT_EQ((*samples)[0].util_percent, 10);
  EXPECT_TRUE((*samples)[1].lost);
  EXPECT_EQ((*samples)[1].uuid, "GPU-00000000-1111-2222-3333-000000000001");
  EXPECT_FALSE((*samples)[1].util_percent.has_value());
  EXPECT_FALSE((*samples)[1].memory_used.has_value());
  // A lost GPU gets no new work.
  auto gpus = inv->Nodes()[0].gpus;
  ASSERT_EQ(gpus.size(), 1u);
  EXPECT_EQ(gpus[0].index, 0);

  config_.Write({{"devices", {FakeDevice(0, 10), FakeDevice(1, 20)}}});
  samples = inv->Sample();
  ASSERT_TRUE(samples.ok());
  EXPECT_FALSE((*samples)[1].lost);
  EXPECT_EQ((*samples)[1].util_percent, 20);
  EXPECT_EQ(inv->Nodes()[0].gpus.size(), 2u);
}

TEST_F(NvmlInventoryTest, LostAtStartIsListedButNotOffered) {
  json lost = FakeDevice(1);
  lost["lost"] = true;
  config_.Write({{"devices", {FakeDevice(0), lost}}});
  auto inv = Make();
  ASSERT_NE(inv, nullptr);
  EXPECT_EQ(inv->Nodes()[0].gpus.size(), 1u);
  auto samples = inv->Sample();
  ASSERT_TRUE(samples.ok());
  ASSERT_EQ(samples->size(), 2u);
  EXPECT_TRUE((*samples)[1].lost);
  EXPECT_NE(inv->Describe().find("1 lost"), std::string::npos);
}

TEST_F(NvmlInventoryTest, UtilizationStepsFollowTimeSinceInit) {
  json d = FakeDevice(0);
  d["utilization"] = {{0, 15}, {3600, 95}};  // 95 only after an hour
  config_.Write({{"devices", {d}}});
  auto inv = Make();
  ASSERT_NE(inv, nullptr);
  auto samples = inv->Sample();
  ASSERT_TRUE(samples.ok());
  EXPECT_EQ((*samples)[0].util_percent, 15);
}

TEST_F(NvmlInventoryTest, MissingLibraryIsUnavailable) {
  NvmlOptions o;
  o.library_path = dir_.path() + "/no-such-libnvidia-ml.so.1";
  auto inv = MakeNvmlInventory(o);
  ASSERT_FALSE(inv.ok());
  EXPECT_EQ(inv.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(inv.status().message().find("no-such-libnvidia-ml.so.1"), std::string::npos);
}

TEST_F(NvmlInventoryTest, LibraryWithoutNvmlIsUnavailable) {
  NvmlOptions o;
  o.library_path = "libm.so.6";
  auto inv = MakeNvmlInventory(o);
  ASSERT_FALSE(inv.ok());
  EXPECT_NE(inv.status().message().find("lacks the function nvmlInit_v2"), std::string::npos)
      << inv.status().message();
}

TEST_F(NvmlInventoryTest, InitErrorIsReported) {
  config_.Write({{"init_error", 9}, {"devices", {FakeDevice(0)}}});  // NVML_ERROR_DRIVER_NOT_LOADED
  NvmlOptions o;
  o.library_path = FakeNvmlPath();
  auto inv = MakeNvmlInventory(o);
  ASSERT_FALSE(inv.ok());
  EXPECT_NE(inv.status().message().find("Driver Not Loaded (9)"), std::string::npos)
      << inv.status().message();
}

TEST_F(NvmlInventoryTest, NoDevicesIsUnavailable) {
  config_.Write({{"devices", json::array()}});
  NvmlOptions o;
  o.library_path = FakeNvmlPath();
  auto inv = MakeNvmlInventory(o);
  ASSERT_FALSE(inv.ok());
  EXPECT_NE(inv.status().message().find("no GPUs"), std::string::npos);
}

TEST_F(NvmlInventoryTest, LibraryPathFromEnvironment) {
  config_.Write({{"devices", {FakeDevice(0)}}});
  setenv("BERTH_NVML_LIBRARY", FakeNvmlPath().c_str(), 1);
  EXPECT_EQ(ResolveNvmlLibraryPath(""), FakeNvmlPath());
  EXPECT_EQ(ResolveNvmlLibraryPath("/x/libnvidia-ml.so.1"), "/x/libnvidia-ml.so.1");
  LocalInventoryOptions o;
  o.declared.gpus = 2;
  auto inv = MakeLocalInventory(o);
  unsetenv("BERTH_NVML_LIBRARY");
  EXPECT_EQ(ResolveNvmlLibraryPath(""), "libnvidia-ml.so.1");
  EXPECT_EQ(inv->Nodes()[0].gpus.size(), 1u);
  EXPECT_EQ(inv->Describe().rfind("nvml:", 0), 0u) << inv->Describe();
}

TEST_F(NvmlInventoryTest, LocalInventoryFallsBackToDeclared) {
  LocalInventoryOptions o;
  o.nvml.library_path = dir_.path() + "/missing.so";
  o.declared.gpus = 3;
  o.declared.node_name = "node-b";
  auto inv = MakeLocalInventory(o);
  ASSERT_NE(inv, nullptr);
  EXPECT_EQ(inv->Describe().rfind("declared:", 0), 0u) << inv->Describe();
  ASSERT_EQ(inv->Nodes()[0].gpus.size(), 3u);
  // Declared GPUs report identity only: no made-up readings.
  auto samples = inv->Sample();
  ASSERT_TRUE(samples.ok());
  ASSERT_EQ(samples->size(), 3u);
  EXPECT_EQ((*samples)[2].node, "node-b");
  EXPECT_EQ((*samples)[2].index, 2);
  EXPECT_EQ((*samples)[2].memory_total, 81920);
  EXPECT_FALSE((*samples)[2].util_percent.has_value());
}

}  // namespace
}  // namespace berth::gpu
