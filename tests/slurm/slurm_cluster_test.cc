// The test cluster itself: two nodes with four GPUs each, jobs bound to the
// node asked for, disjoint GPU sets.
#include "slurm/slurm_cluster.h"

#include <gtest/gtest.h>

#include "require_tools.h"

namespace berth::testing {
namespace {

TEST(SlurmCluster, TwoNodesWithFourGpusEachBindDisjointGpus) {
  BERTH_SKIP_WITHOUT_SLURM();
  SlurmCluster c;
  std::string err = c.Start();
  ASSERT_EQ(err, "");
  auto nodes = c.Tool("sinfo", {"-h", "-N", "-o", "%N %G %c"});
  EXPECT_NE(nodes.out.find("n1 gpu:4 8"), std::string::npos) << nodes.out;
  EXPECT_NE(nodes.out.find("n2 gpu:4 8"), std::string::npos) << nodes.out;

  // A job holding two GPUs of n2; a second 2-GPU job there gets the other two.
  auto hold = c.Tool("sbatch", {"--parsable", "--nodelist=n2", "--gres=gpu:2", "--output=/dev/null",
                                "--wrap", "sleep 60"});
  ASSERT_EQ(hold.exit_code, 0) << hold.err;
  ASSERT_TRUE(WaitFor([&] { return c.Tool("squeue", {"-h", "-o", "%T"}).out == "RUNNING\n"; }));
  auto b = c.Tool("srun", {"--nodelist=n2", "--gres=gpu:2", "printenv", "CUDA_VISIBLE_DEVICES"});
  ASSERT_EQ(b.exit_code, 0) << b.err;
  EXPECT_EQ(Trim(b.out), "2,3");
  auto a = c.Tool("srun", {"--nodelist=n1", "--gres=gpu:4", "printenv", "SLURMD_NODENAME"});
  ASSERT_EQ(a.exit_code, 0) << a.err;
  EXPECT_EQ(Trim(a.out), "n1");
}

}  // namespace
}  // namespace berth::testing
