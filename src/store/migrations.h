// Versioned schema migrations for berth.db.
//
// The schema version lives in PRAGMA user_version. Migration i (1-based)
// takes the database from version i-1 to version i; each step runs in its
// own transaction together with the user_version bump, so a crash leaves the
// database at a whole version. A database whose version is above the last
// known step was written by a newer Berth and is refused.
#pragma once

#include <string>
#include <vector>

#include "common/status.h"
#include "store/sqlite_conn.h"

namespace berth::store {

struct Migration {
  int version;              // the version this step produces: 1, 2, ...
  std::string description;  // for logs: "jobs, events and meta tables"
  std::string sql;          // one or more statements
};

// The steps of this build, in order. Never edit a released step: add one.
const std::vector<Migration>& SchemaMigrations();

// The version SchemaMigrations() ends at.
int LatestSchemaVersion();

// Brings the database on `conn` up to the last step of `steps` (which must be
// numbered 1..n in order). Returns the resulting version, or
// FailedPrecondition when the database is newer than `steps`, or the error of
// the failing step (that step is rolled back; earlier ones stay applied).
// `what` names the database in messages (its path).
Result<int> ApplyMigrations(Conn& conn, const std::vector<Migration>& steps,
                            const std::string& what);

}  // namespace berth::store
