#include "store/store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <thread>

#include "store/migrations.h"
#include "store/sqlite_conn.h"

namespace berth::store {
namespace {

using model::JobState;
using ::testing::HasSubstr;

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (std::filesystem::temp_directory_path() / "berth_store_XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/berth.db";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::unique_ptr<Store> OpenStore(StoreOptions options = {}) {
    auto s = Store::Open(path_, options);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? std::move(s).value() : nullptr;
  }

  // Runs one statement on the file with a raw connection (no Store).
  void RawExec(const std::string& sql) {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
    char* err = nullptr;
    int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
    EXPECT_EQ(rc, SQLITE_OK) << (err ? err : "");
    sqlite3_free(err);
    sqlite3_close(db);
  }

  std::string dir_;
  std::string path_;
};

JobSpec Spec(const std::string& name, const std::string& user = "ada",
             const std::string& queue = "default") {
  JobSpec s;
  s.name = name;
  s.user = user;
  s.queue = queue;
  s.command = {"python", "train.py", "--lr", "0.1"};
  s.resources.gpus = 2000;
  s.resources.cpu = 4000;
  s.resources.memory = 16384;
  return s;
}

JobFilter Filter(std::vector<JobState> states, std::string user = "", std::string queue = "",
                 int64_t limit = 0, bool newest_first = false) {
  JobFilter f;
  f.states = std::move(states);
  f.user = std::move(user);
  f.queue = std::move(queue);
  f.limit = limit;
  f.newest_first = newest_first;
  return f;
}

std::vector<std::string> Names(const std::vector<Job>& jobs) {
  std::vector<std::string> out;
  for (const Job& j : jobs) out.push_back(j.spec.name);
  return out;
}

std::vector<std::string> Types(const std::vector<Event>& events) {
  std::vector<std::string> out;
  for (const Event& e : events) out.push_back(e.type);
  return out;
}

TEST_F(StoreTest, SubmitThenGetRoundTripsTheSpec) {
  auto store = OpenStore();
  ASSERT_TRUE(store);
  JobSpec spec = Spec("train");
  spec.priority = 7;
  spec.env = {{"SEED", "1"}, {"PATH", "/usr/bin"}};
  spec.working_dir = "/work/run1";
  spec.resources = {500, 8192, 1500, 2048};  // half a GPU with an 8 GiB floor
  spec.time_limit = 90 * kMinute + 250;
  spec.termination_grace = 45 * kSecond;
  spec.labels = {{"team", "vision"}};

  auto id = store->SubmitJob(spec, 1000);
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  EXPECT_GT(*id, 0);

  auto job = store->GetJob(*id);
  ASSERT_TRUE(job.ok()) << job.status().ToString();
  EXPECT_EQ(job->id, *id);
  EXPECT_EQ(job->state, JobState::kPending);
  EXPECT_EQ(job->submit_time, 1000);
  EXPECT_EQ(job->schedule_time, 0);
  EXPECT_FALSE(job->exit_code.has_value());
  EXPECT_EQ(job->attempts, 0);
  EXPECT_TRUE(job->placement.node.empty());
  const JobSpec& got = job->spec;
  EXPECT_EQ(got.name, "train");
  EXPECT_EQ(got.user, "ada");
  EXPECT_EQ(got.queue, "default");
  EXPECT_EQ(got.priority, 7);
  EXPECT_EQ(got.command, spec.command);
  EXPECT_EQ(got.env, spec.env);
  EXPECT_EQ(got.working_dir, "/work/run1");
  EXPECT_EQ(got.resources.gpus, 500);
  EXPECT_EQ(got.resources.gpu_memory, 8192);
  EXPECT_EQ(got.resources.cpu, 1500);
  EXPECT_EQ(got.resources.memory, 2048);
  EXPECT_EQ(got.time_limit, spec.time_limit);
  EXPECT_EQ(got.termination_grace, 45 * kSecond);
  EXPECT_EQ(got.labels, spec.labels);

  auto missing = store->GetJob(*id + 100);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_THAT(missing.status().message(), HasSubstr("job " + std::to_string(*id + 100)));
}

TEST_F(StoreTest, SubmitRejectsAnInvalidSpecAndWritesNothing) {
  auto store = OpenStore();
  ASSERT_TRUE(store);
  JobSpec spec = Spec("bad");
  spec.command.clear();
  auto id = store->SubmitJob(spec, 1);
  ASSERT_FALSE(id.ok());
  EXPECT_EQ(id.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(id.status().message(), HasSubstr("spec.command"));
  EXPECT_EQ(store->LastEventSeq(), 0);
  auto all = store->ListJobs({});
  ASSERT_TRUE(all.ok());
  EXPECT_TRUE(all->empty());
}

TEST_F(StoreTest, SubmitWritesAJobSubmittedEvent) {
  auto store = OpenStore();
  ASSERT_TRUE(store);
  auto id = store->SubmitJob(Spec("a", "bob", "gpu"), 77);
  ASSERT_TRUE(id.ok());
  auto events = store->EventsSince(0, 0);
  ASSERT_TRUE(events.ok());
  ASSERT_EQ(events->size(), 1u);
  const Event& e = (*events)[0];
  EXPECT_EQ(e.type, "JobSubmitted");
  EXPECT_EQ(e.job, *id);
  EXPECT_EQ(e.state, "Pending");
  EXPECT_EQ(e.time, 77);
  EXPECT_EQ(e.data["user"], "bob");
  EXPECT_EQ(e.data["queue"], "gpu");
  EXPECT_EQ(store->LastEventSeq(), e.seq);

  nlohmann::json j = EventToJson(e);
  EXPECT_EQ(j["seq"], e.seq);
  EXPECT_EQ(j["type"], "JobSubmitted");
  EXPECT_EQ(j["job"], *id);
  EXPECT_EQ(j["state"], "Pending");
}

TEST_F(StoreTest, IdsIncreaseWithSubmissionOrder) {
  auto store = OpenStore();
  ASSERT_TRUE(store);
  JobId prev = 0;
  for (int i = 0; i < 5; ++i) {
    auto id = store->SubmitJob(Spec("j" + std::to_string(i)), i);
    ASSERT_TRUE(id.ok());
    EXPECT_GT(*id, prev);
    prev = *id;
  }
}

TEST_F(StoreTest, ListJobsFiltersByStateUserAndQueue) {
  auto store = OpenStore();
  ASSERT_TRUE(store);
  std::map<std::string, JobId> ids;
  for (auto [name, user, queue] :
       std::vector<std::tuple<std::string, std::string, std::string>>{{"a1", "ada", "default"},
                                                                      {"a2", "ada", "gpu"},
                                                                      {"b1", "bob", "default"},
                                                                      {"b2", "bob", "gpu"},
                                                                      {"c1", "cy", "gpu"}}) {
    auto id = store->SubmitJob(Spec(name, user, queue), 1);
    ASSERT_TRUE(id.ok());
    ids[name] = *id;
  }
  ASSERT_TRUE(
      store->Transition(ids["a2"], JobState::kPending, JobState::kScheduled, {}, "", "", 2).ok());
  ASSERT_TRUE(
      store->Transition(ids["b2"], JobState::kPending, JobState::kCancelled, {}, "", "", 2).ok());
  ASSERT_TRUE(
      store->Transition(ids["c1"], JobState::kPending, JobState::kScheduled, {}, "", "", 2).ok());
  ASSERT_TRUE(
      store->Transition(ids["c1"], JobState::kScheduled, JobState::kRunning, {}, "", "", 3).ok());

  auto list = [&](JobFilter f) {
    auto r = store->ListJobs(f);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? Names(*r) : std::vector<std::string>{};
  };
  using V = std::vector<std::string>;
  EXPECT_EQ(list({}), (V{"a1", "a2", "b1", "b2", "c1"}));
  EXPECT_EQ(list(Filter({JobState::kPending})), (V{"a1", "b1"}));
  EXPECT_EQ(list(Filter({JobState::kScheduled, JobState::kRunning})), (V{"a2", "c1"}));
  EXPECT_EQ(list(Filter({}, "ada")), (V{"a1", "a2"}));
  EXPECT_EQ(list(Filter({}, "", "gpu")), (V{"a2", "b2", "c1"}));
  EXPECT_EQ(list(Filter({}, "bob", "gpu")), (V{"b2"}));
  EXPECT_EQ(list(Filter({JobState::kCancelled}, "ada")), V{});
  EXPECT_EQ(list(Filter({}, "", "", 2)), (V{"a1", "a2"}));
  EXPECT_EQ(list(Filter({}, "", "", 2, true)), (V{"c1", "b2"}));
  EXPECT_EQ(list(Filter({}, "", "gpu", 0, true)), (V{"c1", "b2", "a2"}));

  auto active = store->ListActiveJobs();
  ASSERT_TRUE(active.ok());
  EXPECT_EQ(Names(*active), (V{"a1", "a2", "b1", "c1"}));
}

TEST_F(StoreTest, TransitionsThroughALifetimeSetFieldsAndAppendEvents) {
  auto store = OpenStore();
  ASSERT_TRUE(store);
  auto id = store->SubmitJob(Spec("life"), 100);
  ASSERT_TRUE(id.ok());

  JobUpdate sched;
  sched.schedule_time = 200;
  sched.placement = model::Placement{"node-1", {0, 3}, {"GPU-a", "GPU-b"}, 1000};
  Status st = store->Transition(*id, JobState::kPending, JobState::kScheduled, sched, "",
                                "placed on node-1", 200, {{"gpus", {0, 3}}});
  ASSERT_TRUE(st.ok()) << st.ToString();

  JobUpdate run;
  run.start_time = 300;
  run.attempts = 1;
  ASSERT_TRUE(
      store->Transition(*id, JobState::kScheduled, JobState::kRunning, run, "JobStarted", "", 300)
          .ok());

  JobUpdate done;
  done.end_time = 400;
  done.exit_code = 3;
  done.message = "exited with code 3";
  ASSERT_TRUE(store
                  ->Transition(*id, JobState::kRunning, JobState::kFailed, done, "JobExited",
                               "exit 3", 400, {{"exitCode", 3}})
                  .ok());

  auto job = store->GetJob(*id);
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->state, JobState::kFailed);
  EXPECT_EQ(job->submit_time, 100);
  EXPECT_EQ(job->schedule_time, 200);
  EXPECT_EQ(job->start_time, 300);
  EXPECT_EQ(job->end_time, 400);
  ASSERT_TRUE(job->exit_code.has_value());
  EXPECT_EQ(*job->exit_code, 3);
  EXPECT_EQ(job->message, "exited with code 3");
  EXPECT_EQ(job->attempts, 1);
  EXPECT_EQ(job->placement.node, "node-1");
  EXPECT_EQ(job->placement.gpus, (std::vector<int>{0, 3}));
  EXPECT_EQ(job->placement.gpu_uuids, (std::vector<std::string>{"GPU-a", "GPU-b"}));
  EXPECT_EQ(job->placement.gpu_share, 1000);

  auto events = store->EventsSince(0, 0, *id);
  ASSERT_TRUE(events.ok());
  EXPECT_EQ(Types(*events),
            (std::vector<std::string>{"JobSubmitted", "JobScheduled", "JobStarted", "JobExited"}));
  EXPECT_EQ((*events)[1].state, "Scheduled");
  EXPECT_EQ((*events)[1].message, "placed on node-1");
  EXPECT_EQ((*events)[1].data["gpus"], nlohmann::json({0, 3}));
  EXPECT_EQ((*events)[2].state, "Running");
  EXPECT_TRUE((*events)[2].data.is_null());
  EXPECT_EQ((*events)[3].state, "Failed");
  EXPECT_EQ((*events)[3].data["exitCode"], 3);
  EXPECT_EQ((*events)[3].time, 400);

  auto active = store->ListActiveJobs();
  ASSERT_TRUE(active.ok());
  EXPECT_TRUE(active->empty());
}

TEST_F(StoreTest, RequeueClearsPlacementAndExitCode) {
  auto store = OpenStore();
  ASSERT_TRUE(store);
  auto id = store->SubmitJob(Spec("p"), 1);
  ASSERT_TRUE(id.ok());
  JobUpdate sched;
  sched.placement = model::Placement{"n", {1}, {"GPU-x"}, 1000};
  ASSERT_TRUE(
      store->Transition(*id, JobState::kPending, JobState::kScheduled, sched, "", "", 2).ok());
  JobUpdate pre;
  pre.exit_code = 143;
  ASSERT_TRUE(
      store->Transition(*id, JobState::kScheduled, JobState::kPreempted, pre, "", "", 3).ok());
  JobUpdate requeue;
  requeue.clear_placement = true;
  requeue.clear_exit_code = true;
  requeue.message = "requeued";
  ASSERT_TRUE(
      store
          ->Transition(*id, JobState::kPreempted, JobState::kPending, requeue, "JobRequeued", "", 4)
          .ok());
  auto job = store->GetJob(*id);
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->state, JobState::kPending);
  EXPECT_FALSE(job->exit_code.has_value());
  EXPECT_TRUE(job->placement.node.empty());
  EXPECT_TRUE(job->placement.gpus.empty());
  EXPECT_EQ(job->message, "requeued");
}

TEST_F(StoreTest, TransitionFromTheWrongStateFailsAndChangesNothing) {
  auto store = OpenStore();
  ASSERT_TRUE(store);
  auto id = store->SubmitJob(Spec("w"), 1);
  ASSERT_TRUE(id.ok());
  int64_t seq = store->LastEventSeq();

  Status st = store->Transition(*id, JobState::kRunning, JobState::kSucceeded, {}, "", "", 2);
  EXPECT_EQ(st.code(), StatusCode::kFailedPrecondition);
  EXPECT_THAT(st.message(), HasSubstr("job " + std::to_string(*id)));
  EXPECT_THAT(st.message(), HasSubstr("is Pending"));
  EXPECT_THAT(st.message(), HasSubstr("Running -> Succeeded"));

  auto job = store->GetJob(*id);
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->state, JobState::kPending);
  EXPECT_EQ(store->LastEventSeq(), seq);
  auto events = store->EventsSince(seq, 0);
  ASSERT_TRUE(events.ok());
  EXPECT_TRUE(events->empty());
}

