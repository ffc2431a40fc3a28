// The simulator: trace parsing, exact JCTs on tiny traces (queueing,
// restart penalty, spread slowdown), determinism, windows, the JSON report,
// and policy quality on a small heavy-tailed synthetic trace.
#include <gtest/gtest.h>

#include "sim/simulator.h"
#include "sim/trace.h"

namespace berth::sim {
namespace {

std::string Data(const std::string& name) {
  return std::string(BERTH_SOURCE_DIR) + "/tests/sim/data/" + name;
}

Trace MakeTrace(std::vector<TraceJob> jobs) {
  Trace t;
  t.jobs = std::move(jobs);
  return t;
}

SimOptions Options(Trace trace, int nodes, int gpus, const std::string& policy) {
  SimOptions o;
  o.trace = std::move(trace);
  o.nodes = nodes;
  o.gpus_per_node = gpus;
  o.policy = policy;
  return o;
}

TEST(TraceTest, ParsesTheCanonicalFormatAndNamesWhatItIgnores) {
  auto t = LoadTrace(Data("tiny.csv"));
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  ASSERT_EQ(t->jobs.size(), 5u);
  EXPECT_EQ(t->jobs[4].name, "e");
  EXPECT_EQ(t->jobs[4].submit, 5 * kSecond);
  EXPECT_EQ(t->jobs[4].duration, 100 * kSecond);
  EXPECT_EQ(t->jobs[4].gpus, 2);
  EXPECT_EQ(t->jobs[4].queue, "q1");
  ASSERT_EQ(t->ignored.size(), 1u);
  EXPECT_NE(t->ignored[0].find("user"), std::string::npos);
}

TEST(TraceTest, BadInputNamesLineAndColumn) {
  auto t = ParseTraceCsv("job_id,submit_time,duration,num_gpus\nx,0,10,1\ny,5,ten,1\n");
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("line 3: duration"), std::string::npos)
      << t.status().message();
  auto missing = ParseTraceCsv("job_id,submit_time,num_gpus\n");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("duration"), std::string::npos);
  auto zero = ParseTraceCsv("job_id,submit_time,duration,num_gpus\nx,0,10,0\n");
  ASSERT_FALSE(zero.ok());
  EXPECT_NE(zero.status().message().find("num_gpus"), std::string::npos);
  EXPECT_EQ(LoadTrace("/nonexistent/trace.csv").status().code(), StatusCode::kIo);
}

TEST(FlagsTest, ClusterShapeAndWindow) {
  auto c = ParseClusterShape("64x8");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->first, 64);
  EXPECT_EQ(c->second, 8);
  EXPECT_FALSE(ParseClusterShape("64").ok());
  EXPECT_FALSE(ParseClusterShape("0x8").ok());
  EXPECT_FALSE(ParseClusterShape("8x8x").ok());
  auto w = ParseWindow("1h:2d");
  ASSERT_TRUE(w.ok());
  EXPECT_EQ(w->first, kHour);
  EXPECT_EQ(w->second, 48 * kHour);
  auto open = ParseWindow(":3600");
  ASSERT_TRUE(open.ok());
  EXPECT_EQ(open->first, -1);
  EXPECT_EQ(open->second, kHour);
  EXPECT_FALSE(ParseWindow("10:5").ok());
  EXPECT_FALSE(ParseWindow("abc").ok());
}

