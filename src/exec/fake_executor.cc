#include "exec/fake_executor.h"

#include <csignal>
#include <set>

namespace berth::exec {

namespace {

bool Matches(const FakeTaskRule& r, const TaskSpec& spec) {
  auto env = [&](const std::string& k) {
    auto it = spec.env.find(k);
    return it == spec.env.end() ? std::string() : it->second;
  };
  return (!r.command || (!spec.argv.empty() && spec.argv[0] == *r.command)) &&
         (!r.job_name || env("BERTH_JOB_NAME") == *r.job_name) &&
         (!r.job || spec.key.job == *r.job) && (!r.task || spec.key.task == *r.task) &&
         (!r.attempt || spec.key.attempt == *r.attempt) && (!r.node || spec.node == *r.node);
}

// Reads one rule's fields; each error names "<path>.<field>".
class RuleReader {
 public:
  RuleReader(const nlohmann::json& j, std::string path) : j_(j), path_(std::move(path)) {}

  Status Error(const std::string& key, const std::string& why) const {
    return InvalidArgument(path_ + "." + key + ": " + why);
  }
  const nlohmann::json* Get(const std::string& key) {
    known_.insert(key);
    auto it = j_.find(key);
    return it == j_.end() || it->is_null() ? nullptr : &*it;
  }
  Status String(const std::string& key, std::string* out) {
    std::optional<std::string> v;
    RETURN_IF_ERROR(OptString(key, &v));
    if (v) *out = *v;
    return Status::Ok();
  }
  Status OptString(const std::string& key, std::optional<std::string>* out) {
    const nlohmann::json* v = Get(key);
    if (!v) return Status::Ok();
    if (!v->is_string()) return Error(key, "must be a string");
    *out = v->get<std::string>();
    return Status::Ok();
  }
  template <typename T>
  Status OptInt(const std::string& key, std::optional<T>* out, int64_t lo, int64_t hi) {
    const nlohmann::json* v = Get(key);
    if (!v) return Status::Ok();
    if (!v->is_number_integer() || v->get<int64_t>() < lo || v->get<int64_t>() > hi)
      return Error(key,
                   "must be an integer from " + std::to_string(lo) + " to " + std::to_string(hi));
    *out = static_cast<T>(v->get<int64_t>());
    return Status::Ok();
  }
  template <typename T>
  Status Int(const std::string& key, T* out, int64_t lo, int64_t hi) {
    std::optional<T> v;
    RETURN_IF_ERROR(OptInt(key, &v, lo, hi));
    if (v) *out = *v;
    return Status::Ok();
  }
  Status Bool(const std::string& key, bool* out) {
    const nlohmann::json* v = Get(key);
    if (!v) return Status::Ok();
    if (!v->is_boolean()) return Error(key, "must be true or false");
    *out = v->get<bool>();
    return Status::Ok();
  }
  Status CheckNoUnknown() const {
    for (const auto& [k, v] : j_.items())
      if (!known_.count(k)) return Error(k, "unknown field");
    return Status::Ok();
  }