TEST_F(StoreTest, TransitionForbiddenByTheStateMachineFails) {
  auto store = OpenStore();
  ASSERT_TRUE(store);
  auto id = store->SubmitJob(Spec("f"), 1);
  ASSERT_TRUE(id.ok());
  Status st = store->Transition(*id, JobState::kPending, JobState::kSucceeded, {}, "", "", 2);
  EXPECT_EQ(st.code(), StatusCode::kFailedPrecondition);
  EXPECT_THAT(st.message(), HasSubstr("Pending -> Succeeded"));
  EXPECT_THAT(st.message(), HasSubstr("state machine"));

  ASSERT_TRUE(store->Transition(*id, JobState::kPending, JobState::kCancelled, {}, "", "", 2).ok());
  st = store->Transition(*id, JobState::kCancelled, JobState::kPending, {}, "", "", 3);
  EXPECT_EQ(st.code(), StatusCode::kFailedPrecondition);

  st = store->Transition(*id + 1, JobState::kPending, JobState::kScheduled, {}, "", "", 3);
  EXPECT_EQ(st.code(), StatusCode::kNotFound);
  EXPECT_THAT(st.message(), HasSubstr("job " + std::to_string(*id + 1)));
}

TEST_F(StoreTest, RacingTransitionsFromTheSameStateHaveOneWinner) {
  auto store = OpenStore({.synchronous = "NORMAL"});  // many commits: keep the test fast
  ASSERT_TRUE(store);
  constexpr int kJobs = 50;
  std::vector<JobId> ids;
  for (int i = 0; i < kJobs; ++i) {
    auto id = store->SubmitJob(Spec("r" + std::to_string(i)), 1);
    ASSERT_TRUE(id.ok());
    ASSERT_TRUE(
        store->Transition(*id, JobState::kPending, JobState::kScheduled, {}, "", "", 2).ok());
    ASSERT_TRUE(
        store->Transition(*id, JobState::kScheduled, JobState::kRunning, {}, "", "", 3).ok());
    ids.push_back(*id);
  }
  // One thread reports exits, the other cancels: per job exactly one wins.
  std::vector<int> exit_won(kJobs), cancel_won(kJobs);
  std::thread exiter([&] {
    for (int i = 0; i < kJobs; ++i) {
      JobUpdate u;
      u.exit_code = 0;
      Status st = store->Transition(ids[i], JobState::kRunning, JobState::kSucceeded, u, "", "", 4);
      exit_won[i] = st.ok();
      if (!st.ok()) {
        EXPECT_EQ(st.code(), StatusCode::kFailedPrecondition) << st.ToString();
      }
    }
  });
  std::thread canceller([&] {
    for (int i = kJobs - 1; i >= 0; --i) {
      Status st =
          store->Transition(ids[i], JobState::kRunning, JobState::kCancelled, {}, "", "", 4);
      cancel_won[i] = st.ok();
      if (!st.ok()) {
        EXPECT_EQ(st.code(), StatusCode::kFailedPrecondition) << st.ToString();
      }
    }
  });
  exiter.join();
  canceller.join();
  for (int i = 0; i < kJobs; ++i) {
    EXPECT_EQ(exit_won[i] + cancel_won[i], 1) << "job " << ids[i];
    auto job = store->GetJob(ids[i]);
    ASSERT_TRUE(job.ok());
    EXPECT_EQ(job->state, exit_won[i] ? JobState::kSucceeded : JobState::kCancelled);
    auto events = store->EventsSince(0, 0, ids[i]);
    ASSERT_TRUE(events.ok());
    ASSERT_EQ(events->size(), 4u);  // submitted, scheduled, running, one terminal
    EXPECT_EQ(events->back().state, model::JobStateName(job->state));
  }
}

