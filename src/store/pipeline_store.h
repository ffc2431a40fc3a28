// Pipeline state in berth.db (tables from migration 2): runs, their nodes
// (one per step, per fan-out child and the exit handler), the memoization
// cache, cron schedules and the pipeline controller's event-log cursor.
//
// Reads use its own connection to the database the Store already migrated;
// every write goes through the Store's one writer (Store::Write) as one
// transaction together with the events it is given, so a crash leaves each
// run at a whole step of its life and never a change without its event (or
// the reverse). Thread-safe (one mutex around the read connection).
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "model/pipeline_state.h"
#include "store/sqlite_conn.h"
#include "store/store.h"

namespace berth::store {

struct NodeRecord {
  std::string name;    // "train", "fan(3)", "onExit"
  std::string step;    // the step spec it runs
  int64_t index = -1;  // fan-out child index, -1 otherwise
  std::string item;    // the child's item (JSON text)
  model::StepState state = model::StepState::kPending;
  int64_t job_id = 0;
  int64_t attempts = 0;
  std::optional<int64_t> exit_code;
  TimeMs start_time = 0, end_time = 0;
  TimeMs next_at = 0;                                 // a retry waits until then
  nlohmann::json outputs = nlohmann::json::object();  // {parameters:{}, result, artifacts:{}}
  std::string message;
  bool cached = false;
  std::string gpus;  // "0,1" when known
};

struct RunRecord {
  int64_t id = 0;
  std::string name, user;
  model::RunState state = model::RunState::kRunning;
  std::string spec;  // the Pipeline document (YAML or JSON text)
  std::map<std::string, std::string> parameters;
  std::string cron;  // the schedule that made it, if any
  TimeMs created = 0, started = 0, ended = 0;
  std::string message;
  std::string stopping;  // "", "cancel", "timeout": why it is being stopped
  bool suspended = false;
  std::string artifact_dir;
  int64_t retried_from = 0;
  std::map<std::string, NodeRecord> nodes;
};

struct CronRecord {
  std::string name;
  std::string spec;  // the CronPipeline document
  bool suspended = false;
  TimeMs last_time = 0;   // fire times after this are due (moves on creation and resume too)
  TimeMs last_fired = 0;  // the fire time of the latest run the schedule started; 0: none
  TimeMs created = 0;
  std::string owner;  // who created it; its runs are that user's
};

class PipelineStore {
 public:
  // Reads `db_path` (already migrated by `store`, which must be open on the
  // same file and outlive this object) and writes through `store`.
  static Result<std::unique_ptr<PipelineStore>> Open(Store& store, const std::string& db_path,
                                                     int busy_timeout_ms = 5000);

  // Inserts the run and its nodes and sets run->id; then `created` (if set)
  // may fill in fields named after the id (the artifact directory) and
  // returns the events to append: all in one transaction. `created` runs
  // inside it and must not call the store. Returns once the run is durable
  // (Store::Sync); an IoError from that sync leaves the run created.
  Status CreateRun(RunRecord* run, TimeMs now,
                   const std::function<std::vector<NewEvent>(RunRecord&)>& created = nullptr);
  // Writes the run's row, the named nodes and `events` in one transaction.
  Status SaveRun(const RunRecord& run, const std::vector<std::string>& nodes,
                 const std::vector<NewEvent>& events = {}, TimeMs now = 0);
  Result<RunRecord> GetRun(int64_t id);
  // Newest first, without nodes. active_only: Running runs. cron: only runs of that schedule.
  Result<std::vector<RunRecord>> ListRuns(int64_t limit, bool active_only,
                                          const std::string& cron = "");

  // The memoized outputs under `key` and when they were stored.
  Result<std::optional<std::pair<nlohmann::json, TimeMs>>> GetMemo(const std::string& key);
  Status PutMemo(const std::string& key, const nlohmann::json& outputs, TimeMs now, int64_t run,
                 const std::string& node);

  Status PutCron(const CronRecord& c);
  Result<std::optional<CronRecord>> GetCron(const std::string& name);
  Result<std::vector<CronRecord>> ListCrons();
  Status DeleteCron(const std::string& name);

  Result<int64_t> GetCursor();
  Status PutCursor(int64_t seq);

 private:
  PipelineStore(Store& store, std::unique_ptr<Conn> conn) : store_(store), conn_(std::move(conn)) {}
  Result<RunRecord> ReadRunAndNodes(int64_t id, const std::string& op);  // mu_ held
  static Status SaveNode(Conn& c, int64_t run, const NodeRecord& n);
  static Status WriteRun(Conn& c, const RunRecord& run);
  Store& store_;
  std::mutex mu_;
  std::unique_ptr<Conn> conn_;
};

}  // namespace berth::store
