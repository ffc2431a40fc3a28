// The controller contract: what every controller in this folder promises.
//
// A controller owns one kind of object (jobs, training gangs, pipeline runs,
// cron schedules, GPU telemetry) and turns the desired state written in the
// store into actions (executor starts and stops, step jobs, events), and the
// outcomes it observes back into the store.
//
// - Owns: the rows of its kind in the store (it is their only writer once
//   the object exists; the API only records intent through the controller's
//   methods) and an in-memory view of the active objects, which is a cache:
//   nothing that matters lives only there.
// - Reconciles level-triggered: each pass compares the store's state (and
//   what the executor reports) with what should be and acts on the
//   difference, so a missed or repeated wake-up is harmless. Start() rebuilds
//   the view from the store and reconciles it with the outside world (tasks
//   that ended while the daemon was down, timers that passed) before the
//   first pass.
// - Is woken by: its own inputs (API calls, executor events), the store's
//   event log (Store::WaitForEvent), or a timer (its next deadline or a
//   resync interval). RunOnce() is one pass on the caller's thread; with its
//   thread disabled (tests on a ManualClock) the caller drives it.
// - Reports: every transition with its event in one store transaction (the
//   event log is what others follow); counters for /metrics through its own
//   accessors; logs only for what an operator must see.
// - Starts and stops: Start() returns an error and starts nothing when the
//   store cannot be read; Stop() joins its thread and leaves running work
//   running (tasks outlive the daemon). Stop() is idempotent.
//
// A new kind is a new file pair under controllers/ implementing Controller,
// and one line where berthd registers its controllers (daemon_main.cc). See
// docs/architecture.md for the controller map.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace berth::controllers {

class Controller {
 public:
  virtual ~Controller() = default;
  // A short name for logs ("jobs", "pipelines", "cron", "telemetry").
  virtual std::string_view Name() const = 0;
  // Rebuilds from the store, reconciles, and starts the controller's thread.
  virtual Status Start() = 0;
  // Stops the thread; running work keeps running. Idempotent.
  virtual void Stop() = 0;
  // One reconcile pass on the calling thread.
  virtual void RunOnce() = 0;
};

// The daemon's controllers, started in registration order and stopped in the
// reverse order (a controller may use those registered before it).
class ControllerSet {
 public:
  ControllerSet() = default;
  ControllerSet(const ControllerSet&) = delete;
  ControllerSet& operator=(const ControllerSet&) = delete;
  ~ControllerSet() { StopAll(); }

  void Register(Controller& c) { all_.push_back(&c); }
  // Starts each in order; on a failure stops those already started and
  // returns the error, naming the controller.
  Status StartAll();
  // Stops the started ones, last first.
  void StopAll();
  const std::vector<Controller*>& controllers() const { return all_; }

 private:
  std::vector<Controller*> all_;
  size_t started_ = 0;
};

}  // namespace berth::controllers
