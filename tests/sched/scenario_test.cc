// Declarative scenarios: each tests/sched/scenarios/*.yaml file holds a
// cluster, running and pending jobs, a policy, and the decisions expected of
// one cycle. The format (all times in seconds, GPUs per task as a decimal):
//
//   policy: backfill            # options: {key: value}, now: 3600
//   cluster: {nodes: 2, gpus: 4}
//   running:  [{id: 1, gpus: 1, tasks: 4, placements: ["n0:0", "n0:1", ...],
//               start: 0, expected: 7200, progress: 0, attained: 0, queue: a, priority: 0,
//               class: batch}]
//   pending:  [{id: 2, gpus: 2, tasks: 1, submit: 10, expected: 600, ...}]
//   expect:
//     bind: {2: [n1]}           # job -> the set of nodes it lands on ([] = anywhere)
//     wait: [3]                 # not bound, not preempted, not "never"
//     never: [4]
//     preempt: [1]
//     resize: {5: 2}            # job -> number of tasks after the resize
//     exact: true               # no binds or preemptions beyond those listed
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <set>

#include "sched/scheduler.h"
#include "sched_test_util.h"

namespace berth::sched {
namespace {

using namespace testing;  // NOLINT

MilliGpu Milli(const YAML::Node& n) {
  return static_cast<MilliGpu>(std::llround(n.as<double>() * 1000));
}

TaskPlacement ParsePlacement(const std::string& s, MilliGpu share) {
  TaskPlacement p;
  auto colon = s.find(':');
  p.node = s.substr(0, colon);
  std::stringstream ss(s.substr(colon + 1));
  std::string g;
  while (std::getline(ss, g, ',')) p.gpus.push_back(std::stoi(g));
  p.gpu_share = share >= 1000 ? 1000 : share;
  return p;
}

JobRequest ParseJob(const YAML::Node& n) {
  JobRequest j;
  j.id = n["id"].as<int64_t>();
  j.task.gpus = n["gpus"] ? Milli(n["gpus"]) : 1000;
  if (n["gpu_memory"]) j.task.gpu_memory = n["gpu_memory"].as<int64_t>();
  j.tasks = n["tasks"] ? n["tasks"].as<int>() : 1;
  if (n["min_tasks"]) j.min_tasks = n["min_tasks"].as<int>();
  if (n["max_tasks"]) j.max_tasks = n["max_tasks"].as<int>();
  j.submit_time = n["submit"] ? n["submit"].as<int64_t>() * kSecond : j.id;
  if (n["expected"]) j.expected_duration = n["expected"].as<int64_t>() * kSecond;
  if (n["progress"]) j.progress = n["progress"].as<int64_t>() * kSecond;
  if (n["attained"]) j.attained_service = n["attained"].as<int64_t>() * kSecond;  // GPU-seconds
  if (n["time_limit"]) j.time_limit = n["time_limit"].as<int64_t>() * kSecond;
  if (n["queue"]) j.queue = n["queue"].as<std::string>();
  if (n["priority"]) j.priority = n["priority"].as<int64_t>();
  if (n["class"]) {
    auto c = model::ParsePriorityClass(n["class"].as<std::string>(), "class");
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    if (c.ok()) j.priority_class = *c;
  }
  if (n["preemptible"]) j.preemptible = n["preemptible"].as<bool>();
  return j;
}

void RunScenario(const std::filesystem::path& file) {
  SCOPED_TRACE(file.filename().string());
  YAML::Node doc = YAML::LoadFile(file.string());
  SchedulerConfig config;
  config.policy = doc["policy"].as<std::string>();
  if (doc["options"]) {
    for (const auto& kv : doc["options"])
      config.options[kv.first.as<std::string>()] = kv.second.as<std::string>();
  }
  auto s = Scheduler::Create(config);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  ClusterSnapshot cluster =
      MakeCluster(doc["cluster"]["nodes"].as<int>(), doc["cluster"]["gpus"].as<int>());
  SchedulerInput in;
  in.cluster = &cluster;
  in.now = doc["now"] ? doc["now"].as<int64_t>() * kSecond : 0;
  for (const auto& r : doc["running"]) {
    RunningJob rj;
    rj.request = ParseJob(r);
    for (const auto& p : r["placements"])
      rj.placements.push_back(ParsePlacement(p.as<std::string>(), rj.request.task.gpus));
    rj.start_time = r["start"] ? r["start"].as<int64_t>() * kSecond : 0;
    in.running.push_back(rj);
  }
  for (const auto& p : doc["pending"]) in.pending.push_back(ParseJob(p));
  Decisions d = (*s)->Schedule(in);

  const YAML::Node& expect = doc["expect"];
  std::set<JobId> listed_binds, listed_preempts;
  for (const auto& kv : expect["bind"]) {
    JobId id = kv.first.as<int64_t>();
    listed_binds.insert(id);
    const Bind* b = FindBind(d, id);
    ASSERT_NE(b, nullptr) << "job " << id << " should be bound";
    std::set<std::string> want, got;
    for (const auto& n : kv.second) want.insert(n.as<std::string>());
    for (const auto& p : b->placements) got.insert(p.node);
    if (!want.empty()) EXPECT_EQ(got, want) << "nodes of job " << id;
  }
  for (const auto& n : expect["wait"]) {
    JobId id = n.as<int64_t>();
    EXPECT_EQ(FindBind(d, id), nullptr) << "job " << id << " should wait";
    const Wait* w = FindWait(d, id);
    ASSERT_NE(w, nullptr) << "job " << id << " should have a wait reason";
    EXPECT_FALSE(w->never);
    EXPECT_FALSE(w->plugin.empty());
  }
  for (const auto& n : expect["never"]) {
    const Wait* w = FindWait(d, n.as<int64_t>());
    ASSERT_NE(w, nullptr);
    EXPECT_TRUE(w->never);
  }
  for (const auto& n : expect["preempt"]) {
    listed_preempts.insert(n.as<int64_t>());
    EXPECT_TRUE(Preempted(d, n.as<int64_t>()))
        << "job " << n.as<int64_t>() << " should be preempted";
  }
  for (const auto& kv : expect["resize"]) {
    const Resize* r = FindResize(d, kv.first.as<int64_t>());
    ASSERT_NE(r, nullptr);
    EXPECT_EQ(static_cast<int>(r->placements.size()), kv.second.as<int>());
  }
  if (expect["exact"] && expect["exact"].as<bool>()) {
    for (const Bind& b : d.binds)
      EXPECT_TRUE(listed_binds.count(b.job)) << "unexpected bind of job " << b.job;
    for (const Preempt& p : d.preemptions) {
      EXPECT_TRUE(listed_preempts.count(p.job)) << "unexpected preemption of job " << p.job;
    }
  }
}

TEST(ScenarioTest, EveryScenarioFileHolds) {
  std::filesystem::path dir = std::filesystem::path(BERTH_SOURCE_DIR) / "tests/sched/scenarios";
  std::vector<std::filesystem::path> files;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (e.path().extension() == ".yaml") files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  ASSERT_GE(files.size(), 7u);
  std::set<std::string> policies;
  for (const auto& f : files) {
    RunScenario(f);
    policies.insert(YAML::LoadFile(f.string())["policy"].as<std::string>());
  }
  for (const auto& p : Scheduler::Policies())
    EXPECT_TRUE(policies.count(p)) << "no scenario for policy " << p;
}

}  // namespace
}  // namespace berth::sched
