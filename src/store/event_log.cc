// The event log and the meta table: appends, reads, waits for new events,
// and daemon settings (store.h).
#include <chrono>
#include <mutex>

#include "store/sqlite_conn.h"
#include "store/store.h"
#include "store/store_impl.h"

namespace berth::store {
namespace {

using internal::DumpJson;
using nlohmann::json;

const char* const kEventColumns = "seq, time, type, job_id, state, message, data";

Result<Event> ReadEventRow(const Stmt& st) {
  Event e;
  e.seq = st.Int(0);
  e.time = st.Int(1);
  e.type = st.Text(2);
  e.job = st.IsNull(3) ? 0 : st.Int(3);
  e.state = st.Text(4);
  e.message = st.Text(5);
  if (!st.IsNull(6)) {
    e.data = json::parse(st.Text(6), nullptr, /*allow_exceptions=*/false);
    if (e.data.is_discarded())
      return Internal("store: event " + std::to_string(e.seq) + ": stored data is not valid JSON");
  }
  return e;
}

}  // namespace

namespace internal {

Result<int64_t> EventIn(Conn& c, const std::string& type, JobId job, const std::string& message,
                        TimeMs now, const nlohmann::json& data) {
  if (type.empty()) return InvalidArgument("event type: must not be empty");
  const std::string op = "append event " + type + (job != 0 ? " for " + JobName(job) : "");
  ASSIGN_OR_RETURN(std::optional<std::string> data_json, DumpJson(data, "event data"));
  static const std::string kSelect = "SELECT state FROM jobs WHERE id = ?1";
  std::string state;
  if (job != 0) {
    ASSIGN_OR_RETURN(sqlite3_stmt * raw, c.Prepare(kSelect, op + ": read job"));
    Stmt st(raw);
    st.Bind(1, job);
    ASSIGN_OR_RETURN(bool row, st.Step(op + ": read job"));
    if (!row) return NotFound(op + ": " + JobName(job) + " not found");
    state = st.Text(0);
  }
  return InsertEvent(c, op, now, type, job, state, message, data_json);
}

}  // namespace internal

Status Store::AppendEvent(const std::string& type, JobId job, const std::string& message,
                          TimeMs now, const nlohmann::json& data) {
  return impl_->StateWrite("append event " + type, [&](Conn& c) {
    return internal::EventIn(c, type, job, message, now, data);
  });
}

Status Store::AppendEvents(const std::vector<Event>& events) {
  if (events.empty()) return Status::Ok();
  std::vector<std::optional<std::string>> data(events.size());
  for (size_t i = 0; i < events.size(); ++i) {
    if (events[i].type.empty()) return InvalidArgument("event type: must not be empty");
    if (events[i].job != 0) return InvalidArgument("AppendEvents: events must be about no job");
    ASSIGN_OR_RETURN(data[i], DumpJson(events[i].data, "event data"));
  }
  const std::string op = "append " + std::to_string(events.size()) + " events";
  return impl_->StateWrite(op, [&](Conn& c) -> Result<int64_t> {
    int64_t seq = 0;
    for (size_t i = 0; i < events.size(); ++i) {
      const Event& e = events[i];
      ASSIGN_OR_RETURN(seq, Impl::InsertEvent(c, op, e.time, e.type, 0, "", e.message, data[i]));
    }
    return seq;
  });
}

Result<std::vector<Event>> Store::EventsSince(int64_t after, int64_t limit, JobId job) const {
  static const std::string kAll =
      std::string("SELECT ") + kEventColumns + " FROM events WHERE seq > ?1 ORDER BY seq LIMIT ?2";
  static const std::string kByJob = std::string("SELECT ") + kEventColumns +
                                    " FROM events WHERE seq > ?1 AND job_id = ?3 ORDER BY seq"
                                    " LIMIT ?2";
  return impl_->Read<std::vector<Event>>([&](Conn& c) -> Result<std::vector<Event>> {
    const std::string op = "read events";
    ASSIGN_OR_RETURN(sqlite3_stmt * raw, c.Prepare(job != 0 ? kByJob : kAll, op));
    Stmt st(raw);
    st.Bind(1, after);
    st.Bind(2, limit > 0 ? limit : int64_t{-1});
    if (job != 0) st.Bind(3, job);
    std::vector<Event> events;
    for (;;) {
      ASSIGN_OR_RETURN(bool row, st.Step(op));
      if (!row) break;
      ASSIGN_OR_RETURN(Event e, ReadEventRow(st));
      events.push_back(std::move(e));
    }
    return events;
  });
}

int64_t Store::LastEventSeq() const {
  std::lock_guard<std::mutex> l(impl_->event_mu);
  return impl_->last_seq;
}

int64_t Store::WaitForEvent(int64_t after, int64_t timeout_ms) const {
  Impl& m = *impl_;
  std::unique_lock<std::mutex> l(m.event_mu);
  if (timeout_ms > 0) {
    m.event_cv.wait_for(l, std::chrono::milliseconds(timeout_ms),
                        [&] { return m.last_seq > after || m.closing; });
  }
  return m.last_seq;
}

Status Store::PutMeta(const std::string& key, const std::string& value) {
  static const std::string kSql =
      "INSERT INTO meta (key, value) VALUES (?1, ?2) "
      "ON CONFLICT (key) DO UPDATE SET value = excluded.value";
  const std::string op = "put meta " + key;
  std::lock_guard<std::mutex> w(impl_->write_mu);
  RETURN_IF_ERROR(impl_->UseSync(impl_->options.state_synchronous));
  ASSIGN_OR_RETURN(sqlite3_stmt * raw, impl_->writer->Prepare(kSql, op));
  Stmt st(raw);
  st.Bind(1, std::string_view(key));
  st.Bind(2, std::string_view(value));
  RETURN_IF_ERROR(st.Run(op));
  impl_->commits.fetch_add(1, std::memory_order_release);
  return Status::Ok();
}

Result<std::optional<std::string>> Store::GetMeta(const std::string& key) const {
  static const std::string kSql = "SELECT value FROM meta WHERE key = ?1";
  return impl_->Read<std::optional<std::string>>(
      [&](Conn& c) -> Result<std::optional<std::string>> {
        const std::string op = "get meta " + key;
        ASSIGN_OR_RETURN(sqlite3_stmt * raw, c.Prepare(kSql, op));
        Stmt st(raw);
        st.Bind(1, std::string_view(key));
        ASSIGN_OR_RETURN(bool row, st.Step(op));
        if (!row) return std::optional<std::string>();
        return std::optional<std::string>(st.Text(0));
      });
}

Result<std::vector<std::pair<std::string, std::string>>> Store::ListMeta(
    const std::string& prefix) const {
  // key >= prefix AND key < prefix + U+FFFF-ish upper bound: an index range, no LIKE escaping.
  static const std::string kSql =
      "SELECT key, value FROM meta WHERE key >= ?1 AND key < ?2 ORDER BY key";
  using Rows = std::vector<std::pair<std::string, std::string>>;
  return impl_->Read<Rows>([&](Conn& c) -> Result<Rows> {
    const std::string op = "list meta " + prefix;
    ASSIGN_OR_RETURN(sqlite3_stmt * raw, c.Prepare(kSql, op));
    Stmt st(raw);
    st.Bind(1, std::string_view(prefix));
    std::string end = prefix + "\xff\xff\xff\xff";
    st.Bind(2, std::string_view(end));
    Rows rows;
    for (;;) {
      ASSIGN_OR_RETURN(bool row, st.Step(op));
      if (!row) break;
      rows.emplace_back(st.Text(0), st.Text(1));
    }
    return rows;
  });
}

Status Store::DeleteMeta(const std::string& key) {
  static const std::string kSql = "DELETE FROM meta WHERE key = ?1";
  const std::string op = "delete meta " + key;
  std::lock_guard<std::mutex> w(impl_->write_mu);
  RETURN_IF_ERROR(impl_->UseSync(impl_->options.state_synchronous));
  ASSIGN_OR_RETURN(sqlite3_stmt * raw, impl_->writer->Prepare(kSql, op));
  Stmt st(raw);
  st.Bind(1, std::string_view(key));
  RETURN_IF_ERROR(st.Run(op));
  impl_->commits.fetch_add(1, std::memory_order_release);
  return Status::Ok();
}

}  // namespace berth::store
