// A job's stop intent across a daemon crash, and berthd upgrading a data
// directory written by the release of schema v3 (tests/store/data/
// schema-v3.db, see the README there): the state that release kept in meta
// reaches the new columns and tables and is acted on.
#include <gtest/gtest.h>

#include "harness.h"

namespace berth::testing {
namespace {

// A cancel is recorded on the job (reason and SIGKILL deadline) with its
// JobCancelRequested event; a berthd killed during the grace period comes
// back, still knows, and ends the job Cancelled (not Failed) when the task
// dies at the deadline.
TEST(RestartStop, ACancelInItsGracePeriodSurvivesADaemonCrash) {
  TempDir work;
  Daemon d({"--gpus", "1"});
  ASSERT_TRUE(d.Start()) << ReadFile(d.data_dir() + "/berthd.log");
  std::string id = SubmitDoc(d, work, R"({"apiVersion": "berth/v1", "kind": "Job",
      "metadata": {"name": "stubborn"},
      "spec": {"command": ["/bin/sh", "-c", "trap '' TERM; while :; do sleep 0.1; done"],
               "terminationGracePeriodSeconds": 3, "resources": {"gpus": 1}}})");
  ASSERT_TRUE(WaitFor([&] { return d.State(id) == "Running"; })) << d.Job(id).dump();
  CommandResult c = d.Cli({"cancel", id});
  ASSERT_EQ(c.exit_code, 0) << c.err;
  nlohmann::json job = d.Job(id);
  EXPECT_EQ(job["state"], "Running");
  EXPECT_EQ(job["stopReason"], "cancel") << job.dump();
  EXPECT_FALSE(job["stopDeadline"].get<std::string>().empty()) << job.dump();
  d.Kill();
  ASSERT_TRUE(d.Start()) << ReadFile(d.data_dir() + "/berthd.log");
  EXPECT_EQ(d.Job(id)["stopReason"], "cancel");
  ASSERT_TRUE(WaitFor([&] { return d.State(id) == "Cancelled"; }, std::chrono::seconds(15)))
      << d.Job(id).dump();
  job = d.Job(id);
  EXPECT_EQ(job["message"], "cancelled") << job.dump();
  EXPECT_FALSE(job.contains("stopReason")) << job.dump();
}

TEST(RestartUpgrade, BerthdUpgradesASchemaV3DataDirectoryAndFinishesWhatItWasDoing) {
  Daemon d({"--gpus", "2"});
  std::filesystem::copy_file(std::string(BERTH_SOURCE_DIR) + "/tests/store/data/schema-v3.db",
                             d.data_dir() + "/berth.db");
  ASSERT_TRUE(d.Start()) << ReadFile(d.data_dir() + "/berthd.log");
  // Job 3 was being cancelled when the old berthd was killed; its task is
  // gone now (lost). The cancel survived the upgrade, so it ends Cancelled,
  // not Failed.
  ASSERT_TRUE(WaitFor([&] { return d.State("3") == "Cancelled"; })) << d.Job("3").dump();
  EXPECT_FALSE(d.Job("3").contains("stopReason"));
  // Job 2's training status and job 1's GPU usage are shown as before.
  nlohmann::json trained = d.Job("2");
  EXPECT_EQ(trained["training"]["worldSize"], 2) << trained.dump();
  EXPECT_EQ(trained["training"]["workers"].size(), 2u) << trained.dump();
  nlohmann::json used = d.Job("1");
  ASSERT_TRUE(used["gpuUsage"].is_object()) << used.dump();
  EXPECT_EQ(used["gpuUsage"]["avgUtilization"], 60) << used.dump();
  EXPECT_EQ(used["gpuUsage"]["peakUtilization"], 60) << used.dump();
}

}  // namespace
}  // namespace berth::testing
