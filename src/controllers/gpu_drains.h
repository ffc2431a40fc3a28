// GpuDrains: which GPUs are drained (no new placements) and why, kept in
// memory for every scheduling cycle and written through to the store
// (store/gpu_drains.h), so drains survive restarts.
//
// A drain comes from an operator (`berth drain NODE[/GPU] --reason TEXT`,
// source "manual") or from the telemetry controller when a GPU shows a fatal
// health condition (source "health"). Undrain removes either. A node drain
// (gpu -1) covers every GPU of the node.
//
// Thread-safe: the API, the telemetry controller and the job controller's
// cycle call it from their threads.
#pragma once

#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "store/gpu_drains.h"
#include "store/store.h"

namespace berth::controllers {

class GpuDrains {
 public:
  // `store` and `clock` must outlive this object.
  GpuDrains(store::Store& store, const Clock& clock) : store_(store), clock_(clock) {}

  // Reads the drains saved in the store.
  Status Load();

  // Drains (node, gpu) (gpu -1: the whole node). False when it was already
  // drained (the first reason is kept unless `replace`).
  Result<bool> Drain(const std::string& node, int gpu, const std::string& reason,
                     const std::string& source, const std::string& actor, bool replace = false);
  // Undrains (node, gpu); NotFound when it is not drained. Undraining a node
  // (gpu -1) removes the node's drain and every GPU drain on it.
  Status Undrain(const std::string& node, int gpu, const std::string& actor);

  // The drain that covers (node, gpu): its own, else its node's.
  std::optional<store::DrainRecord> Find(const std::string& node, int gpu) const;
  std::vector<store::DrainRecord> List() const;

  // Called (outside the lock) after every change, e.g. to wake the scheduler
  // and to forget a fatal XID of an undrained GPU.
  void OnChange(std::function<void(const std::string& node, int gpu, bool drained)> f) {
    std::lock_guard<std::mutex> l(mu_);
    on_change_ = std::move(f);
  }

 private:
  store::Store& store_;
  const Clock& clock_;
  mutable std::mutex mu_;
  std::mutex write_mu_;  // one change at a time (store, then memory)
  std::map<std::pair<std::string, int>, store::DrainRecord> drains_;
  std::function<void(const std::string&, int, bool)> on_change_;
};

}  // namespace berth::controllers
