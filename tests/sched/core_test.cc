// The scheduler core through the fifo policy: registry, placement of whole
// GPUs and fractions, consolidation, gang all-or-nothing, feasibility.
#include <gtest/gtest.h>

#include <set>

#include "sched/cluster_state.h"
#include "sched/policy.h"
#include "sched/scheduler.h"
#include "sched_test_util.h"

namespace berth::sched {
namespace {

using namespace testing;  // NOLINT

std::unique_ptr<Scheduler> Fifo() {
  auto s = Scheduler::Create({"fifo", {}, 1});
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  return std::move(s).value();
}

TEST(RegistryTest, CreatesKnownPoliciesAndRejectsUnknownOnes) {
  auto names = Scheduler::Policies();
  for (const char* want :
       {"fifo", "backfill", "tiresias", "static", "fairshare", "srtf-oracle", "dynamic"}) {
    EXPECT_NE(std::find(names.begin(), names.end(), want), names.end()) << want;
    auto s = Scheduler::Create({want, {}, 1});
    ASSERT_TRUE(s.ok()) << want << ": " << s.status().ToString();
    EXPECT_EQ((*s)->PolicyName(), want);
  }
  auto bad = Scheduler::Create({"lottery", {}, 1});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("lottery"), std::string::npos);
  EXPECT_NE(bad.status().message().find("fifo"), std::string::npos);
  auto bad_option = Scheduler::Create({"fifo", {{"colour", "blue"}}, 1});
  ASSERT_FALSE(bad_option.ok());
  EXPECT_NE(bad_option.status().message().find("colour"), std::string::npos);
}

TEST(FifoTest, BindsInArrivalOrderAndBlocksBehindTheHead) {
  auto cluster = MakeCluster(1, 4);
  SchedulerInput in;
  in.cluster = &cluster;
  in.pending = {MakeJob(1, 2000), MakeJob(2, 4000), MakeJob(3, 1000)};
  Decisions d = Fifo()->Schedule(in);
  ASSERT_NE(FindBind(d, 1), nullptr);
  EXPECT_EQ(FindBind(d, 2), nullptr);
  EXPECT_EQ(FindBind(d, 3), nullptr) << "fifo must not let job 3 pass job 2";
  const Wait* w2 = FindWait(d, 2);
  ASSERT_NE(w2, nullptr);
  EXPECT_FALSE(w2->never);
  EXPECT_EQ(w2->plugin, "gang");
  const Wait* w3 = FindWait(d, 3);
  ASSERT_NE(w3, nullptr);
  EXPECT_EQ(w3->plugin, "fifo");
  EXPECT_NE(w3->reason.find("job 2"), std::string::npos);
}

TEST(FifoTest, RunningJobsHoldTheirGpus) {
  auto cluster = MakeCluster(1, 4);
  SchedulerInput in;
  in.cluster = &cluster;
  in.running = {MakeRunning(MakeJob(1, 3000), {{"n0", {0, 1, 2}, 1000}})};
  in.pending = {MakeJob(2, 1000), MakeJob(3, 1000)};
  Decisions d = Fifo()->Schedule(in);
  const Bind* b = FindBind(d, 2);
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->placements[0].gpus, std::vector<int>{3});
  EXPECT_EQ(FindBind(d, 3), nullptr);
}

TEST(PlacementTest, BestFitKeepsWholeNodesFree) {
  auto cluster = MakeCluster(3, 8);
  SchedulerInput in;
  in.cluster = &cluster;
  // n1 has 4 GPUs taken, n2 has 6 taken: a 2-GPU job fits n2 exactly.
  in.running = {MakeRunning(MakeJob(1, 4000), {{"n1", {0, 1, 2, 3}, 1000}}),
                MakeRunning(MakeJob(2, 6000), {{"n2", {0, 1, 2, 3, 4, 5}, 1000}})};
  in.pending = {MakeJob(3, 2000), MakeJob(4, 4000)};
  Decisions d = Fifo()->Schedule(in);
  ASSERT_NE(FindBind(d, 3), nullptr);
  EXPECT_EQ(FindBind(d, 3)->placements[0].node, "n2");
  ASSERT_NE(FindBind(d, 4), nullptr);
  EXPECT_EQ(FindBind(d, 4)->placements[0].node, "n1");
}