TEST_F(StoreTest, EventsAreOrderedPagedAndFilteredByJob) {
  auto store = OpenStore();
  ASSERT_TRUE(store);
  auto a = store->SubmitJob(Spec("a"), 1);
  auto b = store->SubmitJob(Spec("b"), 2);
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_TRUE(store->AppendEvent("GpuIdle", 0, "gpu 3 idle for 10m", 3, {{"gpu", 3}}).ok());
  ASSERT_TRUE(store->Transition(*a, JobState::kPending, JobState::kScheduled, {}, "", "", 4).ok());
  ASSERT_TRUE(store->AppendEvent("Violation", *b, "over memory", 5).ok());

  auto all = store->EventsSince(0, 0);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(Types(*all), (std::vector<std::string>{"JobSubmitted", "JobSubmitted", "GpuIdle",
                                                   "JobScheduled", "Violation"}));
  for (size_t i = 1; i < all->size(); ++i) EXPECT_GT((*all)[i].seq, (*all)[i - 1].seq);
  EXPECT_EQ((*all)[2].job, 0);
  EXPECT_EQ((*all)[2].state, "");
  EXPECT_EQ((*all)[2].data["gpu"], 3);
  EXPECT_EQ((*all)[4].job, *b);
  EXPECT_EQ((*all)[4].state, "Pending");  // the job's state when the event was written
  EXPECT_EQ(store->LastEventSeq(), all->back().seq);

  // Paging: after the second event, two at a time.
  auto page = store->EventsSince((*all)[1].seq, 2);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(Types(*page), (std::vector<std::string>{"GpuIdle", "JobScheduled"}));
  auto rest = store->EventsSince(page->back().seq, 2);
  ASSERT_TRUE(rest.ok());
  EXPECT_EQ(Types(*rest), (std::vector<std::string>{"Violation"}));

  auto only_b = store->EventsSince(0, 0, *b);
  ASSERT_TRUE(only_b.ok());
  EXPECT_EQ(Types(*only_b), (std::vector<std::string>{"JobSubmitted", "Violation"}));
  auto only_a_later = store->EventsSince((*all)[0].seq, 0, *a);
  ASSERT_TRUE(only_a_later.ok());
  EXPECT_EQ(Types(*only_a_later), (std::vector<std::string>{"JobScheduled"}));

  Status st = store->AppendEvent("Violation", *b + 10, "", 6);
  EXPECT_EQ(st.code(), StatusCode::kNotFound);
  st = store->AppendEvent("", 0, "", 6);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store->LastEventSeq(), all->back().seq);
}

