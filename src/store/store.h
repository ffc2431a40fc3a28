// The SQLite store: Berth's single source of truth.
//
// One file (berth.db) in WAL mode with versioned migrations. Every state
// change is one transaction that also appends to the event log, so an API
// watcher that reads events after seq N sees every change exactly once and in
// order. An acknowledged submission is committed before Submit returns.
//
// Thread safety: all methods are safe to call from any thread (writes are
// serialised inside; reads use their own connections).
#pragma once

#include <nlohmann/json.hpp>

#include <condition_variable>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "model/job.h"

namespace berth::store {

using model::Job;
using model::JobId;
using model::JobSpec;
using model::JobState;

struct StoreOptions {
  // "FULL" (default: a commit survives power loss) or "NORMAL" (survives a
  // process crash; faster). See docs/operations.md.
  std::string synchronous = "FULL";
  // Durability of state transitions, events and meta writes. NORMAL (the
  // default) survives a crash of berthd but not a power loss, which would end
  // the tasks anyway: a transition lost that way is redone from what the
  // executor reports. The next FULL commit (a submission) makes every earlier
  // commit durable too. Set it to FULL to fsync every transition.
  std::string state_synchronous = "NORMAL";
  // How long a statement waits for a lock held by another connection or
  // process before it fails with Unavailable.
  int busy_timeout_ms = 5000;
  // Most submissions SubmitJob commits in one transaction (group commit):
  // concurrent callers share one fsync; each returns after its batch is on
  // disk. 1: one transaction per submission (and one fsync each, as SQLite's
  // own synchronous=FULL commit does it).
  int max_submit_batch = 256;
  // Durable submissions: how many fsyncs of the write-ahead log may run at
  // once. The next batch is committed while that many are in flight, and
  // gathers every submission that arrives meanwhile.
  int max_syncs_in_flight = 2;
  // How many parsed job specs reads keep in memory (specs never change
  // after submission). 0 disables the cache.
  int spec_cache_size = 50000;
  // true: reads use their own pooled connections and never wait for a
  // commit (WAL). false: reads share the writer connection under its mutex.
  bool read_connections = true;
};

class Conn;

// How one SubmitJob call is acknowledged.
struct SubmitOptions {
  // true: return once the job is durable (with synchronous FULL or EXTRA: the
  // write-ahead log fsynced after the commit, one fsync shared by every
  // submission committed before it). false: return once committed, which
  // survives a crash of berthd but not a power loss: for submissions that no
  // client is told about (a pipeline's step jobs, which their run records in
  // a later commit, so both or neither survive).
  bool durable = true;
  // Called once the job is committed and readable, before its fsync, with its
  // id: the caller may act on the job (schedule it) while the disk syncs. It
  // runs on the thread that committed the batch (maybe another caller's), so
  // it must be quick and must not call the Store's write methods.
  std::function<void(JobId)> on_committed;
};

// Counters of the store's write path since Open (for benchmarks and tests).
struct StoreStats {
  int64_t submissions = 0;     // jobs committed by SubmitJob
  int64_t submit_batches = 0;  // transactions they were committed in
  int64_t wal_syncs = 0;       // fsyncs of the write-ahead log by the group commit
};

struct JobFilter {
  std::vector<JobState> states;  // empty: any
  std::string user;              // empty: any
  std::string queue;             // empty: any
  int64_t limit = 0;             // 0: no limit
  bool newest_first = false;
};

// A job's domain state besides its life-cycle state, written in the same
// transaction as the transition or event it belongs to. Unset optionals keep
// the stored value.
struct JobAnnotation {
  // Why the job is being stopped ("cancel" or "preempt"; "" clears) and when
  // its grace period ends. A transition to any state but Scheduled or Running
  // clears both, whatever is set here: the stop is over.
  std::optional<std::string> stop_reason;
  std::optional<TimeMs> stop_deadline;
  // When an ended training job's run directories and checkpoints are due for
  // removal (0: none pending).
  std::optional<TimeMs> cleanup_at;
  // A training job's status document (restarts, workers, world sizes, ...),
  // as `berth get` shows it under "training".
  std::optional<nlohmann::json> training_status;
};

// A job's GPU usage as the telemetry sampler summed it up (see
// gpu::JobUsage, whose fields these are), kept once the job holds no GPU.
struct JobUsageRecord {
  JobId job = 0;
  std::string user, queue;
  TimeMs first_time = 0, last_time = 0;
  int64_t util_samples = 0, util_sum = 0, peak_util = 0;
  int64_t memory_samples = 0, memory_sum = 0, peak_memory = 0;
  int64_t allocated_milli_gpu_ms = 0, idle_milli_gpu_ms = 0;
  int64_t violations = 0;
};

// An event appended by a write on another table (see Store::Write).
struct NewEvent {
  std::string type;
  JobId job = 0;  // 0: about no job
  std::string message;
  nlohmann::json data;
};

// Fields a transition may set alongside the new state. Unset optionals keep
// the stored value.
struct JobUpdate {
  std::optional<TimeMs> schedule_time;
  std::optional<TimeMs> start_time;
  std::optional<TimeMs> end_time;
  std::optional<int> exit_code;
  std::optional<std::string> message;
  std::optional<model::Placement> placement;
  std::optional<int> attempts;
  std::optional<DurationMs> attained_service;  // model::Job's fields of the same names
  std::optional<DurationMs> last_run_time;
  std::optional<TimeMs> queued_since;
  bool clear_exit_code = false;
  bool clear_placement = false;
  JobAnnotation annotation;
};

// One write of a batch that Store::Commit makes in one transaction: a
// transition (as Store::Transition), an annotation with an optional event
// (as Store::Annotate) or an event (as Store::AppendEvent).
struct StateOp {
  enum class Kind { kTransition, kAnnotate, kEvent };
  Kind kind = Kind::kEvent;
  JobId job = 0;
  JobState from = JobState::kPending;  // kTransition
  JobState to = JobState::kPending;    // kTransition
  JobUpdate update;                    // kTransition
  JobAnnotation annotation;            // kAnnotate
  std::string type;                    // the event's type (kAnnotate: "" for none)
  std::string message;
  TimeMs now = 0;
  nlohmann::json data;
};

struct Event {
  int64_t seq = 0;
  TimeMs time = 0;
  std::string type;   // "JobSubmitted", "JobScheduled", "JobStarted", "JobExited", ...
  JobId job = 0;      // 0 for events not about a job
  std::string state;  // the job's state after the event, if any
  std::string message;
  nlohmann::json data;  // extra fields (exit code, gpus, ...)
};

// {"seq", "time" (RFC 3339), "timeMs", "type", "job" (0: none), "state",
// "message", "data" (null when none)}.
nlohmann::json EventToJson(const Event& e);

class Store {
 public:
  // Opens (creating if needed) the database at `path` and applies pending
  // migrations. Refuses a database written by a newer schema version.
  static Result<std::unique_ptr<Store>> Open(const std::string& path,
                                             const StoreOptions& options = {});
  ~Store();

