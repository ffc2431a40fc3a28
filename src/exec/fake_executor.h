// A fake executor for tests: no processes, no threads, time from the injected
// Clock (a ManualClock in tests).
//
// What a task does is data, not code: an ordered list of rules, and the first
// rule whose match fields all fit the task decides (no match: it starts and
// runs until stopped). A rule says whether Start refuses the task outright,
// whether the start fails later (kStartFailed, e.g. "command not found"),
// how long the start takes, how long the task runs and with which exit code,
// when the executor loses track of it (kLost), and how it answers SIGTERM
// (exits after a delay, or ignores it and is killed when the grace ends).
// The same rules can be written as JSON (ParseFakeRules), so a test reads as
// a scenario.
//
// It keeps the Executor promises: Start only begins the start and returns;
// every outcome arrives later as a TaskEvent (with an external id
// "fake-<n>"); Stop is idempotent; a task's time limit stops it like the real
// executors do; after Shutdown nothing is reported, tasks go on in (virtual)
// time, and Recover reports what became of them (kExited with the recorded
// status and end time, kStarted if it was never reported, kLost for a key it
// has no trace of).
//
// Events are delivered by Poll, on the caller's thread, in time order (ties
// in the order they were scheduled), each stamped with the time it was due.
// Poll calls the sink without holding the executor's lock, so the sink may
// call Start and Stop. All methods are thread-safe.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <queue>
#include <string>
#include <tuple>
#include <vector>

#include "exec/executor.h"

namespace berth::exec {

struct FakeTaskRule {
  // Which tasks the rule applies to; an unset field matches any task.
  std::optional<std::string> command;   // argv[0]
  std::optional<std::string> job_name;  // the task's BERTH_JOB_NAME
  std::optional<JobId> job;
  std::optional<int> task;  // the rank in a gang (0 for a plain job)
  std::optional<int> attempt;
  std::optional<std::string> node;

  // Non-empty: Start returns InvalidArgument with this message (a start that
  // fails synchronously, e.g. a malformed spec); nothing else happens.
  std::string reject;
  // Non-empty: the start fails asynchronously: kStartFailed with this
  // message (exit code 127) after start_delay.
  std::string start_error;
  DurationMs start_delay = 0;  // Start -> kStarted
  DurationMs run_time = -1;    // kStarted -> kExited with exit_code; -1: until stopped
  int exit_code = 0;
  // kStarted -> kLost with lost_message; -1: never. lost_at: lost at that
  // absolute time instead, even before it started (at once if that time
  // has passed when it is started); -1: never.
  DurationMs lost_after = -1;
  TimeMs lost_at = -1;
  std::string lost_message = "the executor lost track of the task";
  // SIGTERM handling. Ignored: the task runs on until the kill when the
  // grace ends (exit code 137, SIGKILL). Honoured: it exits term_delay after
  // the SIGTERM (killed at the end of the grace if that comes first), with
  // term_exit_code when set (it trapped SIGTERM and exited), else as killed
  // by SIGTERM (exit code 143).
  bool ignore_sigterm = false;
  DurationMs term_delay = 0;
  std::optional<int> term_exit_code;
};

// Parses rules from JSON: an array of objects with the optional fields
//   match: {command, jobName, job, task, attempt, node},
//   reject, startError, startDelayMs, runMs, exitCode, lostAfterMs, lostAtMs,
//   lostMessage, ignoreSigterm, termDelayMs, termExitCode.
// Unknown fields and bad values are InvalidArgument naming the field
// ("rules[1].exitCode: must be an integer from 0 to 255").
Result<std::vector<FakeTaskRule>> ParseFakeRules(const nlohmann::json& rules);

struct FakeExecutorOptions {
  std::vector<FakeTaskRule> rules;
};

class FakeExecutor final : public Executor {
 public:
  FakeExecutor(FakeExecutorOptions options, const Clock& clock, TaskEventSink sink);

  std::string Name() const override { return "fake"; }
  // InvalidArgument for an empty argv or a rule's `reject`; AlreadyExists if
  // the key is starting or running. Otherwise the start is under way.
  Status Start(const TaskSpec& spec) override;
  // SIGTERM now, SIGKILL after `grace` (see FakeTaskRule). OK for a task that
  // ended or is already being stopped (the first grace stands); NotFound for
  // a key it never started.
  Status Stop(const TaskKey& key, DurationMs grace) override;
  void Recover(const std::vector<TaskKey>& known) override;
  // The fake's tasks print nothing: every log reads as empty.
  Result<LogChunk> ReadLog(const TaskKey& key, int64_t offset, int64_t limit) const override;
  // Counts the job's task runs it knows of (it keeps no files).
  Result<int> RemoveJobFiles(JobId job) override;
  void Shutdown() override;

  // Delivers every event due at or before the clock's now, in time order;
  // returns how many were delivered.
  int Poll();
  // When the next thing is due (a start, an exit, a kill, ...); 0: nothing.
  TimeMs NextDue() const;

  // What the fake knows of one task, for assertions.
  enum class Phase { kStarting, kRunning, kEnded };
  struct Signal {
    int signal = 0;  // SIGTERM or SIGKILL
    TimeMs time = 0;
  };
  struct Task {
    TaskSpec spec;
    FakeTaskRule rule;  // the rule that applied
    std::string external_id;
    Phase phase = Phase::kStarting;
    TimeMs start_requested = 0;
    TimeMs started = 0;  // 0: not started
    TimeMs stop_requested = 0;
    DurationMs grace = 0;  // of the first Stop
    std::vector<Signal> signals;
    std::optional<TaskEvent> end;  // how it ended (kExited, kStartFailed, kLost)
    bool started_reported = false;
  };
  std::optional<Task> Find(const TaskKey& key) const;
  // Every task ever started, by key.
  std::map<TaskKey, Task> Tasks() const;
  // Keys of tasks starting or running now.
  std::vector<TaskKey> Live() const;
  // Forgets a task entirely (as if its records were wiped): a later Recover
  // of its key reports kLost.
  void Forget(const TaskKey& key);

 private:
  enum class Timer { kStart, kExit, kLose, kTermExit, kKill, kTimeLimit };
  // Due time, sequence, key, what, the task's generation (timers of an
  // earlier Start of the same key are stale).
  using Entry = std::tuple<TimeMs, uint64_t, TaskKey, Timer, uint64_t>;

  void ScheduleLocked(TimeMs at, const TaskKey& key, Timer what);
  // Applies a due timer; the event to deliver, if any.
  std::optional<TaskEvent> FireLocked(TimeMs at, const TaskKey& key, Timer what);
  void StopLocked(Task& t, DurationMs grace, TimeMs now);
  TaskEvent EndLocked(Task& t, TaskEventType type, TimeMs at, std::optional<int> code, int signal,
                      const std::string& message);

  FakeExecutorOptions options_;
  const Clock& clock_;
  TaskEventSink sink_;

  mutable std::mutex mu_;
  std::map<TaskKey, Task> tasks_;
  std::map<TaskKey, uint64_t> generation_;
  std::priority_queue<Entry, std::vector<Entry>, std::greater<Entry>> timers_;
  std::vector<TaskEvent> reports_;  // from Recover, delivered by the next Poll
  uint64_t seq_ = 0;
  uint64_t next_id_ = 1;
  bool shut_down_ = false;
};

}  // namespace berth::exec
