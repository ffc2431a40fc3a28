#include "store/auth_store.h"

#include <sqlite3.h>

namespace berth::store {
namespace {

using nlohmann::json;

constexpr char kTokenColumns[] =
    "id, user, hash, created, expires, last_used, revoked, job_id, description";

TokenRecord ReadToken(const Stmt& s) {
  TokenRecord t;
  t.id = s.Text(0);
  t.user = s.Text(1);
  t.hash = s.Text(2);
  t.created = s.Int(3);
  t.expires = s.Int(4);
  t.last_used = s.Int(5);
  t.revoked = s.Int(6);
  if (!s.IsNull(7)) t.job = s.Int(7);
  t.description = s.Text(8);
  return t;
}

}  // namespace

Result<std::unique_ptr<AuthStore>> AuthStore::Open(Store& store, const std::string& db_path,
                                                   int busy_timeout_ms) {
  ASSIGN_OR_RETURN(auto conn, Conn::Open(db_path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX,
                                         busy_timeout_ms));
  RETURN_IF_ERROR(conn->Exec("PRAGMA query_only = 1", "auth store: pragmas"));
  return std::unique_ptr<AuthStore>(new AuthStore(store, std::move(conn)));
}

Status AuthStore::PutUser(const UserRecord& u, const std::string& actor, TimeMs now) {
  const std::string op = "auth store: set role of user " + u.name;
  return store_.Write(
      op,
      [&](Conn& c, std::vector<NewEvent>& events) -> Status {
        ASSIGN_OR_RETURN(sqlite3_stmt * raw,
                         c.Prepare("INSERT INTO users (name, role, created) VALUES (?1, ?2, ?3) "
                                   "ON CONFLICT(name) DO UPDATE SET role = excluded.role",
                                   op));
        Stmt s(raw);
        s.Bind(1, std::string_view(u.name));
        s.Bind(2, std::string_view(u.role));
        s.Bind(3, u.created ? u.created : now);
        RETURN_IF_ERROR(s.Run(op));
        events.push_back({"UserRoleSet", 0, "user " + u.name + " is " + u.role,
                          json{{"user", u.name}, {"role", u.role}, {"actor", actor}}});
        return Status::Ok();
      },
      now);
}

Result<std::optional<UserRecord>> AuthStore::GetUser(const std::string& name) {
  const std::string op = "auth store: read user " + name;
  std::lock_guard<std::mutex> l(mu_);
  ASSIGN_OR_RETURN(sqlite3_stmt * raw,
                   conn_->Prepare("SELECT name, role, created FROM users WHERE name = ?1", op));
  Stmt s(raw);
  s.Bind(1, std::string_view(name));
  ASSIGN_OR_RETURN(bool row, s.Step(op));
  if (!row) return std::optional<UserRecord>();
  return std::optional<UserRecord>(UserRecord{s.Text(0), s.Text(1), s.Int(2)});
}

Result<std::vector<UserRecord>> AuthStore::ListUsers() {
  const std::string op = "auth store: list users";
  std::lock_guard<std::mutex> l(mu_);
  ASSIGN_OR_RETURN(sqlite3_stmt * raw,
                   conn_->Prepare("SELECT name, role, created FROM users ORDER BY name", op));
  Stmt s(raw);
  std::vector<UserRecord> out;
  for (;;) {
    ASSIGN_OR_RETURN(bool row, s.Step(op));
    if (!row) break;
    out.push_back({s.Text(0), s.Text(1), s.Int(2)});
  }
  return out;
}

Status AuthStore::InsertToken(const TokenRecord& t, const std::string& actor, TimeMs now) {
  const std::string op = "auth store: create token " + t.id;
  return store_.Write(
      op,
      [&](Conn& c, std::vector<NewEvent>& events) -> Status {
        {
          ASSIGN_OR_RETURN(sqlite3_stmt * raw,
                           c.Prepare("SELECT 1 FROM tokens WHERE id = ?1", op + ": look up id"));
          Stmt s(raw);
          s.Bind(1, std::string_view(t.id));
          ASSIGN_OR_RETURN(bool taken, s.Step(op));
          if (taken) return AlreadyExists("token id " + t.id + " is taken");
        }
        ASSIGN_OR_RETURN(sqlite3_stmt * raw,
                         c.Prepare(std::string("INSERT INTO tokens (") + kTokenColumns +
                                       ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                                   op));
        Stmt s(raw);
        s.Bind(1, std::string_view(t.id));
        s.Bind(2, std::string_view(t.user));
        s.Bind(3, std::string_view(t.hash));
        s.Bind(4, t.created);
        s.Bind(5, t.expires);
        s.Bind(6, t.last_used);
        s.Bind(7, t.revoked);
        s.Bind(8, t.job);
        s.Bind(9, std::string_view(t.description));
        RETURN_IF_ERROR(s.Run(op));
        json data{{"token", t.id}, {"user", t.user}, {"actor", actor}};
        if (t.job) data["job"] = *t.job;
        if (t.expires) data["expires"] = FormatTime(t.expires);
        events.push_back({"TokenCreated", 0, "token " + t.id + " created for " + t.user, data});
        return Status::Ok();
      },
      now);
}

Result<std::optional<TokenRecord>> AuthStore::GetToken(const std::string& id) {
  const std::string op = "auth store: read token " + id;
  std::lock_guard<std::mutex> l(mu_);
  ASSIGN_OR_RETURN(
      sqlite3_stmt * raw,
      conn_->Prepare(std::string("SELECT ") + kTokenColumns + " FROM tokens WHERE id = ?1", op));
  Stmt s(raw);
  s.Bind(1, std::string_view(id));
  ASSIGN_OR_RETURN(bool row, s.Step(op));
  if (!row) return std::optional<TokenRecord>();
  return std::optional<TokenRecord>(ReadToken(s));
}

Result<std::vector<TokenRecord>> AuthStore::ListTokens(const std::string& user, bool with_job) {
  const std::string op = "auth store: list tokens";
  std::lock_guard<std::mutex> l(mu_);
  ASSIGN_OR_RETURN(sqlite3_stmt * raw,
                   conn_->Prepare(std::string("SELECT ") + kTokenColumns +
                                      " FROM tokens WHERE (?1 = '' OR user = ?1) AND "
                                      "(?2 OR job_id IS NULL) ORDER BY created DESC, id",
                                  op));
  Stmt s(raw);
  s.Bind(1, std::string_view(user));
  s.Bind(2, static_cast<int64_t>(with_job));
  std::vector<TokenRecord> out;
  for (;;) {
    ASSIGN_OR_RETURN(bool row, s.Step(op));
    if (!row) break;
    out.push_back(ReadToken(s));
  }
  return out;
}

Result<bool> AuthStore::RevokeToken(const std::string& id, const std::string& actor, TimeMs now) {
  const std::string op = "auth store: revoke token " + id;
  bool changed = false;
  Status st = store_.Write(
      op,
      [&](Conn& c, std::vector<NewEvent>& events) -> Status {
        {
          ASSIGN_OR_RETURN(
              sqlite3_stmt * raw,
              c.Prepare("UPDATE tokens SET revoked = ?2 WHERE id = ?1 AND revoked = 0", op));
          Stmt s(raw);
          s.Bind(1, std::string_view(id));
          s.Bind(2, now);
          RETURN_IF_ERROR(s.Run(op));
        }
        changed = sqlite3_changes(c.db()) > 0;
        if (!changed) return Status::Ok();
        ASSIGN_OR_RETURN(sqlite3_stmt * raw,
                         c.Prepare("UPDATE sessions SET revoked = ?2 WHERE token_id = ?1 AND "
                                   "revoked = 0",
                                   op + ": end its sessions"));
        Stmt s(raw);
        s.Bind(1, std::string_view(id));
        s.Bind(2, now);
        RETURN_IF_ERROR(s.Run(op + ": end its sessions"));
        events.push_back(
            {"TokenRevoked", 0, "token " + id + " revoked", json{{"token", id}, {"actor", actor}}});
        return Status::Ok();
      },
      now);
  if (!st.ok()) return st;
  return changed;
}

Result<int> AuthStore::RevokeJobTokens(int64_t job, TimeMs now) {
  const std::string op = "auth store: revoke the tokens of job " + std::to_string(job);
  int n = 0;
  Status st = store_.Write(
      op,
      [&](Conn& c, std::vector<NewEvent>& events) -> Status {
        ASSIGN_OR_RETURN(sqlite3_stmt * raw,
                         c.Prepare("UPDATE tokens SET revoked = ?2 WHERE job_id = ?1 AND "
                                   "revoked = 0",
                                   op));
        Stmt s(raw);
        s.Bind(1, job);
        s.Bind(2, now);
        RETURN_IF_ERROR(s.Run(op));
        n = sqlite3_changes(c.db());
        if (n > 0)
          events.push_back({"JobTokenRevoked", 0,
                            "job " + std::to_string(job) + "'s token revoked (the job ended)",
                            json{{"job", job}, {"tokens", n}}});
        return Status::Ok();
      },
      now);
  if (!st.ok()) return st;
  return n;
}

Status AuthStore::TouchToken(const std::string& id, TimeMs now) {
  const std::string op = "auth store: note the use of token " + id;
  return store_.Write(
      op,
      [&](Conn& c, std::vector<NewEvent>&) -> Status {
        ASSIGN_OR_RETURN(sqlite3_stmt * raw,
                         c.Prepare("UPDATE tokens SET last_used = ?2 WHERE id = ?1", op));
        Stmt s(raw);
        s.Bind(1, std::string_view(id));
        s.Bind(2, now);
        return s.Run(op);
      },
      now);
}

Status AuthStore::InsertSession(const SessionRecord& r, TimeMs now) {
  const std::string op = "auth store: create a session for " + r.user;
  return store_.Write(
      op,
      [&](Conn& c, std::vector<NewEvent>& events) -> Status {
        ASSIGN_OR_RETURN(sqlite3_stmt * raw,
                         c.Prepare("INSERT INTO sessions (id_hash, user, csrf, token_id, created, "
                                   "expires, revoked) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                                   op));
        Stmt s(raw);
        s.Bind(1, std::string_view(r.id_hash));
        s.Bind(2, std::string_view(r.user));
        s.Bind(3, std::string_view(r.csrf));
        s.Bind(4, std::string_view(r.token_id));
        s.Bind(5, r.created);
        s.Bind(6, r.expires);
        s.Bind(7, r.revoked);
        RETURN_IF_ERROR(s.Run(op));
        events.push_back({"SessionCreated", 0, "browser session for " + r.user,
                          json{{"user", r.user}, {"token", r.token_id}}});
        return Status::Ok();
      },
      now);
}

Result<std::optional<SessionRecord>> AuthStore::GetSession(const std::string& id_hash) {
  const std::string op = "auth store: read session";
  std::lock_guard<std::mutex> l(mu_);
  ASSIGN_OR_RETURN(sqlite3_stmt * raw,
                   conn_->Prepare("SELECT id_hash, user, csrf, token_id, created, expires, "
                                  "revoked FROM sessions WHERE id_hash = ?1",
                                  op));
  Stmt s(raw);
  s.Bind(1, std::string_view(id_hash));
  ASSIGN_OR_RETURN(bool row, s.Step(op));
  if (!row) return std::optional<SessionRecord>();
  SessionRecord r{s.Text(0), s.Text(1), s.Text(2), s.Text(3), s.Int(4), s.Int(5), s.Int(6)};
  return std::optional<SessionRecord>(std::move(r));
}

Result<bool> AuthStore::RevokeSession(const std::string& id_hash, TimeMs now) {
  const std::string op = "auth store: end a session";
  bool changed = false;
  Status st = store_.Write(
      op,
      [&](Conn& c, std::vector<NewEvent>&) -> Status {
        ASSIGN_OR_RETURN(sqlite3_stmt * raw,
                         c.Prepare("UPDATE sessions SET revoked = ?2 WHERE id_hash = ?1 AND "
                                   "revoked = 0",
                                   op));
        Stmt s(raw);
        s.Bind(1, std::string_view(id_hash));
        s.Bind(2, now);
        RETURN_IF_ERROR(s.Run(op));
        changed = sqlite3_changes(c.db()) > 0;
        return Status::Ok();
      },
      now);
  if (!st.ok()) return st;
  return changed;
}

}  // namespace berth::store