  int SchemaVersion() const;

  // Inserts a Pending job and its JobSubmitted event in one transaction.
  // Returns the new id; ids increase with submission order and are never
  // reused. InvalidArgument if ValidateJobSpec rejects the spec. Concurrent
  // callers are group-committed: one leader commits every queued submission
  // in one transaction while later ones queue behind it, then fsyncs the
  // write-ahead log outside the writer lock, so the next batch commits while
  // this one syncs. Each caller returns only after its own row is committed
  // and (options.durable) on disk. IoError if that fsync fails: the job is
  // then committed but may not survive a power loss, and every later durable
  // write fails too (the page cache can no longer be trusted).
  Result<JobId> SubmitJob(const JobSpec& spec, TimeMs now, const SubmitOptions& options = {});

  // Makes every commit made so far durable: one fsync of the write-ahead log,
  // shared with concurrent callers. A no-op with synchronous NORMAL or OFF.
  // For writes acknowledged to a client that went through Write (a pipeline
  // run's creation).
  Status Sync();

  StoreStats Stats() const;

  Result<Job> GetJob(JobId id) const;
  Result<std::vector<Job>> ListJobs(const JobFilter& filter) const;
  // Jobs not in a terminal state, by id (= arrival order).
  Result<std::vector<Job>> ListActiveJobs() const;

