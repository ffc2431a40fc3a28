// Internals of the Store shared by its source files: store.cc (jobs, events,
// meta, submissions) and job_state_store.cc (a job's domain state and
// Store::Write). Nothing outside src/store includes this.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "store/sqlite_conn.h"
#include "store/store.h"

namespace berth::store {
namespace internal {

constexpr size_t kMaxIdleReaders = 16;

// "job 12", for messages.
std::string JobName(JobId id);

// Serialises `j` for a TEXT column; NULL (nullopt) for a null document.
Result<std::optional<std::string>> DumpJson(const nlohmann::json& j, const std::string& what);

// Writes the columns of `a` on job `id` (a no-op for unset fields) and its
// training status (`status_text`: a.training_status serialised, by the
// caller, before its transaction's first write), inside the caller's
// transaction.
Status WriteAnnotation(Conn& c, const std::string& op, JobId id, const JobAnnotation& a,
                       const std::optional<std::string>& status_text);

// The bodies of Store::Transition, Annotate and AppendEvent inside the
// caller's transaction (Store::Commit runs many in one): the event's seq (0
// when none). Every refusal (FailedPrecondition, NotFound, InvalidArgument)
// comes before the op's first write.
Result<int64_t> TransitionIn(Conn& c, JobId id, JobState from, JobState to, const JobUpdate& update,
                             const std::string& event_type, const std::string& message, TimeMs now,
                             const nlohmann::json& data);
Result<int64_t> AnnotateIn(Conn& c, JobId id, const JobAnnotation& annotation,
                           const std::string& event_type, const std::string& message, TimeMs now,
                           const nlohmann::json& data);
Result<int64_t> EventIn(Conn& c, const std::string& type, JobId job, const std::string& message,
                        TimeMs now, const nlohmann::json& data);

// Appends one row to the event log inside the caller's transaction and
// returns its seq. job 0: an event about no job.
inline Result<int64_t> InsertEvent(Conn& c, const std::string& op, TimeMs now,
                                   const std::string& type, JobId job, std::string_view state,
                                   const std::string& message,
                                   const std::optional<std::string>& data_json) {
  static const std::string kInsert =
      "INSERT INTO events (time, type, job_id, state, message, data) "
      "VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
  ASSIGN_OR_RETURN(sqlite3_stmt * raw, c.Prepare(kInsert, op + ": insert event"));
  Stmt st(raw);
  st.Bind(1, now);
  st.Bind(2, std::string_view(type));
  if (job != 0) st.Bind(3, job);
  st.Bind(4, state);
  st.Bind(5, std::string_view(message));
  st.Bind(6, data_json);
  RETURN_IF_ERROR(st.Run(op + ": insert event"));
  return sqlite3_last_insert_rowid(c.db());
}

// Parsed specs by job id. A job's spec never changes after submission and
// ids are never reused, so entries never go stale; parsing (YAML) is most of
// the cost of reading a job. Oldest entries are dropped beyond `capacity`.
class SpecCache {
 public:
  explicit SpecCache(size_t capacity) : capacity_(capacity) {}

  bool Enabled() const { return capacity_ > 0; }

  std::shared_ptr<const JobSpec> Get(JobId id) {
    std::lock_guard<std::mutex> l(mu_);
    auto it = specs_.find(id);
    return it == specs_.end() ? nullptr : it->second;
  }

  void Put(JobId id, std::shared_ptr<const JobSpec> spec) {
    if (capacity_ == 0) return;
    std::lock_guard<std::mutex> l(mu_);
    if (!specs_.emplace(id, std::move(spec)).second) return;
    order_.push_back(id);
    while (order_.size() > capacity_) {
      specs_.erase(order_.front());
      order_.pop_front();
    }
  }

 private:
  const size_t capacity_;
  std::mutex mu_;
  std::unordered_map<JobId, std::shared_ptr<const JobSpec>> specs_;
  std::deque<JobId> order_;
};

// One SubmitJob call waiting in the group-commit queue.
struct SubmitRequest {
  std::string name, user, queue;
  int64_t priority = 0;
  std::string spec_json;
  std::string event_message;
  std::optional<std::string> event_data;
  TimeMs now = 0;
  bool durable = true;
  const std::function<void(JobId)>* on_committed = nullptr;
  bool done = false;  // guarded by Impl::submit_mu
  bool lead = false;  // this caller commits the next batch (submit_mu)
  std::condition_variable cv;
  Result<JobId> result = Internal("store: submit job: not run");
  int64_t seq = 0;
};

}  // namespace internal

struct Store::Impl {
  std::string path;
  StoreOptions options;
  int schema_version = 0;
  // ":memory:" databases exist once per connection: reads share the writer
  // (also when options.read_connections is false).
  bool shared_reader = false;
  std::unique_ptr<internal::SpecCache> specs;