TEST(PlacementTest, GangIsConsolidatedOnTheFewestNodes) {
  auto cluster = MakeCluster(4, 8);
  SchedulerInput in;
  in.cluster = &cluster;
  in.running = {MakeRunning(MakeJob(1, 3000), {{"n0", {0, 1, 2}, 1000}})};
  // 16 GPUs as 16 one-GPU tasks: two whole free nodes, not n0's leftovers.
  in.pending = {MakeJob(2, 1000, 16), MakeJob(3, 4000, 1)};
  Decisions d = Fifo()->Schedule(in);
  const Bind* b = FindBind(d, 2);
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->placements.size(), 16u);
  EXPECT_EQ(NodesUsed(b->placements), 2);
  for (const auto& p : b->placements) EXPECT_NE(p.node, "n0");
  // The 4-GPU job goes to n0 (5 free, best fit), leaving n3 whole.
  ASSERT_NE(FindBind(d, 3), nullptr);
  EXPECT_EQ(FindBind(d, 3)->placements[0].node, "n0");
}

TEST(PlacementTest, GangSpreadsOnlyWhenItMust) {
  auto cluster = MakeCluster(3, 8);
  SchedulerInput in;
  in.cluster = &cluster;
  in.running = {MakeRunning(MakeJob(1, 2000), {{"n0", {0, 1}, 1000}}),
                MakeRunning(MakeJob(2, 2000), {{"n1", {0, 1}, 1000}}),
                MakeRunning(MakeJob(3, 2000), {{"n2", {0, 1}, 1000}})};
  in.pending = {MakeJob(4, 2000, 6)};  // 12 GPUs as 6x2: 6 free per node, needs 2 nodes
  Decisions d = Fifo()->Schedule(in);
  const Bind* b = FindBind(d, 4);
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(NodesUsed(b->placements), 2);
  std::set<std::pair<std::string, int>> used;
  for (const auto& p : b->placements) {
    EXPECT_EQ(p.gpus.size(), 2u);
    for (int g : p.gpus) {
      EXPECT_TRUE(used.insert({p.node, g}).second) << "GPU given twice";
      EXPECT_GE(g, 2);
    }
  }
}

TEST(PlacementTest, GangIsAllOrNothing) {
  auto cluster = MakeCluster(2, 4);
  SchedulerInput in;
  in.cluster = &cluster;
  in.running = {MakeRunning(MakeJob(1, 1000), {{"n0", {0}, 1000}})};
  in.pending = {MakeJob(2, 1000, 8)};  // 8 tasks, 7 GPUs free
  Decisions d = Fifo()->Schedule(in);
  EXPECT_TRUE(d.binds.empty());
  const Wait* w = FindWait(d, 2);
  ASSERT_NE(w, nullptr);
  EXPECT_FALSE(w->never);
  // Nothing was kept back by the failed attempt: the state is untouched.
  ClusterState state(cluster);
  state.Take(in.running[0].placements, in.running[0].request.task);
  EXPECT_FALSE(state.Place(MakeJob(2, 1000, 8).task, 8).has_value());
  EXPECT_EQ(state.free_whole_gpus(), 7);
  EXPECT_TRUE(state.Place(MakeJob(3, 1000).task, 7).has_value());
  EXPECT_EQ(state.free_whole_gpus(), 0);
}