TEST_F(StoreTest, AppendEventsWritesABatchInOrderOrNothing) {
  auto store = OpenStore();
  ASSERT_TRUE(store);
  auto a = store->SubmitJob(Spec("a"), 1);
  ASSERT_TRUE(a.ok());
  const int64_t before = store->LastEventSeq();
  std::vector<Event> batch(3);
  for (int i = 0; i < 3; ++i) {
    batch[i].type = "PipelineStepRunning";
    batch[i].time = 10 + i;
    batch[i].message = "step " + std::to_string(i);
    batch[i].data = {{"pipelineRun", 1}, {"node", std::to_string(i)}};
  }
  ASSERT_TRUE(store->AppendEvents(batch).ok());
  auto evs = store->EventsSince(before, 0);
  ASSERT_TRUE(evs.ok());
  ASSERT_EQ(evs->size(), 3u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ((*evs)[i].message, "step " + std::to_string(i));
    EXPECT_EQ((*evs)[i].job, 0);
    EXPECT_EQ((*evs)[i].data["node"], std::to_string(i));
  }
  EXPECT_EQ(store->LastEventSeq(), evs->back().seq);
  // Events about a job, or without a type, are refused and none is written.
  batch[1].job = *a;
  EXPECT_EQ(store->AppendEvents(batch).code(), StatusCode::kInvalidArgument);
  batch[1].job = 0;
  batch[2].type = "";
  EXPECT_EQ(store->AppendEvents(batch).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store->LastEventSeq(), evs->back().seq);
  EXPECT_TRUE(store->AppendEvents({}).ok());
}

