// Schema v4: a job's domain state (stop intent, clean-up time, training
// status, GPU usage) in typed columns and tables written in the same
// transaction as the transition or event it belongs to; pipeline runs and
// their events committed together; the upgrade of a schema-v3 database.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <stdlib.h>

#include <filesystem>

#include "store/migrations.h"
#include "store/pipeline_store.h"
#include "store/sqlite_conn.h"
#include "store/store.h"

namespace berth::store {
namespace {

using model::JobState;
using nlohmann::json;
using ::testing::HasSubstr;

class JobStateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (std::filesystem::temp_directory_path() / "berth_jobstate_XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/berth.db";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::unique_ptr<Store> OpenStore() {
    auto s = Store::Open(path_);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? std::move(s).value() : nullptr;
  }

  // Runs statements on the file with a raw connection (no Store).
  void RawExec(const std::string& sql) {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
    char* err = nullptr;
    int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
    EXPECT_EQ(rc, SQLITE_OK) << (err ? err : "");
    sqlite3_free(err);
    sqlite3_close(db);
  }

  // Every row of a query's first two columns, as text.
  std::vector<std::pair<std::string, std::string>> RawRows(const std::string& sql) {
    sqlite3* db = nullptr;
    std::vector<std::pair<std::string, std::string>> rows;
    EXPECT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
    sqlite3_stmt* s = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db, sql.c_str(), -1, &s, nullptr), SQLITE_OK)
        << sqlite3_errmsg(db);
    while (s && sqlite3_step(s) == SQLITE_ROW) {
      auto text = [&](int i) {
        const unsigned char* t = sqlite3_column_text(s, i);
        return t ? std::string(reinterpret_cast<const char*>(t)) : std::string();
      };
      rows.emplace_back(text(0), sqlite3_column_count(s) > 1 ? text(1) : "");
    }
    sqlite3_finalize(s);
    sqlite3_close(db);
    return rows;
  }

  // Makes every insert of an event of `type` fail inside its transaction
  // (after the writes that come before it), as a crash there would.
  void FailEventsOfType(const std::string& type) {
    RawExec("CREATE TRIGGER inject_failure BEFORE INSERT ON events WHEN NEW.type = '" + type +
            "' BEGIN SELECT RAISE(ABORT, 'injected failure'); END");
  }
  void StopFailing() { RawExec("DROP TRIGGER inject_failure"); }

  std::string dir_;
  std::string path_;
};

JobSpec Spec(const std::string& name) {
  JobSpec s;
  s.name = name;
  s.user = "ada";
  s.queue = "default";
  s.command = {"python", "train.py"};
  s.resources.gpus = 1000;
  return s;
}

JobId RunningJob(Store& store, const std::string& name, TimeMs now = 1000) {
  auto id = store.SubmitJob(Spec(name), now);
  EXPECT_TRUE(id.ok()) << id.status().ToString();
  EXPECT_TRUE(
      store.Transition(*id, JobState::kPending, JobState::kScheduled, {}, "", "", now + 1).ok());
  EXPECT_TRUE(
      store.Transition(*id, JobState::kScheduled, JobState::kRunning, {}, "", "", now + 2).ok());
  return *id;
}

std::vector<std::string> EventTypes(Store& store, JobId job) {
  std::vector<std::string> out;
  auto events = store.EventsSince(0, 0, job);
  EXPECT_TRUE(events.ok()) << events.status().ToString();
  if (events.ok())
    for (const Event& e : *events) out.push_back(e.type);
  return out;
}

