// The live fields of the snapshot (issue 12): unhealthy GPUs are never
// offered, and fractions are placed by measured free memory as well as by
// the declared floors.
#include <gtest/gtest.h>

#include "sched/scheduler.h"
#include "sched_test_util.h"

namespace berth::sched::testing {
namespace {

std::unique_ptr<Scheduler> Fifo() {
  SchedulerConfig c;
  c.policy = "fifo";
  return std::move(Scheduler::Create(c)).value();
}

JobRequest Fraction(JobId id, MilliGpu share, MiB floor) {
  JobRequest j = MakeJob(id, share);
  j.task.gpu_memory = floor;
  return j;
}

TEST(LiveState, AFractionSkipsAGpuWhoseMeasuredFreeMemoryIsBelowItsFloor) {
  ClusterSnapshot c = MakeCluster(1, 2, 80000);
  auto s = Fifo();
  // Job 1 holds half of GPU 0 with a 10000 MiB floor but uses 75000 MiB.
  RunningJob r = MakeRunning(Fraction(1, 500, 10000), {{"n0", {0}, 500}});
  SchedulerInput in;
  in.cluster = &c;
  in.running = {r};
  in.pending = {Fraction(2, 250, 8000)};
  // Without measurements best fit packs it next to job 1 on GPU 0.
  Decisions d = s->Schedule(in);
  ASSERT_NE(FindBind(d, 2), nullptr);
  EXPECT_EQ(FindBind(d, 2)->placements[0].gpus, std::vector<int>{0});
  // Measured: 5000 MiB free on GPU 0, below the 8000 floor: GPU 1.
  c.nodes[0].gpus[0].memory_used = 75000;
  c.nodes[0].gpus[1].memory_used = 0;
  d = s->Schedule(in);
  ASSERT_NE(FindBind(d, 2), nullptr);
  EXPECT_EQ(FindBind(d, 2)->placements[0].gpus, std::vector<int>{1});
  // Two fractions in one cycle do not both count the same measured memory.
  c.nodes[0].gpus[1].memory_used = 70000;  // 10000 free
  in.pending = {Fraction(2, 250, 6000), Fraction(3, 250, 6000)};
  d = s->Schedule(in);
  ASSERT_NE(FindBind(d, 2), nullptr);
  EXPECT_EQ(FindBind(d, 3), nullptr);
}

TEST(LiveState, AnUnhealthyGpuIsNeverOffered) {
  ClusterSnapshot c = MakeCluster(1, 2);
  c.nodes[0].gpus[0].healthy = false;
  auto s = Fifo();
  SchedulerInput in;
  in.cluster = &c;
  in.pending = {MakeJob(1, 1000), MakeJob(2, 1000)};
  Decisions d = s->Schedule(in);
  ASSERT_NE(FindBind(d, 1), nullptr);
  EXPECT_EQ(FindBind(d, 1)->placements[0].gpus, std::vector<int>{1});
  EXPECT_EQ(FindBind(d, 2), nullptr);
}

}  // namespace
}  // namespace berth::sched::testing
