// One suite that every policy must pass: gang all-or-nothing, no deadlock
// between gangs, consolidation, fractional packing, reclaim/preemption with
// requeue (or, for non-preemptive policies, no preemption at all), elastic
// grow and shrink, and "never" told apart from "not now".
#include <gtest/gtest.h>

#include <set>

#include "sched/scheduler.h"
#include "sched_test_util.h"

namespace berth::sched {
namespace {

using namespace testing;  // NOLINT

struct Fifo {
  static constexpr const char* kName = "fifo";
  static constexpr bool kPreempts = false;
};
struct Backfill {
  static constexpr const char* kName = "backfill";
  static constexpr bool kPreempts = false;
};
struct Tiresias {
  static constexpr const char* kName = "tiresias";
  static constexpr bool kPreempts = true;
};
struct Static {
  static constexpr const char* kName = "static";
  static constexpr bool kPreempts = false;
};
struct FairShare {
  static constexpr const char* kName = "fairshare";
  static constexpr bool kPreempts = true;
};
struct SrtfOracle {
  static constexpr const char* kName = "srtf-oracle";
  static constexpr bool kPreempts = true;
};
struct Dynamic {
  static constexpr const char* kName = "dynamic";
  static constexpr bool kPreempts = true;
};

template <typename P>
class PolicyTest : public ::testing::Test {
 protected:
  std::unique_ptr<Scheduler> Make() {
    auto s = Scheduler::Create({P::kName, {}, 7});
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return std::move(s).value();
  }
  // Every bind is whole: as many placements as tasks (elastic: within
  // min..max), each task's GPUs distinct and nobody's GPU given twice.
  static void ExpectSound(const Decisions& d, const SchedulerInput& in) {
    std::set<std::tuple<std::string, int>> whole;
    for (const Bind& b : d.binds) {
      const JobRequest* req = nullptr;
      for (const auto& p : in.pending) {
        if (p.id == b.job) req = &p;
      }
      ASSERT_NE(req, nullptr) << "bound job " << b.job << " was not pending";
      int lo = req->min_tasks > 0 ? req->min_tasks : req->tasks;
      int hi = req->max_tasks > 0 ? req->max_tasks : req->tasks;
      EXPECT_GE(static_cast<int>(b.placements.size()), lo);
      EXPECT_LE(static_cast<int>(b.placements.size()), hi);
      for (const auto& p : b.placements) {
        if (p.gpu_share < 1000) continue;
        for (int g : p.gpus)
          EXPECT_TRUE(whole.insert({p.node, g}).second) << p.node << ":" << g << " twice";
      }
    }
  }
};

using AllPolicies =
    ::testing::Types<Fifo, Backfill, Tiresias, Static, FairShare, SrtfOracle, Dynamic>;
class PolicyNames {
 public:
  template <typename T>
  static std::string GetName(int) {
    std::string n = T::kName;
    for (char& c : n) c = c == '-' ? '_' : c;
    return n;
  }
};
TYPED_TEST_SUITE(PolicyTest, AllPolicies, PolicyNames);

TYPED_TEST(PolicyTest, GangIsAllOrNothing) {
  auto cluster = MakeCluster(2, 4);
  SchedulerInput in;
  in.cluster = &cluster;
  in.running = {MakeRunning(MakeJob(1, 1000), {{"n0", {0}, 1000}})};
  JobRequest gang = MakeJob(2, 1000, 8);
  gang.preemptible = false;
  in.running[0].request.preemptible = false;
  in.pending = {gang, MakeJob(3, 1000, 2)};
  Decisions d = this->Make()->Schedule(in);
  EXPECT_EQ(FindBind(d, 2), nullptr) << "8 tasks cannot start on 7 free GPUs";
  ASSERT_NE(FindWait(d, 2), nullptr);
  EXPECT_FALSE(FindWait(d, 2)->never);
  EXPECT_TRUE(d.preemptions.empty());
  this->ExpectSound(d, in);
}

TYPED_TEST(PolicyTest, GangsNeverDeadlock) {
  // Two 6-task gangs on 8 GPUs: exactly one starts whole, the other waits
  // holding nothing, and starts when the first ends.
  auto cluster = MakeCluster(2, 4);
  auto s = this->Make();
  SchedulerInput in;
  in.cluster = &cluster;
  in.pending = {MakeJob(1, 1000, 6), MakeJob(2, 1000, 6)};
  Decisions d = s->Schedule(in);
  ASSERT_EQ(d.binds.size(), 1u);
  EXPECT_EQ(d.binds[0].placements.size(), 6u);
  this->ExpectSound(d, in);
  JobId first = d.binds[0].job, second = first == 1 ? 2 : 1;
  // The first finishes: the second must start now.
  in.pending = {MakeJob(second, 1000, 6)};
  in.now = 10 * kMinute;
  d = s->Schedule(in);
  ASSERT_NE(FindBind(d, second), nullptr);
  EXPECT_EQ(FindBind(d, second)->placements.size(), 6u);
}

TYPED_TEST(PolicyTest, ConsolidatesAGangOnOneNode) {
  auto cluster = MakeCluster(4, 8);
  SchedulerInput in;
  in.cluster = &cluster;
  in.running = {MakeRunning(MakeJob(1, 1000), {{"n1", {0}, 1000}})};
  in.pending = {MakeJob(2, 1000, 8)};
  Decisions d = this->Make()->Schedule(in);
  const Bind* b = FindBind(d, 2);
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(NodesUsed(b->placements), 1);
  EXPECT_NE(b->placements[0].node, "n1");
}

TYPED_TEST(PolicyTest, PacksFractionsOntoOneGpu) {
  auto cluster = MakeCluster(2, 2);
  SchedulerInput in;
  in.cluster = &cluster;
  for (int i = 1; i <= 4; ++i) in.pending.push_back(MakeJob(i, 250));
  in.pending.push_back(MakeJob(5, 2000));
  Decisions d = this->Make()->Schedule(in);
  ASSERT_EQ(d.binds.size(), 5u);
  std::set<std::pair<std::string, int>> gpus;
  for (int i = 1; i <= 4; ++i) {
    const auto& p = FindBind(d, i)->placements[0];
    gpus.insert({p.node, p.gpus[0]});
    EXPECT_EQ(p.gpu_share, 250);
  }
  EXPECT_EQ(gpus.size(), 1u) << "four quarters share one GPU";
  EXPECT_EQ(NodesUsed(FindBind(d, 5)->placements), 1) << "the 2-GPU job still finds a whole node";
}

TYPED_TEST(PolicyTest, ReclaimsByPreemptionAndRequeues) {
  // A long-running 4-GPU job of queue a holds the whole node; a short 2-GPU
  // job of queue b arrives. Preemptive policies take the node back (LAS: a
  // lot of attained service; SRTF: far more left; fair share: queue a is
  // above its half, b below); the others let the new job wait.
  auto cluster = MakeCluster(1, 4);
  auto s = this->Make();
  JobRequest old_job = MakeJob(1, 1000, 4, 1, "a");
  old_job.attained_service = 100 * kHour * 4;
  old_job.expected_duration = 1000 * kHour;
  old_job.progress = 25 * kHour;
  JobRequest fresh = MakeJob(2, 1000, 2, 25 * kHour, "b");
  fresh.expected_duration = kHour;
  SchedulerInput in;
  in.cluster = &cluster;
  in.now = 25 * kHour;
  in.running = {MakeRunning(
      old_job, {{"n0", {0}, 1000}, {"n0", {1}, 1000}, {"n0", {2}, 1000}, {"n0", {3}, 1000}}, 0)};
  in.pending = {fresh};
  Decisions d = s->Schedule(in);
  this->ExpectSound(d, in);
  if (!TypeParam::kPreempts) {
    EXPECT_TRUE(d.preemptions.empty());
    EXPECT_EQ(FindBind(d, 2), nullptr);
    return;
  }
  ASSERT_TRUE(Preempted(d, 1)) << TypeParam::kName;
  ASSERT_NE(FindBind(d, 2), nullptr);
  EXPECT_EQ(FindBind(d, 2)->placements.size(), 2u);
  // Requeued: next cycle the preempted job is pending again; it needs 4 GPUs,
  // only 2 are free, and it must not preempt the job that took them.
  JobRequest requeued = old_job;
  requeued.queued_since = in.now;
  requeued.last_run_time = in.now;
  SchedulerInput next;
  next.cluster = &cluster;
  next.now = in.now + kSecond;
  next.running = {MakeRunning(fresh, FindBind(d, 2)->placements, in.now)};
  next.pending = {requeued};
  Decisions d2 = s->Schedule(next);
  EXPECT_TRUE(d2.preemptions.empty());
  EXPECT_EQ(FindBind(d2, 1), nullptr);
  ASSERT_NE(FindWait(d2, 1), nullptr);
  EXPECT_FALSE(FindWait(d2, 1)->never);
  // When the short job ends, the requeued one starts again.
  next.running.clear();
  next.now += kHour;
  Decisions d3 = s->Schedule(next);
  ASSERT_NE(FindBind(d3, 1), nullptr);
  EXPECT_EQ(FindBind(d3, 1)->placements.size(), 4u);
}

TYPED_TEST(PolicyTest, ElasticJobGrowsIntoIdleGpusAndShrinksForOthers) {
  auto cluster = MakeCluster(1, 8);
  auto s = this->Make();
  JobRequest e = MakeJob(1, 1000, 2, 1, "a");
  e.min_tasks = 1;
  e.max_tasks = 8;
  SchedulerInput in;
  in.cluster = &cluster;
  in.running = {MakeRunning(e, {{"n0", {0}, 1000}, {"n0", {1}, 1000}})};
  Decisions d = s->Schedule(in);
  const Resize* grow = FindResize(d, 1);
  ASSERT_NE(grow, nullptr) << "nobody waits: the elastic job grows";
  EXPECT_EQ(grow->placements.size(), 8u);
  EXPECT_EQ(grow->placements[0].gpus, std::vector<int>{0});  // its old tasks stay where they are

  // Grown to 8; a 4-GPU job of another queue arrives: the borrowed GPUs go
  // back (shrink to 4), nothing is preempted.
  SchedulerInput in2;
  in2.cluster = &cluster;
  in2.now = kMinute;
  in2.running = {MakeRunning(e, grow->placements)};
  in2.pending = {MakeJob(2, 1000, 4, kMinute, "b")};
  Decisions d2 = s->Schedule(in2);
  EXPECT_TRUE(d2.preemptions.empty());
  ASSERT_NE(FindBind(d2, 2), nullptr);
  const Resize* shrink = FindResize(d2, 1);
  ASSERT_NE(shrink, nullptr);
  EXPECT_EQ(shrink->placements.size(), 4u);
  EXPECT_GE(shrink->placements.size(), 2u) << "never below what it asked for without preemption";
}

// The daemon asks for an elastic job's maximum (tasks = max) so that it
// starts as large as the cluster allows; everything above its minimum is
// still borrowed and goes back to a waiting job under every policy, even one
// that never preempts or protects young jobs.
TYPED_TEST(PolicyTest, ElasticTasksAboveTheMinimumAreBorrowed) {
  auto cluster = MakeCluster(1, 3);
  auto s = this->Make();
  JobRequest e = MakeJob(1, 1000, 4, 0, "a");
  e.min_tasks = 1;
  e.max_tasks = 4;
  SchedulerInput in;
  in.cluster = &cluster;
  in.now = 10 * kSecond;
  in.running = {MakeRunning(e, {{"n0", {0}, 1000}, {"n0", {1}, 1000}, {"n0", {2}, 1000}})};
  in.pending = {MakeJob(2, 2000, 1, 5 * kSecond, "b")};
  Decisions d = s->Schedule(in);
  EXPECT_TRUE(d.preemptions.empty());
  ASSERT_NE(FindBind(d, 2), nullptr) << "the borrowed GPUs go back";
  const Resize* shrink = FindResize(d, 1);
  ASSERT_NE(shrink, nullptr);
  EXPECT_EQ(shrink->placements.size(), 1u);
}

TYPED_TEST(PolicyTest, ToldNeverApartFromNotNow) {
  auto cluster = MakeCluster(2, 8);
  auto s = this->Make();
  EXPECT_EQ(s->CheckFeasible(MakeJob(1, 16000), cluster).code(), StatusCode::kUnschedulable);
  EXPECT_TRUE(s->CheckFeasible(MakeJob(1, 8000, 2), cluster).ok());
  SchedulerInput in;
  in.cluster = &cluster;
  in.pending = {MakeJob(1, 16000), MakeJob(2, 1000, 20), MakeJob(3, 8000)};
  Decisions d = s->Schedule(in);
  ASSERT_NE(FindWait(d, 1), nullptr);
  EXPECT_TRUE(FindWait(d, 1)->never);
  ASSERT_NE(FindWait(d, 2), nullptr);
  EXPECT_TRUE(FindWait(d, 2)->never);
  EXPECT_NE(FindBind(d, 3), nullptr);
}

TYPED_TEST(PolicyTest, SameInputSameDecisions) {
  auto cluster = MakeCluster(4, 8);
  SchedulerInput in;
  in.cluster = &cluster;
  for (int i = 1; i <= 40; ++i)
    in.pending.push_back(MakeJob(i, (i % 3 == 0) ? 500 : 1000, 1 + i % 4, i));
  Decisions a = this->Make()->Schedule(in);
  Decisions b = this->Make()->Schedule(in);
  ASSERT_EQ(a.binds.size(), b.binds.size());
  for (size_t i = 0; i < a.binds.size(); ++i) {
    EXPECT_EQ(a.binds[i].job, b.binds[i].job);
    ASSERT_EQ(a.binds[i].placements.size(), b.binds[i].placements.size());
    for (size_t k = 0; k < a.binds[i].placements.size(); ++k) {
      EXPECT_EQ(a.binds[i].placements[k].node, b.binds[i].placements[k].node);
      EXPECT_EQ(a.binds[i].placements[k].gpus, b.binds[i].placements[k].gpus);
    }
  }
  this->ExpectSound(a, in);
}

TYPED_TEST(PolicyTest, StoppingEarlyWithoutExplanationsChangesNoDecision) {
  // explain_waiting = false lets a cycle stop once nothing else can start;
  // binds and preemptions must be exactly those of a full cycle.
  auto cluster = MakeCluster(6, 8);
  Rng rng(11);
  for (int round = 0; round < 28; ++round) {
    // Rounds 20 on mix priority classes and priorities (class preemption).
    const bool classes = round >= 20;
    auto pick_class = [&](JobRequest& j) {
      if (!classes) return;
      j.priority_class = static_cast<model::PriorityClass>(rng() % 3);
      j.priority = static_cast<int64_t>(rng() % 3);
    };
    SchedulerInput in;
    in.cluster = &cluster;
    in.now = 50 * kHour;
    auto full = this->Make();
    auto quiet = this->Make();
    // Fill some nodes with running jobs, then queue a mix.
    JobId id = 1;
    for (int n = 0; n < 6; ++n) {
      // The last rounds start on a full cluster (a quiet cycle may then stop at once).
      int used = (round >= 16 && round < 20) || round >= 24 ? 8 : static_cast<int>(rng() % 9);
      for (int g = 0; g < used; ++g) {
        JobRequest r = MakeJob(id++, 1000, 1, static_cast<TimeMs>(rng() % kHour),
                               "q" + std::to_string(rng() % 3));
        r.attained_service = static_cast<DurationMs>(rng() % (20 * kHour));
        r.expected_duration = r.attained_service + static_cast<DurationMs>(rng() % (10 * kHour));
        r.progress = r.attained_service;
        pick_class(r);
        in.running.push_back(MakeRunning(r, {{"n" + std::to_string(n), {g}, 1000}},
                                         static_cast<TimeMs>(rng() % (40 * kHour))));
      }
    }
    for (int i = 0; i < 60; ++i) {
      static const MilliGpu kSizes[] = {500, 1000, 2000, 4000, 8000};
      JobRequest p =
          MakeJob(id++, kSizes[rng() % 5], 1 + static_cast<int>(rng() % 2),
                  kHour + static_cast<TimeMs>(rng() % kHour), "q" + std::to_string(rng() % 3));
      p.expected_duration = static_cast<DurationMs>(rng() % (10 * kHour));
      pick_class(p);
      in.pending.push_back(p);
    }
    if (round % 2 == 0) {  // arrival order, as the daemon and the simulator pass it
      std::sort(in.pending.begin(), in.pending.end(), [](const JobRequest& x, const JobRequest& y) {
        return x.submit_time != y.submit_time ? x.submit_time < y.submit_time : x.id < y.id;
      });
    }
    Decisions a = full->Schedule(in);
    in.explain_waiting = false;
    Decisions b = quiet->Schedule(in);
    ASSERT_EQ(a.binds.size(), b.binds.size()) << "round " << round;
    for (size_t i = 0; i < a.binds.size(); ++i) {
      EXPECT_EQ(a.binds[i].job, b.binds[i].job);
      EXPECT_EQ(a.binds[i].placements.size(), b.binds[i].placements.size());
    }
    ASSERT_EQ(a.preemptions.size(), b.preemptions.size()) << "round " << round;
    for (size_t i = 0; i < a.preemptions.size(); ++i)
      EXPECT_EQ(a.preemptions[i].job, b.preemptions[i].job);
    this->ExpectSound(a, in);
  }
}

TYPED_TEST(PolicyTest, LongQueuesDecideAlikeWhetherHeapedOrSorted) {
  // A cycle that visits most of a long queue sorts it instead of popping a
  // heap, at once when the last cycle did so; the visiting order and so the
  // decisions must be the same as a fresh scheduler's.
  auto cluster = MakeCluster(4, 8);
  Rng rng(5);
  SchedulerInput in;
  in.cluster = &cluster;
  in.now = 10 * kHour;
  JobId id = 1;
  for (int g = 0; g < 6; ++g) {
    JobRequest r =
        MakeJob(id++, 1000, 1, static_cast<TimeMs>(rng() % kHour), "q" + std::to_string(g % 3));
    r.attained_service = static_cast<DurationMs>(rng() % (20 * kHour));
    in.running.push_back(
        MakeRunning(r, {{"n0", {g}, 1000}}, static_cast<TimeMs>(rng() % (9 * kHour))));
  }
  for (int i = 0; i < 3000; ++i) {
    static const MilliGpu kSizes[] = {250, 1000, 2000, 8000, 8000};
    JobRequest p =
        MakeJob(id++, kSizes[rng() % 5], 1 + static_cast<int>(rng() % 3),
                kHour + static_cast<TimeMs>(rng() % (5 * kHour)), "q" + std::to_string(rng() % 5));
    p.priority = static_cast<int64_t>(rng() % 2);
    p.attained_service = rng() % 3 == 0 ? static_cast<DurationMs>(rng() % (5 * kHour)) : 0;
    p.expected_duration = static_cast<DurationMs>(rng() % (10 * kHour));
    in.pending.push_back(p);
  }
  std::sort(in.pending.begin(), in.pending.end(), [](const JobRequest& x, const JobRequest& y) {
    return x.submit_time != y.submit_time ? x.submit_time < y.submit_time : x.id < y.id;
  });
  for (bool explain : {false, true}) {
    in.explain_waiting = explain;
    auto warm = this->Make();
    warm->Schedule(in);
    Decisions a = warm->Schedule(in);
    Decisions b = this->Make()->Schedule(in);
    ASSERT_EQ(a.binds.size(), b.binds.size()) << "explain " << explain;
    for (size_t i = 0; i < a.binds.size(); ++i) {
      EXPECT_EQ(a.binds[i].job, b.binds[i].job);
      ASSERT_EQ(a.binds[i].placements.size(), b.binds[i].placements.size());
      for (size_t k = 0; k < a.binds[i].placements.size(); ++k) {
        EXPECT_EQ(a.binds[i].placements[k].node, b.binds[i].placements[k].node);
        EXPECT_EQ(a.binds[i].placements[k].gpus, b.binds[i].placements[k].gpus);
      }
    }
    ASSERT_EQ(a.preemptions.size(), b.preemptions.size());
    for (size_t i = 0; i < a.preemptions.size(); ++i)
      EXPECT_EQ(a.preemptions[i].job, b.preemptions[i].job);
    ASSERT_EQ(a.waiting.size(), b.waiting.size());
    for (size_t i = 0; i < a.waiting.size(); ++i) {
      EXPECT_EQ(a.waiting[i].job, b.waiting[i].job);
      EXPECT_EQ(a.waiting[i].reason, b.waiting[i].reason);
    }
    if (explain) EXPECT_EQ(a.waiting.size() + a.binds.size(), in.pending.size());
    this->ExpectSound(a, in);
  }
}

// ---- priority classes and priorities (sched/priority.h) ----

JobRequest WithClass(JobRequest j, model::PriorityClass c, int64_t priority = 0) {
  j.priority_class = c;
  j.priority = priority;
  return j;
}

TYPED_TEST(PolicyTest, HigherPriorityGoesFirstInItsQueueAndClass) {
  // One free GPU, two jobs of one queue and class: the later one with the
  // higher priority starts, even where the policy's own order (arrival,
  // attained service, remaining time) prefers the earlier one.
  auto cluster = MakeCluster(1, 1);
  JobRequest early = MakeJob(1, 1000, 1, 1000);
  early.expected_duration = kMinute;
  JobRequest late = MakeJob(2, 1000, 1, 2000);
  late.priority = 100;
  late.expected_duration = kHour;
  late.attained_service = 10 * kSecond;
  for (bool explain : {true, false}) {
    SchedulerInput in;
    in.cluster = &cluster;
    in.now = 3000;
    in.explain_waiting = explain;
    in.pending = {early, late};
    Decisions d = this->Make()->Schedule(in);
    ASSERT_EQ(d.binds.size(), 1u) << "explain " << explain;
    EXPECT_EQ(d.binds[0].job, 2) << "priority 100 before priority 0";
    EXPECT_TRUE(d.preemptions.empty());
  }
  // The GPU was held by a running job; when it frees, the same holds.
  auto s = this->Make();
  SchedulerInput in;
  in.cluster = &cluster;
  in.now = 3000;
  in.running = {MakeRunning(MakeJob(9, 1000, 1, 1), {{"n0", {0}, 1000}}, 2500)};
  in.running[0].request.preemptible = false;
  in.pending = {early, late};
  Decisions d = s->Schedule(in);
  EXPECT_TRUE(d.binds.empty());
  in.running.clear();
  in.now = 4000;
  d = s->Schedule(in);
  ASSERT_EQ(d.binds.size(), 1u);
  EXPECT_EQ(d.binds[0].job, 2);
}

TYPED_TEST(PolicyTest, HigherClassGoesFirst) {
  // The class orders before the priority: interactive (priority 0) before
  // batch (priority 500) before scavenger (priority 1000).
  auto cluster = MakeCluster(1, 1);
  auto s = this->Make();
  SchedulerInput in;
  in.cluster = &cluster;
  in.now = kMinute;
  in.pending = {WithClass(MakeJob(1, 1000), model::PriorityClass::kScavenger, 1000),
                WithClass(MakeJob(2, 1000), model::PriorityClass::kBatch, 500),
                WithClass(MakeJob(3, 1000), model::PriorityClass::kInteractive, 0)};
  for (auto& j : in.pending) j.expected_duration = kHour * j.id;
  Decisions d = s->Schedule(in);
  ASSERT_EQ(d.binds.size(), 1u);
  EXPECT_EQ(d.binds[0].job, 3);
  in.pending.pop_back();
  d = s->Schedule(in);
  ASSERT_EQ(d.binds.size(), 1u);
  EXPECT_EQ(d.binds[0].job, 2);
}

TYPED_TEST(PolicyTest, InteractivePreemptsBatchButNotTheOtherWayRound) {
  // A batch job that just started (no policy of its own would preempt it:
  // young, little service, little left, same queue) holds both GPUs; an
  // interactive job needs one: the batch job is preempted under every policy.
  auto cluster = MakeCluster(1, 2);
  auto s = this->Make();
  JobRequest batch = MakeJob(1, 1000, 2, 1);
  batch.expected_duration = kMinute;
  batch.progress = 30 * kSecond;
  JobRequest notebook =
      WithClass(MakeJob(2, 1000, 1, 10 * kSecond), model::PriorityClass::kInteractive);
  notebook.expected_duration = 10 * kHour;
  notebook.attained_service = 50 * kHour;
  SchedulerInput in;
  in.cluster = &cluster;
  in.now = 40 * kSecond;
  in.running = {MakeRunning(batch, {{"n0", {0}, 1000}, {"n0", {1}, 1000}}, 10 * kSecond)};
  in.pending = {notebook};
  Decisions d = s->Schedule(in);
  ASSERT_TRUE(Preempted(d, 1)) << TypeParam::kName;
  ASSERT_NE(FindBind(d, 2), nullptr);
  ASSERT_EQ(d.preemptions.size(), 1u);
  EXPECT_NE(d.preemptions[0].reason.find("interactive"), std::string::npos)
      << d.preemptions[0].reason;
  this->ExpectSound(d, in);
  // Requeued, the batch job (high priority, no service, short) needs both
  // GPUs; one is the notebook's: it waits, whatever its own rule would say.
  JobRequest requeued = batch;
  requeued.priority = 1000;
  requeued.queued_since = in.now;
  requeued.last_run_time = 30 * kSecond;
  SchedulerInput next;
  next.cluster = &cluster;
  next.now = 10 * kHour;
  next.running = {MakeRunning(notebook, FindBind(d, 2)->placements, in.now)};
  next.pending = {requeued};
  for (bool explain : {true, false}) {
    next.explain_waiting = explain;
    Decisions d2 = s->Schedule(next);
    EXPECT_TRUE(d2.preemptions.empty()) << "batch never preempts interactive";
    EXPECT_EQ(FindBind(d2, 1), nullptr);
  }
}

TYPED_TEST(PolicyTest, ScavengerPreemptsNobodyAndBatchPreemptsScavenger) {
  // A scavenger trial with far more service and time left than a new one
  // holds the GPU: the new scavenger waits (no policy's rule applies to
  // scavengers), a new batch job preempts it.
  auto cluster = MakeCluster(1, 1);
  JobRequest old_trial = WithClass(MakeJob(1, 1000, 1, 1), model::PriorityClass::kScavenger);
  old_trial.attained_service = 100 * kHour;
  old_trial.expected_duration = 1000 * kHour;
  old_trial.progress = 100 * kHour;
  JobRequest new_trial =
      WithClass(MakeJob(2, 1000, 1, 200 * kHour), model::PriorityClass::kScavenger, 1000);
  new_trial.expected_duration = kMinute;
  JobRequest batch = MakeJob(3, 1000, 1, 200 * kHour);
  batch.expected_duration = 2000 * kHour;
  batch.attained_service = 500 * kHour;
  SchedulerInput in;
  in.cluster = &cluster;
  in.now = 201 * kHour;
  in.running = {MakeRunning(old_trial, {{"n0", {0}, 1000}}, 0)};
  in.pending = {new_trial};
  for (bool explain : {true, false}) {
    in.explain_waiting = explain;
    Decisions d = this->Make()->Schedule(in);
    EXPECT_TRUE(d.preemptions.empty()) << "scavenger preempts nobody";
    EXPECT_TRUE(d.binds.empty());
  }
  in.pending = {new_trial, batch};
  for (bool explain : {true, false}) {
    in.explain_waiting = explain;
    Decisions d = this->Make()->Schedule(in);
    EXPECT_TRUE(Preempted(d, 1)) << "batch preempts scavenger";
    ASSERT_EQ(d.binds.size(), 1u);
    EXPECT_EQ(d.binds[0].job, 3);
  }
}

// GPU models: n0 has A100s (and one T4), n1 and n2 T4s only.
inline ClusterSnapshot TwoModelCluster() {
  auto cluster = MakeCluster(3, 4);
  for (auto& n : cluster.nodes) {
    for (auto& g : n.gpus) g.model = n.name == "n0" && g.index < 3 ? "A100" : "T4";
  }
  return cluster;
}

inline std::string ModelOf(const ClusterSnapshot& c, const TaskPlacement& p, int gpu) {
  for (const auto& n : c.nodes) {
    if (n.name != p.node) continue;
    for (const auto& g : n.gpus) {
      if (g.index == gpu) return g.model;
    }
  }
  return "?";
}

TYPED_TEST(PolicyTest, GpuModelConstraintsAreHonouredByGangsAndFractions) {
  auto cluster = TwoModelCluster();
  SchedulerInput in;
  in.cluster = &cluster;
  JobRequest gang = MakeJob(1, 1000, 2);  // two A100 tasks: only n0 has them
  gang.gpu_models = {"A100"};
  JobRequest frac = MakeJob(2, 500);  // a half T4
  frac.gpu_models = {"T4"};
  JobRequest frac2 = MakeJob(3, 500);  // another half of an A100
  frac2.gpu_models = {"A100", "H100"};
  JobRequest big = MakeJob(4, 2000, 1);  // two A100s on one node: 3 - 2 = 1 left: waits
  big.gpu_models = {"A100"};
  in.pending = {gang, frac, frac2, big};
  Decisions d = this->Make()->Schedule(in);
  this->ExpectSound(d, in);
  for (JobId id : {1, 2, 3}) {
    const Bind* b = FindBind(d, id);
    ASSERT_NE(b, nullptr) << id;
    const auto& want = in.pending[id - 1].gpu_models;
    for (const auto& p : b->placements) {
      for (int g : p.gpus) {
        std::string m = ModelOf(cluster, p, g);
        EXPECT_NE(std::find(want.begin(), want.end(), m), want.end())
            << "job " << id << " on " << p.node << ":" << g << " (" << m << ")";
      }
    }
  }
  EXPECT_EQ(FindBind(d, 4), nullptr) << "no two A100s left on one node";
  const Wait* w = FindWait(d, 4);
  ASSERT_NE(w, nullptr);
  EXPECT_FALSE(w->never);
  EXPECT_NE(w->reason.find("A100"), std::string::npos) << w->reason;
}

TYPED_TEST(PolicyTest, AModelNoNodeHasIsNeverAndOthersStillRun) {
  auto cluster = TwoModelCluster();
  SchedulerInput in;
  in.cluster = &cluster;
  JobRequest h100 = MakeJob(1, 1000);
  h100.gpu_models = {"H100"};
  JobRequest t4s = MakeJob(2, 1000, 9);  // all nine T4s, a gang
  t4s.gpu_models = {"T4"};
  JobRequest more = MakeJob(3, 1000);  // a tenth T4: none left, not never
  more.gpu_models = {"T4"};
  in.pending = {h100, t4s, more};
  auto s = this->Make();
  EXPECT_FALSE(s->CheckFeasible(h100, cluster).ok());
  EXPECT_NE(s->CheckFeasible(h100, cluster).message().find("H100"), std::string::npos);
  JobRequest ten = MakeJob(5, 1000, 10);
  ten.gpu_models = {"T4"};
  EXPECT_FALSE(s->CheckFeasible(ten, cluster).ok()) << "9 T4s in all";
  Decisions d = s->Schedule(in);
  ASSERT_NE(FindWait(d, 1), nullptr);
  EXPECT_TRUE(FindWait(d, 1)->never);
  ASSERT_NE(FindBind(d, 2), nullptr);
  EXPECT_EQ(FindBind(d, 2)->placements.size(), 9u);
  EXPECT_EQ(FindBind(d, 3), nullptr);
  ASSERT_NE(FindWait(d, 3), nullptr);
  EXPECT_FALSE(FindWait(d, 3)->never);
  this->ExpectSound(d, in);
}

}  // namespace
}  // namespace berth::sched