  // Moves job `id` from `from` to `to` with `update`, and appends an event of
  // `event_type` (empty: "Job" + the new state's name). FailedPrecondition if
  // the job is not in `from` or the state machine forbids the move: callers
  // race (cancel vs. exit) and the loser learns it here.
  Status Transition(JobId id, JobState from, JobState to, const JobUpdate& update,
                    const std::string& event_type, const std::string& message, TimeMs now,
                    const nlohmann::json& data = nullptr);

  // Writes `annotation` on job `id` and, when `event_type` is not empty, an
  // event, in one transaction (a stop request and its JobCancelRequested, a
  // clean-up and its TrainingCleanedUp, ...). NotFound for an unknown job.
  Status Annotate(JobId id, const JobAnnotation& annotation, const std::string& event_type,
                  const std::string& message, TimeMs now, const nlohmann::json& data = nullptr);

  // Commits `ops` in order in one transaction (one commit, one wake-up of
  // event waiters): a controller's transitions of one pass. An op the store
  // refuses (FailedPrecondition, NotFound, InvalidArgument: as the single
  // calls above) writes nothing and the others commit; `refused` (if given)
  // gets one Status per op. Returns Unavailable (the database is locked by
  // another process past the busy timeout) or IoError when nothing was
  // committed and the same batch may succeed later: the caller retries it.
  Status Commit(const std::vector<StateOp>& ops, std::vector<Status>* refused = nullptr);

  // (job, cleanup_at) of every job with a clean-up pending, by time.
  Result<std::vector<std::pair<JobId, TimeMs>>> ListCleanups() const;

  // The training status document of job `id`; nullopt when none was saved.
  Result<std::optional<nlohmann::json>> GetTrainingStatus(JobId id) const;

  // Saves (replaces) a job's GPU usage. NotFound for an unknown job.
  Status PutJobUsage(const JobUsageRecord& usage);
  Result<std::optional<JobUsageRecord>> GetJobUsage(JobId id) const;

  // Runs `body` on the writer connection, then appends the events `body`
  // put in its second argument: all in one transaction, serialised with
  // every other write and rolled back when `body` or an event fails. For
  // other tables of this database (PipelineStore), so that a change and its
  // event commit together or not at all. `body` must not call this Store.
  Status Write(const std::string& op,
               const std::function<Status(Conn&, std::vector<NewEvent>&)>& body, TimeMs now);

  // Appends an event that changes no job state (e.g. GpuIdle, Violation).
  Status AppendEvent(const std::string& type, JobId job, const std::string& message, TimeMs now,
                     const nlohmann::json& data = nullptr);

  // Appends events about no job (each `job` must be 0; `seq` and `state` are
  // ignored) in one transaction, in order: for a controller that reports
  // many transitions at once (a pipeline run's steps).
  Status AppendEvents(const std::vector<Event>& events);

  // Events with seq > after, oldest first, at most `limit`. Filtered by job when job != 0.
  Result<std::vector<Event>> EventsSince(int64_t after, int64_t limit, JobId job = 0) const;
  int64_t LastEventSeq() const;

  // Blocks until an event with seq > after exists or `timeout_ms` passes.
  // Returns the last seq. Used by event streams and log followers. Only
  // writes made through this Store object wake waiters (not other processes).
  int64_t WaitForEvent(int64_t after, int64_t timeout_ms) const;

  // Small key/value table for daemon settings and cursors. Nothing keyed by
  // a job lives here: a job's state is in its row and tables (schema v4).
  Status PutMeta(const std::string& key, const std::string& value);
  Result<std::optional<std::string>> GetMeta(const std::string& key) const;
  // Every (key, value) whose key starts with `prefix`, in key order.
  Result<std::vector<std::pair<std::string, std::string>>> ListMeta(
      const std::string& prefix) const;
  // Removes a key (no error when it is absent).
  Status DeleteMeta(const std::string& key);

 private:
  struct Impl;
  explicit Store(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace berth::store
