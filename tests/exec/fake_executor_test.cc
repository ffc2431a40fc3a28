// The FakeExecutor keeps the Executor contract on a ManualClock: starts are
// asynchronous, outcomes arrive as events when due (in time order), Stop is
// idempotent, Recover reports what happened while nobody watched; and its
// rules parse from JSON with errors that name the field.
#include "exec/fake_executor.h"

#include <gtest/gtest.h>

#include <csignal>

namespace berth::exec {
namespace {

using nlohmann::json;

class FakeExecutorTest : public ::testing::Test {
 protected:
  void Make(const json& rules) {
    auto parsed = ParseFakeRules(rules);
    ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
    FakeExecutorOptions o;
    o.rules = *parsed;
    exec_ = std::make_unique<FakeExecutor>(o, clock_,
                                           [this](const TaskEvent& e) { events_.push_back(e); });
  }
  TaskSpec Spec(JobId job, int task = 0, int attempt = 1, const std::string& cmd = "/bin/work") {
    TaskSpec s;
    s.key = {job, task, attempt};
    s.argv = {cmd};
    s.node = "n1";
    s.env["BERTH_JOB_NAME"] = "job" + std::to_string(job);
    return s;
  }
  std::string Seen() {
    std::string out;
    for (const TaskEvent& e : events_) {
      out += e.key.ToString() + " " + TaskEventTypeName(e.type) + "@" + std::to_string(e.time);
      if (e.exit_code) out += " code=" + std::to_string(*e.exit_code);
      if (e.signal) out += " sig=" + std::to_string(e.signal);
      if (!e.message.empty()) out += " (" + e.message + ")";
      out += "\n";
    }
    events_.clear();
    return out;
  }

