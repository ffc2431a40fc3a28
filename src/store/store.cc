#include "store/store.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <functional>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <deque>
#include <mutex>
#include <unordered_map>
#include <utility>

#include "common/log.h"
#include "store/migrations.h"
#include "store/sqlite_conn.h"
#include "store/store_impl.h"

namespace berth::store {
namespace internal {

std::string JobName(JobId id) { return "job " + std::to_string(id); }

// Serialises `j` for a TEXT column; NULL (nullopt) for a null document.
Result<std::optional<std::string>> DumpJson(const nlohmann::json& j, const std::string& what) {
  if (j.is_null()) return std::optional<std::string>();
  try {
    return std::optional<std::string>(j.dump());
  } catch (const nlohmann::json::exception& e) {
    return InvalidArgument(what + ": cannot be stored as JSON: " + e.what());
  }
}

}  // namespace internal

using internal::DumpJson;
using internal::JobName;
using internal::SpecCache;
using internal::SubmitRequest;

namespace {

using nlohmann::json;

const char* const kJobColumns =
    "id, state, spec, submit_time, schedule_time, start_time, end_time, exit_code, message, "
    "placement, attempts, service_ms, last_run_ms, queued_since, stop_reason, stop_deadline, "
    "cleanup_at";

json PlacementToJson(const model::Placement& p) {
  json j = {
      {"node", p.node}, {"gpus", p.gpus}, {"gpuUuids", p.gpu_uuids}, {"gpuShare", p.gpu_share}};
  if (!p.workers.empty()) {
    json w = json::array();
    for (const model::Placement& x : p.workers) w.push_back(PlacementToJson(x));
    j["workers"] = w;
  }
  return j;
}

model::Placement PlacementFromJsonValue(const json& j) {
  model::Placement p;
  p.node = j.at("node").get<std::string>();
  p.gpus = j.at("gpus").get<std::vector<int>>();
  p.gpu_uuids = j.at("gpuUuids").get<std::vector<std::string>>();
  p.gpu_share = j.at("gpuShare").get<MilliGpu>();
  if (j.contains("workers")) {
    for (const json& w : j["workers"]) p.workers.push_back(PlacementFromJsonValue(w));
  }
  return p;
}

Result<model::Placement> PlacementFromJson(const std::string& text, JobId id) {
  try {
    return PlacementFromJsonValue(json::parse(text));
  } catch (const json::exception& e) {
    return Internal("store: " + JobName(id) + ": stored placement is not valid: " + e.what());
  }
}

Result<Job> ReadJobRow(const Stmt& st, SpecCache& cache) {
  Job job;
  job.id = st.Int(0);
  auto state = model::ParseJobState(st.Text(1));
  if (!state.ok())
    return Internal("store: " + JobName(job.id) + ": stored state: " + state.status().message());
  job.state = *state;
  std::shared_ptr<const JobSpec> spec = cache.Get(job.id);
  if (spec == nullptr) {
    auto parsed = model::ParseJobSpec(st.Text(2));
    if (!parsed.ok())
      return Internal("store: " + JobName(job.id) +
                      ": stored spec does not parse: " + parsed.status().message());
    spec = std::make_shared<const JobSpec>(std::move(parsed).value());
    cache.Put(job.id, spec);
  }
  job.spec = *spec;
  job.submit_time = st.Int(3);
  job.schedule_time = st.Int(4);
  job.start_time = st.Int(5);
  job.end_time = st.Int(6);
  if (!st.IsNull(7)) job.exit_code = static_cast<int>(st.Int(7));
  job.message = st.Text(8);
  if (!st.IsNull(9)) {
    ASSIGN_OR_RETURN(job.placement, PlacementFromJson(st.Text(9), job.id));
  }
  job.attempts = static_cast<int>(st.Int(10));
  job.attained_service = st.Int(11);
  job.last_run_time = st.Int(12);
  job.queued_since = st.Int(13);
  job.stop_reason = st.Text(14);
  job.stop_deadline = st.Int(15);
  job.cleanup_at = st.Int(16);
  return job;
}

Result<std::string> NormalizeSynchronous(const std::string& s) {
  std::string u = s;
  std::transform(u.begin(), u.end(), u.begin(), [](unsigned char c) { return std::toupper(c); });
  if (u == "FULL" || u == "NORMAL" || u == "EXTRA" || u == "OFF") return u;
  return InvalidArgument("store options: synchronous: must be FULL, NORMAL, EXTRA or OFF, got \"" +
                         s + "\"");
}

}  // namespace

json EventToJson(const Event& e) {
  return {{"seq", e.seq}, {"time", FormatTime(e.time)}, {"timeMs", e.time},     {"type", e.type},
          {"job", e.job}, {"state", e.state},           {"message", e.message}, {"data", e.data}};
}

Store::Store(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Store::~Store() = default;

Result<std::unique_ptr<Store>> Store::Open(const std::string& path, const StoreOptions& options) {
  auto impl = std::make_unique<Impl>();
  impl->path = path;
  impl->options = options;
  ASSIGN_OR_RETURN(std::string sync, NormalizeSynchronous(options.synchronous));
  impl->options.synchronous = sync;
  ASSIGN_OR_RETURN(std::string state_sync, NormalizeSynchronous(options.state_synchronous));
  impl->options.state_synchronous = state_sync;
  if (impl->options.max_submit_batch < 1) impl->options.max_submit_batch = 1;
  if (impl->options.max_syncs_in_flight < 1) impl->options.max_syncs_in_flight = 1;
  impl->shared_reader = path.empty() || path == ":memory:" || !options.read_connections;
  impl->specs =
      std::make_unique<SpecCache>(static_cast<size_t>(std::max(0, options.spec_cache_size)));

  ASSIGN_OR_RETURN(
      impl->writer,
      Conn::Open(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                 options.busy_timeout_ms));
  Conn& w = *impl->writer;
  ASSIGN_OR_RETURN(std::string mode,
                   w.QueryText("PRAGMA journal_mode = WAL", "open " + path + ": set WAL mode"));
  if (!impl->shared_reader && mode != "wal")
    return IoError("store: open " + path + ": could not switch to WAL journal mode (got \"" + mode +
                   "\")");
  RETURN_IF_ERROR(w.Exec("PRAGMA synchronous = " + sync, "open " + path + ": set synchronous"));
  impl->writer_sync = sync;
  impl->group_sync = mode == "wal" && (sync == "FULL" || sync == "EXTRA");
  RETURN_IF_ERROR(w.Exec("PRAGMA foreign_keys = ON", "open " + path + ": enable foreign keys"));
  ASSIGN_OR_RETURN(impl->schema_version, ApplyMigrations(w, SchemaMigrations(), path));
  ASSIGN_OR_RETURN(impl->last_seq, w.QueryInt("SELECT COALESCE(MAX(seq), 0) FROM events",
                                              "open " + path + ": read last event"));
  return std::unique_ptr<Store>(new Store(std::move(impl)));
}

int Store::SchemaVersion() const { return impl_->schema_version; }

Result<JobId> Store::SubmitJob(const JobSpec& spec, TimeMs now, const SubmitOptions& options) {
  RETURN_IF_ERROR(model::ValidateJobSpec(spec));
  SubmitRequest req;
  req.name = spec.name;
  req.user = spec.user;
  req.queue = spec.queue;
  req.priority = spec.priority;
  req.now = now;
  req.durable = options.durable;
  if (options.on_committed) req.on_committed = &options.on_committed;
  req.event_message = "submitted to queue " + spec.queue;
  try {
    req.spec_json = model::JobSpecToJson(spec).dump();
    req.event_data = json{{"name", spec.name}, {"user", spec.user}, {"queue", spec.queue}}.dump();
  } catch (const json::exception& e) {
    return InvalidArgument(std::string("spec: cannot be stored as JSON: ") + e.what());
  }

  Impl& m = *impl_;
  std::unique_lock<std::mutex> l(m.submit_mu);
  m.pending.push_back(&req);
  if (!m.leader_active) {
    m.leader_active = true;
    req.lead = true;
  }
  // Each caller sleeps on its own condition variable: woken once, when its
  // batch is done or when it is handed the lead (no thundering herd).
  req.cv.wait(l, [&] { return req.done || req.lead; });
  if (!req.done) {
    // Lead: wait for a free fsync slot first (what queues meanwhile joins
    // this batch; see StoreOptions::max_syncs_in_flight), then commit every
    // queued submission (up to the batch limit) in one transaction. The lead
    // passes to the next queued caller once the batch is committed, so the
    // next batch commits while this one syncs.
    if (m.group_sync) {
      l.unlock();
      m.WaitForSyncSlot();
      l.lock();
    }
    std::vector<SubmitRequest*> batch;
    while (!m.pending.empty() && batch.size() < static_cast<size_t>(m.options.max_submit_batch)) {
      batch.push_back(m.pending.front());
      m.pending.pop_front();
    }
    l.unlock();
    m.RunSubmitBatch(batch);
    l.lock();
    for (SubmitRequest* r : batch) {
      r->done = true;
      if (r != &req) r->cv.notify_one();  // under submit_mu: r may go away once it sees done
    }
  }
  l.unlock();
  if (req.result.ok() && m.specs->Enabled()) {
    // The store has the spec already: reads of this job need not parse it.
    m.specs->Put(*req.result, std::make_shared<const JobSpec>(spec));
  }
  return std::move(req.result);
}

void Store::Impl::RunSubmitBatch(const std::vector<SubmitRequest*>& batch) {
  auto release_leader = [&] {
    std::lock_guard<std::mutex> l(submit_mu);
    if (pending.empty()) {
      leader_active = false;
      return;
    }
    pending.front()->lead = true;
    pending.front()->cv.notify_one();
  };
  uint64_t committed = 0;
  try {
    {
      std::lock_guard<std::mutex> w(write_mu);
      Status sync = UseSync(group_sync ? "NORMAL" : options.synchronous);
      if (!sync.ok()) throw std::runtime_error(sync.message());
      CommitSubmitBatch(batch);
      committed = commits.load(std::memory_order_acquire);
    }
  } catch (const std::exception& e) {  // e.g. bad_alloc: never strand the followers
    {
      std::lock_guard<std::mutex> w(write_mu);
      writer->Rollback();
    }
    for (SubmitRequest* r : batch)
      r->result = Internal(std::string("store: submit job: ") + e.what());
    release_leader();
    return;
  }
  release_leader();
  bool need_sync = false;
  for (SubmitRequest* r : batch) {
    if (!r->result.ok()) continue;
    need_sync = need_sync || r->durable;
    if (r->on_committed != nullptr) {
      try {
        (*r->on_committed)(*r->result);
      } catch (const std::exception& e) {
        spdlog::error("store: submit job: on_committed for job {} threw: {}", *r->result, e.what());
      }
    }
  }
  if (!group_sync || !need_sync) return;
  Status st = SyncThrough(committed);
  if (st.ok()) return;
  for (SubmitRequest* r : batch) {
    if (!r->result.ok() || !r->durable) continue;
    r->result = IoError("store: submit job: " + JobName(*r->result) +
                        " is committed but may not survive a power loss: " + st.message());
  }
}

void Store::Impl::WaitForSyncSlot() {
  std::unique_lock<std::mutex> l(sync_mu);
  sync_cv.wait(l, [&] { return in_flight < options.max_syncs_in_flight || !sync_error.ok(); });
}

Status Store::Impl::SyncThrough(uint64_t target) {
  std::unique_lock<std::mutex> l(sync_mu);
  while (true) {
    if (!sync_error.ok()) return sync_error;
    if (synced >= target) return Status::Ok();
    if (syncing >= target) {  // an fsync that covers `target` is in flight
      sync_cv.wait(l);
      continue;
    }
    if (wal_fd < 0) {
      wal_fd = ::open((path + "-wal").c_str(), O_RDONLY | O_CLOEXEC);
      if (wal_fd < 0) {
        sync_error = IoError("open " + path + "-wal for fsync: " + std::strerror(errno));
        sync_cv.notify_all();
        return sync_error;
      }
    }
    // Covers every commit written by now, not only ours.
    const uint64_t covers = commits.load(std::memory_order_acquire);
    syncing = std::max(syncing, covers);
    ++in_flight;
    const int fd = wal_fd;
    l.unlock();
    int rc;
    do {
      rc = ::fdatasync(fd);
    } while (rc != 0 && errno == EINTR);
    const int err = errno;
    stat_syncs.fetch_add(1, std::memory_order_relaxed);
    l.lock();
    --in_flight;
    if (rc != 0) {
      sync_error = IoError("fsync of " + path + "-wal failed: " + std::strerror(err) +
                           " (restart berthd: later writes cannot be made durable)");
      spdlog::error("store: {}", sync_error.message());
    } else {
      synced = std::max(synced, covers);
    }
    sync_cv.notify_all();
  }
}

Store::Impl::~Impl() {
  {
    std::lock_guard<std::mutex> l(event_mu);
    closing = true;
  }
  event_cv.notify_all();
  if (wal_fd >= 0) ::close(wal_fd);
  idle_readers.clear();
  writer.reset();
}

Status Store::Sync() {
  Impl& m = *impl_;
  if (!m.group_sync) return Status::Ok();
  return m.SyncThrough(m.commits.load(std::memory_order_acquire));
}

StoreStats Store::Stats() const {
  StoreStats s;
  s.submissions = impl_->stat_submissions.load(std::memory_order_relaxed);
  s.submit_batches = impl_->stat_batches.load(std::memory_order_relaxed);
  s.wal_syncs = impl_->stat_syncs.load(std::memory_order_relaxed);
  return s;
}

Result<Job> Store::GetJob(JobId id) const {
  static const std::string kSql = std::string("SELECT ") + kJobColumns + " FROM jobs WHERE id = ?1";
  return impl_->Read<Job>([&](Conn& c) -> Result<Job> {
    std::string op = "get " + JobName(id);
    ASSIGN_OR_RETURN(sqlite3_stmt * raw, c.Prepare(kSql, op));
    Stmt st(raw);
    st.Bind(1, id);
    ASSIGN_OR_RETURN(bool row, st.Step(op));
    if (!row) return NotFound(JobName(id) + " not found");
    return ReadJobRow(st, *impl_->specs);
  });
}

namespace {

Result<std::vector<Job>> RunJobQuery(Conn& c, SpecCache& specs, const std::string& sql,
                                     const std::vector<std::string>& text_args, int64_t limit,
                                     const std::string& op) {
  ASSIGN_OR_RETURN(sqlite3_stmt * raw, c.Prepare(sql, op));
  Stmt st(raw);
  int i = 1;
  for (const std::string& a : text_args) st.Bind(i++, std::string_view(a));
  st.Bind(i, limit > 0 ? limit : int64_t{-1});
  std::vector<Job> jobs;
  for (;;) {
    ASSIGN_OR_RETURN(bool row, st.Step(op));
    if (!row) break;
    ASSIGN_OR_RETURN(Job job, ReadJobRow(st, specs));
    jobs.push_back(std::move(job));
  }
  return jobs;
}

}  // namespace

Result<std::vector<Job>> Store::ListJobs(const JobFilter& filter) const {
  std::string sql = std::string("SELECT ") + kJobColumns + " FROM jobs";
  std::vector<std::string> args;
  std::vector<std::string> where;
  if (!filter.states.empty()) {
    std::string in = "state IN (";
    for (size_t i = 0; i < filter.states.size(); ++i) {
      in += i == 0 ? "?" : ", ?";
      args.push_back(model::JobStateName(filter.states[i]));
    }
    where.push_back(in + ")");
  }
  if (!filter.user.empty()) {
    where.push_back("user = ?");
    args.push_back(filter.user);
  }
  if (!filter.queue.empty()) {
    where.push_back("queue = ?");
    args.push_back(filter.queue);
  }
  for (size_t i = 0; i < where.size(); ++i) sql += (i == 0 ? " WHERE " : " AND ") + where[i];
  sql += filter.newest_first ? " ORDER BY id DESC" : " ORDER BY id";
  sql += " LIMIT ?";
  return impl_->Read<std::vector<Job>>(
      [&](Conn& c) { return RunJobQuery(c, *impl_->specs, sql, args, filter.limit, "list jobs"); });
}

Result<std::vector<Job>> Store::ListActiveJobs() const {
  static const std::string kSql =
      std::string("SELECT ") + kJobColumns +
      " FROM jobs WHERE state IN ('Pending', 'Scheduled', 'Running', 'Preempted') ORDER BY id"
      " LIMIT ?";
  return impl_->Read<std::vector<Job>>(
      [&](Conn& c) { return RunJobQuery(c, *impl_->specs, kSql, {}, 0, "list active jobs"); });
}

namespace internal {

Result<int64_t> TransitionIn(Conn& c, JobId id, JobState from, JobState to, const JobUpdate& update,
                             const std::string& event_type, const std::string& message, TimeMs now,
                             const nlohmann::json& data) {
  const std::string move =
      std::string(model::JobStateName(from)) + " -> " + model::JobStateName(to);
  const std::string op = "move " + JobName(id) + " " + move;
  if (!model::IsValidTransition(from, to))
    return FailedPrecondition(JobName(id) + ": cannot move " + move +
                              ": the job state machine does not allow it");
  std::optional<std::string> placement_json;
  if (update.placement) {
    ASSIGN_OR_RETURN(placement_json, DumpJson(PlacementToJson(*update.placement), "placement"));
  }
  ASSIGN_OR_RETURN(std::optional<std::string> data_json, DumpJson(data, "event data"));
  const std::string type =
      event_type.empty() ? std::string("Job") + model::JobStateName(to) : event_type;

  static const std::string kSelect = "SELECT state FROM jobs WHERE id = ?1";
  static const std::string kUpdate =
      "UPDATE jobs SET state = ?1,"
      " schedule_time = COALESCE(?2, schedule_time),"
      " start_time = COALESCE(?3, start_time),"
      " end_time = COALESCE(?4, end_time),"
      " exit_code = CASE WHEN ?5 IS NOT NULL THEN ?5 WHEN ?6 THEN NULL ELSE exit_code END,"
      " message = COALESCE(?7, message),"
      " placement = CASE WHEN ?8 IS NOT NULL THEN ?8 WHEN ?9 THEN NULL ELSE placement END,"
      " attempts = COALESCE(?10, attempts),"
      " service_ms = COALESCE(?12, service_ms),"
      " last_run_ms = COALESCE(?13, last_run_ms),"
      " queued_since = COALESCE(?14, queued_since),"
      " stop_reason = CASE WHEN ?15 THEN '' ELSE stop_reason END,"
      " stop_deadline = CASE WHEN ?15 THEN 0 ELSE stop_deadline END"
      " WHERE id = ?11";
  const bool stop_over = to != JobState::kScheduled && to != JobState::kRunning;
  JobAnnotation annotation = update.annotation;
  if (stop_over) {
    annotation.stop_reason.reset();
    annotation.stop_deadline.reset();
  }
  // Everything that may refuse the op comes before its first write.
  std::optional<std::string> status_text;
  if (annotation.training_status) {
    ASSIGN_OR_RETURN(status_text, DumpJson(*annotation.training_status, "training status"));
  }
  {
    {
      ASSIGN_OR_RETURN(sqlite3_stmt * raw, c.Prepare(kSelect, op + ": read state"));
      Stmt st(raw);
      st.Bind(1, id);
      ASSIGN_OR_RETURN(bool row, st.Step(op + ": read state"));
      if (!row) return NotFound(JobName(id) + " not found (cannot move " + move + ")");
      std::string current = st.Text(0);
      if (current != model::JobStateName(from))
        return FailedPrecondition(JobName(id) + " is " + current + ", not " +
                                  model::JobStateName(from) + ": cannot move " + move);
    }
    {
      ASSIGN_OR_RETURN(sqlite3_stmt * raw, c.Prepare(kUpdate, op + ": update job"));
      Stmt st(raw);
      st.Bind(1, std::string_view(model::JobStateName(to)));
      st.Bind(2, update.schedule_time);
      st.Bind(3, update.start_time);
      st.Bind(4, update.end_time);
      if (update.exit_code) st.Bind(5, int64_t{*update.exit_code});
      st.Bind(6, int64_t{update.clear_exit_code ? 1 : 0});
      st.Bind(7, update.message);
      st.Bind(8, placement_json);
      st.Bind(9, int64_t{update.clear_placement ? 1 : 0});
      if (update.attempts) st.Bind(10, int64_t{*update.attempts});
      st.Bind(11, id);
      st.Bind(12, update.attained_service);
      st.Bind(13, update.last_run_time);
      st.Bind(14, update.queued_since);
      st.Bind(15, int64_t{stop_over ? 1 : 0});
      RETURN_IF_ERROR(st.Run(op + ": update job"));
    }
    RETURN_IF_ERROR(WriteAnnotation(c, op, id, annotation, status_text));
    return InsertEvent(c, op, now, type, id, model::JobStateName(to), message, data_json);
  }
}

}  // namespace internal

Status Store::Transition(JobId id, JobState from, JobState to, const JobUpdate& update,
                         const std::string& event_type, const std::string& message, TimeMs now,
                         const nlohmann::json& data) {
  return impl_->StateWrite("move " + JobName(id), [&](Conn& c) {
    return internal::TransitionIn(c, id, from, to, update, event_type, message, now, data);
  });
}

namespace {

bool IsRefusal(const Status& st) {
  return st.code() == StatusCode::kFailedPrecondition || st.code() == StatusCode::kNotFound ||
         st.code() == StatusCode::kInvalidArgument;
}

Result<int64_t> OpIn(Conn& c, const StateOp& o) {
  switch (o.kind) {
    case StateOp::Kind::kTransition:
      return internal::TransitionIn(c, o.job, o.from, o.to, o.update, o.type, o.message, o.now,
                                    o.data);
    case StateOp::Kind::kAnnotate:
      return internal::AnnotateIn(c, o.job, o.annotation, o.type, o.message, o.now, o.data);
    case StateOp::Kind::kEvent:
      return internal::EventIn(c, o.type, o.job, o.message, o.now, o.data);
  }
  return Internal("store: unknown state op");
}

}  // namespace

Status Store::Commit(const std::vector<StateOp>& ops, std::vector<Status>* refused) {
  if (refused) refused->assign(ops.size(), Status::Ok());
  if (ops.empty()) return Status::Ok();
  const std::string op = "commit " + std::to_string(ops.size()) + " state change(s)";
  std::vector<Status> local(ops.size(), Status::Ok());
  Status st = impl_->StateWrite(op, [&](Conn& c) -> Result<int64_t> {
    int64_t seq = 0;
    for (size_t i = 0; i < ops.size(); ++i) {
      Result<int64_t> r = OpIn(c, ops[i]);
      if (r.ok()) {
        seq = std::max(seq, *r);
      } else if (IsRefusal(r.status())) {
        local[i] = r.status();  // refused before it wrote anything
      } else {
        return r.status();
      }
    }
    return seq;
  });
  if (st.ok() || st.code() == StatusCode::kUnavailable || st.code() == StatusCode::kIo) {
    if (st.ok() && refused) *refused = std::move(local);
    return st;
  }
  // An op failed after it wrote (a constraint, ...): the batch was rolled
  // back; each op commits alone so that only the bad one is lost.
  for (size_t i = 0; i < ops.size(); ++i) {
    Status one = impl_->StateWrite(op, [&](Conn& c) { return OpIn(c, ops[i]); });
    if (!one.ok() && (one.code() == StatusCode::kUnavailable || one.code() == StatusCode::kIo))
      return one;  // what committed so far stays; the caller retries: the
                   // ones done are then refused (their state moved on)
    if (refused) (*refused)[i] = one;
  }
  return Status::Ok();
}

}  // namespace berth::store