TEST_F(JobStateTest, AStopRequestIsWrittenWithItsEventAndEndsWithTheJobsNextTransition) {
  auto store = OpenStore();
  ASSERT_TRUE(store);
  JobId id = RunningJob(*store, "stopped");
  JobAnnotation stop;
  stop.stop_reason = "preempt";
  stop.stop_deadline = 61000;
  ASSERT_TRUE(
      store->Annotate(id, stop, "JobPreempting", "a higher-priority job needs its GPU", 31000)
          .ok());
  Job job = *store->GetJob(id);
  EXPECT_EQ(job.stop_reason, "preempt");
  EXPECT_EQ(job.stop_deadline, 61000);
  EXPECT_EQ(EventTypes(*store, id).back(), "JobPreempting");
  EXPECT_EQ(store->EventsSince(0, 0, id)->back().state, "Running");

  // The stop is over when the job leaves Running: the requeue clears it.
  ASSERT_TRUE(
      store->Transition(id, JobState::kRunning, JobState::kPreempted, {}, "JobPreempted", "", 40000)
          .ok());
  job = *store->GetJob(id);
  EXPECT_EQ(job.stop_reason, "");
  EXPECT_EQ(job.stop_deadline, 0);

  // A cancel requested while Scheduled is kept when the task starts, then
  // cleared when the job ends.
  ASSERT_TRUE(
      store->Transition(id, JobState::kPreempted, JobState::kPending, {}, "", "", 40001).ok());
  ASSERT_TRUE(
      store->Transition(id, JobState::kPending, JobState::kScheduled, {}, "", "", 40002).ok());
  stop.stop_reason = "cancel";
  stop.stop_deadline = 70000;
  ASSERT_TRUE(store->Annotate(id, stop, "JobCancelRequested", "", 40003).ok());
  ASSERT_TRUE(
      store->Transition(id, JobState::kScheduled, JobState::kRunning, {}, "", "", 40004).ok());
  EXPECT_EQ(store->GetJob(id)->stop_reason, "cancel");
  ASSERT_TRUE(
      store->Transition(id, JobState::kRunning, JobState::kCancelled, {}, "", "", 40005).ok());
  EXPECT_EQ(store->GetJob(id)->stop_reason, "");
  EXPECT_EQ(store->GetJob(id)->stop_deadline, 0);
}

TEST_F(JobStateTest, AStopRequestWhoseEventFailsLeavesNoTrace) {
  auto store = OpenStore();
  ASSERT_TRUE(store);
  JobId id = RunningJob(*store, "victim");
  FailEventsOfType("JobCancelRequested");
  JobAnnotation stop;
  stop.stop_reason = "cancel";
  stop.stop_deadline = 9000;
  Status st = store->Annotate(id, stop, "JobCancelRequested", "", 5000);
  ASSERT_FALSE(st.ok());
  EXPECT_THAT(st.message(), HasSubstr("injected failure"));
  EXPECT_EQ(store->GetJob(id)->stop_reason, "");
  EXPECT_EQ(store->GetJob(id)->stop_deadline, 0);
  EXPECT_EQ(EventTypes(*store, id).back(), "JobRunning");

  EXPECT_EQ(store->Annotate(999, stop, "JobCancelRequested", "", 5000).code(),
            StatusCode::kNotFound);
}

