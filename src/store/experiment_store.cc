#include "store/experiment_store.h"

namespace berth::store {
namespace {

using nlohmann::json;

constexpr char kExpCols[] =
    "uid, name, owner, spec, state, message, created, ended, seed, suggestion_state, exhausted, "
    "parallel, max_trials, max_failed, best_trial";

ExperimentRecord ReadExperiment(Stmt& s) {
  ExperimentRecord r;
  r.uid = s.Int(0);
  r.name = s.Text(1);
  r.owner = s.Text(2);
  r.spec = s.Text(3);
  r.state = s.Text(4);
  r.message = s.Text(5);
  r.created = s.Int(6);
  r.ended = s.Int(7);
  r.seed = s.Int(8);
  r.suggestion_state = s.Text(9);
  r.exhausted = s.Int(10) != 0;
  r.parallel = s.Int(11);
  r.max_trials = s.Int(12);
  r.max_failed = s.Int(13);
  r.best_trial = s.Int(14);
  return r;
}

template <typename M>
M ParseMap(const std::string& text) {
  M out;
  json j = json::parse(text, nullptr, false);
  if (!j.is_object()) return out;
  for (auto it = j.begin(); it != j.end(); ++it) {
    if constexpr (std::is_same_v<typename M::mapped_type, double>) {
      if (it.value().is_number()) out[it.key()] = it.value().get<double>();
    } else {
      if (it.value().is_string()) out[it.key()] = it.value().get<std::string>();
    }
  }
  return out;
}

Status WriteExperiment(Conn& c, const ExperimentRecord& r) {
  const std::string op = "experiment store: save experiment " + r.name;
  ASSIGN_OR_RETURN(sqlite3_stmt * raw,
                   c.Prepare("UPDATE experiments SET state=?, message=?, ended=?, "
                             "suggestion_state=?, exhausted=?, parallel=?, max_trials=?, "
                             "max_failed=?, best_trial=? WHERE uid=?",
                             op));
  Stmt s(raw);
  s.Bind(1, std::string_view(r.state));
  s.Bind(2, std::string_view(r.message));
  s.Bind(3, int64_t{r.ended});
  s.Bind(4, std::string_view(r.suggestion_state));
  s.Bind(5, int64_t{r.exhausted});
  s.Bind(6, r.parallel);
  s.Bind(7, r.max_trials);
  s.Bind(8, r.max_failed);
  s.Bind(9, r.best_trial);
  s.Bind(10, r.uid);
  RETURN_IF_ERROR(s.Run(op));
  if (sqlite3_changes(c.db()) == 0) return NotFound("experiment " + r.name + " not found");
  return Status::Ok();
}

Status WriteTrial(Conn& c, int64_t uid, const TrialRecord& t) {
  const std::string op = "experiment store: save trial " + std::to_string(t.id);
  ASSIGN_OR_RETURN(sqlite3_stmt * raw,
                   c.Prepare("INSERT OR REPLACE INTO experiment_trials (experiment, id, state, "
                             "params, labels, job_id, objective, metrics, created, ended, message) "
                             "VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                             op));
  Stmt s(raw);
  s.Bind(1, uid);
  s.Bind(2, t.id);
  s.Bind(3, std::string_view(t.state));
  s.Bind(4, std::string_view(json(t.params).dump()));
  s.Bind(5, std::string_view(json(t.labels).dump()));
  s.Bind(6, t.job_id);
  if (t.objective)
    sqlite3_bind_double(raw, 7, *t.objective);
  else
    s.BindNull(7);
  s.Bind(8, std::string_view(json(t.metrics).dump()));
  s.Bind(9, int64_t{t.created});
  s.Bind(10, int64_t{t.ended});
  s.Bind(11, std::string_view(t.message));
  return s.Run(op);
}

}  // namespace

Result<std::unique_ptr<ExperimentStore>> ExperimentStore::Open(Store& store,
                                                               const std::string& db_path,
                                                               int busy_timeout_ms) {
  ASSIGN_OR_RETURN(auto conn, Conn::Open(db_path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX,
                                         busy_timeout_ms));
  RETURN_IF_ERROR(conn->Exec("PRAGMA query_only = 1", "experiment store: pragmas"));
  return std::unique_ptr<ExperimentStore>(new ExperimentStore(store, std::move(conn)));
}

Status ExperimentStore::Create(ExperimentRecord* r, const std::vector<NewEvent>& events,
                               TimeMs now) {
  const std::string op = "experiment store: create " + r->name;
  int64_t uid = 0;
  RETURN_IF_ERROR(store_.Write(
      op,
      [&](Conn& c, std::vector<NewEvent>& out) -> Status {
        {
          ASSIGN_OR_RETURN(sqlite3_stmt * raw,
                           c.Prepare("SELECT uid FROM experiments WHERE name=?", op));
          Stmt s(raw);
          s.Bind(1, std::string_view(r->name));
          ASSIGN_OR_RETURN(bool row, s.Step(op));
          if (row)
            return AlreadyExists("experiment " + r->name +
                                 " already exists (delete it first, or resume it)");
        }
        ASSIGN_OR_RETURN(
            sqlite3_stmt * raw,
            c.Prepare("INSERT INTO experiments (name, owner, spec, state, message, created, seed, "
                      "parallel, max_trials, max_failed) VALUES (?,?,?,?,?,?,?,?,?,?)",
                      op));
        Stmt s(raw);
        s.Bind(1, std::string_view(r->name));
        s.Bind(2, std::string_view(r->owner));
        s.Bind(3, std::string_view(r->spec));
        s.Bind(4, std::string_view(r->state));
        s.Bind(5, std::string_view(r->message));
        s.Bind(6, int64_t{r->created});
        s.Bind(7, r->seed);
        s.Bind(8, r->parallel);
        s.Bind(9, r->max_trials);
        s.Bind(10, r->max_failed);
        RETURN_IF_ERROR(s.Run(op));
        uid = sqlite3_last_insert_rowid(c.db());
        out = events;
        for (auto& e : out) e.data["experimentUid"] = uid;
        return Status::Ok();
      },
      now));
  r->uid = uid;
  return store_.Sync();
}

Status ExperimentStore::Save(const ExperimentRecord& rec, const std::vector<TrialRecord>& trials,
                             const std::vector<NewEvent>& events, TimeMs now) {
  return store_.Write(
      "experiment store: save " + rec.name,
      [&](Conn& c, std::vector<NewEvent>& out) -> Status {
        RETURN_IF_ERROR(WriteExperiment(c, rec));
        for (const auto& t : trials) RETURN_IF_ERROR(WriteTrial(c, rec.uid, t));
        out = events;
        return Status::Ok();
      },
      now);
}

Status ExperimentStore::AddObservations(int64_t uid, const std::vector<ObservationRecord>& obs,
                                        TimeMs now) {
  if (obs.empty()) return Status::Ok();
  const std::string op = "experiment store: add observations";
  return store_.Write(
      op,
      [&](Conn& c, std::vector<NewEvent>&) -> Status {
        ASSIGN_OR_RETURN(sqlite3_stmt * raw,
                         c.Prepare("INSERT OR REPLACE INTO experiment_observations (experiment, "
                                   "trial, metric, step, value, time) VALUES (?,?,?,?,?,?)",
                                   op));
        for (const auto& o : obs) {
          Stmt s(raw);
          s.Bind(1, uid);
          s.Bind(2, o.trial);
          s.Bind(3, std::string_view(o.metric));
          s.Bind(4, o.step);
          sqlite3_bind_double(raw, 5, o.value);
          s.Bind(6, int64_t{o.time ? o.time : now});
          RETURN_IF_ERROR(s.Run(op));
        }
        return Status::Ok();
      },
      now);
}

Status ExperimentStore::Delete(int64_t uid, const std::vector<NewEvent>& events, TimeMs now) {
  const std::string op = "experiment store: delete";
  return store_.Write(
      op,
      [&](Conn& c, std::vector<NewEvent>& out) -> Status {
        for (const char* sql : {"DELETE FROM experiment_observations WHERE experiment=?",
                                "DELETE FROM experiment_trials WHERE experiment=?",
                                "DELETE FROM experiments WHERE uid=?"}) {
          ASSIGN_OR_RETURN(sqlite3_stmt * raw, c.Prepare(sql, op));
          Stmt s(raw);
          s.Bind(1, uid);
          RETURN_IF_ERROR(s.Run(op));
        }
        out = events;
        return Status::Ok();
      },
      now);
}

Result<std::vector<ExperimentRecord>> ExperimentStore::List() {
  std::lock_guard<std::mutex> l(mu_);
  const std::string op = "experiment store: list";
  ASSIGN_OR_RETURN(
      sqlite3_stmt * raw,
      conn_->Prepare(std::string("SELECT ") + kExpCols + " FROM experiments ORDER BY uid", op));
  Stmt s(raw);
  std::vector<ExperimentRecord> out;
  for (;;) {
    ASSIGN_OR_RETURN(bool row, s.Step(op));
    if (!row) break;
    out.push_back(ReadExperiment(s));
  }
  return out;
}

Result<std::optional<ExperimentRecord>> ExperimentStore::Get(const std::string& name) {
  std::lock_guard<std::mutex> l(mu_);
  const std::string op = "experiment store: get " + name;
  ASSIGN_OR_RETURN(
      sqlite3_stmt * raw,
      conn_->Prepare(std::string("SELECT ") + kExpCols + " FROM experiments WHERE name=?", op));
  Stmt s(raw);
  s.Bind(1, std::string_view(name));
  ASSIGN_OR_RETURN(bool row, s.Step(op));
  if (!row) return std::optional<ExperimentRecord>();
  return std::optional<ExperimentRecord>(ReadExperiment(s));
}

Result<std::vector<TrialRecord>> ExperimentStore::Trials(int64_t uid) {
  std::lock_guard<std::mutex> l(mu_);
  const std::string op = "experiment store: trials";
  ASSIGN_OR_RETURN(sqlite3_stmt * raw,
                   conn_->Prepare("SELECT id, state, params, labels, job_id, objective, metrics, "
                                  "created, ended, message FROM experiment_trials "
                                  "WHERE experiment=? ORDER BY id",
                                  op));
  Stmt s(raw);
  s.Bind(1, uid);
  std::vector<TrialRecord> out;
  for (;;) {
    ASSIGN_OR_RETURN(bool row, s.Step(op));
    if (!row) break;
    TrialRecord t;
    t.id = s.Int(0);
    t.state = s.Text(1);
    t.params = ParseMap<std::map<std::string, std::string>>(s.Text(2));
    t.labels = ParseMap<std::map<std::string, std::string>>(s.Text(3));
    t.job_id = s.Int(4);
    if (!s.IsNull(5)) t.objective = sqlite3_column_double(raw, 5);
    t.metrics = ParseMap<std::map<std::string, double>>(s.Text(6));
    t.created = s.Int(7);
    t.ended = s.Int(8);
    t.message = s.Text(9);
    out.push_back(std::move(t));
  }
  return out;
}

Result<std::vector<ObservationRecord>> ExperimentStore::Observations(int64_t uid, int64_t trial) {
  std::lock_guard<std::mutex> l(mu_);
  const std::string op = "experiment store: observations";
  ASSIGN_OR_RETURN(sqlite3_stmt * raw,
                   conn_->Prepare("SELECT trial, metric, step, value, time FROM "
                                  "experiment_observations WHERE experiment=?1 AND "
                                  "(?2 < 0 OR trial=?2) ORDER BY trial, metric, step",
                                  op));
  Stmt s(raw);
  s.Bind(1, uid);
  s.Bind(2, trial);
  std::vector<ObservationRecord> out;
  for (;;) {
    ASSIGN_OR_RETURN(bool row, s.Step(op));
    if (!row) break;
    out.push_back({s.Int(0), s.Text(1), s.Int(2), sqlite3_column_double(raw, 3), s.Int(4)});
  }
  return out;
}

}  // namespace berth::store