TEST(PlacementTest, FractionsPackBestFitWithMemoryFloor) {
  auto cluster = MakeCluster(1, 2, 16000);
  SchedulerInput in;
  in.cluster = &cluster;
  JobRequest a = MakeJob(1, 500);
  a.task.gpu_memory = 8000;
  JobRequest b = MakeJob(2, 300);
  b.task.gpu_memory = 4000;
  JobRequest c = MakeJob(3, 200);
  c.task.gpu_memory = 4000;
  JobRequest big = MakeJob(4, 1000);
  in.pending = {a, b, c, big};
  Decisions d = Fifo()->Schedule(in);
  ASSERT_EQ(d.binds.size(), 4u) << "three fractions fill one GPU, the other stays whole";
  int gpu_a = FindBind(d, 1)->placements[0].gpus[0];
  EXPECT_EQ(FindBind(d, 1)->placements[0].gpu_share, 500);
  EXPECT_EQ(FindBind(d, 2)->placements[0].gpus[0], gpu_a);
  EXPECT_EQ(FindBind(d, 3)->placements[0].gpus[0], gpu_a);
  EXPECT_NE(FindBind(d, 4)->placements[0].gpus[0], gpu_a);

  // The memory floor: 0.2 GPU fits by compute but not by memory.
  in.pending.clear();
  in.running = {MakeRunning(a, {{"n0", {0}, 500}}), MakeRunning(big, {{"n0", {1}, 1000}})};
  JobRequest hungry = MakeJob(5, 200);
  hungry.task.gpu_memory = 9000;
  in.pending = {hungry};
  d = Fifo()->Schedule(in);
  EXPECT_TRUE(d.binds.empty());
}

TEST(PlacementTest, NvlinkNeighboursAreChosenTogether) {
  ClusterSnapshot cluster;
  NodeState n{"n0", {}, 0, 0};
  // GPUs 0-3 in a ring 0-2, 2-3, 3-1? use pairs: {0,2} and {1,3} are linked.
  n.gpus = {{0, "a", 16000, {2}}, {1, "b", 16000, {3}}, {2, "c", 16000, {0}}, {3, "d", 16000, {1}}};
  cluster.nodes.push_back(n);
  SchedulerInput in;
  in.cluster = &cluster;
  in.pending = {MakeJob(1, 2000)};
  Decisions d = Fifo()->Schedule(in);
  ASSERT_NE(FindBind(d, 1), nullptr);
  auto gpus = FindBind(d, 1)->placements[0].gpus;
  EXPECT_TRUE((gpus == std::vector<int>{0, 2}) || (gpus == std::vector<int>{1, 3}))
      << gpus[0] << "," << gpus[1];
}

TEST(PlacementTest, UnhealthyGpusAreNeverOffered) {
  auto cluster = MakeCluster(1, 2);
  cluster.nodes[0].gpus[0].healthy = false;
  SchedulerInput in;
  in.cluster = &cluster;
  in.pending = {MakeJob(1, 1000), MakeJob(2, 1000)};
  Decisions d = Fifo()->Schedule(in);
  ASSERT_EQ(d.binds.size(), 1u);
  EXPECT_EQ(d.binds[0].placements[0].gpus, std::vector<int>{1});
}

TEST(FeasibilityTest, NeverIsToldApartFromNotNow) {
  auto cluster = MakeCluster(2, 8);
  auto s = Fifo();
  EXPECT_TRUE(s->CheckFeasible(MakeJob(1, 8000, 2), cluster).ok());
  EXPECT_TRUE(s->CheckFeasible(MakeJob(1, 500), cluster).ok());
  Status too_wide = s->CheckFeasible(MakeJob(1, 16000), cluster);
  EXPECT_EQ(too_wide.code(), StatusCode::kUnschedulable);
  EXPECT_NE(too_wide.message().find("largest node has 8"), std::string::npos) << too_wide.message();
  EXPECT_EQ(s->CheckFeasible(MakeJob(1, 1000, 17), cluster).code(), StatusCode::kUnschedulable);
  EXPECT_EQ(s->CheckFeasible(MakeJob(1, 1500), cluster).code(), StatusCode::kUnschedulable);
  JobRequest mem = MakeJob(1, 500);
  mem.task.gpu_memory = 20000;
  EXPECT_EQ(s->CheckFeasible(mem, cluster).code(), StatusCode::kUnschedulable);

  // In a cycle, an impossible job is "never" and does not block fifo.
  SchedulerInput in;
  in.cluster = &cluster;
  in.pending = {MakeJob(1, 16000), MakeJob(2, 1000)};
  Decisions d = s->Schedule(in);
  const Wait* w = FindWait(d, 1);
  ASSERT_NE(w, nullptr);
  EXPECT_TRUE(w->never);
  EXPECT_EQ(w->plugin, "feasibility");
  EXPECT_NE(FindBind(d, 2), nullptr);
}

