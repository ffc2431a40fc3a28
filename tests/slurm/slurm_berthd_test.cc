// berthd with `executor: {kind: slurm}` against a real Slurm cluster of two
// nodes with four GPUs each (slurm_cluster.h): placement by Berth, owners,
// cancel, exit codes, a berthd crash and restart, a node's slurmd killed.
#include <pwd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <random>
#include <set>
#include <sstream>

#include <sys/stat.h>

#include "integration/pipeline_util.h"
#include "model/pipeline.h"
#include "require_tools.h"
#include "slurm/slurm_cluster.h"

namespace berth::testing {
namespace {

using namespace std::chrono_literals;

// A throwaway Unix account, removed at destruction.
class TempUser {
 public:
  TempUser() {
    std::random_device rd;
    std::ostringstream n;
    n << "berth-s-" << std::hex << (rd() & 0xffffff);
    name_ = n.str();
    if (std::system(("useradd -M -s /bin/sh " + name_ + " >/dev/null 2>&1").c_str()) != 0) return;
    if (struct passwd* pw = ::getpwnam(name_.c_str())) {
      uid_ = pw->pw_uid;
      ok_ = true;
    }
  }
  ~TempUser() {
    if (ok_) (void)std::system(("userdel " + name_ + " >/dev/null 2>&1").c_str());
  }
  bool ok() const { return ok_; }
  const std::string& name() const { return name_; }
  uid_t uid() const { return uid_; }

 private:
  std::string name_;
  bool ok_ = false;
  uid_t uid_ = 0;
};

class SlurmBerthd : public ::testing::Test {
 protected:
  void SetUp() override {
    BERTH_SKIP_WITHOUT_SLURM();
    std::string err = cluster_.Start();
    ASSERT_EQ(err, "");
    ASSERT_TRUE(user_.ok()) << "useradd failed";
    run_root_ = cluster_.dir() + "/runs";
    WriteFile(work_ / "berthd.yaml",
              "executor:\n"
              "  kind: slurm\n"
              "  runAsOwner: true\n"
              "  slurm:\n"
              "    conf: " +
                  cluster_.conf() +
                  "\n"
                  "    partition: berth\n"
                  "    runRoot: " +
                  run_root_ +
                  "\n"
                  "    pollInterval: 100ms\n"
                  "    nodeRefresh: 300ms\n"
                  "    killAfter: 3s\n"
                  "scheduler:\n"
                  "  policy: fairshare\n"
                  "  resyncInterval: 500ms\n");
    daemon_ = std::make_unique<Daemon>(std::vector<std::string>{"--config", work_ / "berthd.yaml"});
    // The test user reaches berthd's socket through the data directory
    // (mkdtemp made it 0700), as docs/security.md tells a lab to set it.
    ::chmod(daemon_->data_dir().c_str(), 0711);
    ASSERT_TRUE(daemon_->Start()) << ReadFile(daemon_->data_dir() + "/berthd.log");
  }

  // `berth run` as the test user; the job id.
  std::string RunAsUser(const std::vector<std::string>& flags, const std::string& script) {
    std::vector<std::string> args = {"/usr/sbin/runuser", "-u",       user_.name(),          "--",
                                     BinDir() + "/berth", "--server", daemon_->socket_url(), "run",
                                     "--workdir",         "/tmp"};
    args.insert(args.end(), flags.begin(), flags.end());
    args.insert(args.end(), {"--", "/bin/sh", "-c", script});
    CommandResult r = RunCommand(args);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return Trim(r.out);
  }
  bool WaitState(const std::string& id, const std::string& state,
                 std::chrono::milliseconds timeout = 20s) {
    return WaitFor([&] { return daemon_->State(id) == state; }, timeout);
  }
  std::string Logs(const std::string& id) { return daemon_->Cli({"logs", id}).out; }
  std::string Log() { return ReadFile(daemon_->data_dir() + "/berthd.log"); }