TEST_F(StoreTest, WaitForEventWakesOnAWriteFromAnotherThread) {
  auto store = OpenStore();
  ASSERT_TRUE(store);
  const int64_t before = store->LastEventSeq();

  // Nothing written: the wait ends by its (short) deadline with the same seq.
  EXPECT_EQ(store->WaitForEvent(before, 20), before);

  std::atomic<int64_t> woke_with{-1};
  std::thread waiter([&] { woke_with = store->WaitForEvent(before, 30'000); });
  const int64_t start = MonotonicNanos();
  auto id = store->SubmitJob(Spec("wake"), 1);
  ASSERT_TRUE(id.ok());
  waiter.join();
  const int64_t waited_ms = (MonotonicNanos() - start) / 1'000'000;
  EXPECT_GT(woke_with.load(), before);
  EXPECT_EQ(woke_with.load(), store->LastEventSeq());
  EXPECT_LT(waited_ms, 10'000);  // woken by the write, not by the 30 s deadline

  // A transition on another thread wakes a waiter too.
  const int64_t after_submit = store->LastEventSeq();
  std::thread writer([&] {
    EXPECT_TRUE(
        store->Transition(*id, JobState::kPending, JobState::kScheduled, {}, "", "", 2).ok());
  });
  int64_t seq = store->WaitForEvent(after_submit, 30'000);
  writer.join();
  EXPECT_GT(seq, after_submit);
  auto events = store->EventsSince(after_submit, 0);
  ASSERT_TRUE(events.ok());
  ASSERT_EQ(events->size(), 1u);
  EXPECT_EQ((*events)[0].type, "JobScheduled");
}

TEST_F(StoreTest, ReopenFindsEverything) {
  JobId a, b;
  int64_t last_seq;
  {
    auto store = OpenStore();
    ASSERT_TRUE(store);
    auto ra = store->SubmitJob(Spec("a", "ada", "gpu"), 10);
    auto rb = store->SubmitJob(Spec("b"), 11);
    ASSERT_TRUE(ra.ok() && rb.ok());
    a = *ra;
    b = *rb;
    JobUpdate u;
    u.placement = model::Placement{"n1", {2}, {"GPU-2"}, 250};
    u.schedule_time = 12;
    ASSERT_TRUE(store->Transition(a, JobState::kPending, JobState::kScheduled, u, "", "", 12).ok());
    ASSERT_TRUE(store->PutMeta("sched.cursor", "42").ok());
    last_seq = store->LastEventSeq();
  }
  auto store = OpenStore();
  ASSERT_TRUE(store);
  EXPECT_EQ(store->LastEventSeq(), last_seq);
  auto ja = store->GetJob(a);
  ASSERT_TRUE(ja.ok());
  EXPECT_EQ(ja->state, JobState::kScheduled);
  EXPECT_EQ(ja->spec.name, "a");
  EXPECT_EQ(ja->spec.queue, "gpu");
  EXPECT_EQ(ja->schedule_time, 12);
  EXPECT_EQ(ja->placement.node, "n1");
  EXPECT_EQ(ja->placement.gpu_share, 250);
  auto jb = store->GetJob(b);
  ASSERT_TRUE(jb.ok());
  EXPECT_EQ(jb->state, JobState::kPending);
  auto events = store->EventsSince(0, 0);
  ASSERT_TRUE(events.ok());
  EXPECT_EQ(Types(*events),
            (std::vector<std::string>{"JobSubmitted", "JobSubmitted", "JobScheduled"}));
  auto meta = store->GetMeta("sched.cursor");
  ASSERT_TRUE(meta.ok());
  EXPECT_EQ(meta->value_or(""), "42");

  // A waiter after reopen sees the next write.
  auto c = store->SubmitJob(Spec("c"), 13);
  ASSERT_TRUE(c.ok());
  EXPECT_GT(store->WaitForEvent(last_seq, 1000), last_seq);
}

TEST_F(StoreTest, IdsKeepIncreasingAfterReopenEvenWhenTheNewestJobIsDeleted) {
  JobId last;
  {
    auto store = OpenStore();
    ASSERT_TRUE(store);
    for (int i = 0; i < 3; ++i) {
      auto id = store->SubmitJob(Spec("j"), i);
      ASSERT_TRUE(id.ok());
      last = *id;
    }
  }
  // Remove the newest job behind the store's back: its id must never return.
  RawExec("DELETE FROM jobs WHERE id = " + std::to_string(last));
  auto store = OpenStore();
  ASSERT_TRUE(store);
  auto id = store->SubmitJob(Spec("next"), 9);
  ASSERT_TRUE(id.ok());
  EXPECT_GT(*id, last);
}

TEST_F(StoreTest, OpensInWalModeAtTheLatestSchemaVersion) {
  {
    auto store = OpenStore();
    ASSERT_TRUE(store);
    EXPECT_EQ(store->SchemaVersion(), LatestSchemaVersion());
    EXPECT_GE(store->SchemaVersion(), 1);
  }
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
  auto query = [&](const char* sql) {
    sqlite3_stmt* s = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db, sql, -1, &s, nullptr), SQLITE_OK);
    std::string out;
    if (sqlite3_step(s) == SQLITE_ROW)
      out = reinterpret_cast<const char*>(sqlite3_column_text(s, 0));
    sqlite3_finalize(s);
    return out;
  };
  EXPECT_EQ(query("PRAGMA journal_mode"), "wal");
  EXPECT_EQ(query("PRAGMA user_version"), std::to_string(LatestSchemaVersion()));
  EXPECT_EQ(
      query("SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name LIKE 'jobs_by_%'"),
      "3");
  sqlite3_close(db);
}

TEST_F(StoreTest, RefusesADatabaseFromANewerSchemaVersion) {
  { ASSERT_TRUE(OpenStore()); }
  RawExec("PRAGMA user_version = " + std::to_string(LatestSchemaVersion() + 1));
  auto s = Store::Open(path_);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.status().message(), HasSubstr("newer"));
  EXPECT_THAT(s.status().message(), HasSubstr(std::to_string(LatestSchemaVersion() + 1)));
  EXPECT_THAT(s.status().message(), HasSubstr(path_));
}

TEST_F(StoreTest, MigrationStepsApplyInOrderAndAFailingStepRollsBack) {
  auto conn = Conn::Open(path_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, 1000);
  ASSERT_TRUE(conn.ok());
  Conn& c = **conn;
  std::vector<Migration> steps = {
      {1, "t1", "CREATE TABLE t1 (x INTEGER)"},
      {2, "t2 (broken)", "CREATE TABLE t2 (x INTEGER); INSERT INTO nowhere VALUES (1)"},
  };
  auto v = ApplyMigrations(c, steps, "test.db");
  ASSERT_FALSE(v.ok());
  EXPECT_THAT(v.status().message(), HasSubstr("version 2"));
  EXPECT_THAT(v.status().message(), HasSubstr("nowhere"));
  auto uv = c.QueryInt("PRAGMA user_version", "read");
  ASSERT_TRUE(uv.ok());
  EXPECT_EQ(*uv, 1);  // step 1 stays, step 2 rolled back whole
  auto t2 = c.QueryInt("SELECT count(*) FROM sqlite_master WHERE name = 't2'", "read");
  ASSERT_TRUE(t2.ok());
  EXPECT_EQ(*t2, 0);

  steps[1].sql = "CREATE TABLE t2 (x INTEGER); INSERT INTO t2 VALUES (1)";
  steps.push_back({3, "t3", "ALTER TABLE t2 ADD COLUMN y TEXT NOT NULL DEFAULT 'z'"});
  v = ApplyMigrations(c, steps, "test.db");
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ(*v, 3);
  auto y = c.QueryText("SELECT y FROM t2", "read");
  ASSERT_TRUE(y.ok());
  EXPECT_EQ(*y, "z");

  // Applying again is a no-op; a shorter list means the file is newer.
  v = ApplyMigrations(c, steps, "test.db");
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(*v, 3);
  steps.pop_back();
  v = ApplyMigrations(c, steps, "test.db");
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.status().code(), StatusCode::kFailedPrecondition);
}

TEST_F(StoreTest, MetaPutGetAndOverwrite) {
  auto store = OpenStore();
  ASSERT_TRUE(store);
  auto none = store->GetMeta("missing");
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
  ASSERT_TRUE(store->PutMeta("k", "v1").ok());
  ASSERT_TRUE(store->PutMeta("k", "v2").ok());
  ASSERT_TRUE(store->PutMeta("empty", "").ok());
  auto k = store->GetMeta("k");
  ASSERT_TRUE(k.ok());
  EXPECT_EQ(k->value_or("?"), "v2");
  auto e = store->GetMeta("empty");
  ASSERT_TRUE(e.ok());
  ASSERT_TRUE(e->has_value());
  EXPECT_EQ(**e, "");
}

TEST_F(StoreTest, MetaListsByPrefixAndDeletes) {
  auto store = OpenStore();
  ASSERT_TRUE(store);
  for (const char* k : {"ttl.2", "ttl.10", "ttl", "ttm.1", "training.2", "ttl.3"})
    ASSERT_TRUE(store->PutMeta(k, k).ok());
  auto rows = store->ListMeta("ttl.");
  ASSERT_TRUE(rows.ok()) << rows.status().ToString();
  std::vector<std::string> keys;
  for (const auto& [k, v] : *rows) {
    keys.push_back(k);
    EXPECT_EQ(k, v);
  }
  EXPECT_EQ(keys, (std::vector<std::string>{"ttl.10", "ttl.2", "ttl.3"}));
  ASSERT_TRUE(store->DeleteMeta("ttl.2").ok());
  ASSERT_TRUE(store->DeleteMeta("ttl.absent").ok());
  EXPECT_EQ(store->ListMeta("ttl.")->size(), 2u);
  EXPECT_FALSE(store->GetMeta("ttl.2")->has_value());
  EXPECT_TRUE(store->GetMeta("ttl")->has_value());
}

TEST_F(StoreTest, ConcurrentSubmitsFromFourThreadsAreAllPresentExactlyOnce) {
  auto store = OpenStore();
  ASSERT_TRUE(store);
  constexpr int kThreads = 4;
  constexpr int kPerThread = 150;
  std::vector<std::vector<JobId>> ids(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        auto id = store->SubmitJob(Spec("t" + std::to_string(t) + "-" + std::to_string(i)), i);
        EXPECT_TRUE(id.ok()) << id.status().ToString();
        if (id.ok()) ids[t].push_back(*id);
      }
    });
  }
  for (auto& th : threads) th.join();

  std::set<JobId> unique;
  for (int t = 0; t < kThreads; ++t) {
    ASSERT_EQ(ids[t].size(), static_cast<size_t>(kPerThread));
    for (int i = 1; i < kPerThread; ++i) EXPECT_GT(ids[t][i], ids[t][i - 1]);
    unique.insert(ids[t].begin(), ids[t].end());
  }
  EXPECT_EQ(unique.size(), static_cast<size_t>(kThreads * kPerThread));

  auto jobs = store->ListJobs({});
  ASSERT_TRUE(jobs.ok());
  ASSERT_EQ(jobs->size(), static_cast<size_t>(kThreads * kPerThread));
  std::map<std::string, int> by_name;
  for (const Job& j : *jobs) {
    ++by_name[j.spec.name];
    EXPECT_TRUE(unique.count(j.id)) << j.id;
  }
  EXPECT_EQ(by_name.size(), static_cast<size_t>(kThreads * kPerThread));
  for (const auto& [name, n] : by_name) EXPECT_EQ(n, 1) << name;

  auto events = store->EventsSince(0, 0);
  ASSERT_TRUE(events.ok());
  ASSERT_EQ(events->size(), static_cast<size_t>(kThreads * kPerThread));
  std::set<JobId> event_jobs;
  for (const Event& e : *events) event_jobs.insert(e.job);
  EXPECT_EQ(event_jobs, unique);
}

