// executor.kind and executor.slurm in berthd's configuration.
#include <gtest/gtest.h>

#include "daemon/config.h"

namespace berth::daemon {
namespace {

TEST(SlurmConfig, TheSlurmExecutorIsReadWithItsOptions) {
  DaemonConfig c;
  Status st = ParseConfig(
      "executor:\n  kind: slurm\n  slurm:\n    conf: /etc/slurm/slurm.conf\n    partition: gpu\n"
      "    runRoot: /shared/runs\n    gpuMemory: 40Gi\n    pollInterval: 500ms\n",
      "b.yaml", &c);
  ASSERT_TRUE(st.ok()) << st.message();
  EXPECT_EQ(c.executor_kind, "slurm");
  EXPECT_EQ(c.slurm.conf, "/etc/slurm/slurm.conf");
  EXPECT_EQ(c.slurm.partition, "gpu");
  EXPECT_EQ(c.slurm.run_root, "/shared/runs");
  EXPECT_EQ(c.slurm.gpu_memory, 40 * 1024);
  EXPECT_EQ(c.slurm.poll_interval, 500);
  DaemonConfig d;
  ASSERT_TRUE(ParseConfig("logLevel: info\n", "b.yaml", &d).ok());
  EXPECT_EQ(d.executor_kind, "local");
}

TEST(SlurmConfig, BadValuesNameTheirField) {
  struct Case {
    const char* yaml;
    const char* field;
  };
  for (const Case& k : {
           Case{"executor: {kind: kubernetes}\n", "executor.kind"},
           Case{"executor: {kind: slurm, slurm: {runRoot: relative/runs}}\n",
                "executor.slurm.runRoot"},
           Case{"executor: {kind: slurm, slurm: {pollInterval: 1ms}}\n",
                "executor.slurm.pollInterval"},
           Case{"executor: {kind: slurm, slurm: {partition: 'a,b'}}\n", "executor.slurm.partition"},
           Case{"executor: {kind: slurm, slurm: {jobNamePrefix: 'a b'}}\n",
                "executor.slurm.jobNamePrefix"},
           Case{"executor: {kind: slurm, slurm: {nodes: 3}}\n", "nodes"},
           Case{"executor: {kind: slurm, slurm: 3}\n", "executor.slurm"},
       }) {
    DaemonConfig c;
    Status st = ParseConfig(k.yaml, "b.yaml", &c);
    ASSERT_FALSE(st.ok()) << k.yaml;
    EXPECT_NE(st.message().find(k.field), std::string::npos) << k.yaml << " -> " << st.message();
  }
}

}  // namespace
}  // namespace berth::daemon