 private:
  const nlohmann::json& j_;
  std::string path_;
  std::set<std::string> known_;
};

constexpr int64_t kMaxMs = int64_t{1} << 50;

Status ParseRule(const nlohmann::json& j, const std::string& path, FakeTaskRule* r) {
  if (!j.is_object()) return InvalidArgument(path + ": must be an object");
  RuleReader rd(j, path);
  if (const nlohmann::json* m = rd.Get("match")) {
    if (!m->is_object()) return rd.Error("match", "must be an object");
    RuleReader mr(*m, path + ".match");
    RETURN_IF_ERROR(mr.OptString("command", &r->command));
    RETURN_IF_ERROR(mr.OptString("jobName", &r->job_name));
    RETURN_IF_ERROR(mr.OptInt("job", &r->job, 1, kMaxMs));
    RETURN_IF_ERROR(mr.OptInt("task", &r->task, 0, 1 << 20));
    RETURN_IF_ERROR(mr.OptInt("attempt", &r->attempt, 1, 1 << 20));
    RETURN_IF_ERROR(mr.OptString("node", &r->node));
    RETURN_IF_ERROR(mr.CheckNoUnknown());
  }
  RETURN_IF_ERROR(rd.String("reject", &r->reject));
  RETURN_IF_ERROR(rd.String("startError", &r->start_error));
  RETURN_IF_ERROR(rd.Int("startDelayMs", &r->start_delay, 0, kMaxMs));
  RETURN_IF_ERROR(rd.Int("runMs", &r->run_time, -1, kMaxMs));
  RETURN_IF_ERROR(rd.Int("exitCode", &r->exit_code, 0, 255));
  RETURN_IF_ERROR(rd.Int("lostAfterMs", &r->lost_after, -1, kMaxMs));
  RETURN_IF_ERROR(rd.Int("lostAtMs", &r->lost_at, -1, kMaxMs));
  RETURN_IF_ERROR(rd.String("lostMessage", &r->lost_message));
  RETURN_IF_ERROR(rd.Bool("ignoreSigterm", &r->ignore_sigterm));
  RETURN_IF_ERROR(rd.Int("termDelayMs", &r->term_delay, 0, kMaxMs));
  RETURN_IF_ERROR(rd.OptInt("termExitCode", &r->term_exit_code, 0, 255));
  return rd.CheckNoUnknown();
}

}  // namespace

Result<std::vector<FakeTaskRule>> ParseFakeRules(const nlohmann::json& rules) {
  if (!rules.is_array()) return InvalidArgument("rules: must be an array of rule objects");
  if (rules.size() > 10000) return InvalidArgument("rules: at most 10000 rules");
  std::vector<FakeTaskRule> out(rules.size());
  for (size_t i = 0; i < rules.size(); ++i)
    RETURN_IF_ERROR(ParseRule(rules[i], "rules[" + std::to_string(i) + "]", &out[i]));
  return out;
}

FakeExecutor::FakeExecutor(FakeExecutorOptions options, const Clock& clock, TaskEventSink sink)
    : options_(std::move(options)), clock_(clock), sink_(std::move(sink)) {}

Status FakeExecutor::Start(const TaskSpec& spec) {
  if (spec.argv.empty() || spec.argv[0].empty())
    return InvalidArgument(spec.key.ToString() + ": empty command");
  FakeTaskRule rule;
  for (const FakeTaskRule& r : options_.rules) {
    if (Matches(r, spec)) {
      rule = r;
      break;
    }
  }
  if (!rule.reject.empty()) return InvalidArgument(rule.reject);
  std::lock_guard<std::mutex> l(mu_);
  auto it = tasks_.find(spec.key);
  if (it != tasks_.end() && it->second.phase != Phase::kEnded)
    return AlreadyExists(spec.key.ToString() + ": already running");
  TimeMs now = clock_.Now();
  Task t;
  t.spec = spec;
  t.rule = rule;
  t.external_id = "fake-" + std::to_string(next_id_++);
  t.start_requested = now;
  tasks_[spec.key] = std::move(t);
  generation_[spec.key]++;
  ScheduleLocked(now + rule.start_delay, spec.key, Timer::kStart);
  if (rule.lost_at >= 0) ScheduleLocked(std::max(now, rule.lost_at), spec.key, Timer::kLose);
  return Status::Ok();
}

void FakeExecutor::ScheduleLocked(TimeMs at, const TaskKey& key, Timer what) {
  timers_.push({at, seq_++, key, what, generation_[key]});
}

TaskEvent FakeExecutor::EndLocked(Task& t, TaskEventType type, TimeMs at, std::optional<int> code,
                                  int signal, const std::string& message) {
  TaskEvent ev;
  ev.key = t.spec.key;
  ev.type = type;
  ev.time = at;
  ev.external_id = t.external_id;
  ev.exit_code = code;
  ev.signal = signal;
  ev.message = message;
  t.phase = Phase::kEnded;
  t.end = ev;
  return ev;
}

void FakeExecutor::StopLocked(Task& t, DurationMs grace, TimeMs now) {
  t.stop_requested = now;
  t.grace = grace;
  t.signals.push_back({SIGTERM, now});
  if (!t.rule.ignore_sigterm && t.rule.term_delay < grace)
    ScheduleLocked(now + t.rule.term_delay, t.spec.key, Timer::kTermExit);
  ScheduleLocked(now + grace, t.spec.key, Timer::kKill);
}

std::optional<TaskEvent> FakeExecutor::FireLocked(TimeMs at, const TaskKey& key, Timer what) {
  auto it = tasks_.find(key);
  if (it == tasks_.end() || it->second.phase == Phase::kEnded) return std::nullopt;
  Task& t = it->second;
  const FakeTaskRule& r = t.rule;
  switch (what) {
    case Timer::kStart: {
      if (t.phase != Phase::kStarting) return std::nullopt;
      if (!r.start_error.empty())
        return EndLocked(t, TaskEventType::kStartFailed, at, 127, 0, r.start_error);
      t.phase = Phase::kRunning;
      t.started = at;
      if (r.run_time >= 0) ScheduleLocked(at + r.run_time, key, Timer::kExit);
      if (r.lost_after >= 0) ScheduleLocked(at + r.lost_after, key, Timer::kLose);
      if (t.spec.time_limit > 0) ScheduleLocked(at + t.spec.time_limit, key, Timer::kTimeLimit);
      TaskEvent ev;
      ev.key = key;
      ev.type = TaskEventType::kStarted;
      ev.time = at;
      ev.external_id = t.external_id;
      return ev;
    }
    case Timer::kExit:
      return EndLocked(t, TaskEventType::kExited, at, r.exit_code, 0, "");
    case Timer::kLose:
      return EndLocked(t, TaskEventType::kLost, at, std::nullopt, 0, r.lost_message);
    case Timer::kTermExit:
      if (r.term_exit_code)
        return EndLocked(t, TaskEventType::kExited, at, *r.term_exit_code, 0, "");
      return EndLocked(t, TaskEventType::kExited, at, 128 + SIGTERM, SIGTERM, "");
    case Timer::kKill:
      t.signals.push_back({SIGKILL, at});
      return EndLocked(t, TaskEventType::kExited, at, 128 + SIGKILL, SIGKILL,
                       "killed after the " + FormatDuration(t.grace) + " grace period");
    case Timer::kTimeLimit:
      if (t.stop_requested == 0) StopLocked(t, t.spec.termination_grace, at);
      return std::nullopt;
  }
  return std::nullopt;
}

int FakeExecutor::Poll() {
  int delivered = 0;
  std::vector<TaskEvent> reports;
  {
    std::lock_guard<std::mutex> l(mu_);
    reports.swap(reports_);
  }
  for (const TaskEvent& ev : reports) {
    sink_(ev);
    ++delivered;
  }
  while (true) {
    std::optional<TaskEvent> ev;
    {
      std::lock_guard<std::mutex> l(mu_);
      TimeMs now = clock_.Now();
      while (!ev && !timers_.empty() && std::get<0>(timers_.top()) <= now) {
        auto [at, seq, key, what, gen] = timers_.top();
        timers_.pop();
        if (generation_[key] != gen) continue;  // a timer of an earlier start of this key
        ev = FireLocked(at, key, what);
        if (ev && shut_down_) ev.reset();  // nobody watches: only the records change
        if (ev && ev->type == TaskEventType::kStarted) tasks_[key].started_reported = true;
      }
    }
    if (!ev) break;
    sink_(*ev);
    ++delivered;
  }
  return delivered;
}

TimeMs FakeExecutor::NextDue() const {
  std::lock_guard<std::mutex> l(mu_);
  if (!reports_.empty()) return clock_.Now();
  return timers_.empty() ? 0 : std::get<0>(timers_.top());
}

Status FakeExecutor::Stop(const TaskKey& key, DurationMs grace) {
  std::lock_guard<std::mutex> l(mu_);
  auto it = tasks_.find(key);
  if (it == tasks_.end()) return NotFound(key.ToString() + ": no such task on this executor");
  Task& t = it->second;
  if (t.phase == Phase::kEnded || t.stop_requested != 0) return Status::Ok();
  StopLocked(t, std::max<DurationMs>(grace, 0), clock_.Now());
  return Status::Ok();
}

void FakeExecutor::Recover(const std::vector<TaskKey>& known) {
  std::lock_guard<std::mutex> l(mu_);
  shut_down_ = false;
  TimeMs now = clock_.Now();
  for (const TaskKey& key : known) {
    auto it = tasks_.find(key);
    if (it == tasks_.end()) {
      TaskEvent ev;
      ev.key = key;
      ev.type = TaskEventType::kLost;
      ev.time = now;
      ev.message = "no trace of " + key.ToString() + " on this executor";
      reports_.push_back(std::move(ev));
      continue;
    }
    Task& t = it->second;
    if (t.phase == Phase::kEnded) {
      reports_.push_back(*t.end);
    } else if (t.phase == Phase::kRunning && !t.started_reported) {
      TaskEvent ev;
      ev.key = key;
      ev.type = TaskEventType::kStarted;
      ev.time = t.started;
      ev.external_id = t.external_id;
      t.started_reported = true;
      reports_.push_back(std::move(ev));
    }
  }
}

Result<LogChunk> FakeExecutor::ReadLog(const TaskKey&, int64_t offset, int64_t limit) const {
  if (offset < 0) return InvalidArgument("offset: must be >= 0, got " + std::to_string(offset));
  if (limit <= 0) return InvalidArgument("limit: must be > 0, got " + std::to_string(limit));
  return LogChunk{};
}

Result<int> FakeExecutor::RemoveJobFiles(JobId job) {
  std::lock_guard<std::mutex> l(mu_);
  int n = 0;
  for (const auto& [key, task] : tasks_)
    if (key.job == job) ++n;
  return n;
}

void FakeExecutor::Shutdown() {
  std::lock_guard<std::mutex> l(mu_);
  shut_down_ = true;
  reports_.clear();
}

std::optional<FakeExecutor::Task> FakeExecutor::Find(const TaskKey& key) const {
  std::lock_guard<std::mutex> l(mu_);
  auto it = tasks_.find(key);
  if (it == tasks_.end()) return std::nullopt;
  return it->second;
}

std::map<TaskKey, FakeExecutor::Task> FakeExecutor::Tasks() const {
  std::lock_guard<std::mutex> l(mu_);
  return tasks_;
}

std::vector<TaskKey> FakeExecutor::Live() const {
  std::lock_guard<std::mutex> l(mu_);
  std::vector<TaskKey> out;
  for (const auto& [key, t] : tasks_)
    if (t.phase != Phase::kEnded) out.push_back(key);
  return out;
}

void FakeExecutor::Forget(const TaskKey& key) {
  std::lock_guard<std::mutex> l(mu_);
  tasks_.erase(key);
}

}  // namespace berth::exec
