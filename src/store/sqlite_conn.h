// A thin layer over the SQLite C API for the store: one connection with its
// cached prepared statements, and every SQLite error turned into a Status
// whose message names the operation.
//
// Thread safety: a Conn is used by one thread at a time (the store guards
// each connection with its own mutex or hands it out from a pool).
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "common/status.h"

namespace berth::store {

// The Status for SQLite result code `rc` during `op` ("submit job: insert
// job"): Unavailable for busy/locked, IoError for disk and file failures,
// Internal for the rest. The message carries sqlite's own text.
Status SqliteError(sqlite3* db, int rc, std::string_view op);

// A prepared statement borrowed from a Conn's cache. Resets itself and
// clears its bindings when it goes out of scope, so the cached statement is
// ready for the next user.
class Stmt {
 public:
  explicit Stmt(sqlite3_stmt* s) : s_(s) {}
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  ~Stmt();

  // Binds by 1-based index. nullopt binds NULL.
  void Bind(int i, int64_t v);
  void Bind(int i, std::string_view v);
  void Bind(int i, std::optional<int64_t> v);
  void Bind(int i, const std::optional<std::string>& v);
  void BindNull(int i);

  // Steps once: true for SQLITE_ROW, false for SQLITE_DONE, else the error.
  Result<bool> Step(std::string_view op);
  // Steps to completion, expecting no rows.
  Status Run(std::string_view op);

  bool IsNull(int col) const;
  int64_t Int(int col) const;
  std::string Text(int col) const;

 private:
  sqlite3_stmt* s_;
};

class Conn {
 public:
  // Opens `path` with `flags` (SQLITE_OPEN_*), sets busy_timeout.
  static Result<std::unique_ptr<Conn>> Open(const std::string& path, int flags,
                                            int busy_timeout_ms);
  ~Conn();
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;

  sqlite3* db() const { return db_; }

  // Runs one or more statements that return nothing of interest.
  Status Exec(const std::string& sql, std::string_view op);
  // Runs a statement whose first row's first column is a single value.
  Result<std::string> QueryText(const std::string& sql, std::string_view op);
  Result<int64_t> QueryInt(const std::string& sql, std::string_view op);

  // The cached prepared statement for `sql` (prepared on first use).
  Result<sqlite3_stmt*> Prepare(const std::string& sql, std::string_view op);

  Status Begin(std::string_view op) { return Exec("BEGIN IMMEDIATE", op); }
  Status Commit(std::string_view op) { return Exec("COMMIT", op); }
  // Rolls back if a transaction is open; errors are ignored (the caller is
  // already reporting the first one).
  void Rollback();

 private:
  explicit Conn(sqlite3* db) : db_(db) {}
  sqlite3* db_;
  std::unordered_map<std::string, sqlite3_stmt*> stmts_;
};

}  // namespace berth::store
