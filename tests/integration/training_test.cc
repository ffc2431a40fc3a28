// Distributed training jobs on real processes: a 2-worker PyTorch DDP run of
// examples/training/ddp_train.py on declared GPUs, gang failure handling
// (restart within backoffLimit, then a clean failure naming the worker), an
// elastic job that grows and shrinks, and spec errors.
#include <gtest/gtest.h>

#include <filesystem>
#include <set>

#include "../require_tools.h"
#include "harness.h"

namespace berth::testing {
namespace {

using nlohmann::json;

const char* kPython = "/usr/bin/python3";

bool HaveTorch() { return RunCommand({kPython, "-c", "import torch.distributed"}).exit_code == 0; }

std::string Example() { return std::string(BERTH_SOURCE_DIR) + "/examples/training/ddp_train.py"; }

std::string Submit(const Daemon& d, const TempDir& work, const json& doc,
                   CommandResult* out = nullptr) {
  static int n = 0;
  std::string path = work / ("train" + std::to_string(n++) + ".json");
  WriteFile(path, doc.dump());
  CommandResult r = d.Cli({"train", "-f", path});
  if (out) *out = r;
  return Trim(r.out);
}

json TrainDoc(const std::string& name, json spec) {
  return {{"apiVersion", "berth/v1"},
          {"kind", "TrainingJob"},
          {"metadata", {{"name", name}}},
          {"spec", spec}};
}

std::string CheckpointDir(const Daemon& d, const std::string& id) {
  return d.data_dir() + "/checkpoints/job-" + id;
}

TEST(Training, TwoWorkerDdpRunTrainsInLockstep) {
  if (!HaveTorch())
    BERTH_SKIP_UNLESS_REQUIRED("python3-torch is not installed (scripts/install-deps.sh --test)");
  TempDir work;
  Daemon d({"--gpus", "2"});
  ASSERT_TRUE(d.Start()) << ReadFile(d.data_dir() + "/berthd.log");
  std::string id = Submit(d, work,
                          TrainDoc("ddp", {{"workers", 2},
                                           {"gpusPerWorker", 1},
                                           {"command", {kPython, Example()}},
                                           {"env", {{"TOTAL_STEPS", "40"}}}}));
  ASSERT_FALSE(id.empty());
  ASSERT_TRUE(WaitFor([&] { return d.State(id) == "Succeeded" || d.State(id) == "Failed"; },
                      std::chrono::seconds(90)))
      << d.Job(id).dump();
  json job = d.Job(id);
  ASSERT_EQ(job["state"], "Succeeded")
      << job.dump() << d.GetText("/api/v1/jobs/" + id + "/logs?worker=1");
  // One worker per declared GPU, both on the one node.
  ASSERT_EQ(job["workers"].size(), 2u);
  EXPECT_NE(job["workers"][0]["gpus"], job["workers"][1]["gpus"]);
  EXPECT_EQ(job["training"]["worldSizeHistory"].size(), 1u);
  EXPECT_EQ(job["training"]["worldSizeHistory"][0]["worldSize"], 2);

  json r0 = json::parse(ReadFile(CheckpointDir(d, id) + "/result-rank0.json"));
  json r1 = json::parse(ReadFile(CheckpointDir(d, id) + "/result-rank1.json"));
  EXPECT_EQ(r0["world"], 2);
  EXPECT_LT(r0["final_loss"].get<double>(), r0["first_loss"].get<double>() / 10);
  EXPECT_EQ(r0["params"], r1["params"]);  // DDP kept every rank identical
  EXPECT_EQ(r0["checksum"], r1["checksum"]);

  CommandResult logs = d.Cli({"logs", id, "--worker", "0"});
  EXPECT_NE(logs.out.find("done: loss"), std::string::npos) << logs.out << logs.err;
  CommandResult get = d.Cli({"get", id});
  EXPECT_NE(get.out.find("Worker 1:"), std::string::npos) << get.out;
  EXPECT_NE(get.out.find("Succeeded"), std::string::npos) << get.out;
}

TEST(Training, GangGetsTorchEnvironment) {
  TempDir work;
  Daemon d({"--gpus", "4"});
  ASSERT_TRUE(d.Start()) << ReadFile(d.data_dir() + "/berthd.log");
  std::string script =
      "env | grep -E '^(MASTER_|WORLD_SIZE|RANK|LOCAL_|NODE_RANK|PET_|BERTH_WORLD|BERTH_CHECK)' "
      "| sort > " +
      work.path() + "/env.$RANK";
  std::string id = Submit(
      d, work,
      TrainDoc("env",
               {{"workers", 3}, {"gpusPerWorker", 1}, {"command", {"/bin/sh", "-c", script}}}));
  ASSERT_TRUE(WaitFor([&] { return d.State(id) == "Succeeded"; })) << d.Job(id).dump();
  std::string port;
  for (int r = 0; r < 3; ++r) {
    std::string env = ReadFile(work / ("env." + std::to_string(r)));
    EXPECT_NE(env.find("WORLD_SIZE=3\n"), std::string::npos) << env;
    EXPECT_NE(env.find("RANK=" + std::to_string(r) + "\n"), std::string::npos) << env;
    EXPECT_NE(env.find("LOCAL_RANK=" + std::to_string(r) + "\n"), std::string::npos) << env;
    EXPECT_NE(env.find("LOCAL_WORLD_SIZE=3\n"), std::string::npos) << env;
    EXPECT_NE(env.find("NODE_RANK=0\n"), std::string::npos) << env;
    EXPECT_NE(env.find("MASTER_ADDR=127.0.0.1\n"), std::string::npos) << env;
    EXPECT_NE(env.find("PET_NNODES=3\n"), std::string::npos) << env;
    EXPECT_NE(env.find("PET_NODE_RANK=" + std::to_string(r) + "\n"), std::string::npos) << env;
    EXPECT_NE(env.find("PET_NPROC_PER_NODE=1\n"), std::string::npos) << env;
    EXPECT_NE(env.find("BERTH_CHECKPOINT_DIR=" + CheckpointDir(d, id) + "\n"), std::string::npos)
        << env;
    size_t p = env.find("\nMASTER_PORT=");
    ASSERT_NE(p, std::string::npos) << env;
    std::string this_port = env.substr(p + 13, env.find('\n', p + 1) - p - 13);
    EXPECT_GT(std::stoi(this_port), 0);
    if (r == 0) port = this_port;
    EXPECT_EQ(this_port, port);  // one port per job, the same for every worker
    EXPECT_NE(env.find("PET_MASTER_PORT=" + port + "\n"), std::string::npos) << env;
  }
}

// Gangs started in the same cycle each get their own rendezvous port.
TEST(Training, ConcurrentGangsGetDistinctMasterPorts) {
  TempDir work;
  Daemon d({"--gpus", "4"});
  ASSERT_TRUE(d.Start()) << ReadFile(d.data_dir() + "/berthd.log");
  std::string dir = work.path();
  std::vector<std::string> ids;
  for (int i = 0; i < 4; ++i) {
    std::string script = "echo $MASTER_PORT > " + dir + "/port." + std::to_string(i) +
                         "; while [ ! -e " + dir + "/release ]; do sleep 0.02; done";
    ids.push_back(Submit(
        d, work,
        TrainDoc("g" + std::to_string(i),
                 {{"workers", 1}, {"gpusPerWorker", 1}, {"command", {"/bin/sh", "-c", script}}})));
  }
  std::set<std::string> ports;
  ASSERT_TRUE(WaitFor([&] {
    ports.clear();
    for (int i = 0; i < 4; ++i) {
      std::string p = Trim(ReadFile(work / ("port." + std::to_string(i))));
      if (!p.empty()) ports.insert(p);
    }
    bool all = true;
    for (int i = 0; i < 4; ++i)
      all = all && !Trim(ReadFile(work / ("port." + std::to_string(i)))).empty();
    return all;
  }));
  EXPECT_EQ(ports.size(), 4u);
  WriteFile(work / "release", "");
  for (const std::string& id : ids)
    ASSERT_TRUE(WaitFor([&] { return d.State(id) == "Succeeded"; })) << d.Job(id).dump();
}

TEST(Training, FailedWorkerRestartsTheGangThenFailsWhenBackoffIsExhausted) {
  TempDir work;
  Daemon d({"--gpus", "2"});
  ASSERT_TRUE(d.Start()) << ReadFile(d.data_dir() + "/berthd.log");
  // Worker 0 trains until stopped (records SIGTERM); worker 1 is killed by SIGKILL.
  std::string dir = work.path();
  std::string script = "echo start >> " + dir +
                       "/w$RANK.log; "
                       "if [ \"$RANK\" = 1 ]; then sleep 0.2; kill -9 $$; fi; "
                       "trap 'echo term >> " +
                       dir + "/w$RANK.log; exit 143' TERM; while true; do sleep 0.02; done";
  std::string id = Submit(d, work,
                          TrainDoc("crashy", {{"workers", 2},
                                              {"gpusPerWorker", 1},
                                              {"restartPolicy", "OnFailure"},
                                              {"backoffLimit", 1},
                                              {"terminationGracePeriodSeconds", 5},
                                              {"command", {"/bin/sh", "-c", script}}}));
  ASSERT_TRUE(WaitFor([&] { return d.State(id) == "Failed"; }, std::chrono::seconds(30)))
      << d.Job(id).dump();
  json job = d.Job(id);
  EXPECT_EQ(job["attempts"], 2);  // one restart, then backoffLimit reached
  std::string msg = job["message"];
  EXPECT_NE(msg.find("worker 1"), std::string::npos) << msg;
  EXPECT_NE(msg.find("SIGKILL"), std::string::npos) << msg;
  EXPECT_NE(msg.find("137"), std::string::npos) << msg;
  EXPECT_NE(msg.find("0 restart(s) left"), std::string::npos) << msg;
  EXPECT_EQ(job["exitCode"], 137);
  EXPECT_EQ(job["training"]["restarts"], 1);
  // Worker 0 was stopped with the gang both times.
  std::string w0 = ReadFile(work / "w0.log");
  EXPECT_EQ(w0, "start\nterm\nstart\nterm\n");
  bool saw_restart = false;
  json events = d.Get("/api/v1/events?job=" + id);
  for (const auto& e : events["items"]) {
    if (e["type"] == "TrainingRestart") {
      saw_restart = true;
      EXPECT_NE(e["message"].get<std::string>().find("restarting the gang (0 restart(s) left)"),
                std::string::npos)
          << e.dump();
    }
  }
  EXPECT_TRUE(saw_restart) << events.dump();

  // ExitCode policy: a code outside the list fails at once, without restarts.
  std::string id2 =
      Submit(d, work,
             TrainDoc("exitcode",
                      {{"workers", 2},
                       {"restartPolicy", "ExitCode"},
                       {"retryExitCodes", {"75"}},
                       {"backoffLimit", 3},
                       {"terminationGracePeriodSeconds", 5},
                       {"command", {"/bin/sh", "-c", "[ \"$RANK\" = 0 ] && exit 3; sleep 30"}}}));
  ASSERT_TRUE(WaitFor([&] { return d.State(id2) == "Failed"; }, std::chrono::seconds(20)))
      << d.Job(id2).dump();
  json j2 = d.Job(id2);
  EXPECT_EQ(j2["attempts"], 1);
  EXPECT_NE(j2["message"].get<std::string>().find("worker 0 exited with code 3"), std::string::npos)
      << j2.dump();
}

int WorldSize(const Daemon& d, const std::string& id) {
  json j = d.Job(id);
  if (!j.is_object() || j["state"] != "Running" || !j.contains("training")) return -1;
  bool all_running = true;
  for (const auto& w : j["training"]["workers"])
    all_running = all_running && w["state"] == "Running";
  return all_running ? j["training"].value("worldSize", -1) : -1;
}

std::string ShJob(const std::string& name, int priority, int gpus, const std::string& release) {
  json doc = {
      {"apiVersion", "berth/v1"},
      {"kind", "Job"},
      {"metadata", {{"name", name}}},
      {"spec",
       {{"command", {"/bin/sh", "-c", "while [ ! -e " + release + " ]; do sleep 0.05; done"}},
        {"priority", priority},
        {"terminationGracePeriodSeconds", 5},
        {"resources", {{"gpus", gpus}}}}}};
  return doc.dump();
}

// Under fairshare (priorities with preemption) and the default policy: the
// workers beyond minReplicas are borrowed capacity, given back whatever the policy.
class Elastic : public ::testing::TestWithParam<std::string> {};

TEST_P(Elastic, JobStartsAtTheFreeSizeGrowsAndShrinks) {
  if (!HaveTorch())
    BERTH_SKIP_UNLESS_REQUIRED("python3-torch is not installed (scripts/install-deps.sh --test)");
  TempDir work;
  Daemon d({"--gpus", "3", "--policy", GetParam()});
  ASSERT_TRUE(d.Start()) << ReadFile(d.data_dir() + "/berthd.log");
  // Two of the three GPUs are busy: the elastic job starts with one worker.
  std::string blocker = SubmitDoc(d, work, ShJob("blocker", 0, 2, work / "release1"));
  ASSERT_TRUE(WaitFor([&] { return d.State(blocker) == "Running"; }));
  std::string id = Submit(
      d, work,
      TrainDoc("elastic",
               {{"gpusPerWorker", 1},
                {"command", {kPython, Example()}},
                {"elasticPolicy", {{"minReplicas", 1}, {"maxReplicas", 4}, {"maxRestarts", 10}}},
                {"terminationGracePeriodSeconds", 20},
                {"env",
                 {{"TOTAL_STEPS", "80"}, {"STEP_SLEEP", "0.05"}, {"HOLD_FILE", work / "hold"}}}}));
  auto trained_at = [&](int world) {  // worker 0 reported steps at this world size
    return WorldSize(d, id) == world &&
           d.GetText("/api/v1/jobs/" + id + "/logs?worker=0")
                   .find("world " + std::to_string(world)) != std::string::npos;
  };
  ASSERT_TRUE(WaitFor([&] { return trained_at(1); }, std::chrono::seconds(30))) << d.Job(id).dump();
  // GPUs free up: it grows to all three (max 4, the cluster has 3).
  WriteFile(work / "release1", "");
  ASSERT_TRUE(WaitFor([&] { return trained_at(3); }, std::chrono::seconds(40))) << d.Job(id).dump();
  // Higher-priority work needs two GPUs: it shrinks back to one.
  std::string high = SubmitDoc(d, work, ShJob("high", 10, 2, work / "release2"));
  ASSERT_TRUE(WaitFor([&] { return d.State(high) == "Running" && WorldSize(d, id) == 1; },
                      std::chrono::seconds(40)))
      << d.Job(id).dump() << d.Job(high).dump();
  // Let everything finish.
  WriteFile(work / "release2", "");
  WriteFile(work / "hold", "");
  ASSERT_TRUE(WaitFor([&] { return d.State(id) == "Succeeded" || d.State(id) == "Failed"; },
                      std::chrono::seconds(60)))
      << d.Job(id).dump();
  json job = d.Job(id);
  ASSERT_EQ(job["state"], "Succeeded") << job.dump();
  std::vector<int> sizes;
  for (const auto& h : job["training"]["worldSizeHistory"]) sizes.push_back(h["worldSize"]);
  ASSERT_GE(sizes.size(), 3u);
  EXPECT_EQ(sizes[0], 1);
  EXPECT_EQ(sizes[1], 3);
  EXPECT_EQ(sizes[2], 1);
  EXPECT_GE(job["training"]["resizes"].get<int>(), 2);
  json r0 = json::parse(ReadFile(CheckpointDir(d, id) + "/result-rank0.json"));
  EXPECT_LT(r0["final_loss"].get<double>(), r0["first_loss"].get<double>() / 10);
  EXPECT_EQ(r0["steps"], 80);
  EXPECT_GE(r0["worlds"].size(), 2u);  // the loss history spans resizes
}

INSTANTIATE_TEST_SUITE_P(Policies, Elastic, ::testing::Values("fairshare", "dynamic"));

// successPolicy: under Worker0 (the default) a worker that outlives worker 0
// by more than the grace period is stopped and the job succeeds; under
// AllWorkers the job waits for it. Worker 1 ignores SIGTERM and would write
// `survived` 4 s after it started.
json StragglerDoc(const TempDir& work, const std::string& policy) {
  std::string script = "if [ \"$RANK\" = 0 ]; then exit 0; fi; trap '' TERM; sleep 4; touch " +
                       work.path() + "/survived; exit 0";
  json spec = {
      {"workers", 2}, {"command", {"/bin/sh", "-c", script}}, {"terminationGracePeriodSeconds", 1}};
  if (!policy.empty()) spec["successPolicy"] = policy;
  return TrainDoc("straggler", spec);
}

TEST(Training, Worker0SuccessStopsAStragglerAfterTheGrace) {
  TempDir work;
  Daemon d({"--gpus", "2"});
  ASSERT_TRUE(d.Start()) << ReadFile(d.data_dir() + "/berthd.log");
  std::string id = Submit(d, work, StragglerDoc(work, ""));
  ASSERT_TRUE(WaitFor([&] { return d.State(id) == "Succeeded" || d.State(id) == "Failed"; },
                      std::chrono::seconds(30)))
      << d.Job(id).dump();
  json job = d.Job(id);
  EXPECT_EQ(job["state"], "Succeeded") << job.dump();
  EXPECT_EQ(job["spec"]["spec"]["successPolicy"], "Worker0");
  EXPECT_NE(job["message"].get<std::string>().find(
                "1 worker(s) still running after the grace period were stopped"),
            std::string::npos)
      << job.dump();
  EXPECT_EQ(job["training"]["workers"][0]["state"], "Succeeded");
  EXPECT_EQ(job["training"]["workers"][1]["state"], "Stopped");
  EXPECT_FALSE(std::filesystem::exists(work / "survived"));  // SIGKILLed after its grace
  json events = d.Get("/api/v1/events?job=" + id);
  std::string types;
  for (const auto& e : events["items"]) types += e["type"].get<std::string>() + " ";
  EXPECT_NE(types.find("TrainingFinishing TrainingStragglersStopped"), std::string::npos) << types;
}

TEST(Training, AllWorkersSuccessWaitsForEveryWorker) {
  TempDir work;
  Daemon d({"--gpus", "2"});
  ASSERT_TRUE(d.Start()) << ReadFile(d.data_dir() + "/berthd.log");
  std::string id = Submit(d, work, StragglerDoc(work, "AllWorkers"));
  ASSERT_TRUE(WaitFor([&] { return d.State(id) == "Succeeded" || d.State(id) == "Failed"; },
                      std::chrono::seconds(30)))
      << d.Job(id).dump();
  json job = d.Job(id);
  EXPECT_EQ(job["state"], "Succeeded") << job.dump();
  EXPECT_EQ(job["message"], "all 2 worker(s) exited with code 0");
  EXPECT_TRUE(std::filesystem::exists(work / "survived"));
}

// ttlSecondsAfterFinished removes the job's run directories (logs) and its
// checkpoints once that time has passed, also across a daemon restart; the
// job's record and events stay.
TEST(Training, TtlAfterFinishedCleansUpRunDirectoriesAndCheckpoints) {
  TempDir work;
  Daemon d({"--gpus", "2"});
  ASSERT_TRUE(d.Start()) << ReadFile(d.data_dir() + "/berthd.log");
  std::string id = Submit(
      d, work,
      TrainDoc("ttl",
               {{"workers", 2},
                {"ttlSecondsAfterFinished", 3},
                {"command", {"/bin/sh", "-c", "echo hi > $BERTH_CHECKPOINT_DIR/ckpt.$RANK"}}}));
  ASSERT_TRUE(WaitFor([&] { return d.State(id) == "Succeeded"; })) << d.Job(id).dump();
  auto run_dirs = [&] {
    int n = 0;
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(d.data_dir() + "/runs", ec))
      n += e.path().filename().string().rfind("job-" + id + ".", 0) == 0 ? 1 : 0;
    return n;
  };
  EXPECT_EQ(run_dirs(), 2);
  EXPECT_TRUE(std::filesystem::exists(CheckpointDir(d, id) + "/ckpt.1"));
  d.Stop();
  ASSERT_TRUE(d.Start()) << ReadFile(d.data_dir() + "/berthd.log");
  ASSERT_TRUE(WaitFor([&] {
    json events = d.Get("/api/v1/events?job=" + id);
    for (const auto& e : events["items"])
      if (e["type"] == "TrainingCleanedUp") return true;
    return false;
  })) << d.Get("/api/v1/events?job=" + id).dump();
  EXPECT_EQ(run_dirs(), 0);
  EXPECT_FALSE(std::filesystem::exists(CheckpointDir(d, id)));
  json job = d.Job(id);
  EXPECT_EQ(job["state"], "Succeeded");
  EXPECT_TRUE(job["training"].contains("cleanedUp")) << job.dump();
}

TEST(Training, DaemonRestartRecoversEveryWorkerOfTheGang) {
  TempDir work;
  Daemon d({"--gpus", "2"});
  ASSERT_TRUE(d.Start()) << ReadFile(d.data_dir() + "/berthd.log");
  std::string dir = work.path();
  std::string script = "touch " + dir + "/up.$RANK; while [ ! -e " + dir +
                       "/release.$RANK ]; do sleep 0.02; done; "
                       "exit $RANK";  // worker 1 fails after the restart
  std::string id = Submit(d, work,
                          TrainDoc("survivor", {{"workers", 2},
                                                {"restartPolicy", "Never"},
                                                {"terminationGracePeriodSeconds", 5},
                                                {"command", {"/bin/sh", "-c", script}}}));
  ASSERT_TRUE(WaitFor([&] {
    return std::filesystem::exists(work / "up.0") && std::filesystem::exists(work / "up.1") &&
           d.State(id) == "Running";
  })) << d.Job(id).dump();
  d.Kill();
  WriteFile(work / "release.0", "");  // worker 0 ends with 0 while the daemon is down
  ASSERT_TRUE(d.Start()) << ReadFile(d.data_dir() + "/berthd.log");
  EXPECT_EQ(d.State(id), "Running");
  WriteFile(work / "release.1", "");
  ASSERT_TRUE(WaitFor([&] { return d.State(id) == "Failed"; })) << d.Job(id).dump();
  json job = d.Job(id);
  EXPECT_EQ(job["attempts"], 1);
  EXPECT_NE(
      job["message"].get<std::string>().find("worker 1 exited with code 1; restartPolicy Never"),
      std::string::npos)
      << job.dump();
  EXPECT_EQ(job["training"]["workers"][0]["state"], "Succeeded");
  EXPECT_EQ(job["training"]["workers"][0]["exitCode"], 0);
}

TEST(Training, ActiveDeadlineEndsTheJobWithoutRestarts) {
  TempDir work;
  Daemon d({"--gpus", "2"});
  ASSERT_TRUE(d.Start()) << ReadFile(d.data_dir() + "/berthd.log");
  std::string id = Submit(d, work,
                          TrainDoc("slow", {{"workers", 2},
                                            {"backoffLimit", 3},
                                            {"activeDeadlineSeconds", 1},
                                            {"terminationGracePeriodSeconds", 1},
                                            {"command", {"/bin/sh", "-c", "sleep 30"}}}));
  ASSERT_TRUE(WaitFor([&] { return d.State(id) == "Failed"; })) << d.Job(id).dump();
  json job = d.Job(id);
  EXPECT_EQ(job["attempts"], 1);
  EXPECT_NE(job["message"].get<std::string>().find("activeDeadlineSeconds 1 exceeded"),
            std::string::npos)
      << job.dump();
}

TEST(Training, BadSpecsAreRejectedWithClearErrors) {
  TempDir work;
  Daemon d({"--gpus", "2"});
  ASSERT_TRUE(d.Start()) << ReadFile(d.data_dir() + "/berthd.log");
  struct Case {
    json spec;
    std::string error;
  };
  std::vector<Case> cases = {
      {{{"command", {"/bin/true"}}, {"elasticPolicy", {{"minReplicas", 3}, {"maxReplicas", 2}}}},
       "spec.elasticPolicy.maxReplicas: must be >= minReplicas (3), got 2"},
      {{{"command", {"/bin/true"}}, {"workers", 0}}, "spec.workers: must be >= 1, got 0"},
      {{{"command", {"/bin/true"}}, {"workers", 1}, {"gpusPerWorker", 4}}, "4 GPUs"},
      {{{"command", {"/bin/true"}}, {"restartPolicy", "Sometimes"}},
       "spec.restartPolicy: must be Never, OnFailure or ExitCode"},
  };
  for (const Case& c : cases) {
    CommandResult r;
    Submit(d, work, TrainDoc("bad", c.spec), &r);
    EXPECT_NE(r.exit_code, 0) << c.spec.dump();
    EXPECT_NE(r.err.find(c.error), std::string::npos) << r.err;
  }
}

}  // namespace
}  // namespace berth::testing
