#include "store/migrations.h"

namespace berth::store {
namespace {

// Users with a role, API tokens and browser sessions (src/store/auth_store.h,
// docs/security.md). Secrets are never stored: a token keeps the SHA-256 of
// its secret, a session the SHA-256 of its id. Times are ms since the epoch;
// 0 means never (expires, last_used, revoked).
Migration UsersTokensSessions() {
  return {6, "users, API tokens and browser sessions",
          R"sql(
CREATE TABLE users (
  name    TEXT PRIMARY KEY,
  role    TEXT    NOT NULL CHECK (role IN ('admin', 'user', 'viewer', 'service')),
  created INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE tokens (
  id          TEXT PRIMARY KEY,
  user        TEXT    NOT NULL,
  hash        TEXT    NOT NULL,
  created     INTEGER NOT NULL,
  expires     INTEGER NOT NULL DEFAULT 0,
  last_used   INTEGER NOT NULL DEFAULT 0,
  revoked     INTEGER NOT NULL DEFAULT 0,
  job_id      INTEGER,
  description TEXT    NOT NULL DEFAULT ''
) WITHOUT ROWID;
CREATE INDEX tokens_by_user ON tokens(user, created);
CREATE INDEX tokens_by_job ON tokens(job_id) WHERE job_id IS NOT NULL;

CREATE TABLE sessions (
  id_hash  TEXT PRIMARY KEY,
  user     TEXT    NOT NULL,
  csrf     TEXT    NOT NULL,
  token_id TEXT    NOT NULL DEFAULT '',
  created  INTEGER NOT NULL,
  expires  INTEGER NOT NULL,
  revoked  INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE INDEX sessions_by_token ON sessions(token_id);
)sql"};
}

// Step 7 is another branch's (the coordinator puts its real step here at
// merge); this placeholder only keeps the list numbered 1..n on this branch.
// Experiments (kind: Experiment; src/store/experiment_store.h): one row per
// experiment with its suggestion state and current trial counts, its trials
// (parameters, state, job, objective), and every metric value a trial
// reported, per step. Times are ms since the epoch.
Migration Experiments() {
  return {8, "experiments, trials, metric observations and suggestion state",
          R"sql(
CREATE TABLE experiments (
  uid              INTEGER PRIMARY KEY AUTOINCREMENT,
  name             TEXT    NOT NULL UNIQUE,
  owner            TEXT    NOT NULL,
  spec             TEXT    NOT NULL,
  state            TEXT    NOT NULL,
  message          TEXT    NOT NULL DEFAULT '',
  created          INTEGER NOT NULL,
  ended            INTEGER NOT NULL DEFAULT 0,
  seed             INTEGER NOT NULL,
  suggestion_state TEXT    NOT NULL DEFAULT '',
  exhausted        INTEGER NOT NULL DEFAULT 0,
  parallel         INTEGER NOT NULL,
  max_trials       INTEGER NOT NULL,
  max_failed       INTEGER NOT NULL,
  best_trial       INTEGER NOT NULL DEFAULT -1
);

CREATE TABLE experiment_trials (
  experiment INTEGER NOT NULL,
  id         INTEGER NOT NULL,
  state      TEXT    NOT NULL,
  params     TEXT    NOT NULL,
  labels     TEXT    NOT NULL DEFAULT '{}',
  job_id     INTEGER NOT NULL DEFAULT 0,
  objective  REAL,
  metrics    TEXT    NOT NULL DEFAULT '{}',
  created    INTEGER NOT NULL,
  ended      INTEGER NOT NULL DEFAULT 0,
  message    TEXT    NOT NULL DEFAULT '',
  PRIMARY KEY (experiment, id)
) WITHOUT ROWID;

CREATE TABLE experiment_observations (
  experiment INTEGER NOT NULL,
  trial      INTEGER NOT NULL,
  metric     TEXT    NOT NULL,
  step       INTEGER NOT NULL,
  value      REAL    NOT NULL,
  time       INTEGER NOT NULL,
  PRIMARY KEY (experiment, trial, metric, step)
) WITHOUT ROWID;
)sql"};
}

}  // namespace

const std::vector<Migration>& SchemaMigrations() {
  static const std::vector<Migration> kSteps = {
      {1, "jobs, events and meta tables",
       R"sql(
CREATE TABLE jobs (
  id            INTEGER PRIMARY KEY AUTOINCREMENT,
  state         TEXT    NOT NULL,
  name          TEXT    NOT NULL,
  user          TEXT    NOT NULL,
  queue         TEXT    NOT NULL,
  priority      INTEGER NOT NULL,
  spec          TEXT    NOT NULL,
  submit_time   INTEGER NOT NULL,
  schedule_time INTEGER NOT NULL DEFAULT 0,
  start_time    INTEGER NOT NULL DEFAULT 0,
  end_time      INTEGER NOT NULL DEFAULT 0,
  exit_code     INTEGER,
  message       TEXT    NOT NULL DEFAULT '',
  placement     TEXT,
  attempts      INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX jobs_by_state ON jobs(state, id);
CREATE INDEX jobs_by_user ON jobs(user, id);
CREATE INDEX jobs_by_queue ON jobs(queue, id);

CREATE TABLE events (
  seq     INTEGER PRIMARY KEY AUTOINCREMENT,
  time    INTEGER NOT NULL,
  type    TEXT    NOT NULL,
  job_id  INTEGER REFERENCES jobs(id) ON DELETE CASCADE,
  state   TEXT    NOT NULL DEFAULT '',
  message TEXT    NOT NULL DEFAULT '',
  data    TEXT
);
CREATE INDEX events_by_job ON events(job_id, seq);

CREATE TABLE meta (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
) WITHOUT ROWID;
)sql"},
      // Pipelines (src/store/pipeline_store.h): runs, their nodes, the
      // memoization cache and cron schedules.
      {2, "pipeline runs, nodes, memo cache and cron schedules",
       R"sql(
CREATE TABLE pipeline_runs (
  id           INTEGER PRIMARY KEY AUTOINCREMENT,
  name         TEXT    NOT NULL,
  user         TEXT    NOT NULL DEFAULT '',
  state        TEXT    NOT NULL,
  spec         TEXT    NOT NULL,
  parameters   TEXT    NOT NULL DEFAULT '{}',
  cron         TEXT    NOT NULL DEFAULT '',
  created      INTEGER NOT NULL,
  started      INTEGER NOT NULL DEFAULT 0,
  ended        INTEGER NOT NULL DEFAULT 0,
  message      TEXT    NOT NULL DEFAULT '',
  stopping     TEXT    NOT NULL DEFAULT '',
  suspended    INTEGER NOT NULL DEFAULT 0,
  artifact_dir TEXT    NOT NULL DEFAULT '',
  retried_from INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX pipeline_runs_by_state ON pipeline_runs(state, id);
CREATE INDEX pipeline_runs_by_cron ON pipeline_runs(cron, id);

CREATE TABLE pipeline_nodes (
  run_id     INTEGER NOT NULL REFERENCES pipeline_runs(id) ON DELETE CASCADE,
  name       TEXT    NOT NULL,
  step       TEXT    NOT NULL,
  idx        INTEGER NOT NULL DEFAULT -1,
  item       TEXT    NOT NULL DEFAULT '',
  state      TEXT    NOT NULL,
  job_id     INTEGER NOT NULL DEFAULT 0,
  attempts   INTEGER NOT NULL DEFAULT 0,
  exit_code  INTEGER,
  start_time INTEGER NOT NULL DEFAULT 0,
  end_time   INTEGER NOT NULL DEFAULT 0,
  next_at    INTEGER NOT NULL DEFAULT 0,
  outputs    TEXT    NOT NULL DEFAULT '{}',
  message    TEXT    NOT NULL DEFAULT '',
  cached     INTEGER NOT NULL DEFAULT 0,
  gpus       TEXT    NOT NULL DEFAULT '',
  PRIMARY KEY (run_id, name)
) WITHOUT ROWID;
CREATE INDEX pipeline_nodes_by_job ON pipeline_nodes(job_id);

CREATE TABLE pipeline_memo (
  key     TEXT PRIMARY KEY,
  outputs TEXT    NOT NULL,
  created INTEGER NOT NULL,
  run_id  INTEGER NOT NULL,
  node    TEXT    NOT NULL
) WITHOUT ROWID;

CREATE TABLE pipeline_crons (
  name      TEXT PRIMARY KEY,
  spec      TEXT    NOT NULL,
  suspended INTEGER NOT NULL DEFAULT 0,
  last_time INTEGER NOT NULL DEFAULT 0,
  created   INTEGER NOT NULL
) WITHOUT ROWID;
)sql"},
      // What a job received in attempts that ended in a requeue, so that
      // least-attained-service scheduling survives preemption and restarts.
      {3, "attained service of requeued jobs",
       R"sql(
ALTER TABLE jobs ADD COLUMN service_ms INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN last_run_ms INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN queued_since INTEGER NOT NULL DEFAULT 0;
)sql"},
      // A job's domain state moves out of the meta table (keys "training.<id>",
      // "usage.<id>", "ttl.<id>" and the "stop_intents" document) into
      // columns and tables written in the same transaction as the job's
      // transitions. Existing values are carried over, then the keys removed.
      {4, "stop intents, clean-up times, training status and GPU usage as job state",
       R"sql(
ALTER TABLE jobs ADD COLUMN stop_reason TEXT NOT NULL DEFAULT '';
ALTER TABLE jobs ADD COLUMN stop_deadline INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN cleanup_at INTEGER NOT NULL DEFAULT 0;
CREATE INDEX jobs_cleanup_due ON jobs(cleanup_at) WHERE cleanup_at > 0;

CREATE TABLE training_status (
  job_id INTEGER PRIMARY KEY REFERENCES jobs(id) ON DELETE CASCADE,
  status TEXT NOT NULL
);

CREATE TABLE job_usage (
  job_id                 INTEGER PRIMARY KEY REFERENCES jobs(id) ON DELETE CASCADE,
  user                   TEXT    NOT NULL DEFAULT '',
  queue                  TEXT    NOT NULL DEFAULT '',
  first_time             INTEGER NOT NULL DEFAULT 0,
  last_time              INTEGER NOT NULL DEFAULT 0,
  util_samples           INTEGER NOT NULL DEFAULT 0,
  util_sum               INTEGER NOT NULL DEFAULT 0,
  peak_util              INTEGER NOT NULL DEFAULT 0,
  memory_samples         INTEGER NOT NULL DEFAULT 0,
  memory_sum             INTEGER NOT NULL DEFAULT 0,
  peak_memory            INTEGER NOT NULL DEFAULT 0,
  allocated_milli_gpu_ms INTEGER NOT NULL DEFAULT 0,
  idle_milli_gpu_ms      INTEGER NOT NULL DEFAULT 0,
  violations             INTEGER NOT NULL DEFAULT 0
);

INSERT INTO training_status (job_id, status)
  SELECT j.id, m.value FROM meta m JOIN jobs j ON m.key = 'training.' || j.id
  WHERE json_valid(m.value);

UPDATE jobs SET cleanup_at =
  (SELECT CAST(m.value AS INTEGER) FROM meta m WHERE m.key = 'ttl.' || jobs.id)
  WHERE EXISTS (SELECT 1 FROM meta m WHERE m.key = 'ttl.' || jobs.id);

-- v3 saved the usage as the API shows it: averages, not sums. One sample of
-- the average keeps the averages the same; times were RFC 3339 text.
INSERT INTO job_usage (job_id, user, queue, first_time, last_time, util_samples, util_sum,
                       peak_util, memory_samples, memory_sum, peak_memory,
                       allocated_milli_gpu_ms, idle_milli_gpu_ms, violations)
  SELECT j.id,
         COALESCE(json_extract(m.value, '$.user'), ''),
         COALESCE(json_extract(m.value, '$.queue'), ''),
         COALESCE(CAST(round((julianday(json_extract(m.value, '$.firstTime')) - 2440587.5) * 86400000) AS INTEGER), 0),
         COALESCE(CAST(round((julianday(json_extract(m.value, '$.lastTime')) - 2440587.5) * 86400000) AS INTEGER), 0),
         1, COALESCE(json_extract(m.value, '$.avgUtilPercent'), 0),
         COALESCE(json_extract(m.value, '$.peakUtilPercent'), 0),
         1, COALESCE(json_extract(m.value, '$.avgMemoryMiB'), 0),
         COALESCE(json_extract(m.value, '$.peakMemoryMiB'), 0),
         CAST(round(COALESCE(json_extract(m.value, '$.allocatedGpuSeconds'), 0) * 1000000) AS INTEGER),
         CAST(round(COALESCE(json_extract(m.value, '$.idleGpuSeconds'), 0) * 1000000) AS INTEGER),
         COALESCE(json_extract(m.value, '$.violations'), 0)
  FROM meta m JOIN jobs j ON m.key = 'usage.' || j.id
  WHERE json_valid(m.value);

-- A stop intent belongs to a job that still runs. v3 kept no deadline: it is
-- the stop request's time (its event) plus the job's grace period.
UPDATE jobs SET
  stop_reason = (SELECT CASE WHEN i.value = 'cancel' THEN 'cancel' ELSE 'preempt' END
                 FROM meta m, json_each(CASE WHEN json_valid(m.value) THEN m.value ELSE '{}' END) i
                 WHERE m.key = 'stop_intents' AND i.key = CAST(jobs.id AS TEXT)),
  stop_deadline =
    COALESCE((SELECT MAX(e.time) FROM events e WHERE e.job_id = jobs.id AND e.type IN
              ('JobCancelRequested', 'JobPreempting', 'TrainingGrowing', 'TrainingShrinking')), 0) +
    1000 * COALESCE(json_extract(jobs.spec, '$.spec.terminationGracePeriodSeconds'), 30)
  WHERE state IN ('Scheduled', 'Running') AND EXISTS
    (SELECT 1 FROM meta m, json_each(CASE WHEN json_valid(m.value) THEN m.value ELSE '{}' END) i
     WHERE m.key = 'stop_intents' AND i.key = CAST(jobs.id AS TEXT));

DELETE FROM meta WHERE key = 'stop_intents' OR substr(key, 1, 9) = 'training.' OR
                       substr(key, 1, 6) = 'usage.' OR substr(key, 1, 4) = 'ttl.';
)sql"},
      // When a schedule last started a run (0: never), apart from last_time,
      // which also moves on creation and resume; and who created it (its
      // runs and their steps are that user's).
      {5, "last firing and owner of cron pipelines",
       R"sql(
ALTER TABLE pipeline_crons ADD COLUMN last_fired INTEGER NOT NULL DEFAULT 0;
ALTER TABLE pipeline_crons ADD COLUMN owner TEXT NOT NULL DEFAULT '';
)sql"},
      UsersTokensSessions(),
      // GPUs taken out of scheduling (issue 12, src/store/gpu_drains.h): by
      // an operator (`berth drain`) or by berthd on a fatal health condition.
      // gpu -1 drains every GPU of the node. Kept until undrained, across
      // restarts.
      {7, "drained GPUs",
       R"sql(
CREATE TABLE gpu_drains (
  node   TEXT    NOT NULL,
  gpu    INTEGER NOT NULL,
  reason TEXT    NOT NULL,
  source TEXT    NOT NULL CHECK (source IN ('manual', 'health')),
  actor  TEXT    NOT NULL DEFAULT '',
  time   INTEGER NOT NULL,
  PRIMARY KEY (node, gpu)
) WITHOUT ROWID;
)sql"},
      Experiments(),
  };
  return kSteps;
}

int LatestSchemaVersion() { return static_cast<int>(SchemaMigrations().size()); }

Result<int> ApplyMigrations(Conn& conn, const std::vector<Migration>& steps,
                            const std::string& what) {
  const int latest = static_cast<int>(steps.size());
  for (;;) {
    // Read the version inside the write transaction: two processes opening
    // the same new file must not both run step 1.
    RETURN_IF_ERROR(conn.Begin("migrate " + what + ": begin"));
    auto version = conn.QueryInt("PRAGMA user_version", "migrate " + what + ": read user_version");
    if (!version.ok()) {
      conn.Rollback();
      return version.status();
    }
    const int current = static_cast<int>(*version);
    if (current > latest) {
      conn.Rollback();
      return FailedPrecondition(what + ": schema version " + std::to_string(current) +
                                " is newer than this build of Berth supports (" +
                                std::to_string(latest) +
                                "); it was written by a newer berthd: run that version or "
                                "restore a backup");
    }
    if (current < 0) {
      conn.Rollback();
      return FailedPrecondition(what + ": invalid schema version " + std::to_string(current));
    }
    if (current == latest) {
      conn.Rollback();
      return current;
    }
    const Migration& step = steps[current];
    std::string op = "migrate " + what + " to version " + std::to_string(step.version) + " (" +
                     step.description + ")";
    if (step.version != current + 1) {
      conn.Rollback();
      return Internal(op + ": steps are out of order (expected version " +
                      std::to_string(current + 1) + ")");
    }
    Status st = conn.Exec(step.sql, op);
    if (st.ok()) st = conn.Exec("PRAGMA user_version = " + std::to_string(step.version), op);
    if (st.ok()) st = conn.Commit(op + ": commit");
    if (!st.ok()) {
      conn.Rollback();
      return st;
    }
  }
}

}  // namespace berth::store