TEST(FeasibilityTest, CpuAndMemoryAreCheckedWhereScheduled) {
  auto cluster = MakeCluster(1, 2);
  cluster.nodes[0].cpu = 4000;
  cluster.nodes[0].memory = 8192;
  auto s = Fifo();
  JobRequest j = MakeJob(1, 1000);
  j.task.cpu = 3000;
  EXPECT_TRUE(s->CheckFeasible(j, cluster).ok());
  j.task.cpu = 5000;
  EXPECT_EQ(s->CheckFeasible(j, cluster).code(), StatusCode::kUnschedulable);
  // Two tasks of 3 CPUs do not fit a 4-CPU node together.
  j.task.cpu = 3000;
  j.tasks = 2;
  EXPECT_EQ(s->CheckFeasible(j, cluster).code(), StatusCode::kUnschedulable);
}

TEST(ClusterStateTest, TakeAndGiveAreInverses) {
  auto cluster = MakeCluster(2, 4);
  ClusterState s(cluster);
  TaskRequest frac{250, 1000, 0, 0};
  auto p1 = s.Place(frac, 3);
  ASSERT_TRUE(p1);
  EXPECT_EQ(s.free_gpu(), 8000 - 750);
  EXPECT_EQ(s.free_whole_gpus(), 7);
  TaskRequest whole{2000, 0, 0, 0};
  auto p2 = s.Place(whole, 3);
  ASSERT_TRUE(p2);
  EXPECT_EQ(s.free_whole_gpus(), 1);
  EXPECT_FALSE(s.IsFree(*p2, whole));
  s.Give(*p2, whole);
  s.Give(*p1, frac);
  EXPECT_EQ(s.free_gpu(), 8000);
  EXPECT_EQ(s.free_whole_gpus(), 8);
  EXPECT_TRUE(s.IsFree(*p2, whole));
}

TEST(ClusterStateTest, ResetIsAFreshState) {
  auto cluster = MakeCluster(3, 8);
  ClusterState used(cluster);
  ASSERT_TRUE(used.Place({2000, 0, 0, 0}, 3));
  ASSERT_TRUE(used.Place({250, 1000, 0, 0}, 5));
  cluster.nodes[1].gpus[3].healthy = false;  // same nodes, other health: still a reset
  ASSERT_TRUE(used.Reset(cluster));
  ClusterState fresh(cluster);
  EXPECT_EQ(used.free_gpu(), fresh.free_gpu());
  EXPECT_EQ(used.free_whole_gpus(), fresh.free_whole_gpus());
  EXPECT_EQ(used.capacity(), fresh.capacity());
  for (TaskRequest t :
       {TaskRequest{8000, 0, 0, 0}, TaskRequest{1000, 0, 0, 0}, TaskRequest{500, 1000, 0, 0}}) {
    auto a = used.Place(t, 2);
    auto b = fresh.Place(t, 2);
    ASSERT_EQ(a.has_value(), b.has_value());
    if (!a) continue;
    for (size_t k = 0; k < a->size(); ++k) {
      EXPECT_EQ((*a)[k].node, (*b)[k].node);
      EXPECT_EQ((*a)[k].gpus, (*b)[k].gpus);
    }
  }
  EXPECT_FALSE(used.Reset(MakeCluster(4, 8))) << "other nodes need a new state";
}

