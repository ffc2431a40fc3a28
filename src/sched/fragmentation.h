// GPU fragmentation, after Weng et al., "Beware of Fragmentation: Scheduling
// GPU-Sharing Workloads with Fragmentation Gradient Descent" (USENIX ATC
// 2023). Pure arithmetic on node states; the placements that use it are
// the simulator's inflation experiment (sim/inflation.h) and, for fractions,
// the placement core.
//
// A node's free GPU capacity is a fragment to a task if the task cannot use
// it: all of it if the task cannot be placed on the node at all (CPU,
// memory, GPU count or GPU model) or asks for no GPU, and otherwise the free
// share of every GPU too small for the task's per-GPU share. A node's
// fragmentation to a population of tasks is the expectation over the
// population (each task shape weighted by how often it occurs). Fragmentation
// Gradient Descent places each task where that expectation grows least.
//
// Everything is integer (milli-GPU times counts), so that equal scores are
// exactly equal and ties break the same way on every machine.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <span>
#include <string>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "common/quantity.h"

namespace berth::sched {

// A task shape: `gpus` GPUs with `milli` of each (1000: whole GPUs; < 1000
// only with gpus == 1), CPU and memory, and the GPU models it may use (bit
// i: model i; 0: any).
struct FragTask {
  MilliGpu milli = 0;
  int gpus = 0;
  MilliCpu cpu = 0;
  MiB memory = 0;
  uint64_t models = 0;

  auto Tie() const { return std::tie(milli, gpus, cpu, memory, models); }
  bool operator<(const FragTask& o) const { return Tie() < o.Tie(); }
  bool operator==(const FragTask& o) const { return Tie() == o.Tie(); }
};

struct WeightedTask {
  FragTask task;
  int64_t weight = 0;  // how many of the population have this shape
};

// What of a node is free: milli-GPU per GPU, CPU, memory, its model (index
// into the caller's model list, -1: unknown, matches only tasks with any model).
struct FragNode {
  std::vector<MilliGpu> free;
  MilliCpu cpu_free = 0;
  MiB mem_free = 0;
  int model = -1;
};

// Whether `task` fits on `node` now (CPU, memory, model, GPUs with room).
bool FragFits(const FragNode& node, const FragTask& task);

// The node's fragmentation to `population`: the sum over shapes of weight x
// the milli-GPU of the node's free GPUs that shape could not use.
int64_t Fragmentation(const FragNode& node, std::span<const WeightedTask> population);

// The first `count` wholly free GPUs of `node` (indices, lowest first).
std::vector<int> WholeGpus(const FragNode& node, int count);

// The task population learned from the most recent requests: a sliding
// window of the last `window` shapes, with counts.
class TaskPopulation {
 public:
  explicit TaskPopulation(size_t window) : window_(window) {}
  void Add(const FragTask& task);
  // Shapes with their counts (in shape order); rebuilt only after a change.
  std::span<const WeightedTask> Get();
  size_t size() const { return recent_.size(); }
  uint64_t version() const { return version_; }

 private:
  size_t window_;
  std::deque<FragTask> recent_;
  std::map<FragTask, int64_t> counts_;
  std::vector<WeightedTask> flat_;
  bool dirty_ = true;
  uint64_t version_ = 0;
};

}  // namespace berth::sched