  // The one writer connection.
  std::mutex write_mu;
  std::unique_ptr<Conn> writer;
  std::string writer_sync;  // the writer's current PRAGMA synchronous (write_mu)

  // Group fsync (options.synchronous FULL or EXTRA on a WAL file): durable
  // submissions commit with synchronous=NORMAL under write_mu, then fsync the
  // write-ahead log without it. An fsync of the WAL makes every commit
  // written before it durable: what a checkpoint copied out of the WAL was
  // synced into the database file by that checkpoint (SQLite syncs the WAL
  // before and the database after every checkpoint in NORMAL mode).
  bool group_sync = false;
  // Commits on the writer so far, counted after each one (under write_mu).
  std::atomic<uint64_t> commits{0};
  std::mutex sync_mu;
  std::condition_variable sync_cv;
  int wal_fd = -1;       // the -wal file, opened at the first sync (sync_mu)
  uint64_t synced = 0;   // every commit up to this count is on disk (sync_mu)
  uint64_t syncing = 0;  // the highest count an fsync in flight covers (sync_mu)
  int in_flight = 0;     // fsyncs running now (sync_mu)
  Status sync_error;     // sticky: an fsync failed (sync_mu)
  std::atomic<int64_t> stat_submissions{0}, stat_batches{0}, stat_syncs{0};

  // Makes every commit counted up to `target` durable: waits for an fsync in
  // flight that covers it, or runs one (covering every commit written when it
  // starts). Concurrent callers share fsyncs; several may be in flight.
  Status SyncThrough(uint64_t target);
  // Blocks while options.max_syncs_in_flight fsyncs are running.
  void WaitForSyncSlot();

  // Sets the writer's synchronous level before a write (write_mu held).
  Status UseSync(const std::string& level) {
    if (writer_sync == level) return Status::Ok();
    RETURN_IF_ERROR(writer->Exec("PRAGMA synchronous = " + level, "set synchronous " + level));
    writer_sync = level;
    return Status::Ok();
  }

  // Runs `body` as one write transaction on the writer with the state
  // durability level, then wakes event waiters up to the seq `body` returns.
  // Rolls back on any error.
  Status StateWrite(const std::string& op, const std::function<Result<int64_t>(Conn&)>& body) {
    std::lock_guard<std::mutex> w(write_mu);
    RETURN_IF_ERROR(UseSync(options.state_synchronous));
    Conn& c = *writer;
    RETURN_IF_ERROR(c.Begin(op + ": begin"));
    Result<int64_t> seq = body(c);
    Status st = seq.status();
    if (st.ok()) st = c.Commit(op + ": commit");
    if (!st.ok()) {
      c.Rollback();
      return st;
    }
    commits.fetch_add(1, std::memory_order_release);
    Published(*seq);
    return Status::Ok();
  }

  // Appends one row to the event log inside the caller's transaction and
  // returns its seq. job 0: an event about no job.
  static Result<int64_t> InsertEvent(Conn& c, const std::string& op, TimeMs now,
                                     const std::string& type, JobId job, std::string_view state,
                                     const std::string& message,
                                     const std::optional<std::string>& data_json) {
    return internal::InsertEvent(c, op, now, type, job, state, message, data_json);
  }

  // Idle read connections (WAL lets them read while the writer commits).
  std::mutex pool_mu;
  std::vector<std::unique_ptr<Conn>> idle_readers;

  // Group commit of submissions: callers queue in `pending`; one of them at
  // a time (the leader) commits a batch. Invariant: pending is not empty
  // only while leader_active.
  std::mutex submit_mu;
  std::deque<internal::SubmitRequest*> pending;
  bool leader_active = false;

  // The last committed event, for WaitForEvent.
  mutable std::mutex event_mu;
  mutable std::condition_variable event_cv;
  int64_t last_seq = 0;
  bool closing = false;

  ~Impl();