// Durable submissions from many threads share fsyncs of the write-ahead log
// (group commit), and each is acknowledged only after one covering it.
TEST_F(StoreTest, ConcurrentDurableSubmissionsShareFsyncs) {
  auto store = OpenStore();
  ASSERT_TRUE(store);
  constexpr int kThreads = 64;
  constexpr int kPerThread = 10;
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i)
        if (store->SubmitJob(Spec("t" + std::to_string(t)), i).ok()) ++ok;
    });
  }
  for (auto& th : threads) th.join();
  ASSERT_EQ(ok.load(), kThreads * kPerThread);
  StoreStats st = store->Stats();
  EXPECT_EQ(st.submissions, kThreads * kPerThread);
  EXPECT_GE(st.wal_syncs, 1);
  EXPECT_LT(st.wal_syncs, st.submissions) << "no fsync was shared";
  EXPECT_LE(st.submit_batches, st.submissions);
  ASSERT_EQ(store->ListJobs({})->size(), static_cast<size_t>(kThreads * kPerThread));
}

TEST_F(StoreTest, NonDurableSubmissionsSkipTheFsyncAndSyncMakesThemDurable) {
  auto store = OpenStore();
  ASSERT_TRUE(store);
  SubmitOptions fast;
  fast.durable = false;
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(store->SubmitJob(Spec("step"), i, fast).ok());
  EXPECT_EQ(store->Stats().wal_syncs, 0);
  ASSERT_TRUE(store->Sync().ok());
  EXPECT_EQ(store->Stats().wal_syncs, 1);
  ASSERT_TRUE(store->Sync().ok());  // nothing new to sync
  EXPECT_EQ(store->Stats().wal_syncs, 1);
  ASSERT_TRUE(store->SubmitJob(Spec("client"), 9).ok());
  EXPECT_EQ(store->Stats().wal_syncs, 2);

  // synchronous=NORMAL never fsyncs for a submission.
  store.reset();
  auto normal = OpenStore({.synchronous = "NORMAL"});
  ASSERT_TRUE(normal);
  ASSERT_TRUE(normal->SubmitJob(Spec("n"), 1).ok());
  ASSERT_TRUE(normal->Sync().ok());
  EXPECT_EQ(normal->Stats().wal_syncs, 0);
  EXPECT_EQ(normal->ListJobs({})->size(), 7u);
}