TEST(SimulatorTest, OneJobRunsForItsDuration) {
  auto r = RunSimulation(Options(MakeTrace({{"a", 0, 100 * kSecond, 2, "q"}}), 1, 8, "fifo"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->completed, 1);
  EXPECT_DOUBLE_EQ(r->avg_jct_s, 100);
  EXPECT_DOUBLE_EQ(r->avg_queue_delay_s, 0);
  EXPECT_DOUBLE_EQ(r->makespan_s, 100);
  EXPECT_NEAR(r->gpu_utilization, 2.0 / 8, 1e-9);
}

TEST(SimulatorTest, QueueingIsExact) {
  // Two 8-GPU jobs on one 8-GPU node: the second starts when the first ends.
  auto r = RunSimulation(Options(
      MakeTrace({{"a", 0, 100 * kSecond, 8, "q"}, {"b", 10 * kSecond, 50 * kSecond, 8, "q"}}), 1, 8,
      "fifo"));
  ASSERT_TRUE(r.ok());
  EXPECT_DOUBLE_EQ(r->avg_jct_s, (100 + 140) / 2.0);
  EXPECT_DOUBLE_EQ(r->avg_queue_delay_s, 90 / 2.0);
  EXPECT_DOUBLE_EQ(r->makespan_s, 150);
  EXPECT_NEAR(r->gpu_utilization, 1.0, 1e-9);
}

TEST(SimulatorTest, PreemptionCostsTheRestartPenalty) {
  // srtf-oracle on one GPU: b (100 s) preempts a (1000 s, 900 s left) at
  // t=100; a restarts at 200 and pays 30 s before progressing again. (Its
  // tasks exit at once on SIGTERM here: the grace is the next test's.)
  auto o = Options(
      MakeTrace({{"a", 0, 1000 * kSecond, 1, "q"}, {"b", 100 * kSecond, 100 * kSecond, 1, "q"}}), 1,
      1, "srtf-oracle");
  o.stop_time = 0;
  auto r = RunSimulation(o);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->preemptions, 1);
  EXPECT_DOUBLE_EQ(r->p99_jct_s, 1130);
  EXPECT_DOUBLE_EQ(r->avg_jct_s, (1130 + 100) / 2.0);
  o.restart_penalty = 0;
  r = RunSimulation(o);
  ASSERT_TRUE(r.ok());
  EXPECT_DOUBLE_EQ(r->p99_jct_s, 1100);
}

TEST(SimulatorTest, PreemptionGraceDelaysThePreemptor) {
  // The job controller's behaviour, not a model of it: at t=100 b preempts a
  // (srtf-oracle, one GPU); a gets SIGTERM and takes stop_time (30 s) to
  // write its checkpoint, holding its GPU, so the controller binds b only
  // when a has exited, at 130. a (900 s left) restarts when b ends at 230 and
  // pays the 30 s restart penalty: it ends at 1160.
  SimOptions o;
  o.trace_path = Data("grace.csv");
  o.nodes = 1;
  o.gpus_per_node = 1;
  o.policy = "srtf-oracle";
  auto r = RunSimulation(o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->preemptions, 1);
  EXPECT_EQ(r->completed, 2);
  EXPECT_DOUBLE_EQ(r->avg_queue_delay_s, (0 + 30) / 2.0);  // b waited the grace
  EXPECT_DOUBLE_EQ(r->avg_jct_s, (1160 + 130) / 2.0);
  EXPECT_DOUBLE_EQ(r->p99_jct_s, 1160);
  // The GPU was held (allocated) during the 30 s stop: utilization stays 1.
  EXPECT_NEAR(r->gpu_utilization, 1.0, 1e-9);
  // A task slower than its grace (30 s, terminationGracePeriodSeconds'
  // default) is killed when the grace ends: the controller's SIGKILL bounds
  // the wait.
  o.stop_time = 90 * kSecond;
  r = RunSimulation(o);
  ASSERT_TRUE(r.ok());
  EXPECT_DOUBLE_EQ(r->avg_queue_delay_s, (0 + 30) / 2.0);
  EXPECT_DOUBLE_EQ(r->avg_jct_s, (1160 + 130) / 2.0);
  // Exiting at once on SIGTERM: b starts at 100, as without a grace.
  o.stop_time = 0;
  r = RunSimulation(o);
  ASSERT_TRUE(r.ok());
  EXPECT_DOUBLE_EQ(r->avg_queue_delay_s, 0);
  EXPECT_DOUBLE_EQ(r->avg_jct_s, (1130 + 100) / 2.0);
}

TEST(SimulatorTest, APreemptedGangIsStoppedAndRequeuedWhole) {
  // The same on two GPUs with a as a gang of two one-GPU workers (a
  // TrainingJob): b needs one GPU, the controller stops both of a's workers
  // and binds b when they have exited; a restarts as a whole when b ends.
  auto o = Options(
      MakeTrace({{"a", 0, 1000 * kSecond, 2, "q"}, {"b", 100 * kSecond, 100 * kSecond, 1, "q"}}), 1,
      2, "srtf-oracle");
  auto r = RunSimulation(o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->preemptions, 1);
  EXPECT_EQ(r->completed, 2);
  EXPECT_DOUBLE_EQ(r->avg_queue_delay_s, (0 + 30) / 2.0);
  EXPECT_DOUBLE_EQ(r->avg_jct_s, (1160 + 130) / 2.0);
}