  ManualClock clock_{1000};
  std::unique_ptr<FakeExecutor> exec_;
  std::vector<TaskEvent> events_;
};

TEST_F(FakeExecutorTest, StartIsAsynchronousAndEventsComeInTimeOrder) {
  Make(json::array(
      {{{"match", {{"job", 1}}}, {"startDelayMs", 10}, {"runMs", 100}, {"exitCode", 2}},
       {{"match", {{"jobName", "job2"}}}, {"runMs", 50}},
       {{"match", {{"command", "/missing"}}}, {"startError", "command not found: /missing"}}}));
  ASSERT_TRUE(exec_->Start(Spec(1)).ok());
  ASSERT_TRUE(exec_->Start(Spec(2)).ok());
  ASSERT_TRUE(exec_->Start(Spec(3, 0, 1, "/missing")).ok());
  EXPECT_TRUE(events_.empty());  // nothing is reported from inside Start
  EXPECT_EQ(exec_->Start(Spec(1)).code(), StatusCode::kAlreadyExists);
  TaskSpec empty = Spec(4);
  empty.argv.clear();
  EXPECT_EQ(exec_->Start(empty).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(exec_->Poll(), 2);
  EXPECT_EQ(Seen(),
            "job-2.t0.a1 Started@1000\n"
            "job-3.t0.a1 StartFailed@1000 code=127 (command not found: /missing)\n");
  clock_.Advance(200);
  exec_->Poll();
  EXPECT_EQ(Seen(),
            "job-1.t0.a1 Started@1010\n"
            "job-2.t0.a1 Exited@1050 code=0\n"
            "job-1.t0.a1 Exited@1110 code=2\n");
  EXPECT_EQ(exec_->NextDue(), 0);
  auto t = exec_->Find({1, 0, 1});
  ASSERT_TRUE(t);
  EXPECT_EQ(t->external_id, "fake-1");
  auto log = exec_->ReadLog({1, 0, 1}, 0, 100);
  ASSERT_TRUE(log.ok());
  EXPECT_TRUE(log->data.empty());
  EXPECT_EQ(*exec_->RemoveJobFiles(1), 1);
}

TEST_F(FakeExecutorTest, StopIsIdempotentAndHonoursTheRuleForSigterm) {
  Make(json::array({{{"match", {{"job", 1}}}, {"termDelayMs", 300}},
                    {{"match", {{"job", 2}}}, {"ignoreSigterm", true}},
                    {{"match", {{"job", 3}}}, {"termDelayMs", 5000}, {"termExitCode", 0}}}));
  for (JobId j : {1, 2, 3}) ASSERT_TRUE(exec_->Start(Spec(j)).ok());
  exec_->Poll();
  Seen();
  for (JobId j : {1, 2, 3}) ASSERT_TRUE(exec_->Stop({j, 0, 1}, 1000).ok());
  clock_.Advance(500);
  for (JobId j : {1, 2, 3}) ASSERT_TRUE(exec_->Stop({j, 0, 1}, 10).ok());  // the first grace stands
  EXPECT_EQ(exec_->Stop({9, 0, 1}, 10).code(), StatusCode::kNotFound);
  clock_.Advance(2000);
  exec_->Poll();
  EXPECT_EQ(Seen(),
            "job-1.t0.a1 Exited@1300 code=143 sig=15\n"
            "job-2.t0.a1 Exited@2000 code=137 sig=9 (killed after the 1.0s grace period)\n"
            "job-3.t0.a1 Exited@2000 code=137 sig=9 (killed after the 1.0s grace period)\n");
  EXPECT_TRUE(exec_->Stop({1, 0, 1}, 10).ok());  // ended: still OK
  EXPECT_EQ(exec_->Find({2, 0, 1})->signals.size(), 2u);
  EXPECT_TRUE(exec_->Live().empty());
}

TEST_F(FakeExecutorTest, TimeLimitAndLossesEndTasks) {
  Make(json::array({{{"match", {{"job", 1}}}, {"lostAfterMs", 100}, {"lostMessage", "gone"}},
                    {{"match", {{"job", 2}}}, {"startDelayMs", 1000}, {"lostAtMs", 1050}}}));
  TaskSpec limited = Spec(3);
  limited.time_limit = 200;
  limited.termination_grace = 50;
  for (const TaskSpec& s : {Spec(1), Spec(2), limited}) ASSERT_TRUE(exec_->Start(s).ok());
  clock_.Advance(5000);
  exec_->Poll();
  EXPECT_EQ(Seen(),
            "job-1.t0.a1 Started@1000\n"
            "job-3.t0.a1 Started@1000\n"
            "job-2.t0.a1 Lost@1050 (the executor lost track of the task)\n"
            "job-1.t0.a1 Lost@1100 (gone)\n"
            "job-3.t0.a1 Exited@1200 code=143 sig=15\n");
}

TEST_F(FakeExecutorTest, RecoverReportsWhatHappenedWhileNobodyWatched) {
  Make(json::array({{{"match", {{"job", 1}}}, {"runMs", 100}, {"exitCode", 5}},
                    {{"match", {{"job", 2}}}, {"startDelayMs", 50}}}));
  ASSERT_TRUE(exec_->Start(Spec(1)).ok());
  ASSERT_TRUE(exec_->Start(Spec(2)).ok());
  ASSERT_TRUE(exec_->Start(Spec(3)).ok());
  exec_->Poll();
  Seen();
  exec_->Shutdown();
  clock_.Advance(1000);
  EXPECT_EQ(exec_->Poll(), 0);  // time passes, nothing is reported
  exec_->Forget({3, 0, 1});
  exec_->Recover({{1, 0, 1}, {2, 0, 1}, {3, 0, 1}, {4, 0, 1}});
  EXPECT_TRUE(events_.empty());  // reported by the next Poll, not from Recover
  exec_->Poll();
  EXPECT_EQ(Seen(),
            "job-1.t0.a1 Exited@1100 code=5\n"
            "job-2.t0.a1 Started@1050\n"
            "job-3.t0.a1 Lost@2000 (no trace of job-3.t0.a1 on this executor)\n"
            "job-4.t0.a1 Lost@2000 (no trace of job-4.t0.a1 on this executor)\n");
  // Watching again: a stop now is reported.
  ASSERT_TRUE(exec_->Stop({2, 0, 1}, 100).ok());
  exec_->Poll();
  EXPECT_EQ(Seen(), "job-2.t0.a1 Exited@2000 code=143 sig=15\n");
}

TEST(FakeRules, ErrorsNameTheField) {
  auto err = [](const json& j) { return ParseFakeRules(j).status().message(); };
  EXPECT_EQ(err(json::object()), "rules: must be an array of rule objects");
  EXPECT_EQ(err(json::array({1})), "rules[0]: must be an object");
  EXPECT_EQ(err(json::array({json::object(), {{"exitCode", 300}}})),
            "rules[1].exitCode: must be an integer from 0 to 255");
  EXPECT_EQ(err(json::array({{{"runMs", "soon"}}})),
            "rules[0].runMs: must be an integer from -1 to 1125899906842624");
  EXPECT_EQ(err(json::array({{{"match", {{"taks", 1}}}}})), "rules[0].match.taks: unknown field");
  EXPECT_EQ(err(json::array({{{"ignoreSigterm", 1}}})),
            "rules[0].ignoreSigterm: must be true or false");
  EXPECT_EQ(err(json::array({{{"rejct", "x"}}})), "rules[0].rejct: unknown field");
  auto ok = ParseFakeRules(
      json::array({{{"match", {{"command", "/x"}, {"task", 1}}}, {"termExitCode", 0}}}));
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ((*ok)[0].command, "/x");
  EXPECT_EQ((*ok)[0].task, 1);
  EXPECT_EQ((*ok)[0].term_exit_code, 0);
}

}  // namespace
}  // namespace berth::exec