TEST_F(StoreTest, OnCommittedRunsOnceWithTheIdBeforeSubmitReturnsAndTheJobIsReadable) {
  auto store = OpenStore();
  ASSERT_TRUE(store);
  std::vector<JobId> seen;
  bool readable = false;
  SubmitOptions opts;
  opts.on_committed = [&](JobId id) {
    seen.push_back(id);
    auto job = store->GetJob(id);
    readable = job.ok() && job->spec.name == "hooked";
  };
  auto id = store->SubmitJob(Spec("hooked"), 1, opts);
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  EXPECT_EQ(seen, std::vector<JobId>{*id});
  EXPECT_TRUE(readable);
  // Not called for a rejected spec.
  JobSpec bad = Spec("bad");
  bad.command.clear();
  EXPECT_FALSE(store->SubmitJob(bad, 2, opts).ok());
  EXPECT_EQ(seen.size(), 1u);
}

TEST_F(StoreTest, ReadersSeeCommittedWritesWhileOtherThreadsWrite) {
  auto store = OpenStore({.synchronous = "NORMAL"});
  ASSERT_TRUE(store);
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    for (int i = 0; i < 200 && !stop; ++i) ASSERT_TRUE(store->SubmitJob(Spec("w"), i).ok());
  });
  // Everything a waiter is told about is readable at once on the read side.
  int64_t seen = 0;
  while (seen < 200) {
    const int64_t now = store->WaitForEvent(seen, 10'000);
    ASSERT_GT(now, seen) << "no event within 10 s";
    auto events = store->EventsSince(seen, 0);
    ASSERT_TRUE(events.ok());
    ASSERT_GE(static_cast<int64_t>(events->size()), now - seen);
    for (const Event& e : *events) {
      if (e.seq > now) break;
      auto job = store->GetJob(e.job);
      ASSERT_TRUE(job.ok()) << job.status().ToString();
    }
    seen = now;
  }
  stop = true;
  writer.join();
}

