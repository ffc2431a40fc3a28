#include "daemon/reloadable_config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>

namespace berth::daemon {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

class ReloadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (std::filesystem::temp_directory_path() / "berth_reload_XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/berthd.yaml";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  void Write(const std::string& text) { std::ofstream(path_) << text; }
  std::string dir_, path_;
};

TEST_F(ReloadTest, AReloadAppliesLogLevelAndAuthAndNamesWhatNeedsARestart) {
  Write("listen: 127.0.0.1:7420\nlogLevel: info\n");
  auto start = LoadReloadableConfig(path_);
  ASSERT_TRUE(start.ok()) << start.status().ToString();
  EXPECT_EQ(start->log_level, "info");
  EXPECT_FALSE(start->auth.public_metrics);

  Write(
      "listen: 0.0.0.0:7420\nlogLevel: debug\n"
      "auth: {publicMetrics: true, limits: {users: {alice: {gpus: 2}}}}\n");
  auto plan = PlanReload(path_, *start);
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  EXPECT_EQ(plan->next.log_level, "debug");
  EXPECT_TRUE(plan->next.auth.public_metrics);
  EXPECT_EQ(plan->next.auth.limits.ForUser("alice").gpus, std::optional<MilliGpu>(2000));
  EXPECT_THAT(plan->changes,
              ElementsAre("logLevel: info -> debug", "auth.publicMetrics: false -> true",
                          "auth.limits: default {}, user alice {gpus: 2}"));
  EXPECT_THAT(plan->need_restart, ElementsAre("listen: changed (takes effect at the next start)"));

  ReloadableConfigHolder holder(*start);
  holder.Set(plan->next);
  EXPECT_EQ(holder.Get()->log_level, "debug");
}

TEST_F(ReloadTest, ABadFileIsRefusedWithTheField) {
  Write("logLevel: loud\n");
  auto r = LoadReloadableConfig(path_);
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(), HasSubstr("logLevel"));
  Write("auth: {limits: {queues: {q: {pendingJobs: -3}}}}\n");
  r = LoadReloadableConfig(path_);
  EXPECT_THAT(r.status().message(), HasSubstr("auth.limits.queues.q.pendingJobs"));
  Write("auth: [1, 2\n");
  EXPECT_FALSE(LoadReloadableConfig(path_).ok());
  EXPECT_FALSE(LoadReloadableConfig(dir_ + "/absent.yaml").ok());
}

}  // namespace
}  // namespace berth::daemon
