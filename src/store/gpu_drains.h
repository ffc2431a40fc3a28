// Drained GPUs in berth.db (table gpu_drains, migration 7): a drained GPU
// gets no new placements until it is undrained. Written through the Store's
// one writer (Store::Write), each change together with its event
// (GpuDrained, GpuUndrained), so the event log is the audit trail.
#pragma once

#include <string>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "store/store.h"

namespace berth::store {

struct DrainRecord {
  std::string node;
  int gpu = -1;        // -1: every GPU of the node
  std::string reason;  // why ("XID 79 (GPU has fallen off the bus)", an operator's text)
  std::string source;  // "manual" (an operator) or "health" (a fatal condition)
  std::string actor;   // who drained it by hand ("" for health)
  TimeMs time = 0;
};

// Inserts or replaces the drain of (node, gpu) and appends GpuDrained.
Status PutDrain(Store& store, const DrainRecord& d, TimeMs now);
// Removes the drain of (node, gpu) and appends GpuUndrained; NotFound when
// there is none.
Status DeleteDrain(Store& store, const std::string& node, int gpu, const std::string& actor,
                   TimeMs now);
// Every drain, by node and GPU.
Result<std::vector<DrainRecord>> ListDrains(Store& store);

}  // namespace berth::store
