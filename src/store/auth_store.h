// Users, API tokens and browser sessions in berth.db (tables from migration
// 6). The rules (what a token is, who may do what) live in src/auth/; this
// is only their storage.
//
// Like PipelineStore, reads use its own connection to the database the Store
// already migrated, and every write goes through the Store's one writer
// (Store::Write), so a token's creation or revocation commits together with
// its event in the log (TokenCreated, TokenRevoked, ...: the audit trail).
// Thread-safe (one mutex around the read connection).
#pragma once

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "store/sqlite_conn.h"
#include "store/store.h"

namespace berth::store {

struct UserRecord {
  std::string name;
  std::string role;  // admin, user, viewer, service
  TimeMs created = 0;
};

struct TokenRecord {
  std::string id;    // the public part of berth_<id>_<secret>
  std::string user;  // whose authority it carries
  std::string hash;  // hex SHA-256 of the secret
  TimeMs created = 0;
  TimeMs expires = 0;          // 0: never
  TimeMs last_used = 0;        // 0: never
  TimeMs revoked = 0;          // 0: live
  std::optional<int64_t> job;  // set for a job-scoped token
  std::string description;
};

struct SessionRecord {
  std::string id_hash;  // hex SHA-256 of the cookie's value
  std::string user;
  std::string csrf;      // what the X-Berth-CSRF header must carry
  std::string token_id;  // the token that logged in; revoking it ends the session
  TimeMs created = 0;
  TimeMs expires = 0;
  TimeMs revoked = 0;
};

class AuthStore {
 public:
  // Reads `db_path` (already migrated by `store`, which must be open on the
  // same file and outlive this object) and writes through `store`.
  static Result<std::unique_ptr<AuthStore>> Open(Store& store, const std::string& db_path,
                                                 int busy_timeout_ms = 5000);

  // Inserts or replaces a user's role; a UserRoleSet event records it.
  Status PutUser(const UserRecord& user, const std::string& actor, TimeMs now);
  Result<std::optional<UserRecord>> GetUser(const std::string& name);
  Result<std::vector<UserRecord>> ListUsers();

  // AlreadyExists when the id is taken. A TokenCreated event (id, user,
  // actor, job; never the hash) commits with it.
  Status InsertToken(const TokenRecord& token, const std::string& actor, TimeMs now);
  Result<std::optional<TokenRecord>> GetToken(const std::string& id);
  // Newest first; `user` empty: everyone's. Job-scoped tokens only when `with_job`.
  Result<std::vector<TokenRecord>> ListTokens(const std::string& user, bool with_job);
  // Marks the token and the sessions it logged in revoked. false when there
  // is no such token or it was already revoked (nothing written).
  Result<bool> RevokeToken(const std::string& id, const std::string& actor, TimeMs now);
  // Revokes every live token of job `job`; returns how many.
  Result<int> RevokeJobTokens(int64_t job, TimeMs now);
  // Sets last_used (no event: it would flood the log).
  Status TouchToken(const std::string& id, TimeMs now);

  Status InsertSession(const SessionRecord& session, TimeMs now);
  Result<std::optional<SessionRecord>> GetSession(const std::string& id_hash);
  // false when there is no such live session.
  Result<bool> RevokeSession(const std::string& id_hash, TimeMs now);

 private:
  AuthStore(Store& store, std::unique_ptr<Conn> conn) : store_(store), conn_(std::move(conn)) {}
  Store& store_;
  std::mutex mu_;
  std::unique_ptr<Conn> conn_;
};

}  // namespace berth::store
