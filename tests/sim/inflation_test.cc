// The inflation experiment (sim/inflation.h) on small synthetic traces in the
// Alibaba GPU-sharing format (tests/sim/data/pack_*.csv), the trace parser's
// errors, and the fragmentation arithmetic (sched/fragmentation.h).
#include <gtest/gtest.h>

#include "sched/fragmentation.h"
#include "sim/alibaba_trace.h"
#include "sim/inflation.h"

namespace berth::sim {
namespace {

std::string Data(const std::string& name) {
  return std::string(BERTH_SOURCE_DIR) + "/tests/sim/data/" + name;
}

TEST(SimInflation, FragmentationCountsWhatEachShapeCannotUse) {
  sched::FragNode node;
  node.free = {1000, 500, 0};
  node.cpu_free = 8000;
  node.mem_free = 1024;
  node.model = 0;
  std::vector<sched::WeightedTask> pop = {
      {{600, 1, 1000, 0, 0}, 1},    // a fraction: the 500 left on GPU 1 is no use to it
      {{1000, 1, 1000, 0, 0}, 2},   // a whole GPU: nor to it (twice as frequent)
      {{0, 0, 1000, 0, 0}, 1},      // CPU only: every free GPU share is a fragment to it
      {{1000, 2, 1000, 0, 0}, 1},   // two whole GPUs: does not fit, all of it
      {{250, 1, 1000, 0, 2}, 1},    // wants model 1: no access, all of it
      {{250, 1, 16000, 0, 0}, 1}};  // more CPU than is free: all of it
  EXPECT_EQ(sched::Fragmentation(node, pop), 500 + 2 * 500 + 1500 + 1500 + 1500 + 1500);
  node.free = {0, 0, 0};
  EXPECT_EQ(sched::Fragmentation(node, pop), 0);
}

TEST(SimInflation, LearnedPopulationKeepsTheLastRequests) {
  sched::TaskPopulation pop(3);
  sched::FragTask a{500, 1, 0, 0, 0}, b{1000, 2, 0, 0, 0};
  pop.Add(a);
  pop.Add(a);
  pop.Add(b);
  pop.Add(b);  // the first `a` leaves the window
  auto got = pop.Get();
  ASSERT_EQ(got.size(), 2u);
  int64_t total = 0;
  for (const auto& w : got) total += w.weight;
  EXPECT_EQ(total, 3);
}

TEST(SimInflation, ParsersNameTheLineAndColumn) {
  auto n = ParsePackNodesCsv("sn,cpu_milli,memory_mib,gpu,model\nn1,64000,1024,x,T4\n");
  ASSERT_FALSE(n.ok());
  EXPECT_NE(n.status().message().find("line 2: gpu"), std::string::npos) << n.status().message();
  auto m = ParsePackNodesCsv("sn,cpu_milli,gpu,model\n");
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("missing column memory_mib"), std::string::npos);
  auto p = ParsePackTasksCsv("name,cpu_milli,memory_mib,num_gpu,gpu_milli\np,1000,10,2,500\n");
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.status().message().find("line 2: gpu_milli: a fraction with num_gpu > 1"),
            std::string::npos)
      << p.status().message();
  auto q = ParsePackTasksCsv("name,cpu_milli,memory_mib,num_gpu,gpu_milli\np,1000,10,1,1001\n");
  EXPECT_FALSE(q.ok());
  auto s = ParsePackTasksCsv(
      "name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec\np,1000,10,1,500,T4||A10\n");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("gpu_spec"), std::string::npos);
  EXPECT_FALSE(LoadPackNodes(Data("no-such-file.csv")).ok());
}

TEST(SimInflation, EveryPackingAddsUpExactlyAndIsDeterministic) {
  auto nodes = LoadPackNodes(Data("pack_nodes.csv"));
  auto pods = LoadPackTasks(Data("pack_pods.csv"));
  ASSERT_TRUE(nodes.ok()) << nodes.status().message();
  ASSERT_TRUE(pods.ok()) << pods.status().message();
  for (Packing p : {Packing::kBestFit, Packing::kFgd, Packing::kBerth}) {
    for (uint64_t seed : {42, 43, 44}) {
      InflationOptions o;
      o.packing = p;
      o.seed = seed;
      auto r = RunInflation(*nodes, *pods, o);
      ASSERT_TRUE(r.ok()) << r.status().message();
      EXPECT_TRUE(r->exact) << PackingName(p);
      EXPECT_EQ(r->capacity, 48000);
      ASSERT_GE(r->curve.size(), 130u) << PackingName(p);
      double last = 0;
      for (const auto& pt : r->curve) {
        EXPECT_GE(pt.allocated_pct, last);
        EXPECT_LE(pt.allocated_pct, 100);  // (a point is taken after the task that crosses it)
        last = pt.allocated_pct;
      }
      EXPECT_GT(r->failed, 0);  // 130% arrived: some cannot fit
      auto again = RunInflation(*nodes, *pods, o);
      ASSERT_TRUE(again.ok());
      EXPECT_EQ(again->allocated, r->allocated);
      EXPECT_EQ(again->failed, r->failed);
    }
  }
}

TEST(SimInflation, GpuModelConstraintsAreHonoured) {
  auto nodes = LoadPackNodes(Data("pack_nodes.csv"));
  ASSERT_TRUE(nodes.ok());
  // Only T4 tasks (6 T4 GPUs of 48), and one of a model no node has.
  std::vector<PackTask> pods;
  for (int i = 0; i < 20; ++i) {
    PackTask t;
    t.name = "t" + std::to_string(i);
    t.cpu = 1000;
    t.memory = 1024;
    t.gpus = 1;
    t.milli = i % 2 ? 500 : 1000;
    t.models = {"T4"};
    pods.push_back(t);
  }
  PackTask nowhere = pods[0];
  nowhere.models = {"H100"};
  pods.push_back(nowhere);
  for (Packing p : {Packing::kBestFit, Packing::kFgd, Packing::kBerth}) {
    InflationOptions o;
    o.packing = p;
    auto r = RunInflation(*nodes, pods, o);
    ASSERT_TRUE(r.ok());
    EXPECT_TRUE(r->exact);
    EXPECT_LE(r->allocated, 6000) << PackingName(p);
    EXPECT_EQ(r->allocated, 6000) << PackingName(p);  // the T4s fill up
  }
}

TEST(SimInflation, RejectsBadOptions) {
  auto nodes = LoadPackNodes(Data("pack_nodes.csv"));
  auto pods = LoadPackTasks(Data("pack_pods.csv"));
  ASSERT_TRUE(nodes.ok() && pods.ok());
  InflationOptions o;
  o.until = 0;
  EXPECT_FALSE(RunInflation(*nodes, *pods, o).ok());
  EXPECT_FALSE(ParsePacking("worstfit").ok());
}

}  // namespace
}  // namespace berth::sim