TEST(QueueIndexTest, FindsEveryNameWhateverItsLengthOrCount) {
  QueueIndex q;
  // Names that share their first 8 bytes, short ones, an empty one, and
  // enough of them to outgrow the small table.
  std::vector<std::string> names = {"",      "a", "research", "research-vision", "research-speech",
                                    "7f04ca"};
  for (int i = 0; i < 150; ++i) names.push_back("team-" + std::to_string(i));
  for (size_t i = 0; i < names.size(); ++i) {
    EXPECT_EQ(q.Find(names[i]), static_cast<int>(i)) << names[i];
    if (i == 20) EXPECT_EQ(q.Lookup("nobody-here"), -1);
  }
  EXPECT_EQ(q.size(), static_cast<int>(names.size()));
  for (size_t i = names.size(); i-- > 0;) {
    EXPECT_EQ(q.Find(names[i]), static_cast<int>(i)) << names[i];
    EXPECT_EQ(q.Lookup(names[i]), static_cast<int>(i)) << names[i];
    EXPECT_EQ(q.name(static_cast<int>(i)), names[i]);
  }
  EXPECT_EQ(q.Lookup("research-visio"), -1);
  EXPECT_EQ(q.Lookup("team-150"), -1);
  q.Clear();
  EXPECT_EQ(q.size(), 0);
  EXPECT_EQ(q.Lookup("a"), -1);
  EXPECT_EQ(q.Find("research-speech"), 0);
}

TEST(SharedTextTest, ReadsAndConcatenatesLikeAString) {
  SharedText none;
  EXPECT_TRUE(none.empty());
  EXPECT_EQ(none.str(), "");
  SharedText why =
      std::string("needs 2 task(s) x 8 GPU; 3 whole GPU(s) free, at most 2 on one node");
  SharedText copy = why;  // shares the text
  EXPECT_EQ(&copy.str(), &why.str());
  EXPECT_EQ(copy, why);
  // The daemon's job controller builds its message this way.
  bool never = true;
  std::string plugin = "gang";
  std::string msg = (never ? "cannot run on this cluster: " : "") + why +
                    (plugin.empty() ? "" : " [" + plugin + "]");
  EXPECT_EQ(msg,
            "cannot run on this cluster: needs 2 task(s) x 8 GPU; 3 whole GPU(s) free, at most 2 "
            "on one node [gang]");
  const std::string& as_string = why;
  EXPECT_NE(as_string.find("at most 2"), std::string::npos);
}

TEST(WaitTest, WaitsShareTheirTextsWhichLiveWithTheDecisionsAndItsCopies) {
  auto cluster = MakeCluster(1, 4);
  SchedulerInput in;
  in.cluster = &cluster;
  in.pending = {MakeJob(1, 2000), MakeJob(2, 4000), MakeJob(3, 1000), MakeJob(4, 1000),
                MakeJob(5, 64000)};
  Decisions copy;
  {
    Decisions d = Fifo()->Schedule(in);
    ASSERT_EQ(d.waiting.size(), 4u);
    const Wait* w3 = FindWait(d, 3);
    const Wait* w4 = FindWait(d, 4);
    ASSERT_NE(w3, nullptr);
    ASSERT_NE(w4, nullptr);
    // Jobs behind one head wait for one reason: the same text, held once.
    EXPECT_EQ(&w3->reason.str(), &w4->reason.str());
    EXPECT_EQ(&w3->plugin.str(), &w4->plugin.str());
    EXPECT_EQ(d.texts.size(), 6u) << "three plugins (gang, fifo, feasibility), one reason each";
    copy = d;
  }  // the original is gone; the copy holds the texts
  const Wait* w2 = FindWait(copy, 2);
  const Wait* w5 = FindWait(copy, 5);
  ASSERT_NE(w2, nullptr);
  ASSERT_NE(w5, nullptr);
  EXPECT_EQ(w2->plugin, "gang");
  EXPECT_FALSE(w2->reason.empty());
  EXPECT_TRUE(w5->never);
  EXPECT_EQ(w5->plugin, "feasibility");
  // The daemon's job controller builds its message this way.
  std::string msg = (w5->never ? "cannot run on this cluster: " : "") + w5->reason +
                    (w5->plugin.empty() ? "" : " [" + w5->plugin + "]");
  EXPECT_EQ(msg, "cannot run on this cluster: " + w5->reason.str() + " [feasibility]");
  EXPECT_NE(msg.find("GPU"), std::string::npos);
  TextRef none;
  EXPECT_TRUE(none.empty());
  EXPECT_EQ(none, "");
}

}  // namespace
}  // namespace berth::sched
