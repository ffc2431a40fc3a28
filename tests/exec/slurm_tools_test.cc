// The Slurm tools' parsers (sinfo, squeue, gres, node states) and the batch
// script, without a cluster.
#include "exec/slurm_tools.h"

#include <gtest/gtest.h>

#include "exec/slurm_executor.h"

namespace berth::exec {
namespace {

TEST(SlurmTools, SinfoLinesBecomeNodesWithGpusCpusMemoryAndState) {
  auto nodes = ParseSinfo(
      "n1|10.0.0.1|8|64000|gpu:4|idle\n"
      "n2|10.0.0.2|16|128000|gpu:a100:2(S:0-1),gpu:v100:2(S:1)|mixed\n"
      "n3|n3|8|1|(null)|down*\n"
      "n1|10.0.0.1|8|64000|gpu:4|idle\n");  // n1 again, from a second partition
  ASSERT_TRUE(nodes.ok()) << nodes.status().message();
  ASSERT_EQ(nodes->size(), 3u);
  EXPECT_EQ((*nodes)[0].name, "n1");
  EXPECT_EQ((*nodes)[0].address, "10.0.0.1");
  EXPECT_EQ((*nodes)[0].cpu, 8000);
  EXPECT_EQ((*nodes)[0].memory, 64000);
  EXPECT_EQ((*nodes)[0].gpus, 4);
  EXPECT_TRUE((*nodes)[0].usable);
  EXPECT_EQ((*nodes)[1].gpus, 4);
  EXPECT_EQ((*nodes)[1].gpu_type, "a100");
  EXPECT_TRUE((*nodes)[1].usable);
  EXPECT_EQ((*nodes)[2].gpus, 0);
  EXPECT_FALSE((*nodes)[2].usable);
}

TEST(SlurmTools, BadSinfoLinesAreErrorsNamingTheLine) {
  auto r = ParseSinfo("n1|a|8|64000|gpu:4|idle\nn2|a|eight|64000|gpu:4|idle\n");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("sinfo line 2"), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("CPUs"), std::string::npos);
  EXPECT_FALSE(ParseSinfo("n1|a|8\n").ok());
}

TEST(SlurmTools, OnlyNodesThatTakeWorkAreUsable) {
  for (const char* s : {"idle", "mixed", "allocated", "completing", "planned"})
    EXPECT_TRUE(UsableNodeState(s)) << s;
  for (const char* s : {"down", "down*", "drained", "draining", "drained*", "idle*", "idle~",
                        "idle#", "fail", "failing", "maint", "reboot^", "unknown", "inval",
                        "mixed+drain", "", "allocated@", "future"})
    EXPECT_FALSE(UsableNodeState(s)) << s;
}

TEST(SlurmTools, GresStringsGiveTheGpuCount) {
  int n = 0;
  std::string type;
  ParseGpuGres("gpu:8", &n, &type);
  EXPECT_EQ(n, 8);
  EXPECT_EQ(type, "");
  ParseGpuGres("gpu:h100:4(S:0-1),shard:16,gpu:a10:1", &n, &type);
  EXPECT_EQ(n, 5);
  EXPECT_EQ(type, "h100");
  ParseGpuGres("(null)", &n, &type);
  EXPECT_EQ(n, 0);
  ParseGpuGres("gpu:99999999999999999999", &n, &type);
  EXPECT_EQ(n, 0);
}

TEST(SlurmTools, SqueueLinesAndEndedStates) {
  auto jobs = ParseSqueue("12|berth.job-1.t0.a1|RUNNING|n1|None\n13|x|PENDING||Resources\n");
  ASSERT_TRUE(jobs.ok());
  ASSERT_EQ(jobs->size(), 2u);
  EXPECT_EQ((*jobs)[0].id, "12");
  EXPECT_EQ((*jobs)[0].name, "berth.job-1.t0.a1");
  EXPECT_EQ((*jobs)[0].nodes, "n1");
  EXPECT_EQ((*jobs)[1].reason, "Resources");
  EXPECT_FALSE(ParseSqueue("12|only\n").ok());
  EXPECT_TRUE(SlurmJobEnded("NODE_FAIL"));
  EXPECT_TRUE(SlurmJobEnded("COMPLETED"));
  EXPECT_FALSE(SlurmJobEnded("RUNNING"));
  EXPECT_FALSE(SlurmJobEnded("COMPLETING"));
}

TEST(SlurmTools, TheBatchScriptQuotesPathsAndExecsTheShim) {
  std::string s = SlurmExecutor::BatchScript("/runs/it's here", "/opt/berth-shim");
  EXPECT_NE(s.find("d='/runs/it'\\''s here'"), std::string::npos) << s;
  EXPECT_NE(s.find("exec '/opt/berth-shim' --run-dir \"$d\""), std::string::npos) << s;
  EXPECT_NE(s.find("SLURM_JOB_GPUS"), std::string::npos);
}

TEST(SlurmTools, AToolThatIsMissingIsAnError) {
  SlurmToolsOptions o;
  o.bin_dir = "/nonexistent";
  SlurmTools t(o);
  auto r = t.Run("sinfo", {});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("/nonexistent/sinfo"), std::string::npos);
}

}  // namespace
}  // namespace berth::exec
