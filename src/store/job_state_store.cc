// A job's domain state besides its life-cycle state (schema v4: stop intent,
// clean-up time, training status, GPU usage) and Store::Write, the one-writer
// transaction other store modules (PipelineStore) use.
#include <cmath>

#include "store/sqlite_conn.h"
#include "store/store.h"
#include "store/store_impl.h"

namespace berth::store {

using internal::DumpJson;
using internal::JobName;
using nlohmann::json;

namespace internal {

Status WriteAnnotation(Conn& c, const std::string& op, JobId id, const JobAnnotation& a,
                       const std::optional<std::string>& status_text) {
  if (a.stop_reason || a.stop_deadline || a.cleanup_at) {
    static const std::string kUpdate =
        "UPDATE jobs SET stop_reason = COALESCE(?1, stop_reason),"
        " stop_deadline = COALESCE(?2, stop_deadline), cleanup_at = COALESCE(?3, cleanup_at)"
        " WHERE id = ?4";
    ASSIGN_OR_RETURN(sqlite3_stmt * raw, c.Prepare(kUpdate, op + ": update job"));
    Stmt st(raw);
    st.Bind(1, a.stop_reason);
    st.Bind(2, a.stop_deadline);
    st.Bind(3, a.cleanup_at);
    st.Bind(4, id);
    RETURN_IF_ERROR(st.Run(op + ": update job"));
  }
  if (a.training_status) {
    static const std::string kUpsert =
        "INSERT INTO training_status (job_id, status) VALUES (?1, ?2)"
        " ON CONFLICT (job_id) DO UPDATE SET status = excluded.status";
    ASSIGN_OR_RETURN(sqlite3_stmt * raw, c.Prepare(kUpsert, op + ": save training status"));
    Stmt st(raw);
    st.Bind(1, id);
    const std::string value = status_text.value_or("null");
    st.Bind(2, std::string_view(value));
    RETURN_IF_ERROR(st.Run(op + ": save training status"));
  }
  return Status::Ok();
}

}  // namespace internal

namespace internal {

Result<int64_t> AnnotateIn(Conn& c, JobId id, const JobAnnotation& annotation,
                           const std::string& event_type, const std::string& message, TimeMs now,
                           const nlohmann::json& data) {
  const std::string op =
      "annotate " + JobName(id) + (event_type.empty() ? "" : " (" + event_type + ")");
  ASSIGN_OR_RETURN(std::optional<std::string> data_json, DumpJson(data, "event data"));
  std::optional<std::string> status_text;
  if (annotation.training_status) {
    ASSIGN_OR_RETURN(status_text, DumpJson(*annotation.training_status, "training status"));
  }
  static const std::string kSelect = "SELECT state FROM jobs WHERE id = ?1";
  std::string state;
  {
    ASSIGN_OR_RETURN(sqlite3_stmt * raw, c.Prepare(kSelect, op + ": read job"));
    Stmt st(raw);
    st.Bind(1, id);
    ASSIGN_OR_RETURN(bool row, st.Step(op + ": read job"));
    if (!row) return NotFound(op + ": " + JobName(id) + " not found");
    state = st.Text(0);
  }
  RETURN_IF_ERROR(WriteAnnotation(c, op, id, annotation, status_text));
  if (event_type.empty()) return int64_t{0};
  return InsertEvent(c, op, now, event_type, id, state, message, data_json);
}

}  // namespace internal

Status Store::Annotate(JobId id, const JobAnnotation& annotation, const std::string& event_type,
                       const std::string& message, TimeMs now, const nlohmann::json& data) {
  return impl_->StateWrite("annotate " + JobName(id), [&](Conn& c) {
    return internal::AnnotateIn(c, id, annotation, event_type, message, now, data);
  });
}

Result<std::vector<std::pair<JobId, TimeMs>>> Store::ListCleanups() const {
  static const std::string kSql =
      "SELECT id, cleanup_at FROM jobs WHERE cleanup_at > 0 ORDER BY cleanup_at, id";
  using Rows = std::vector<std::pair<JobId, TimeMs>>;
  return impl_->Read<Rows>([&](Conn& c) -> Result<Rows> {
    const std::string op = "list pending clean-ups";
    ASSIGN_OR_RETURN(sqlite3_stmt * raw, c.Prepare(kSql, op));
    Stmt st(raw);
    Rows rows;
    for (;;) {
      ASSIGN_OR_RETURN(bool row, st.Step(op));
      if (!row) break;
      rows.emplace_back(st.Int(0), st.Int(1));
    }
    return rows;
  });
}

Result<std::optional<nlohmann::json>> Store::GetTrainingStatus(JobId id) const {
  static const std::string kSql = "SELECT status FROM training_status WHERE job_id = ?1";
  return impl_->Read<std::optional<json>>([&](Conn& c) -> Result<std::optional<json>> {
    const std::string op = "get training status of " + JobName(id);
    ASSIGN_OR_RETURN(sqlite3_stmt * raw, c.Prepare(kSql, op));
    Stmt st(raw);
    st.Bind(1, id);
    ASSIGN_OR_RETURN(bool row, st.Step(op));
    if (!row) return std::optional<json>();
    json j = json::parse(st.Text(0), nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) return Internal("store: " + op + ": stored status is not valid JSON");
    return std::optional<json>(std::move(j));
  });
}

Status Store::PutJobUsage(const JobUsageRecord& u) {
  static const std::string kSql =
      "INSERT OR REPLACE INTO job_usage (job_id, user, queue, first_time, last_time, util_samples,"
      " util_sum, peak_util, memory_samples, memory_sum, peak_memory, allocated_milli_gpu_ms,"
      " idle_milli_gpu_ms, violations) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12,"
      " ?13, ?14)";
  const std::string op = "save GPU usage of " + JobName(u.job);
  return impl_->StateWrite(op, [&](Conn& c) -> Result<int64_t> {
    ASSIGN_OR_RETURN(sqlite3_stmt * raw, c.Prepare(kSql, op));
    Stmt st(raw);
    st.Bind(1, u.job);
    st.Bind(2, std::string_view(u.user));
    st.Bind(3, std::string_view(u.queue));
    int i = 4;
    for (int64_t v :
         {u.first_time, u.last_time, u.util_samples, u.util_sum, u.peak_util, u.memory_samples,
          u.memory_sum, u.peak_memory, u.allocated_milli_gpu_ms, u.idle_milli_gpu_ms, u.violations})
      st.Bind(i++, v);
    Status s = st.Run(op);
    if (!s.ok() && sqlite3_extended_errcode(c.db()) == SQLITE_CONSTRAINT_FOREIGNKEY)
      return NotFound(op + ": " + JobName(u.job) + " not found");
    RETURN_IF_ERROR(s);
    return int64_t{0};
  });
}

Result<std::optional<JobUsageRecord>> Store::GetJobUsage(JobId id) const {
  static const std::string kSql =
      "SELECT user, queue, first_time, last_time, util_samples, util_sum, peak_util,"
      " memory_samples, memory_sum, peak_memory, allocated_milli_gpu_ms, idle_milli_gpu_ms,"
      " violations FROM job_usage WHERE job_id = ?1";
  return impl_->Read<std::optional<JobUsageRecord>>(
      [&](Conn& c) -> Result<std::optional<JobUsageRecord>> {
        const std::string op = "get GPU usage of " + JobName(id);
        ASSIGN_OR_RETURN(sqlite3_stmt * raw, c.Prepare(kSql, op));
        Stmt st(raw);
        st.Bind(1, id);
        ASSIGN_OR_RETURN(bool row, st.Step(op));
        if (!row) return std::optional<JobUsageRecord>();
        JobUsageRecord u;
        u.job = id;
        u.user = st.Text(0);
        u.queue = st.Text(1);
        u.first_time = st.Int(2);
        u.last_time = st.Int(3);
        u.util_samples = st.Int(4);
        u.util_sum = st.Int(5);
        u.peak_util = st.Int(6);
        u.memory_samples = st.Int(7);
        u.memory_sum = st.Int(8);
        u.peak_memory = st.Int(9);
        u.allocated_milli_gpu_ms = st.Int(10);
        u.idle_milli_gpu_ms = st.Int(11);
        u.violations = st.Int(12);
        return std::optional<JobUsageRecord>(std::move(u));
      });
}

Status Store::Write(const std::string& op,
                    const std::function<Status(Conn&, std::vector<NewEvent>&)>& body, TimeMs now) {
  return impl_->StateWrite(op, [&](Conn& c) -> Result<int64_t> {
    std::vector<NewEvent> events;
    RETURN_IF_ERROR(body(c, events));
    int64_t seq = 0;
    for (const NewEvent& e : events) {
      if (e.type.empty()) return InvalidArgument(op + ": event type: must not be empty");
      ASSIGN_OR_RETURN(std::optional<std::string> data, DumpJson(e.data, "event data"));
      ASSIGN_OR_RETURN(seq, Impl::InsertEvent(c, op, now, e.type, e.job, "", e.message, data));
    }
    return seq;
  });
}

}  // namespace berth::store