  Result<std::unique_ptr<Conn>> AcquireReader() {
    {
      std::lock_guard<std::mutex> l(pool_mu);
      if (!idle_readers.empty()) {
        auto c = std::move(idle_readers.back());
        idle_readers.pop_back();
        return c;
      }
    }
    ASSIGN_OR_RETURN(auto c, Conn::Open(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
                                        options.busy_timeout_ms));
    RETURN_IF_ERROR(c->Exec("PRAGMA query_only = 1", "open reader for " + path));
    return c;
  }

  void ReleaseReader(std::unique_ptr<Conn> c) {
    std::lock_guard<std::mutex> l(pool_mu);
    if (idle_readers.size() < internal::kMaxIdleReaders) idle_readers.push_back(std::move(c));
  }

  // Runs f(Conn&) -> Result<T> on a read connection.
  template <typename T, typename F>
  Result<T> Read(F&& f) {
    if (shared_reader) {
      std::lock_guard<std::mutex> l(write_mu);
      return f(*writer);
    }
    ASSIGN_OR_RETURN(auto conn, AcquireReader());
    Result<T> r = f(*conn);
    ReleaseReader(std::move(conn));
    return r;
  }

  // Called with write_mu held, after a commit that wrote events up to `seq`.
  void Published(int64_t seq) {
    {
      std::lock_guard<std::mutex> l(event_mu);
      if (seq <= last_seq) return;
      last_seq = seq;
    }
    event_cv.notify_all();
  }

  // Commits `batch` (CommitSubmitBatch), tells each caller's on_committed,
  // then syncs the WAL for the durable ones. Leaves every result set.
  void RunSubmitBatch(const std::vector<internal::SubmitRequest*>& batch);

  // Inserts one job and its JobSubmitted event in the open transaction.
  Status InsertJob(internal::SubmitRequest& r) {
    static const std::string kInsertJob =
        "INSERT INTO jobs (state, name, user, queue, priority, spec, submit_time) "
        "VALUES ('Pending', ?1, ?2, ?3, ?4, ?5, ?6)";
    static const std::string kInsertEvent =
        "INSERT INTO events (time, type, job_id, state, message, data) "
        "VALUES (?1, 'JobSubmitted', ?2, 'Pending', ?3, ?4)";
    {
      ASSIGN_OR_RETURN(sqlite3_stmt * raw, writer->Prepare(kInsertJob, "submit job: insert job"));
      Stmt st(raw);
      st.Bind(1, std::string_view(r.name));
      st.Bind(2, std::string_view(r.user));
      st.Bind(3, std::string_view(r.queue));
      st.Bind(4, r.priority);
      st.Bind(5, std::string_view(r.spec_json));
      st.Bind(6, r.now);
      RETURN_IF_ERROR(st.Run("submit job: insert job"));
    }
    JobId id = sqlite3_last_insert_rowid(writer->db());
    {
      ASSIGN_OR_RETURN(sqlite3_stmt * raw,
                       writer->Prepare(kInsertEvent, "submit job: insert JobSubmitted event"));
      Stmt st(raw);
      st.Bind(1, r.now);
      st.Bind(2, id);
      st.Bind(3, std::string_view(r.event_message));
      st.Bind(4, r.event_data);
      RETURN_IF_ERROR(st.Run("submit job: insert JobSubmitted event"));
    }
    r.seq = sqlite3_last_insert_rowid(writer->db());
    r.result = id;
    return Status::Ok();
  }

  // Commits `batch` in one transaction (write_mu held). When that fails,
  // each request is retried alone so one bad row fails only its caller.
  void CommitSubmitBatch(const std::vector<internal::SubmitRequest*>& batch) {
    Status st = writer->Begin("submit job: begin");
    for (size_t i = 0; st.ok() && i < batch.size(); ++i) st = InsertJob(*batch[i]);
    if (st.ok()) st = writer->Commit("submit job: commit");
    if (st.ok()) {
      commits.fetch_add(1, std::memory_order_release);
      stat_batches.fetch_add(1, std::memory_order_relaxed);
      stat_submissions.fetch_add(static_cast<int64_t>(batch.size()), std::memory_order_relaxed);
      Published(batch.back()->seq);
      return;
    }
    writer->Rollback();
    if (batch.size() == 1) {
      batch[0]->result = st;
      return;
    }
    for (internal::SubmitRequest* r : batch) CommitSubmitBatch({r});
  }
};

}  // namespace berth::store
