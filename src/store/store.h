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
  // concurrent callers share one fsync; each returns after its batch commits.
  int max_submit_batch = 256;
  // How many parsed job specs reads keep in memory (specs never change
  // after submission). 0 disables the cache.
  int spec_cache_size = 50000;
  // true: reads use their own pooled connections and never wait for a
  // commit (WAL). false: reads share the writer connection under its mutex.
  bool read_connections = true;
};

struct JobFilter {
  std::vector<JobState> states;  // empty: any
  std::string user;              // empty: any
  std::string queue;             // empty: any
  int64_t limit = 0;             // 0: no limit
  bool newest_first = false;
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
};

struct Event {
  int64_t seq = 0;
  TimeMs time = 0;
  std::string type;  // "JobSubmitted", "JobScheduled", "JobStarted", "JobExited", ...
  JobId job = 0;     // 0 for events not about a job
  std::string state; // the job's state after the event, if any
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
  static Result<std::unique_ptr<Store>> Open(const std::string& path, const StoreOptions& options = {});
  ~Store();

  int SchemaVersion() const;

  // Inserts a Pending job and its JobSubmitted event in one transaction.
  // Returns the new id; ids increase with submission order and are never
  // reused. InvalidArgument if ValidateJobSpec rejects the spec. Concurrent
  // callers are group-committed (one transaction, one fsync per batch); each
  // returns only after its own row is committed.
  Result<JobId> SubmitJob(const JobSpec& spec, TimeMs now);

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

  // Appends an event that changes no job state (e.g. GpuIdle, Violation).
  Status AppendEvent(const std::string& type, JobId job, const std::string& message,
                     TimeMs now, const nlohmann::json& data = nullptr);

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

  // Small key/value table for daemon state (scheduler state, cursors).
  Status PutMeta(const std::string& key, const std::string& value);
  Result<std::optional<std::string>> GetMeta(const std::string& key) const;
  // Every (key, value) whose key starts with `prefix`, in key order.
  Result<std::vector<std::pair<std::string, std::string>>> ListMeta(const std::string& prefix) const;
  // Removes a key (no error when it is absent).
  Status DeleteMeta(const std::string& key);

 private:
  struct Impl;
  explicit Store(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace berth::store