TEST(SimulatorTest, ASpreadGangRunsSlower) {
  // tiny.csv on 2x2: a,b fill n0, c,d fill n1; b and d end at 10 s, so e
  // (2 GPUs, 100 s) can only start across both nodes: 125 s at 1.25x.
  SimOptions o;
  o.trace_path = Data("tiny.csv");
  o.nodes = 2;
  o.gpus_per_node = 2;
  o.policy = "fifo";
  auto r = RunSimulation(o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->completed, 5);
  EXPECT_DOUBLE_EQ(r->avg_jct_s, (1000 + 10 + 1000 + 10 + 130) / 5.0);
  o.spread_slowdown = 1.0;
  r = RunSimulation(o);
  ASSERT_TRUE(r.ok());
  EXPECT_DOUBLE_EQ(r->avg_jct_s, (1000 + 10 + 1000 + 10 + 105) / 5.0);
  EXPECT_FALSE(r->ignored.empty());
}

TEST(SimulatorTest, RejectsJobsThatCanNeverRunAndHonoursTheWindow) {
  auto trace = MakeTrace({{"a", 0, 10 * kSecond, 16, "q"},
                          {"b", 5 * kSecond, 10 * kSecond, 1, "q"},
                          {"c", 100 * kSecond, 10 * kSecond, 1, "q"}});
  auto r = RunSimulation(Options(trace, 1, 8, "dynamic"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->jobs, 3);
  EXPECT_EQ(r->rejected, 1);
  EXPECT_EQ(r->completed, 2);
  auto o = Options(trace, 1, 8, "dynamic");
  o.window_from = 1 * kSecond;
  o.window_to = 50 * kSecond;
  r = RunSimulation(o);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->jobs, 1);
  EXPECT_EQ(r->completed, 1);
}

TEST(SimulatorTest, BadOptionsAreErrors) {
  auto o = Options(MakeTrace({{"a", 0, 10 * kSecond, 1, "q"}}), 1, 8, "lottery");
  auto r = RunSimulation(o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("lottery"), std::string::npos);
  SimOptions none;
  EXPECT_EQ(RunSimulation(none).status().code(), StatusCode::kInvalidArgument);
}

TEST(SimulatorTest, JsonHasTheAgreedFieldsAndIsDeterministic) {
  SimOptions o;
  o.trace_path = Data("heavy_tail.csv");
  o.nodes = 7;
  o.gpus_per_node = 8;
  o.policy = "dynamic";
  o.seed = 3;
  auto a = RunSimulation(o);
  auto b = RunSimulation(o);
  ASSERT_TRUE(a.ok() && b.ok());
  auto ja = ToJson(*a), jb = ToJson(*b);
  for (const char* k : {"avg_jct_s", "p50_jct_s", "p99_jct_s", "avg_queue_delay_s", "makespan_s",
                        "gpu_utilization", "preemptions", "jobs", "queues", "fairness"}) {
    EXPECT_TRUE(ja.contains(k)) << k;
  }
  ja.erase("sim_wall_s");
  jb.erase("sim_wall_s");
  EXPECT_EQ(ja.dump(), jb.dump());
  EXPECT_GT(ja["gpu_utilization"].get<double>(), 0.0);
  EXPECT_LE(ja["gpu_utilization"].get<double>(), 1.0);
  EXPECT_EQ(ja["queues"].size(), 3u);
  EXPECT_EQ(ja["jobs"].get<int>(), 400);
  std::string text = ToText(*a);
  EXPECT_NE(text.find("policy dynamic on 7x8: 400 jobs"), std::string::npos) << text;
  EXPECT_NE(text.find("queue alpha"), std::string::npos) << text;
}

TEST(SimulatorTest, EveryPolicyFinishesEveryJobAndDynamicBeatsFifo) {
  std::map<std::string, double> jct;
  for (const auto& p :
       {"fifo", "backfill", "tiresias", "static", "fairshare", "srtf-oracle", "dynamic"}) {
    SimOptions o;
    o.trace_path = Data("heavy_tail.csv");
    o.nodes = 7;
    o.gpus_per_node = 8;
    o.policy = p;
    auto r = RunSimulation(o);
    ASSERT_TRUE(r.ok()) << p << ": " << r.status().ToString();
    EXPECT_EQ(r->completed, 400) << p;
    EXPECT_EQ(r->unfinished, 0) << p;
    jct[p] = r->avg_jct_s;
  }
  EXPECT_LT(jct["dynamic"], jct["fifo"]);
  EXPECT_LT(jct["dynamic"], jct["backfill"]);
  EXPECT_LE(jct["srtf-oracle"], jct["dynamic"]);
}

}  // namespace
}  // namespace berth::sim
