// Training gangs in the job controller on a ManualClock with the
// FakeExecutor: the torch.distributed environment, a failed or lost worker
// stopping the gang and restarting it per restartPolicy/backoffLimit,
// successPolicy Worker0, elastic grow and shrink, and a restarted controller
// picking up a running gang.
#include <csignal>

#include "job_controller_fixture.h"

namespace berth::controllers {
namespace {

using nlohmann::json;

class TrainingControllerTest : public JobControllerTest {};

// The training status the controller persists (restarts, world sizes,
// workers). The one place these tests read where it is kept.
json TrainingStatus(store::Store& store, model::JobId id) {
  auto s = store.GetTrainingStatus(id);
  if (!s.ok() || !*s) return json::object();
  return **s;
}

TEST_F(TrainingControllerTest, GangStartsEveryWorkerWithTheDistributedEnvironment) {
  Open(2, "fifo",
       json::array({{{"match", {{"task", 0}}}, {"runMs", 3000}},
                    {{"match", {{"task", 1}}}, {"startDelayMs", 100}, {"runMs", 2000}}}));
  model::JobId id = Submit(TrainDoc("ddp", {{"workers", 2}}));
  // Worker 0's start makes the job Running; worker 1 starts 100 ms later.
  EXPECT_EQ(State(id), "Running");
  auto w0 = Task(id, 0, 1), w1 = Task(id, 1, 1);
  EXPECT_EQ(w0.spec.env["WORLD_SIZE"], "2");
  EXPECT_EQ(w0.spec.env["RANK"], "0");
  EXPECT_EQ(w1.spec.env["RANK"], "1");
  EXPECT_EQ(w0.spec.env["MASTER_ADDR"], "127.0.0.1");  // node n1's address in the inventory
  EXPECT_EQ(w0.spec.env["MASTER_PORT"], w1.spec.env["MASTER_PORT"]);
  EXPECT_EQ(w1.spec.env["BERTH_CHECKPOINT_DIR"], dir_ + "/checkpoints/job-" + std::to_string(id));
  EXPECT_EQ(w0.spec.node, "n1");
  ASSERT_EQ(w0.spec.gpus.size(), 1u);
  ASSERT_EQ(w1.spec.gpus.size(), 1u);
  EXPECT_NE(w0.spec.gpus[0], w1.spec.gpus[0]);
  Advance(100);
  EXPECT_EQ(TrainingStatus(*store_, id)["workers"][1]["state"], "Running");
  // Worker 1 exits 0 first; the job succeeds when worker 0 does.
  Advance(2100);
  EXPECT_EQ(State(id), "Running");
  Advance(900);
  model::Job j = Job(id);
  EXPECT_EQ(model::JobStateName(j.state), std::string("Succeeded"));
  EXPECT_EQ(j.message, "all 2 worker(s) exited with code 0");
  EXPECT_EQ(j.end_time, kT0 + 3000);
}

// Worker 1 exits with code 3 five seconds into every attempt. Its failure
// stops worker 0 (SIGTERM; it exits after 1 s) and the gang restarts once
// (backoffLimit 1); the second failure ends the job.
TEST_F(TrainingControllerTest, FailedWorkerStopsTheGangWhichRestartsUntilTheBackoffLimit) {
  Open(2, "fifo",
       json::array({{{"match", {{"task", 1}}}, {"runMs", 5000}, {"exitCode", 3}},
                    {{"match", {{"task", 0}}}, {"termDelayMs", 1000}}}));
  model::JobId id = Submit(TrainDoc("crashy", {{"workers", 2},
                                               {"restartPolicy", "OnFailure"},
                                               {"backoffLimit", 1},
                                               {"terminationGracePeriodSeconds", 10}}));
  Advance(5000);
  auto w0 = Task(id, 0, 1);
  ASSERT_EQ(w0.signals.size(), 1u);
  EXPECT_EQ(w0.signals[0].signal, SIGTERM);
  EXPECT_EQ(w0.grace, 10 * kSecond);
  // Worker 0 still holds its GPU while it stops; nothing restarts yet.
  EXPECT_EQ(State(id), "Running");
  EXPECT_EQ(HeldGpus(id).size(), 2u);
  EXPECT_EQ(Job(id).attempts, 1);
  Advance(1000);
  // The whole gang ended: relaunched as attempt 2 on both GPUs.
  model::Job j = Job(id);
  EXPECT_EQ(model::JobStateName(j.state), std::string("Running"));
  EXPECT_EQ(j.attempts, 2);
  EXPECT_TRUE(exec_->Find({id, 0, 2}).has_value());
  EXPECT_TRUE(exec_->Find({id, 1, 2}).has_value());
  EXPECT_EQ(Task(id, 1, 2).spec.env["BERTH_RESTARTS"], "1");
  auto restart = LastEvent(id, "TrainingRestart");
  ASSERT_TRUE(restart.has_value());
  EXPECT_NE(
      restart->message.find("worker 1 exited with code 3; restarting the gang (0 restart(s) left)"),
      std::string::npos)
      << restart->message;
  Advance(6000);
  j = Job(id);
  EXPECT_EQ(model::JobStateName(j.state), std::string("Failed"));
  EXPECT_EQ(j.attempts, 2);
  EXPECT_EQ(j.exit_code, 3);
  EXPECT_EQ(j.message, "worker 1 exited with code 3; backoffLimit 1 reached (0 restart(s) left)");
  EXPECT_EQ(TrainingStatus(*store_, id)["restarts"], 1);
  EXPECT_TRUE(exec_->Live().empty());
  EXPECT_TRUE(HeldGpus(id).empty());
}

TEST_F(TrainingControllerTest, RestartPolicyDecidesWhetherAFailedGangIsRetried) {
  Open(4, "fifo", json::array({{{"match", {{"task", 0}}}, {"runMs", 1000}, {"exitCode", 3}}}));
  model::JobId never = Submit(TrainDoc(
      "never", {{"workers", 2}, {"restartPolicy", "Never"}, {"terminationGracePeriodSeconds", 5}}));
  model::JobId by_code = Submit(TrainDoc("by-code", {{"workers", 2},
                                                     {"restartPolicy", "ExitCode"},
                                                     {"retryExitCodes", {"75"}},
                                                     {"terminationGracePeriodSeconds", 5}}));
  Advance(1000);
  // Worker 1 (default rule: runs until stopped, dies of SIGTERM) ends at once.
  model::Job n = Job(never), c = Job(by_code);
  EXPECT_EQ(model::JobStateName(n.state), std::string("Failed"));
  EXPECT_EQ(n.attempts, 1);
  EXPECT_EQ(n.message, "worker 0 exited with code 3; restartPolicy Never (3 restart(s) left)");
  EXPECT_EQ(model::JobStateName(c.state), std::string("Failed"));
  EXPECT_EQ(c.attempts, 1);
  EXPECT_NE(
      c.message.find(
          "worker 0 exited with code 3; its exit code is not retried under restartPolicy ExitCode"),
      std::string::npos)
      << c.message;
}

TEST_F(TrainingControllerTest, LostWorkerRestartsTheGang) {
  Open(2, "fifo",
       json::array({{{"match", {{"task", 1}, {"attempt", 1}}},
                     {"lostAfterMs", 4000},
                     {"lostMessage", "node n1 stopped answering"}},
                    {{"runMs", 10000}}}));
  model::JobId id =
      Submit(TrainDoc("lossy", {{"workers", 2}, {"terminationGracePeriodSeconds", 5}}));
  Advance(4000);
  auto failed = LastEvent(id, "TrainingWorkerFailed");
  ASSERT_TRUE(failed.has_value());
  EXPECT_EQ(failed->message, "worker 1 was lost (node n1 stopped answering); stopping the gang");
  // Worker 0 dies of the SIGTERM (default: honoured at once), and the gang is relaunched.
  EXPECT_EQ(Job(id).attempts, 2);
  EXPECT_EQ(State(id), "Running");
  Advance(10000);
  EXPECT_EQ(State(id), "Succeeded");
}

// successPolicy Worker0: worker 0 succeeds; worker 1 ignores SIGTERM and
// would run forever. It gets the grace period to exit, then is stopped and
// killed, and the job succeeds.
TEST_F(TrainingControllerTest, Worker0SuccessStopsAStragglerAfterTheGrace) {
  Open(2, "fifo",
       json::array({{{"match", {{"task", 0}}}, {"runMs", 1000}},
                    {{"match", {{"task", 1}}}, {"ignoreSigterm", true}}}));
  model::JobId id =
      Submit(TrainDoc("straggler", {{"workers", 2}, {"terminationGracePeriodSeconds", 2}}));
  Advance(1000);
  EXPECT_EQ(State(id), "Running");
  Advance(2000);  // the grace after worker 0's exit: SIGTERM to worker 1
  auto w1 = Task(id, 1, 1);
  ASSERT_EQ(w1.signals.size(), 1u);
  EXPECT_EQ(w1.signals[0].time, kT0 + 3000);
  EXPECT_EQ(State(id), "Running");
  Advance(2000);  // its own grace: SIGKILL
  model::Job j = Job(id);
  EXPECT_EQ(model::JobStateName(j.state), std::string("Succeeded"));
  EXPECT_EQ(j.message,
            "worker 0 succeeded; 1 worker(s) still running after the grace period were stopped");
  EXPECT_EQ(j.end_time, kT0 + 5000);
}

// An elastic job (1 to 4 workers) starts at the size that fits, grows when
// GPUs free up and shrinks for higher-priority work, checkpointing (SIGTERM)
// at each resize.
TEST_F(TrainingControllerTest, ElasticJobGrowsWhenGpusFreeAndShrinksForHigherPriorityWork) {
  Open(
      3, "fairshare",
      json::array({{{"match", {{"jobName", "blocker"}}}, {"runMs", 10000}},
                   {{"match", {{"jobName", "elastic"}}}, {"termDelayMs", 500}, {"termExitCode", 0}},
                   {{"match", {{"jobName", "high"}}}, {"runMs", 20000}}}));
  model::JobId blocker = Submit(JobDoc("blocker", 2));
  model::JobId id = Submit(TrainDoc(
      "elastic", {{"elasticPolicy", {{"minReplicas", 1}, {"maxReplicas", 4}, {"maxRestarts", 10}}},
                  {"terminationGracePeriodSeconds", 20}}));
  ASSERT_EQ(State(blocker), "Running");
  ASSERT_EQ(State(id), "Running");
  EXPECT_EQ(HeldGpus(id).size(), 1u);
  EXPECT_EQ(Task(id, 0, 1).spec.env["WORLD_SIZE"], "1");

  // The blocker ends: the job checkpoints (SIGTERM, 0.5 s) and relaunches at 3.
  Advance(10000);
  ASSERT_TRUE(LastEvent(id, "TrainingGrowing").has_value());
  EXPECT_EQ(Task(id, 0, 1).signals.size(), 1u);
  EXPECT_EQ(HeldGpus(id).size(), 1u);
  Advance(500);
  EXPECT_EQ(State(id), "Running");
  EXPECT_EQ(Job(id).attempts, 2);
  EXPECT_EQ(HeldGpus(id).size(), 3u);
  EXPECT_EQ(Task(id, 2, 2).spec.env["WORLD_SIZE"], "3");

  // Higher-priority work needs two GPUs: the job shrinks to one and the
  // newcomer starts once the gang has let go of them.
  model::JobId high = Submit(JobDoc("high", 2, "/bin/work", 10));
  ASSERT_TRUE(LastEvent(id, "TrainingShrinking").has_value());
  EXPECT_EQ(State(high), "Pending");
  Advance(500);
  EXPECT_EQ(State(high), "Running");
  EXPECT_EQ(State(id), "Running");
  EXPECT_EQ(Job(id).attempts, 3);
  EXPECT_EQ(HeldGpus(id).size(), 1u);
  json status = TrainingStatus(*store_, id);
  std::vector<int> sizes;
  for (const auto& h : status["worldSizeHistory"]) sizes.push_back(h["worldSize"]);
  EXPECT_EQ(sizes, (std::vector<int>{1, 3, 1}));
  EXPECT_EQ(status["resizes"], 2);
  EXPECT_EQ(ctl_->GetStats().preemptions, 0);  // resizes are not preemptions
}

// A restarted controller finds a gang running: its workers are watched
// again, and the gang ends normally; a worker that failed while the daemon
// was down still restarts the gang.
TEST_F(TrainingControllerTest, RestartedControllerPicksUpARunningGang) {
  Open(4, "fifo",
       json::array({{{"match", {{"jobName", "steady"}}}, {"runMs", 60000}},
                    {{"match", {{"jobName", "flaky"}, {"task", 1}, {"attempt", 1}}},
                     {"runMs", 20000},
                     {"exitCode", 1}},
                    {{"match", {{"jobName", "flaky"}}}, {"runMs", 60000}}}));
  model::JobId steady = Submit(TrainDoc("steady", {{"workers", 2}}));
  model::JobId flaky =
      Submit(TrainDoc("flaky", {{"workers", 2}, {"terminationGracePeriodSeconds", 5}}));
  Advance(10000);
  ctl_.reset();
  exec_->Shutdown();
  Advance(20000);  // flaky's worker 1 fails at +20 s, unobserved
  StartController();
  EXPECT_EQ(State(steady), "Running");
  EXPECT_TRUE(Task(steady, 0, 1).signals.empty());
  // The failure recorded while down stops flaky's gang now and relaunches it.
  auto w0 = Task(flaky, 0, 1);
  ASSERT_EQ(w0.signals.size(), 1u);
  EXPECT_EQ(w0.signals[0].time, kT0 + 30000);
  EXPECT_EQ(Job(flaky).attempts, 2);
  EXPECT_EQ(State(flaky), "Running");
  EXPECT_EQ(Task(flaky, 1, 2).spec.env["BERTH_RESTARTS"], "1");
  AdvanceTo(kT0 + 60000);
  model::Job s = Job(steady);
  EXPECT_EQ(model::JobStateName(s.state), std::string("Succeeded"));
  EXPECT_EQ(s.attempts, 1);
  Advance(60000);
  EXPECT_EQ(State(flaky), "Succeeded");
}

}  // namespace
}  // namespace berth::controllers
