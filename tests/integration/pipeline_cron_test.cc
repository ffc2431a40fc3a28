// CronPipeline schedules through the CLI and REST API of a real berthd:
// create, list, backfill a range (runs on real processes), suspend, delete.
#include <gtest/gtest.h>

#include "pipeline_util.h"

namespace berth::testing {
namespace {

TEST(PipelineCron, CreateListBackfillSuspendDelete) {
  TempDir work;
  Daemon d;
  ASSERT_TRUE(d.Start()) << ReadFile(d.data_dir() + "/berthd.log");
  std::string file = work / "cron.yaml";
  WriteFile(file, R"(
apiVersion: berth/v1
kind: CronPipeline
metadata: {name: hourly}
spec:
  schedule: "@hourly"
  timezone: Europe/Berlin
  concurrencyPolicy: Forbid
  parameters: {msg: from-cron}
  pipeline:
    kind: Pipeline
    metadata: {name: hourly}
    spec:
      parameters: [{name: msg, value: default}]
      steps: [{name: say, command: [echo, "{{inputs.parameters.msg}}"]}]
)");
  CommandResult c = d.Cli({"pipeline", "cron", "create", "-f", file});
  ASSERT_EQ(c.exit_code, 0) << c.err;
  CommandResult list = d.Cli({"pipeline", "cron", "list"});
  EXPECT_NE(list.out.find("hourly"), std::string::npos);
  EXPECT_NE(list.out.find("Forbid"), std::string::npos) << list.out;
  auto got = d.Get("/api/v1/cronpipelines/hourly");
  EXPECT_EQ(got["timezone"], "Europe/Berlin");
  EXPECT_FALSE(got["nextScheduleTime"].get<std::string>().empty());

  // Three fire times in the range: three runs, each with the schedule's parameters.
  CommandResult b = d.Cli({"pipeline", "cron", "backfill", "hourly", "--from",
                           "2026-11-01T00:00:00Z", "--to", "2026-11-01T02:00:00Z"});
  ASSERT_EQ(b.exit_code, 0) << b.err;
  std::stringstream ids(b.out);
  std::vector<std::string> runs;
  for (std::string id; std::getline(ids, id);) runs.push_back(Trim(id));
  ASSERT_EQ(runs.size(), 3u) << b.out;
  for (const auto& id : runs) {
    auto run = WaitRunEnd(d, id);
    EXPECT_EQ(run["state"], "Succeeded");
    EXPECT_EQ(run["cron"], "hourly");
    EXPECT_EQ(Trim(d.GetText("/api/v1/pipelines/runs/" + id + "/logs?step=say")), "from-cron");
  }
  EXPECT_EQ(GetRun(d, runs[0])["scheduledTime"], "2026-11-01T00:00:00.000Z");

  ASSERT_EQ(d.Cli({"pipeline", "cron", "suspend", "hourly"}).exit_code, 0);
  EXPECT_TRUE(d.Get("/api/v1/cronpipelines/hourly")["suspended"].get<bool>());
  ASSERT_EQ(d.Cli({"pipeline", "cron", "delete", "hourly"}).exit_code, 0);
  CommandResult gone = d.Cli({"pipeline", "cron", "get", "hourly"});
  EXPECT_NE(gone.exit_code, 0);
  EXPECT_NE(gone.err.find("not found"), std::string::npos) << gone.err;
}

}  // namespace
}  // namespace berth::testing
