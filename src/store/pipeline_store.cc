#include "store/pipeline_store.h"

namespace berth::store {
namespace {

using nlohmann::json;

void B(Stmt& s, int i, const std::string& v) { s.Bind(i, std::string_view(v)); }
void B(Stmt& s, int i, int64_t v) { s.Bind(i, v); }
void B(Stmt& s, int i, std::optional<int64_t> v) { s.Bind(i, v); }

json ParseJson(const std::string& s, json fallback) {
  try {
    return s.empty() ? fallback : json::parse(s);
  } catch (const json::exception&) {
    return fallback;
  }
}

constexpr char kRunCols[] =
    "id, name, user, state, spec, parameters, cron, created, started, ended, message, stopping, "
    "suspended, artifact_dir, retried_from";

RunRecord ReadRun(Stmt& s) {
  RunRecord r;
  r.id = s.Int(0);
  r.name = s.Text(1);
  r.user = s.Text(2);
  // A name this version does not know (a damaged row) reads as Failed.
  r.state = model::ParseRunState(s.Text(3)).value_or(model::RunState::kFailed);
  r.spec = s.Text(4);
  json p = ParseJson(s.Text(5), json::object());
  for (auto it = p.begin(); it != p.end(); ++it)
    r.parameters[it.key()] =
        it.value().is_string() ? it.value().get<std::string>() : it.value().dump();
  r.cron = s.Text(6);
  r.created = s.Int(7);
  r.started = s.Int(8);
  r.ended = s.Int(9);
  r.message = s.Text(10);
  r.stopping = s.Text(11);
  r.suspended = s.Int(12) != 0;
  r.artifact_dir = s.Text(13);
  r.retried_from = s.Int(14);
  return r;
}

}  // namespace

Result<std::unique_ptr<PipelineStore>> PipelineStore::Open(Store& store, const std::string& db_path,
                                                           int busy_timeout_ms) {
  ASSIGN_OR_RETURN(auto conn, Conn::Open(db_path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX,
                                         busy_timeout_ms));
  RETURN_IF_ERROR(conn->Exec("PRAGMA query_only = 1", "pipeline store: pragmas"));
  return std::unique_ptr<PipelineStore>(new PipelineStore(store, std::move(conn)));
}

Status PipelineStore::WriteRun(Conn& c, const RunRecord& r) {
  const std::string op = "pipeline store: save run " + std::to_string(r.id);
  ASSIGN_OR_RETURN(
      sqlite3_stmt * raw,
      c.Prepare("UPDATE pipeline_runs SET state=?, started=?, ended=?, message=?, "
                "stopping=?, suspended=?, spec=?, parameters=?, artifact_dir=? WHERE id=?",
                op));
  Stmt s(raw);
  B(s, 1, std::string(model::ToString(r.state)));
  B(s, 2, r.started);
  B(s, 3, r.ended);
  B(s, 4, r.message);
  B(s, 5, r.stopping);
  B(s, 6, static_cast<int64_t>(r.suspended));
  B(s, 7, r.spec);
  B(s, 8, json(r.parameters).dump());
  B(s, 9, r.artifact_dir);
  B(s, 10, r.id);
  return s.Run(op);
}

Status PipelineStore::SaveNode(Conn& c, int64_t run, const NodeRecord& n) {
  const std::string op = "pipeline store: save node " + n.name;
  ASSIGN_OR_RETURN(
      sqlite3_stmt * raw,
      c.Prepare("INSERT OR REPLACE INTO pipeline_nodes (run_id, name, step, idx, item, "
                "state, job_id, attempts, exit_code, start_time, end_time, next_at, "
                "outputs, message, cached, gpus) VALUES "
                "(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                op));
  Stmt s(raw);
  B(s, 1, run);
  B(s, 2, n.name);
  B(s, 3, n.step);
  B(s, 4, n.index);
  B(s, 5, n.item);
  B(s, 6, std::string(model::ToString(n.state)));
  B(s, 7, n.job_id);
  B(s, 8, n.attempts);
  B(s, 9, n.exit_code);
  B(s, 10, n.start_time);
  B(s, 11, n.end_time);
  B(s, 12, n.next_at);
  B(s, 13, n.outputs.dump());
  B(s, 14, n.message);
  B(s, 15, static_cast<int64_t>(n.cached));
  B(s, 16, n.gpus);
  return s.Run(op);
}

Status PipelineStore::CreateRun(RunRecord* r, TimeMs now,
                                const std::function<std::vector<NewEvent>(RunRecord&)>& created) {
  const std::string op = "pipeline store: create run";
  RunRecord run = *r;
  Status st = store_.Write(
      op,
      [&](Conn& c, std::vector<NewEvent>& events) -> Status {
        run = *r;  // a retried body starts afresh
        ASSIGN_OR_RETURN(
            sqlite3_stmt * raw,
            c.Prepare("INSERT INTO pipeline_runs (name, user, state, spec, parameters, cron, "
                      "created, started, artifact_dir, retried_from) VALUES "
                      "(?,?,?,?,?,?,?,?,?,?)",
                      op));
        {
          Stmt s(raw);
          B(s, 1, run.name);
          B(s, 2, run.user);
          B(s, 3, std::string(model::ToString(run.state)));
          B(s, 4, run.spec);
          B(s, 5, json(run.parameters).dump());
          B(s, 6, run.cron);
          B(s, 7, run.created);
          B(s, 8, run.started);
          B(s, 9, run.artifact_dir);
          B(s, 10, run.retried_from);
          RETURN_IF_ERROR(s.Run(op));
        }
        run.id = sqlite3_last_insert_rowid(c.db());
        if (created) {
          events = created(run);
          RETURN_IF_ERROR(WriteRun(c, run));
        }
        for (const auto& [name, n] : run.nodes) RETURN_IF_ERROR(SaveNode(c, run.id, n));
        return Status::Ok();
      },
      now);
  if (!st.ok()) return st;
  *r = std::move(run);
  // A run's creation is acknowledged to its submitter: make it durable like
  // a job's submission (one fsync shared with concurrent submissions).
  return store_.Sync();
}

Status PipelineStore::SaveRun(const RunRecord& run, const std::vector<std::string>& nodes,
                              const std::vector<NewEvent>& events, TimeMs now) {
  const std::string op = "pipeline store: save run " + std::to_string(run.id);
  return store_.Write(
      op,
      [&](Conn& c, std::vector<NewEvent>& out) -> Status {
        RETURN_IF_ERROR(WriteRun(c, run));
        for (const auto& name : nodes) {
          auto it = run.nodes.find(name);
          if (it != run.nodes.end()) RETURN_IF_ERROR(SaveNode(c, run.id, it->second));
        }
        out = events;
        return Status::Ok();
      },
      now);
}

Result<RunRecord> PipelineStore::GetRun(int64_t id) {
  std::lock_guard<std::mutex> l(mu_);
  const std::string op = "pipeline store: get run " + std::to_string(id);
  // The run and its nodes from one snapshot (writes come from another connection).
  RETURN_IF_ERROR(conn_->Exec("BEGIN", op + ": begin"));
  Result<RunRecord> r = ReadRunAndNodes(id, op);
  conn_->Rollback();
  return r;
}

Result<RunRecord> PipelineStore::ReadRunAndNodes(int64_t id, const std::string& op) {
  RunRecord r;
  {
    ASSIGN_OR_RETURN(
        sqlite3_stmt * raw,
        conn_->Prepare(std::string("SELECT ") + kRunCols + " FROM pipeline_runs WHERE id=?", op));
    Stmt s(raw);
    B(s, 1, id);
    ASSIGN_OR_RETURN(bool row, s.Step(op));
    if (!row) return NotFound("pipeline run " + std::to_string(id) + " not found");
    r = ReadRun(s);
  }
  ASSIGN_OR_RETURN(
      sqlite3_stmt * raw,
      conn_->Prepare("SELECT name, step, idx, item, state, job_id, attempts, exit_code, "
                     "start_time, end_time, next_at, outputs, message, cached, gpus "
                     "FROM pipeline_nodes WHERE run_id=?",
                     op));
  Stmt s(raw);
  B(s, 1, id);
  for (;;) {
    ASSIGN_OR_RETURN(bool row, s.Step(op));
    if (!row) break;
    NodeRecord n;
    n.name = s.Text(0);
    n.step = s.Text(1);
    n.index = s.Int(2);
    n.item = s.Text(3);
    n.state = model::ParseStepState(s.Text(4)).value_or(model::StepState::kFailed);
    n.job_id = s.Int(5);
    n.attempts = s.Int(6);
    if (!s.IsNull(7)) n.exit_code = s.Int(7);
    n.start_time = s.Int(8);
    n.end_time = s.Int(9);
    n.next_at = s.Int(10);
    n.outputs = ParseJson(s.Text(11), json::object());
    n.message = s.Text(12);
    n.cached = s.Int(13) != 0;
    n.gpus = s.Text(14);
    r.nodes[n.name] = std::move(n);
  }
  return r;
}

Result<std::vector<RunRecord>> PipelineStore::ListRuns(int64_t limit, bool active_only,
                                                       const std::string& cron) {
  std::lock_guard<std::mutex> l(mu_);
  const std::string op = "pipeline store: list runs";
  std::string sql = std::string("SELECT ") + kRunCols +
                    " FROM pipeline_runs WHERE (?1 = 0 OR state = 'Running') " +
                    "AND (?2 = '' OR cron = ?2) ORDER BY id DESC LIMIT ?3";
  ASSIGN_OR_RETURN(sqlite3_stmt * raw, conn_->Prepare(sql, op));
  Stmt s(raw);
  B(s, 1, static_cast<int64_t>(active_only));
  B(s, 2, cron);
  B(s, 3, limit > 0 ? limit : int64_t{1} << 40);
  std::vector<RunRecord> out;
  for (;;) {
    ASSIGN_OR_RETURN(bool row, s.Step(op));
    if (!row) break;
    out.push_back(ReadRun(s));
  }
  return out;
}

Result<std::optional<std::pair<nlohmann::json, TimeMs>>> PipelineStore::GetMemo(
    const std::string& key) {
  std::lock_guard<std::mutex> l(mu_);
  const std::string op = "pipeline store: get memo";
  ASSIGN_OR_RETURN(sqlite3_stmt * raw,
                   conn_->Prepare("SELECT outputs, created FROM pipeline_memo WHERE key=?", op));
  Stmt s(raw);
  B(s, 1, key);
  ASSIGN_OR_RETURN(bool row, s.Step(op));
  if (!row) return std::optional<std::pair<nlohmann::json, TimeMs>>();
  return std::optional<std::pair<nlohmann::json, TimeMs>>(
      std::make_pair(ParseJson(s.Text(0), json::object()), s.Int(1)));
}

Status PipelineStore::PutMemo(const std::string& key, const nlohmann::json& outputs, TimeMs now,
                              int64_t run, const std::string& node) {
  const std::string op = "pipeline store: put memo";
  return store_.Write(
      op,
      [&](Conn& c, std::vector<NewEvent>&) -> Status {
        ASSIGN_OR_RETURN(
            sqlite3_stmt * raw,
            c.Prepare("INSERT OR REPLACE INTO pipeline_memo (key, outputs, created, run_id, node) "
                      "VALUES (?,?,?,?,?)",
                      op));
        Stmt s(raw);
        B(s, 1, key);
        B(s, 2, outputs.dump());
        B(s, 3, now);
        B(s, 4, run);
        B(s, 5, node);
        return s.Run(op);
      },
      now);
}

Status PipelineStore::PutCron(const CronRecord& cron) {
  const std::string op = "pipeline store: put cron " + cron.name;
  return store_.Write(
      op,
      [&](Conn& c, std::vector<NewEvent>&) -> Status {
        ASSIGN_OR_RETURN(
            sqlite3_stmt * raw,
            c.Prepare("INSERT OR REPLACE INTO pipeline_crons (name, spec, suspended, last_time, "
                      "created, last_fired, owner) VALUES (?,?,?,?,?,?,?)",
                      op));
        Stmt s(raw);
        B(s, 1, cron.name);
        B(s, 2, cron.spec);
        B(s, 3, static_cast<int64_t>(cron.suspended));
        B(s, 4, cron.last_time);
        B(s, 5, cron.created);
        B(s, 6, cron.last_fired);
        B(s, 7, cron.owner);
        return s.Run(op);
      },
      0);
}

Result<std::optional<CronRecord>> PipelineStore::GetCron(const std::string& name) {
  ASSIGN_OR_RETURN(auto all, ListCrons());
  for (auto& c : all)
    if (c.name == name) return std::optional<CronRecord>(c);
  return std::optional<CronRecord>();
}

Result<std::vector<CronRecord>> PipelineStore::ListCrons() {
  std::lock_guard<std::mutex> l(mu_);
  const std::string op = "pipeline store: list crons";
  ASSIGN_OR_RETURN(
      sqlite3_stmt * raw,
      conn_->Prepare(
          "SELECT name, spec, suspended, last_time, created, last_fired, owner FROM pipeline_crons "
          "ORDER BY name",
          op));
  Stmt s(raw);
  std::vector<CronRecord> out;
  for (;;) {
    ASSIGN_OR_RETURN(bool row, s.Step(op));
    if (!row) break;
    CronRecord c;
    c.name = s.Text(0);
    c.spec = s.Text(1);
    c.suspended = s.Int(2) != 0;
    c.last_time = s.Int(3);
    c.created = s.Int(4);
    c.last_fired = s.Int(5);
    c.owner = s.Text(6);
    out.push_back(c);
  }
  return out;
}

Status PipelineStore::DeleteCron(const std::string& name) {
  const std::string op = "pipeline store: delete cron " + name;
  return store_.Write(
      op,
      [&](Conn& c, std::vector<NewEvent>&) -> Status {
        ASSIGN_OR_RETURN(sqlite3_stmt * raw,
                         c.Prepare("DELETE FROM pipeline_crons WHERE name=?", op));
        Stmt s(raw);
        B(s, 1, name);
        RETURN_IF_ERROR(s.Run(op));
        if (sqlite3_changes(c.db()) == 0) return NotFound("cron pipeline " + name + " not found");
        return Status::Ok();
      },
      0);
}

Result<int64_t> PipelineStore::GetCursor() {
  std::lock_guard<std::mutex> l(mu_);
  const std::string op = "pipeline store: get cursor";
  ASSIGN_OR_RETURN(sqlite3_stmt * raw,
                   conn_->Prepare("SELECT value FROM meta WHERE key='pipeline.cursor'", op));
  Stmt s(raw);
  ASSIGN_OR_RETURN(bool row, s.Step(op));
  if (!row) return int64_t{0};
  return std::stoll(s.Text(0));
}

Status PipelineStore::PutCursor(int64_t seq) {
  const std::string op = "pipeline store: put cursor";
  return store_.Write(
      op,
      [&](Conn& c, std::vector<NewEvent>&) -> Status {
        ASSIGN_OR_RETURN(
            sqlite3_stmt * raw,
            c.Prepare("INSERT OR REPLACE INTO meta (key, value) VALUES ('pipeline.cursor', ?)",
                      op));
        Stmt s(raw);
        B(s, 1, std::to_string(seq));
        return s.Run(op);
      },
      0);
}

}  // namespace berth::store
