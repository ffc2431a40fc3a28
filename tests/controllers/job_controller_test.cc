// The job controller on a ManualClock with the FakeExecutor: start failures,
// exits, lost tasks, preemption's grace period, cancel, and a restarted
// controller that rebuilds from the store and reconciles with the executor.
#include <sqlite3.h>

#include <algorithm>
#include <csignal>

#include "job_controller_fixture.h"

namespace berth::controllers {
namespace {

using nlohmann::json;

TEST_F(JobControllerTest, AsynchronousStartFailureFailsTheJobWithItsMessage) {
  Open(1, "fifo",
       json::array({{{"match", {{"command", "/opt/missing"}}},
                     {"startError", "command not found: /opt/missing"},
                     {"startDelayMs", 20}},
                    {{"runMs", 1000}}}));
  model::JobId bad = Submit(JobDoc("bad", 1, "/opt/missing"));
  model::JobId next = Submit(JobDoc("next", 1));
  // Start only began: the job is Scheduled until the executor reports.
  EXPECT_EQ(State(bad), "Scheduled");
  EXPECT_EQ(HeldGpus(bad), std::vector<int>{0});
  Advance(20);
  model::Job j = Job(bad);
  EXPECT_EQ(model::JobStateName(j.state), std::string("Failed"));
  EXPECT_EQ(j.message, "failed to start: command not found: /opt/missing");
  EXPECT_EQ(j.exit_code, 127);
  EXPECT_EQ(j.end_time, kT0 + 20);
  EXPECT_TRUE(HeldGpus(bad).empty());
  // Its GPU went to the next job at once.
  EXPECT_EQ(State(next), "Running");
  Advance(1000);
  EXPECT_EQ(State(next), "Succeeded");
}

TEST_F(JobControllerTest, SynchronousStartErrorFailsTheJob) {
  Open(1, "fifo",
       json::array({{{"match", {{"jobName", "refused"}}}, {"reject", "no such node: n9"}}}));
  model::JobId id = Submit(JobDoc("refused", 1));
  model::Job j = Job(id);
  EXPECT_EQ(model::JobStateName(j.state), std::string("Failed"));
  EXPECT_EQ(j.message, "failed to start: no such node: n9");
  EXPECT_EQ(j.exit_code, 127);
  EXPECT_TRUE(exec_->Tasks().empty());
}

TEST_F(JobControllerTest, ExitStatusAndTimesComeFromTheExecutor) {
  Open(2, "fifo",
       json::array({{{"match", {{"jobName", "ok"}}}, {"startDelayMs", 50}, {"runMs", 5000}},
                    {{"match", {{"jobName", "bad"}}}, {"runMs", 3000}, {"exitCode", 3}}}));
  model::JobId ok = Submit(JobDoc("ok", 1));
  model::JobId bad = Submit(JobDoc("bad", 1));
  EXPECT_EQ(State(ok), "Scheduled");
  EXPECT_EQ(State(bad), "Running");
  Advance(50);
  EXPECT_EQ(State(ok), "Running");
  EXPECT_EQ(Job(ok).start_time, kT0 + 50);
  Advance(10 * kSecond);
  model::Job o = Job(ok), b = Job(bad);
  EXPECT_EQ(model::JobStateName(o.state), std::string("Succeeded"));
  EXPECT_EQ(o.end_time, kT0 + 5050);
  EXPECT_EQ(o.exit_code, 0);
  EXPECT_EQ(model::JobStateName(b.state), std::string("Failed"));
  EXPECT_EQ(b.message, "exited with code 3");
  EXPECT_EQ(b.exit_code, 3);
  EXPECT_EQ(b.end_time, kT0 + 3000);
  // The external id is recorded with the start.
  auto started = LastEvent(ok, "JobStarted");
  ASSERT_TRUE(started.has_value());
  EXPECT_EQ(started->data.value("externalId", ""), Task(ok, 0, 1).external_id);
}

TEST_F(JobControllerTest, TimeLimitStopsTheTask) {
  Open(1, "fifo", json::array({{{"termDelayMs", 100}}}));
  json doc = JobDoc("limited", 1, "/bin/work", 0, 5);
  doc["spec"]["timeLimit"] = 60;
  model::JobId id = Submit(doc);
  Advance(60 * kSecond - 1);
  EXPECT_EQ(State(id), "Running");
  Advance(1);
  auto t = Task(id, 0, 1);
  ASSERT_EQ(t.signals.size(), 1u);
  EXPECT_EQ(t.signals[0].signal, SIGTERM);
  EXPECT_EQ(t.grace, 5 * kSecond);
  Advance(100);
  model::Job j = Job(id);
  EXPECT_EQ(model::JobStateName(j.state), std::string("Failed"));
  EXPECT_EQ(j.message, "killed by SIGTERM");
  EXPECT_EQ(j.end_time, kT0 + 60 * kSecond + 100);
}

TEST_F(JobControllerTest, LostRunningTaskFailsTheJob) {
  Open(1, "fifo",
       json::array({{{"lostAfterMs", 2000}, {"lostMessage", "node n1 stopped answering"}}}));
  model::JobId id = Submit(JobDoc("lost", 1));
  EXPECT_EQ(State(id), "Running");
  Advance(2000);
  model::Job j = Job(id);
  EXPECT_EQ(model::JobStateName(j.state), std::string("Failed"));
  EXPECT_EQ(j.message, "lost: node n1 stopped answering");
  EXPECT_EQ(j.end_time, kT0 + 2000);
  EXPECT_EQ(EventTypes(id).back(), "JobLost");
  EXPECT_TRUE(HeldGpus(id).empty());
}

TEST_F(JobControllerTest, TaskLostBeforeItStartedIsRequeuedAndRunsAgain) {
  Open(
      1, "fifo",
      json::array({{{"match", {{"attempt", 1}}}, {"startDelayMs", 10000}, {"lostAtMs", kT0 + 1000}},
                   {{"runMs", 500}}}));
  model::JobId id = Submit(JobDoc("unlucky", 1));
  EXPECT_EQ(State(id), "Scheduled");
  Advance(1000);
  // Never started: requeued, bound again (attempt 2) and started.
  EXPECT_EQ(State(id), "Running");
  EXPECT_EQ(Job(id).attempts, 2);
  Advance(500);
  model::Job j = Job(id);
  EXPECT_EQ(model::JobStateName(j.state), std::string("Succeeded"));
  EXPECT_EQ(j.attempts, 2);
  std::vector<std::string> types = EventTypes(id);
  std::vector<std::string> want = {"JobSubmitted", "JobScheduled", "JobLost",  "JobRequeued",
                                   "JobScheduled", "JobStarted",   "JobExited"};
  EXPECT_EQ(types, want);
}

// A higher-priority job preempts a running one. The victim gets SIGTERM and
// keeps its GPUs while it checkpoints (10 s here, within the 30 s grace);
// the preemptor waits for them and starts the moment the victim exits.
TEST_F(JobControllerTest, PreemptedVictimKeepsItsGpusUntilItExits) {
  Open(
      2, "fairshare",
      json::array({{{"match", {{"jobName", "low"}}}, {"termDelayMs", 10000}, {"termExitCode", 143}},
                   {{"match", {{"jobName", "high"}}}, {"runMs", 5000}},
                   {{"runMs", 1000}}}));
  model::JobId low = Submit(JobDoc("low", 2, "/bin/work", 0, 30));
  ASSERT_EQ(State(low), "Running");
  Advance(kMinute);
  model::JobId high = Submit(JobDoc("high", 2, "/bin/work", 10));
  auto victim = Task(low, 0, 1);
  ASSERT_EQ(victim.signals.size(), 1u);
  EXPECT_EQ(victim.signals[0].signal, SIGTERM);
  EXPECT_EQ(victim.signals[0].time, kT0 + kMinute);
  EXPECT_EQ(victim.grace, 30 * kSecond);
  EXPECT_EQ(State(high), "Pending");
  EXPECT_NE(ctl_->WaitingReason(high).find("to release GPU"), std::string::npos)
      << ctl_->WaitingReason(high);
  EXPECT_EQ(State(low), "Running");
  EXPECT_EQ(HeldGpus(low), (std::vector<int>{0, 1}));

  Advance(10 * kSecond - 1);
  EXPECT_EQ(State(low), "Running");
  EXPECT_EQ(State(high), "Pending");
  EXPECT_EQ(HeldGpus(low), (std::vector<int>{0, 1}));
  Advance(1);
  // The victim exited on its own: requeued (not failed), no SIGKILL.
  EXPECT_EQ(State(low), "Pending");
  EXPECT_EQ(Task(low, 0, 1).signals.size(), 1u);
  EXPECT_EQ(State(high), "Running");
  EXPECT_EQ(Job(high).start_time, kT0 + kMinute + 10 * kSecond);
  EXPECT_EQ(HeldGpus(high), (std::vector<int>{0, 1}));
  EXPECT_EQ(ctl_->GetStats().preemptions, 1);
  std::vector<std::string> types = EventTypes(low);
  std::vector<std::string> tail(types.end() - 3, types.end());
  EXPECT_EQ(tail, (std::vector<std::string>{"JobPreempting", "JobPreempted", "JobRequeued"}));

  // When the preemptor ends, the victim runs again (attempt 2).
  Advance(5 * kSecond);
  EXPECT_EQ(State(high), "Succeeded");
  EXPECT_EQ(State(low), "Running");
  EXPECT_EQ(Job(low).attempts, 2);
  model::Job requeued = Job(low);
  EXPECT_EQ(requeued.attained_service, 2 * (kMinute + 10 * kSecond));  // 2 GPUs for 70 s, in GPU-ms
}

TEST_F(JobControllerTest, VictimThatIgnoresSigtermIsKilledWhenTheGraceEnds) {
  Open(2, "fairshare",
       json::array(
           {{{"match", {{"jobName", "stubborn"}}}, {"ignoreSigterm", true}}, {{"runMs", 1000}}}));
  model::JobId low = Submit(JobDoc("stubborn", 2, "/bin/work", 0, 20));
  Advance(kSecond);
  model::JobId high = Submit(JobDoc("high", 1, "/bin/work", 10));
  Advance(20 * kSecond - 1);
  EXPECT_EQ(State(low), "Running");
  EXPECT_EQ(State(high), "Pending");
  EXPECT_EQ(HeldGpus(low), (std::vector<int>{0, 1}));
  Advance(1);
  auto t = Task(low, 0, 1);
  ASSERT_EQ(t.signals.size(), 2u);
  EXPECT_EQ(t.signals[1].signal, SIGKILL);
  EXPECT_EQ(t.signals[1].time, kT0 + 21 * kSecond);
  EXPECT_EQ(State(high), "Running");
  EXPECT_EQ(Job(high).start_time, kT0 + 21 * kSecond);
  // Requeued and, with one GPU free, not bound again until it fits (2 GPUs).
  EXPECT_EQ(State(low), "Pending");
  auto preempted = LastEvent(low, "JobPreempted");
  ASSERT_TRUE(preempted.has_value());
  EXPECT_EQ(preempted->data.value("signal", 0), SIGKILL);
  EXPECT_NE(preempted->message.find("killed after the 20.0s grace period"), std::string::npos)
      << preempted->message;
}

TEST_F(JobControllerTest, CancelStopsTheTaskAndEndsCancelled) {
  Open(1, "fifo", json::array({{{"termDelayMs", 300}}}));
  model::JobId id = Submit(JobDoc("cancel-me", 1, "/bin/work", 0, 10));
  ASSERT_EQ(State(id), "Running");
  auto r = ctl_->Cancel(id);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->message, "cancelling");
  EXPECT_EQ(Task(id, 0, 1).signals.size(), 1u);
  // Idempotent: a second cancel sends nothing more.
  ASSERT_TRUE(ctl_->Cancel(id).ok());
  Advance(300);
  EXPECT_EQ(State(id), "Cancelled");
  EXPECT_EQ(Task(id, 0, 1).signals.size(), 1u);
  auto again = ctl_->Cancel(id);
  EXPECT_EQ(again.status().code(), StatusCode::kFailedPrecondition);
}

// A restarted controller over the same store and executor: the task that
// ended while nobody watched gets its recorded status and end time, the one
// still running is watched again, the one the executor has no trace of is
// lost, and the pending job keeps its place and runs when GPUs free up.
TEST_F(JobControllerTest, RestartRebuildsFromTheStoreAndReconcilesWithTheExecutor) {
  Open(3, "fifo",
       json::array({{{"match", {{"jobName", "short"}}}, {"runMs", 60 * kSecond}, {"exitCode", 4}},
                    {{"match", {{"jobName", "long"}}}, {"runMs", 200 * kSecond}},
                    {{"match", {{"jobName", "gone"}}}},  // runs until stopped
                    {{"runMs", 5 * kSecond}}}));
  model::JobId shrt = Submit(JobDoc("short", 1));
  model::JobId lng = Submit(JobDoc("long", 1));
  model::JobId gone = Submit(JobDoc("gone", 1));
  Advance(kSecond);
  model::JobId big = Submit(JobDoc("big", 3));
  ASSERT_EQ(State(gone), "Running");
  ASSERT_EQ(State(big), "Pending");
  // A slow submitter's job is stored but the controller never saw it.
  auto spec = model::ParseJobSpec(JobDoc("late", 1).dump());
  ASSERT_TRUE(spec.ok());
  ASSERT_TRUE(store_->SubmitJob(*spec, clock_.Now()).ok());
  // The daemon goes away at +10 s; nothing is reported while it is down.
  Advance(9 * kSecond);
  ctl_.reset();
  exec_->Shutdown();
  Advance(60 * kSecond);  // "short" ends at +60 s meanwhile
  exec_->Forget({gone, 0, 1});
  EXPECT_EQ(State(shrt), "Running");  // the store does not know yet

  StartController();
  model::Job s = Job(shrt);
  EXPECT_EQ(model::JobStateName(s.state), std::string("Failed"));
  EXPECT_EQ(s.exit_code, 4);
  EXPECT_EQ(s.end_time, kT0 + 60 * kSecond);  // when it ended, not when we learnt it
  model::Job g = Job(gone);
  EXPECT_EQ(model::JobStateName(g.state), std::string("Failed"));
  EXPECT_NE(g.message.find("lost: no trace of"), std::string::npos) << g.message;
  EXPECT_EQ(State(lng), "Running");
  EXPECT_EQ(Task(lng, 0, 1).signals.size(), 0u);
  // Two GPUs are free again: "big" (3 GPUs, first in line) still waits, and
  // under FIFO so does "late" behind it.
  EXPECT_EQ(State(big), "Pending");
  EXPECT_EQ(State(big + 1), "Pending");
  AdvanceTo(kT0 + 200 * kSecond);
  EXPECT_EQ(State(lng), "Succeeded");
  EXPECT_EQ(Job(lng).end_time, kT0 + 200 * kSecond);
  EXPECT_EQ(State(big), "Running");
  EXPECT_EQ(Job(big).attempts, 1);
  Advance(5 * kSecond);
  EXPECT_EQ(State(big), "Succeeded");
  EXPECT_EQ(State(big + 1), "Running");
}

// The daemon stops while two jobs are in their grace period, one cancelled
// and one preempted, and comes back with a policy that would not preempt
// (fifo): what each stop was for is remembered, so the cancelled job ends
// Cancelled and the victim is requeued, neither "killed by SIGTERM".
TEST_F(JobControllerTest, RestartRemembersWhyTasksWereBeingStopped) {
  Open(2, "fairshare",
       json::array({{{"match", {{"jobName", "cancel-me"}}}, {"termDelayMs", 10000}},
                    {{"match", {{"jobName", "low"}, {"attempt", 1}}}, {"termDelayMs", 10000}},
                    {{"runMs", 1000}}}));
  model::JobId cancelled = Submit(JobDoc("cancel-me", 1, "/bin/work", 0, 30));
  model::JobId low = Submit(JobDoc("low", 1, "/bin/work", 0, 30));
  ASSERT_TRUE(ctl_->Cancel(cancelled).ok());
  model::JobId high = Submit(JobDoc("high", 2, "/bin/work", 10));
  ASSERT_EQ(Task(cancelled, 0, 1).signals.size(), 1u);
  ASSERT_EQ(Task(low, 0, 1).signals.size(), 1u);
  Advance(kSecond);
  ctl_.reset();
  sched::SchedulerConfig fifo;
  fifo.policy = "fifo";
  auto made = sched::Scheduler::Create(fifo);
  ASSERT_TRUE(made.ok());
  scheduler_ = std::move(*made);
  StartController();
  EXPECT_EQ(State(cancelled), "Running");
  EXPECT_EQ(State(low), "Running");
  EXPECT_EQ(State(high), "Pending");
  Advance(9 * kSecond);
  EXPECT_EQ(State(cancelled), "Cancelled") << Job(cancelled).message;
  // Requeued (not failed "killed by SIGTERM"); the higher-priority job goes
  // first, as priority orders every policy's queue, fifo included.
  EXPECT_EQ(State(low), "Pending") << Job(low).message;
  EXPECT_TRUE(LastEvent(low, "JobPreempted").has_value());
  EXPECT_EQ(State(high), "Running");
  Advance(kSecond);
  EXPECT_EQ(State(high), "Succeeded");
  EXPECT_EQ(State(low), "Running");
  EXPECT_EQ(Job(low).attempts, 2);
  Advance(kSecond);
  EXPECT_EQ(State(low), "Succeeded");
}

// Issue 11: while another process held the database's write lock, a job
// whose task exited stayed Running (and kept its GPU) until berthd
// restarted: the refused transition was logged and dropped. Now it is kept
// and retried, in order, and lands once the lock is released.
TEST_F(JobControllerTest, TransitionsTheStoreRefusesAreRetriedUntilTheyCommit) {
  busy_timeout_ms_ = 20;
  Open(1, "fifo", json::array({{{"match", {{"jobName", "a"}}}, {"runMs", 1000}}}));
  model::JobId a = Submit(JobDoc("a", 1));
  model::JobId b = Submit(JobDoc("b", 1));
  ASSERT_EQ(State(a), "Running");
  ASSERT_EQ(State(b), "Pending");

  // Another connection (as another process would) takes the write lock.
  sqlite3* other = nullptr;
  ASSERT_EQ(sqlite3_open((dir_ + "/berth.db").c_str(), &other), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(other, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK);

  // a's task exits while the lock is held: the exit cannot be committed.
  clock_.Set(kT0 + 1000);
  exec_->Poll();
  ctl_->RunOnce();
  EXPECT_EQ(State(a), "Running");  // readers still see the last commit
  // Neither is b started on the GPU a frees: its binding cannot be recorded.
  for (int i = 0; i < 5; ++i) {
    clock_.Advance(kSecond);
    exec_->Poll();
    ctl_->RunOnce();
  }
  EXPECT_EQ(State(a), "Running");
  EXPECT_EQ(State(b), "Pending");
  EXPECT_FALSE(exec_->Find({b, 0, 1}).has_value());

  ASSERT_EQ(sqlite3_exec(other, "COMMIT", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(other);
  clock_.Advance(kSecond);
  Settle();
  model::Job ja = Job(a);
  EXPECT_EQ(model::JobStateName(ja.state), std::string("Succeeded"));
  EXPECT_EQ(ja.end_time, kT0 + 1000);  // the time the task ended, not the commit's
  EXPECT_TRUE(HeldGpus(a).empty());
  EXPECT_EQ(State(b), "Running");  // on the GPU a released
  EXPECT_EQ(HeldGpus(b), std::vector<int>{0});
  std::vector<std::string> types = EventTypes(a);
  EXPECT_EQ(std::count(types.begin(), types.end(), "JobExited"), 1);
}

}  // namespace
}  // namespace berth::controllers