  SlurmCluster cluster_;
  TempUser user_;
  TempDir work_;
  std::string run_root_;
  std::unique_ptr<Daemon> daemon_;
};

TEST_F(SlurmBerthd, TwoFourGpuJobsLandOnDifferentNodesAThirdWaitsAndTasksRunAsTheirOwners) {
  const std::string script =
      "echo uid=$(id -u) node=$SLURMD_NODENAME berth=$BERTH_NODE gpus=$CUDA_VISIBLE_DEVICES; "
      "exec sleep 60";
  // The inventory is Slurm's: two nodes, four GPUs each.
  auto gpus = daemon_->Cli({"gpus"});
  EXPECT_NE(gpus.out.find("n1"), std::string::npos) << gpus.out;
  EXPECT_NE(gpus.out.find("n2"), std::string::npos) << gpus.out;

  std::string a = RunAsUser({"--gpus", "4", "--name", "a"}, script);
  std::string b = RunAsUser({"--gpus", "4", "--name", "b"}, script);
  ASSERT_TRUE(WaitState(a, "Running")) << daemon_->Job(a).dump() << Log();
  ASSERT_TRUE(WaitState(b, "Running")) << daemon_->Job(b).dump() << Log();
  std::string c = RunAsUser({"--gpus", "4", "--name", "c"}, script);
  auto ja = daemon_->Job(a), jb = daemon_->Job(b);
  EXPECT_NE(ja["node"], jb["node"]) << ja.dump() << jb.dump();
  EXPECT_EQ(ja["gpus"], jb["gpus"]);  // 0-3 each, on different nodes

  // Each task sees the node and GPUs Berth chose, bound by Slurm, as its owner.
  for (const std::string& id : {a, b}) {
    auto j = daemon_->Job(id);
    std::string node = j["node"].get<std::string>();
    std::string want =
        "uid=" + std::to_string(user_.uid()) + " node=" + node + " berth=" + node + " gpus=0,1,2,3";
    ASSERT_TRUE(WaitFor([&] { return Logs(id).find(want) != std::string::npos; }))
        << id << ": " << Logs(id);
  }
  // Slurm itself knows the jobs as the owner's, on the nodes Berth chose.
  auto sq = cluster_.Tool("squeue", {"-h", "-o", "%j %u %N %T"});
  EXPECT_NE(sq.out.find(user_.name() + " " + ja["node"].get<std::string>() + " RUNNING"),
            std::string::npos)
      << sq.out;

  // The third waits for four free GPUs (Slurm never sees it yet).
  std::this_thread::sleep_for(1s);  // a few scheduling passes (resync 500ms)
  EXPECT_EQ(daemon_->State(c), "Pending");
  EXPECT_EQ(sq.out.find(" c "), std::string::npos);

  // Cancel a: its Slurm job ends, c takes its node.
  auto cancel = daemon_->Cli({"cancel", a});
  ASSERT_EQ(cancel.exit_code, 0) << cancel.err;
  ASSERT_TRUE(WaitState(a, "Cancelled")) << daemon_->Job(a).dump();
  ASSERT_TRUE(WaitState(c, "Running")) << daemon_->Job(c).dump() << Log();
  EXPECT_EQ(daemon_->Job(c)["node"], ja["node"]);
  EXPECT_TRUE(WaitFor([&] {
    return cluster_.Tool("squeue", {"-h", "-t", "R", "-o", "%j"}).out.find(".t0.a1\n") !=
           std::string::npos;
  }));

  // Exit codes come back as they were.
  std::string d = RunAsUser({"--gpus", "0"}, "echo done; exit 3");
  ASSERT_TRUE(WaitState(d, "Failed")) << daemon_->Job(d).dump() << Log();
  EXPECT_EQ(daemon_->Job(d)["exitCode"], 3);
  EXPECT_NE(Logs(d).find("done"), std::string::npos);
}

TEST_F(SlurmBerthd, AHigherPriorityJobPreemptsThroughSlurmWithTheGraceAndTheVictimIsRequeued) {
  auto job = [](const std::string& name, int priority, const std::string& script) {
    return nlohmann::json{{"apiVersion", "berth/v1"},
                          {"kind", "Job"},
                          {"metadata", {{"name", name}}},
                          {"spec",
                           {{"command", {"/bin/sh", "-c", script}},
                            {"priority", priority},
                            {"terminationGracePeriodSeconds", 20},
                            {"resources", {{"gpus", 4}}}}}}
        .dump();
  };
  // The victims checkpoint on SIGTERM (a line, half a second) and exit 143.
  const std::string low_script =
      "trap 'echo term $BERTH_ATTEMPT; sleep 0.5; echo saved; exit 143' TERM; "
      "echo start $BERTH_ATTEMPT; while true; do sleep 0.1; done";
  std::string low1 = SubmitDoc(*daemon_, work_, job("low1", 0, low_script));
  std::string low2 = SubmitDoc(*daemon_, work_, job("low2", 0, low_script));
  ASSERT_TRUE(WaitState(low1, "Running")) << Log();
  ASSERT_TRUE(WaitState(low2, "Running")) << Log();
  ASSERT_TRUE(WaitFor([&] { return Logs(low1).find("start 1") != std::string::npos; }));
  ASSERT_TRUE(WaitFor([&] { return Logs(low2).find("start 1") != std::string::npos; }));

  std::string high = SubmitDoc(*daemon_, work_, job("high", 10, "echo high; exec sleep 60"));
  ASSERT_TRUE(WaitState(high, "Running", 30s)) << daemon_->Job(high).dump() << Log();
  // Exactly one victim, which got SIGTERM, finished its checkpoint and went back to the queue.
  std::string victim = Logs(low1).find("term 1") != std::string::npos ? low1 : low2;
  std::string spared = victim == low1 ? low2 : low1;
  EXPECT_NE(Logs(victim).find("saved"), std::string::npos) << Logs(victim);
  EXPECT_EQ(Logs(spared).find("term"), std::string::npos) << Logs(spared);
  EXPECT_EQ(daemon_->State(spared), "Running");
  auto events = daemon_->Get("/api/v1/events?job=" + victim).dump();
  EXPECT_NE(events.find("JobPreempted"), std::string::npos) << events;
  EXPECT_TRUE(WaitState(victim, "Pending")) << daemon_->Job(victim).dump();
  EXPECT_NE(daemon_->Job(high)["node"], daemon_->Job(spared)["node"]);
}

TEST_F(SlurmBerthd, BerthdKilledAndRestartedReattachesBySlurmJobIdsAndLosesNothing) {
  std::string done_file = cluster_.dir() + "/go";
  // `a` ends while berthd is down, with code 7; `b` keeps running.
  std::string a = RunAsUser({"--gpus", "2"}, "echo a-started; while [ ! -e " + done_file +
                                                 " ]; do sleep 0.1; done; echo a-ending; exit 7");
  std::string b = RunAsUser({"--gpus", "2"}, "echo b-started; exec sleep 60");
  ASSERT_TRUE(WaitState(a, "Running")) << Log();
  ASSERT_TRUE(WaitState(b, "Running")) << Log();
  auto before_b = daemon_->Job(b);

  daemon_->Kill();
  WriteFile(done_file, "");
  // a's Slurm job ends while nobody watches (Slurm records the shim's exit,
  // COMPLETED; the task's code is in its status file).
  ASSERT_TRUE(WaitFor([&] {
    auto sq = cluster_.Tool("squeue", {"-h", "-t", "all", "-o", "%j %T"});
    return sq.out.find("job-" + a + ".t0.a1 COMPLETED") != std::string::npos;
  })) << cluster_.Tool("squeue", {"-h", "-t", "all", "-o", "%j %T"}).out;

  ASSERT_TRUE(daemon_->Start()) << Log();
  ASSERT_TRUE(WaitState(a, "Failed")) << daemon_->Job(a).dump() << Log();
  EXPECT_EQ(daemon_->Job(a)["exitCode"], 7);
  EXPECT_NE(Logs(a).find("a-ending"), std::string::npos) << Logs(a);
  // b is still the same running task: same attempt, node and GPUs.
  auto after_b = daemon_->Job(b);
  EXPECT_EQ(after_b["state"], "Running");
  EXPECT_EQ(after_b["attempts"], before_b["attempts"]);
  EXPECT_EQ(after_b["node"], before_b["node"]);
  EXPECT_EQ(after_b["gpus"], before_b["gpus"]);
  // And berthd can still stop it through Slurm.
  ASSERT_EQ(daemon_->Cli({"cancel", b}).exit_code, 0);
  ASSERT_TRUE(WaitState(b, "Cancelled")) << daemon_->Job(b).dump() << Log();
  EXPECT_TRUE(WaitFor([&] {
    return cluster_.Tool("squeue", {"-h", "-t", "R,PD,CG", "-o", "%j"}).out.empty();
  }));
}

TEST_F(SlurmBerthd, WhileSlurmctldIsDownJobsStayQueuedAndRunningTasksStillReportTheirEnd) {
  std::string go = cluster_.dir() + "/go";
  std::string running =
      RunAsUser({"--gpus", "1"}, "while [ ! -e " + go + " ]; do sleep 0.1; done; exit 4");
  ASSERT_TRUE(WaitState(running, "Running")) << Log();

  cluster_.StopController();
  // A task that ends meanwhile is reported from its status file.
  WriteFile(go, "");
  ASSERT_TRUE(WaitState(running, "Failed")) << daemon_->Job(running).dump() << Log();
  EXPECT_EQ(daemon_->Job(running)["exitCode"], 4);
  // A new job cannot be submitted to Slurm: it goes back to Berth's queue, with the reason.
  std::string waiting = RunAsUser({"--gpus", "1"}, "echo ran");
  ASSERT_TRUE(WaitFor([&] {
    return daemon_->Get("/api/v1/events?job=" + waiting).dump().find("cannot be reached") !=
           std::string::npos;
  })) << daemon_->Get("/api/v1/events?job=" + waiting).dump()
      << Log();
  std::string state = daemon_->State(waiting);
  EXPECT_TRUE(state == "Pending" || state == "Scheduled" || state == "Preempted") << state;

  // slurmctld back: the job runs.
  cluster_.StartController();
  ASSERT_TRUE(WaitState(waiting, "Succeeded", 40s)) << daemon_->Job(waiting).dump() << Log();
  EXPECT_NE(Logs(waiting).find("ran"), std::string::npos);
}

TEST_F(SlurmBerthd, AKilledSlurmdLosesTheTaskAndTheJobIsRequeuedOnTheOtherNode) {
  std::string a = RunAsUser({"--gpus", "4"}, "exec sleep 120");
  ASSERT_TRUE(WaitState(a, "Running")) << Log();
  std::string node = daemon_->Job(a)["node"];
  std::string other = node == "n1" ? "n2" : "n1";

  cluster_.KillNode(node);
  // Slurm marks the node down and the job NODE_FAIL; Berth sees the task
  // lost, stops offering the node and runs the job again on the other one.
  ASSERT_TRUE(WaitFor(
      [&] {
        auto j = daemon_->Job(a);
        return j["state"] == "Running" && j["attempts"] == 2;
      },
      40s))
      << daemon_->Job(a).dump() << Log();
  EXPECT_EQ(daemon_->Job(a)["node"], other);
  auto events = daemon_->Get("/api/v1/events?job=" + a);
  EXPECT_NE(events.dump().find("JobLost"), std::string::npos) << events.dump();
  EXPECT_NE(events.dump().find("NODE_FAIL"), std::string::npos) << events.dump();

  // The node comes back: Slurm ends what was left of the old job there.
  cluster_.StartNode(node);
  EXPECT_TRUE(
      WaitFor([&] { return cluster_.Sinfo().find(node + " idle") != std::string::npos; }, 30s))
      << cluster_.Sinfo();
}

TEST_F(SlurmBerthd, AnEightWorkerDdpJobTrainsAcrossBothNodes) {
  const char* python = "/usr/bin/python3";
  if (RunCommand({python, "-c", "import torch.distributed"}).exit_code != 0)
    BERTH_SKIP_UNLESS_REQUIRED("python3-torch is not installed (scripts/install-deps.sh --test)");
  nlohmann::json doc = {
      {"apiVersion", "berth/v1"},
      {"kind", "TrainingJob"},
      {"metadata", {{"name", "ddp8"}}},
      {"spec",
       {{"workers", 8},
        {"gpusPerWorker", 1},
        {"command", {python, std::string(BERTH_SOURCE_DIR) + "/examples/training/ddp_train.py"}},
        {"env", {{"TOTAL_STEPS", "20"}}}}}};
  WriteFile(work_ / "ddp8.json", doc.dump());
  CommandResult sub = daemon_->Cli({"train", "-f", work_ / "ddp8.json"});
  ASSERT_EQ(sub.exit_code, 0) << sub.err;
  std::string id = Trim(sub.out);
  ASSERT_TRUE(WaitFor(
      [&] {
        std::string s = daemon_->State(id);
        return s == "Succeeded" || s == "Failed";
      },
      240s))
      << daemon_->Job(id).dump() << Log();
  auto job = daemon_->Job(id);
  ASSERT_EQ(job["state"], "Succeeded")
      << job.dump() << daemon_->GetText("/api/v1/jobs/" + id + "/logs?worker=7");
  // Four workers on each node, each node's GPUs 0-3 used once.
  std::map<std::string, std::set<int>> by_node;
  for (const auto& w : job["workers"])
    for (int g : w["gpus"]) by_node[w["node"].get<std::string>()].insert(g);
  ASSERT_EQ(by_node.size(), 2u) << job.dump();
  for (const auto& [node, gpus] : by_node) EXPECT_EQ(gpus.size(), 4u) << node;
  // The torch.distributed environment of each worker, as its shim got it.
  std::set<std::string> node_ranks;
  for (int r = 0; r < 8; ++r) {
    std::string dir = run_root_ + "/job-" + id + ".t" + std::to_string(r) + ".a1";
    auto env = nlohmann::json::parse(ReadFile(dir + "/spec.json"))["env"];
    EXPECT_EQ(env["RANK"], std::to_string(r)) << env.dump();
    EXPECT_EQ(env["WORLD_SIZE"], "8");
    EXPECT_EQ(env["MASTER_ADDR"], "127.0.0.1");  // rank 0's node's NodeAddr
    EXPECT_FALSE(env.value("MASTER_PORT", "").empty());
    EXPECT_TRUE(env.contains("LOCAL_RANK"));
    node_ranks.insert(env.value("NODE_RANK", ""));
  }
  EXPECT_EQ(node_ranks, (std::set<std::string>{"0", "1"}));
  // Rank 0 and rank 7 (on the other node) ended with the same parameters; the loss fell.
  std::string ckpt = daemon_->data_dir() + "/checkpoints/job-" + id;
  auto r0 = nlohmann::json::parse(ReadFile(ckpt + "/result-rank0.json"));
  auto r7 = nlohmann::json::parse(ReadFile(ckpt + "/result-rank7.json"));
  EXPECT_EQ(r0["world"], 8);
  EXPECT_LT(r0["final_loss"].get<double>(), r0["first_loss"].get<double>());
  EXPECT_EQ(r0["params"], r7["params"]);
  EXPECT_EQ(r0["checksum"], r7["checksum"]);
}

// The example pipelines run unchanged with every step a Slurm job.
TEST_F(SlurmBerthd, EveryExamplePipelineSucceedsOnSlurm) {
  std::vector<std::pair<std::string, std::string>> runs;  // file, run id
  std::vector<std::string> files;
  for (const auto& e :
       std::filesystem::directory_iterator(std::string(BERTH_SOURCE_DIR) + "/examples/pipelines"))
    if (e.path().extension() == ".yaml") files.push_back(e.path().string());
  std::sort(files.begin(), files.end());
  for (const auto& f : files) {
    auto kind = model::DocumentKind(ReadFile(f));
    ASSERT_TRUE(kind.ok()) << f;
    if (*kind != "Pipeline") continue;
    CommandResult r = daemon_->Cli({"pipeline", "run", "-f", f});
    ASSERT_EQ(r.exit_code, 0) << f << ": " << r.err;
    runs.emplace_back(f, Trim(r.out));
  }
  ASSERT_GE(runs.size(), 7u);
  auto deadline = std::chrono::steady_clock::now() + 150s;
  for (const auto& [f, id] : runs) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    auto run = WaitRunEnd(*daemon_, id, std::max(left, std::chrono::milliseconds(1)));
    EXPECT_EQ(run["state"], "Succeeded") << f << ":\n" << run.dump(2);
  }
}

// Submit-to-start through Berth on Slurm against srun and sbatch alone on the
// same cluster (docs/slurm.md, "Overhead"). Not part of the suite: run with
//   build/tests/berth_slurm_tests --gtest_also_run_disabled_tests \
//     --gtest_filter='*SubmitToStart*'
TEST_F(SlurmBerthd, DISABLED_SubmitToStartThroughBerthAgainstSrunAndSbatch) {
  const int n = 20;
  auto now_ns = [] {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  };
  auto report = [](const std::string& what, std::vector<double> v) {
    std::sort(v.begin(), v.end());
    auto at = [&](double q) { return v[std::min(v.size() - 1, size_t(q * (v.size() - 1) + 0.5))]; };
    std::printf("%-8s n=%zu p50=%.3fs p99=%.3fs min=%.3fs\n", what.c_str(), v.size(), at(0.5),
                at(0.99), v.front());
  };
  std::vector<double> berth, ack, srun, sbatch, sbatch_nl;
  for (int i = 0; i < n; ++i) {
    int64_t t0 = now_ns();
    std::string id = SubmitScript(*daemon_, {"--gpus", "1"}, "date +%s%N");
    int64_t acked = now_ns();
    ASSERT_TRUE(WaitState(id, "Succeeded")) << daemon_->Job(id).dump();
    berth.push_back((std::stoll(Trim(Logs(id))) - t0) / 1e9);
    ack.push_back((acked - t0) / 1e9);

    t0 = now_ns();
    auto r = cluster_.Tool("srun", {"--gres=gpu:1", "date", "+%s%N"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    srun.push_back((std::stoll(Trim(r.out)) - t0) / 1e9);

    std::string out = cluster_.dir() + "/sbatch-" + std::to_string(i) + ".out";
    t0 = now_ns();
    r = cluster_.Tool("sbatch", {"--gres=gpu:1", "--output=" + out, "--wrap", "date +%s%N"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    ASSERT_TRUE(WaitFor([&] { return !Trim(ReadFile(out)).empty(); }, 30s));
    sbatch.push_back((std::stoll(Trim(ReadFile(out))) - t0) / 1e9);

    // sbatch with Berth's own flags: the node named, no requeue.
    out += ".nl";
    t0 = now_ns();
    r = cluster_.Tool(
        "sbatch", {"--gres=gpu:1", "--nodelist=n1", "--nodes=1", "--ntasks=1", "--cpus-per-task=1",
                   "--no-requeue", "--output=" + out, "--wrap", "date +%s%N"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    ASSERT_TRUE(WaitFor([&] { return !Trim(ReadFile(out)).empty(); }, 30s));
    sbatch_nl.push_back((std::stoll(Trim(ReadFile(out))) - t0) / 1e9);
  }
  report("berth", berth);
  report("ack", ack);  // `berth run` returned: the submission is durable
  report("srun", srun);
  report("sbatch", sbatch);
  report("sbatch-n", sbatch_nl);
}

}  // namespace
}  // namespace berth::testing
