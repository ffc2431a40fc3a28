#include "store/sqlite_conn.h"

#include <memory>

namespace berth::store {

Status SqliteError(sqlite3* db, int rc, std::string_view op) {
  std::string msg = "store: " + std::string(op) + ": ";
  const char* detail = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  msg += detail != nullptr ? detail : sqlite3_errstr(rc);
  msg += " (sqlite code " + std::to_string(rc) + ")";
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return Unavailable(std::move(msg));
    case SQLITE_IOERR:
    case SQLITE_FULL:
    case SQLITE_CANTOPEN:
    case SQLITE_READONLY:
    case SQLITE_PERM:
    case SQLITE_NOTADB:
    case SQLITE_CORRUPT:
    case SQLITE_PROTOCOL:
      return IoError(std::move(msg));
    default:
      return Internal(std::move(msg));
  }
}

Stmt::~Stmt() {
  sqlite3_reset(s_);
  sqlite3_clear_bindings(s_);
}

void Stmt::Bind(int i, int64_t v) { sqlite3_bind_int64(s_, i, v); }

void Stmt::Bind(int i, std::string_view v) {
  sqlite3_bind_text64(s_, i, v.data(), v.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
}

void Stmt::Bind(int i, std::optional<int64_t> v) {
  if (!v) return BindNull(i);
  Bind(i, *v);
}

void Stmt::Bind(int i, const std::optional<std::string>& v) {
  if (!v) return BindNull(i);
  Bind(i, std::string_view(*v));
}

void Stmt::BindNull(int i) { sqlite3_bind_null(s_, i); }

Result<bool> Stmt::Step(std::string_view op) {
  int rc = sqlite3_step(s_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return SqliteError(sqlite3_db_handle(s_), rc, op);
}

Status Stmt::Run(std::string_view op) {
  for (;;) {
    ASSIGN_OR_RETURN(bool row, Step(op));
    if (!row) return Status::Ok();
  }
}

bool Stmt::IsNull(int col) const { return sqlite3_column_type(s_, col) == SQLITE_NULL; }

int64_t Stmt::Int(int col) const { return sqlite3_column_int64(s_, col); }

std::string Stmt::Text(int col) const {
  const unsigned char* p = sqlite3_column_text(s_, col);
  if (p == nullptr) return {};
  return std::string(reinterpret_cast<const char*>(p),
                     static_cast<size_t>(sqlite3_column_bytes(s_, col)));
}

Result<std::unique_ptr<Conn>> Conn::Open(const std::string& path, int flags, int busy_timeout_ms) {
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &db, flags, nullptr);
  if (rc != SQLITE_OK) {
    Status st = SqliteError(db, rc, "open " + path);
    sqlite3_close_v2(db);
    return st;
  }
  sqlite3_extended_result_codes(db, 1);
  sqlite3_busy_timeout(db, busy_timeout_ms);
  return std::unique_ptr<Conn>(new Conn(db));
}

Conn::~Conn() {
  for (auto& [sql, s] : stmts_) sqlite3_finalize(s);
  sqlite3_close_v2(db_);
}

Status Conn::Exec(const std::string& sql, std::string_view op) {
  char* err = nullptr;
  int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err);
  sqlite3_free(err);  // sqlite3_errmsg(db_) still holds the same text
  if (rc != SQLITE_OK) return SqliteError(db_, rc, op);
  return Status::Ok();
}

Result<std::string> Conn::QueryText(const std::string& sql, std::string_view op) {
  ASSIGN_OR_RETURN(sqlite3_stmt * raw, Prepare(sql, op));
  Stmt st(raw);
  ASSIGN_OR_RETURN(bool row, st.Step(op));
  if (!row) return std::string();
  return st.Text(0);
}

Result<int64_t> Conn::QueryInt(const std::string& sql, std::string_view op) {
  ASSIGN_OR_RETURN(sqlite3_stmt * raw, Prepare(sql, op));
  Stmt st(raw);
  ASSIGN_OR_RETURN(bool row, st.Step(op));
  if (!row) return int64_t{0};
  return st.Int(0);
}

Result<sqlite3_stmt*> Conn::Prepare(const std::string& sql, std::string_view op) {
  auto it = stmts_.find(sql);
  if (it != stmts_.end()) return it->second;
  sqlite3_stmt* s = nullptr;
  int rc = sqlite3_prepare_v3(db_, sql.c_str(), static_cast<int>(sql.size()),
                              SQLITE_PREPARE_PERSISTENT, &s, nullptr);
  if (rc != SQLITE_OK) {
    sqlite3_finalize(s);
    return SqliteError(db_, rc, std::string(op) + ": prepare");
  }
  stmts_.emplace(sql, s);
  return s;
}

void Conn::Rollback() {
  if (sqlite3_get_autocommit(db_) == 0) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
}

}  // namespace berth::store