// Store::Commit: a controller pass's writes in one transaction. One the
// store refuses is skipped with its reason and the others commit; while
// another process holds the write lock nothing is committed and the caller
// is told to retry (Unavailable), and the same batch commits afterwards.
TEST_F(JobStateTest, ABatchCommitsTogetherSkipsWhatIsRefusedAndCanBeRetried) {
  StoreOptions so;
  so.busy_timeout_ms = 20;
  auto opened = Store::Open(path_, so);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  Store& store = **opened;
  JobId a = RunningJob(store, "a");
  JobId b = RunningJob(store, "b");
  auto transition = [](JobId id, JobState from, JobState to, const std::string& type) {
    StateOp op;
    op.kind = StateOp::Kind::kTransition;
    op.job = id;
    op.from = from;
    op.to = to;
    op.type = type;
    op.now = 5000;
    return op;
  };
  StateOp stop;
  stop.kind = StateOp::Kind::kAnnotate;
  stop.job = b;
  stop.annotation.stop_reason = "cancel";
  stop.annotation.stop_deadline = 9000;
  stop.type = "JobCancelRequested";
  stop.now = 5000;
  StateOp event;
  event.kind = StateOp::Kind::kEvent;
  event.job = b;
  event.type = "TrainingFinishing";
  event.now = 5001;
  std::vector<StateOp> batch = {
      transition(a, JobState::kRunning, JobState::kSucceeded, "JobExited"),
      transition(b, JobState::kPending, JobState::kScheduled, "JobScheduled"),  // b is Running
      stop, event};

  sqlite3* other = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &other), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(other, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK);
  std::vector<Status> refused;
  Status st = store.Commit(batch, &refused);
  EXPECT_EQ(st.code(), StatusCode::kUnavailable) << st.ToString();
  EXPECT_EQ(store.GetJob(a)->state, JobState::kRunning);
  ASSERT_EQ(sqlite3_exec(other, "COMMIT", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(other);

  int64_t before = store.LastEventSeq();
  ASSERT_TRUE(store.Commit(batch, &refused).ok());
  ASSERT_EQ(refused.size(), 4u);
  EXPECT_TRUE(refused[0].ok());
  EXPECT_EQ(refused[1].code(), StatusCode::kFailedPrecondition) << refused[1].ToString();
  EXPECT_TRUE(refused[2].ok());
  EXPECT_TRUE(refused[3].ok());
  EXPECT_EQ(store.GetJob(a)->state, JobState::kSucceeded);
  EXPECT_EQ(store.GetJob(b)->state, JobState::kRunning);
  EXPECT_EQ(store.GetJob(b)->stop_reason, "cancel");
  EXPECT_EQ(store.LastEventSeq(), before + 3);  // JobExited, JobCancelRequested, TrainingFinishing
  EXPECT_EQ(EventTypes(store, b).back(), "TrainingFinishing");

  // An op that fails after it wrote (here: its event) is rolled back alone.
  FailEventsOfType("JobPreempting");
  StateOp preempt = stop;
  preempt.annotation.stop_reason = "preempt";
  preempt.type = "JobPreempting";
  ASSERT_TRUE(store
                  .Commit({preempt,
                           transition(b, JobState::kRunning, JobState::kCancelled, "JobCancelled")},
                          &refused)
                  .ok());
  EXPECT_THAT(refused[0].message(), HasSubstr("injected failure"));
  EXPECT_TRUE(refused[1].ok());
  EXPECT_EQ(store.GetJob(b)->state, JobState::kCancelled);
  EXPECT_EQ(EventTypes(store, b).back(), "JobCancelled");
}

TEST_F(JobStateTest, TrainingStatusAndCleanUpTimeAreWrittenWithTheTransition) {
  auto store = OpenStore();
  ASSERT_TRUE(store);
  JobId id = RunningJob(*store, "ddp");
  EXPECT_FALSE(store->GetTrainingStatus(id)->has_value());

  JobAnnotation status;
  status.training_status = json{{"restarts", 0}, {"worldSize", 2}};
  ASSERT_TRUE(store->Annotate(id, status, "", "", 2000).ok());  // no event
  EXPECT_EQ(**store->GetTrainingStatus(id), (json{{"restarts", 0}, {"worldSize", 2}}));
  EXPECT_EQ(EventTypes(*store, id).back(), "JobRunning");

  JobUpdate end;
  end.end_time = 3000;
  end.exit_code = 0;
  end.annotation.training_status = json{{"restarts", 0}, {"worldSize", 2}, {"done", true}};
  end.annotation.cleanup_at = 3000 + 86400000;
  // A failing event rolls the whole transition back, status and clean-up time included.
  FailEventsOfType("JobExited");
  ASSERT_FALSE(
      store->Transition(id, JobState::kRunning, JobState::kSucceeded, end, "JobExited", "", 3000)
          .ok());
  EXPECT_EQ(store->GetJob(id)->state, JobState::kRunning);
  EXPECT_EQ(store->GetJob(id)->cleanup_at, 0);
  EXPECT_FALSE((**store->GetTrainingStatus(id)).contains("done"));
  EXPECT_TRUE(store->ListCleanups()->empty());
  StopFailing();

  ASSERT_TRUE(
      store->Transition(id, JobState::kRunning, JobState::kSucceeded, end, "JobExited", "", 3000)
          .ok());
  EXPECT_EQ(store->GetJob(id)->cleanup_at, 3000 + 86400000);
  EXPECT_EQ((**store->GetTrainingStatus(id))["done"], true);
  auto due = store->ListCleanups();
  ASSERT_TRUE(due.ok());
  ASSERT_EQ(due->size(), 1u);
  EXPECT_EQ((*due)[0], std::make_pair(id, TimeMs{3000 + 86400000}));

  JobAnnotation done;
  done.cleanup_at = 0;
  ASSERT_TRUE(store->Annotate(id, done, "TrainingCleanedUp", "removed", 90000000).ok());
  EXPECT_TRUE(store->ListCleanups()->empty());
  EXPECT_EQ((**store->GetTrainingStatus(id))["done"], true);  // unset: kept
}

TEST_F(JobStateTest, GpuUsageRoundTripsAndNeedsAJob) {
  auto store = OpenStore();
  ASSERT_TRUE(store);
  JobId id = RunningJob(*store, "used");
  EXPECT_FALSE(store->GetJobUsage(id)->has_value());
  JobUsageRecord u;
  u.job = id;
  u.user = "ada";
  u.queue = "default";
  u.first_time = 1000;
  u.last_time = 9000;
  u.util_samples = 40;
  u.util_sum = 2400;
  u.peak_util = 97;
  u.memory_samples = 40;
  u.memory_sum = 400000;
  u.peak_memory = 12000;
  u.allocated_milli_gpu_ms = 8000000;
  u.idle_milli_gpu_ms = 1000000;
  u.violations = 2;
  ASSERT_TRUE(store->PutJobUsage(u).ok());
  u.peak_util = 99;  // replaced, not added
  ASSERT_TRUE(store->PutJobUsage(u).ok());
  auto got = store->GetJobUsage(id);
  ASSERT_TRUE(got.ok() && got->has_value());
  const JobUsageRecord& g = **got;
  EXPECT_EQ(g.user, "ada");
  EXPECT_EQ(g.first_time, 1000);
  EXPECT_EQ(g.last_time, 9000);
  EXPECT_EQ(g.util_sum, 2400);
  EXPECT_EQ(g.peak_util, 99);
  EXPECT_EQ(g.memory_sum, 400000);
  EXPECT_EQ(g.peak_memory, 12000);
  EXPECT_EQ(g.allocated_milli_gpu_ms, 8000000);
  EXPECT_EQ(g.idle_milli_gpu_ms, 1000000);
  EXPECT_EQ(g.violations, 2);
  u.job = 999;
  EXPECT_EQ(store->PutJobUsage(u).code(), StatusCode::kNotFound);
}

RunRecord NewRun() {
  RunRecord r;
  r.name = "etl";
  r.user = "ada";
  r.spec = "kind: Pipeline";
  r.created = r.started = 100;
  NodeRecord n;
  n.name = n.step = "extract";
  r.nodes[n.name] = n;
  return r;
}

NewEvent RunEventOf(const std::string& type, const RunRecord& r) {
  return {type, 0, "", json{{"pipelineRun", r.id}, {"state", model::ToString(r.state)}}};
}

// A crash between a run's change and its event cannot leave one without the
// other: the event's insert fails inside the transaction, after the run's
// row and node were written, and neither is visible afterwards.
TEST_F(JobStateTest, APipelineRunsChangeAndItsEventCommitTogetherOrNotAtAll) {
  auto store = OpenStore();
  ASSERT_TRUE(store);
  auto ps = PipelineStore::Open(*store, path_);
  ASSERT_TRUE(ps.ok()) << ps.status().ToString();
  PipelineStore& pstore = **ps;

  RunRecord run = NewRun();
  ASSERT_TRUE(pstore
                  .CreateRun(&run, 100,
                             [](RunRecord& r) {
                               r.artifact_dir = "/artifacts/run-" + std::to_string(r.id);
                               return std::vector<NewEvent>{RunEventOf("PipelineRunCreated", r)};
                             })
                  .ok());
  ASSERT_GT(run.id, 0);
  EXPECT_EQ(pstore.GetRun(run.id)->artifact_dir, "/artifacts/run-" + std::to_string(run.id));
  int64_t after_create = store->LastEventSeq();
  auto created = store->EventsSince(0, 0);
  ASSERT_EQ(created->size(), 1u);
  EXPECT_EQ(created->back().type, "PipelineRunCreated");
  EXPECT_EQ(created->back().data["pipelineRun"], run.id);

  run.state = model::RunState::kSucceeded;
  run.ended = 500;
  run.nodes["extract"].state = model::StepState::kSucceeded;
  FailEventsOfType("PipelineRunSucceeded");
  Status st = pstore.SaveRun(run, {"extract"}, {RunEventOf("PipelineRunSucceeded", run)}, 500);
  ASSERT_FALSE(st.ok());
  EXPECT_THAT(st.message(), HasSubstr("injected failure"));
  RunRecord stored = *pstore.GetRun(run.id);
  EXPECT_EQ(stored.state, model::RunState::kRunning);
  EXPECT_EQ(stored.ended, 0);
  EXPECT_EQ(stored.nodes["extract"].state, model::StepState::kPending);
  EXPECT_TRUE(store->EventsSince(after_create, 0)->empty());
  EXPECT_EQ(RawRows("SELECT count(*) FROM events WHERE type = 'PipelineRunSucceeded'")[0].first,
            "0");

  StopFailing();
  ASSERT_TRUE(
      pstore.SaveRun(run, {"extract"}, {RunEventOf("PipelineRunSucceeded", run)}, 500).ok());
  stored = *pstore.GetRun(run.id);
  EXPECT_EQ(stored.state, model::RunState::kSucceeded);
  EXPECT_EQ(stored.nodes["extract"].state, model::StepState::kSucceeded);
  auto events = store->EventsSince(after_create, 0);
  ASSERT_EQ(events->size(), 1u);
  EXPECT_EQ((*events)[0].type, "PipelineRunSucceeded");
  EXPECT_EQ(store->WaitForEvent(after_create, 0), (*events)[0].seq);  // waiters are woken

  // A run whose creation event fails is not created.
  FailEventsOfType("PipelineRunCreated");
  RunRecord second = NewRun();
  ASSERT_FALSE(pstore
                   .CreateRun(&second, 600,
                              [](RunRecord& r) {
                                return std::vector<NewEvent>{RunEventOf("PipelineRunCreated", r)};
                              })
                   .ok());
  EXPECT_EQ(second.id, 0);
  EXPECT_EQ(pstore.ListRuns(0, false)->size(), 1u);
}

// The release that wrote schema v3 kept this state in meta; a database of it
// (tests/store/data/schema-v3.db, made by that release: see the README there)
// is upgraded with its data, in one step.
TEST_F(JobStateTest, UpgradesASchemaV3DatabaseMadeByTheReleaseWithItsData) {
  std::filesystem::copy_file(std::string(BERTH_SOURCE_DIR) + "/tests/store/data/schema-v3.db",
                             path_);
  ASSERT_EQ(RawRows("PRAGMA user_version")[0].first, "3");
  // What v3 kept, read before the upgrade.
  std::map<std::string, std::string> meta;
  for (const auto& [k, v] : RawRows("SELECT key, value FROM meta")) meta[k] = v;
  ASSERT_TRUE(meta.count("stop_intents"));
  ASSERT_TRUE(meta.count("training.2"));
  ASSERT_TRUE(meta.count("ttl.2"));
  ASSERT_TRUE(meta.count("usage.1"));
  json usage_v3 = json::parse(meta["usage.1"]);
  ASSERT_EQ(json::parse(meta["stop_intents"]), (json{{"3", "cancel"}}));

  auto store = OpenStore();
  ASSERT_TRUE(store);
  EXPECT_EQ(store->SchemaVersion(), LatestSchemaVersion());

  // Job 3 was being cancelled (an hour's grace) when berthd was killed.
  Job cancelled = *store->GetJob(3);
  EXPECT_EQ(cancelled.state, JobState::kRunning);
  EXPECT_EQ(cancelled.stop_reason, "cancel");
  TimeMs requested = 0;
  auto events = store->EventsSince(0, 0, 3);
  ASSERT_TRUE(events.ok()) << events.status().ToString();
  for (const Event& e : *events)
    if (e.type == "JobCancelRequested") requested = e.time;
  ASSERT_GT(requested, 0);
  EXPECT_EQ(cancelled.stop_deadline, requested + 3600 * 1000);
  // Ended jobs carry no stop.
  EXPECT_EQ(store->GetJob(1)->stop_reason, "");

  // Job 2: a finished training job, its status and its clean-up time.
  auto status = store->GetTrainingStatus(2);
  ASSERT_TRUE(status.ok() && status->has_value()) << status.status().ToString();
  EXPECT_EQ(**status, json::parse(meta["training.2"]));
  EXPECT_EQ((**status)["worldSize"], 2);
  EXPECT_EQ((**status)["workers"].size(), 2u);
  EXPECT_EQ(store->GetJob(2)->cleanup_at, std::stoll(meta["ttl.2"]));
  ASSERT_EQ(store->ListCleanups()->size(), 1u);
  EXPECT_EQ(store->ListCleanups()->front().first, 2);

  // Job 1: its GPU usage (v3 saved averages: kept as one sample of each).
  auto usage = store->GetJobUsage(1);
  ASSERT_TRUE(usage.ok() && usage->has_value()) << usage.status().ToString();
  const JobUsageRecord& u = **usage;
  EXPECT_EQ(u.user, usage_v3["user"]);
  EXPECT_EQ(u.queue, usage_v3["queue"]);
  EXPECT_EQ(FormatTime(u.first_time), usage_v3["firstTime"]);
  EXPECT_EQ(FormatTime(u.last_time), usage_v3["lastTime"]);
  EXPECT_EQ(u.util_sum / std::max<int64_t>(1, u.util_samples),
            usage_v3["avgUtilPercent"].get<int64_t>());
  EXPECT_GT(u.util_sum, 0);
  EXPECT_EQ(u.peak_util, usage_v3["peakUtilPercent"].get<int64_t>());
  EXPECT_EQ(u.peak_memory, usage_v3["peakMemoryMiB"].get<int64_t>());
  EXPECT_EQ(
      u.allocated_milli_gpu_ms,
      static_cast<int64_t>(std::llround(usage_v3["allocatedGpuSeconds"].get<double>() * 1e6)));
  EXPECT_EQ(u.violations, usage_v3["violations"].get<int64_t>());

  // Meta keeps no key of a job.
  for (const char* prefix : {"training.", "usage.", "ttl.", "stop_intents"})
    EXPECT_TRUE(store->ListMeta(prefix)->empty()) << prefix;
}

// Values v3 could hold that are not what the upgrade expects (hand-edited
// or from a crash): keys of jobs that no longer exist, malformed documents.
// The upgrade still succeeds and drops them; the database was written with
// the exact v3 schema (the first three steps).
TEST_F(JobStateTest, UpgradeDropsOrphanedAndMalformedV3Entries) {
  {
    auto conn = Conn::Open(path_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, 1000);
    ASSERT_TRUE(conn.ok());
    std::vector<Migration> v3(SchemaMigrations().begin(), SchemaMigrations().begin() + 3);
    auto version = ApplyMigrations(**conn, v3, path_);
    ASSERT_TRUE(version.ok()) << version.status().ToString();
    ASSERT_EQ(*version, 3);
    Status seeded = (*conn)->Exec(R"sql(
INSERT INTO jobs (id, state, name, user, queue, priority, spec, submit_time)
  VALUES (1, 'Running', 'a', 'ada', 'default', 0, '{"apiVersion":"berth/v1","kind":"Job","metadata":{"name":"a"},"spec":{"command":["true"]}}', 1),
         (2, 'Succeeded', 'b', 'ada', 'default', 0, '{"apiVersion":"berth/v1","kind":"Job","metadata":{"name":"b"},"spec":{"command":["true"]}}', 1);
INSERT INTO meta (key, value) VALUES
  ('stop_intents', '{"1": "preempt", "2": "cancel", "77": "cancel"}'),
  ('training.1', 'not json'), ('training.77', '{}'), ('usage.2', '{broken'), ('ttl.77', '5'),
  ('sched.cursor', '42');
)sql",
                                  "seed");
    ASSERT_TRUE(seeded.ok()) << seeded.ToString();
  }
  auto store = OpenStore();
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->GetJob(1).ok()) << store->GetJob(1).status().ToString();
  EXPECT_EQ(store->GetJob(1)->stop_reason, "preempt");
  EXPECT_EQ(store->GetJob(1)->stop_deadline,
            30 * 1000);                          // no request event: the default grace from 0
  EXPECT_EQ(store->GetJob(2)->stop_reason, "");  // ended: no stop
  EXPECT_FALSE(store->GetTrainingStatus(1)->has_value());
  EXPECT_FALSE(store->GetJobUsage(2)->has_value());
  EXPECT_TRUE(store->ListCleanups()->empty());
  auto rows = RawRows("SELECT key, value FROM meta ORDER BY key");
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0], std::make_pair(std::string("sched.cursor"), std::string("42")));
}

}  // namespace
}  // namespace berth::store