TEST_F(StoreTest, OptionsAndBadFilesGiveClearErrors) {
  StoreOptions bad;
  bad.synchronous = "sometimes";
  auto s = Store::Open(path_, bad);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(s.status().message(), HasSubstr("synchronous"));

  StoreOptions normal;
  normal.synchronous = "normal";
  auto ok = Store::Open(path_, normal);
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();

  std::string junk = dir_ + "/junk.db";
  std::ofstream(junk) << std::string(4096, 'x');
  auto notdb = Store::Open(junk);
  ASSERT_FALSE(notdb.ok());
  EXPECT_EQ(notdb.status().code(), StatusCode::kIo);
  EXPECT_THAT(notdb.status().message(), HasSubstr(junk));

  auto nodir = Store::Open(dir_ + "/no/such/dir/berth.db");
  ASSERT_FALSE(nodir.ok());
  EXPECT_EQ(nodir.status().code(), StatusCode::kIo);
  EXPECT_THAT(nodir.status().message(), HasSubstr("open"));
}

TEST_F(StoreTest, ReadsOnTheWriterConnectionWithoutSpecCacheGiveTheSameResults) {
  auto store = OpenStore({.spec_cache_size = 0, .read_connections = false});
  ASSERT_TRUE(store);
  auto a = store->SubmitJob(Spec("a", "ada"), 1);
  auto b = store->SubmitJob(Spec("b", "bob"), 2);
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_TRUE(store->Transition(*a, JobState::kPending, JobState::kScheduled, {}, "", "", 3).ok());
  for (int i = 0; i < 2; ++i) {  // twice: nothing cached may change the answer
    auto job = store->GetJob(*a);
    ASSERT_TRUE(job.ok());
    EXPECT_EQ(job->spec.name, "a");
    EXPECT_EQ(job->state, JobState::kScheduled);
    auto bobs = store->ListJobs(Filter({}, "bob"));
    ASSERT_TRUE(bobs.ok());
    EXPECT_EQ(Names(*bobs), std::vector<std::string>{"b"});
  }
  auto events = store->EventsSince(0, 0);
  ASSERT_TRUE(events.ok());
  EXPECT_EQ(events->size(), 3u);
}

// A real process submits from 4 threads and reports each acknowledged id
// through a pipe; it is SIGKILLed mid-stream. Every acknowledged job must be
// in the file afterwards, with its JobSubmitted event.
TEST_F(StoreTest, AcknowledgedSubmissionsSurviveAKilledProcess) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    close(fds[0]);
    auto s = Store::Open(path_);
    if (!s.ok()) _exit(2);
    Store* store = s->get();
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([store, fd = fds[1], t] {
        for (int i = 0;; ++i) {
          auto id = store->SubmitJob(Spec("k" + std::to_string(t) + "-" + std::to_string(i)), i);
          if (!id.ok()) _exit(3);
          JobId v = *id;
          if (write(fd, &v, sizeof v) != static_cast<ssize_t>(sizeof v)) _exit(4);
        }
      });
    }
    for (auto& th : threads) th.join();
    _exit(0);
  }
  close(fds[1]);
  std::vector<JobId> acked;
  JobId v;
  while (acked.size() < 100 && read(fds[0], &v, sizeof v) == static_cast<ssize_t>(sizeof v)) {
    acked.push_back(v);
  }
  kill(pid, SIGKILL);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(status)) << "child exited early with status " << status;
  while (read(fds[0], &v, sizeof v) == static_cast<ssize_t>(sizeof v)) acked.push_back(v);
  close(fds[0]);
  ASSERT_GE(acked.size(), 100u);

  auto store = OpenStore();
  ASSERT_TRUE(store);
  for (JobId id : acked) {
    auto job = store->GetJob(id);
    ASSERT_TRUE(job.ok()) << "acknowledged job " << id << " lost: " << job.status().ToString();
    auto events = store->EventsSince(0, 0, id);
    ASSERT_TRUE(events.ok());
    ASSERT_EQ(events->size(), 1u);
    EXPECT_EQ((*events)[0].type, "JobSubmitted");
  }
  // Nothing half-written: every stored job has exactly its one event.
  auto jobs = store->ListJobs({});
  ASSERT_TRUE(jobs.ok());
  auto events = store->EventsSince(0, 0);
  ASSERT_TRUE(events.ok());
  EXPECT_EQ(jobs->size(), events->size());
  EXPECT_GE(jobs->size(), acked.size());
  // And the next id is above every one handed out before the crash.
  auto next = store->SubmitJob(Spec("after"), 0);
  ASSERT_TRUE(next.ok());
  EXPECT_GT(*next, *std::max_element(acked.begin(), acked.end()));
}

TEST_F(StoreTest, InMemoryStoreWorks) {
  auto s = Store::Open(":memory:");
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  auto& store = *s;
  auto id = store->SubmitJob(Spec("m"), 1);
  ASSERT_TRUE(id.ok());
  auto job = store->GetJob(*id);
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->spec.name, "m");
}

}  // namespace
}  // namespace berth::store
