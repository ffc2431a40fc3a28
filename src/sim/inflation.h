// The workload-inflation experiment of Weng et al. (USENIX ATC 2023) on a
// node list and a task list (sim/alibaba_trace.h): tasks are drawn from the
// shuffled list and submitted one after another, none ever ends, until the
// requests reach `until` times the cluster's GPU capacity. The result is the
// share of GPU capacity allocated, and the GPUs left unallocated, as the
// arrived workload (GPU requested, failures included) grows.
//
// Placements (docs/scheduling.md compares them):
//  - bestfit: the node left with the least free GPU after the task, then the
//    least free CPU (a fraction goes on the fullest GPU it fits);
//  - fgd: Fragmentation Gradient Descent (sched/fragmentation.h) with the
//    task population of the whole list, scored as the paper's artifact does:
//    100 x sigmoid(-growth of the expected fragmentation in GPUs), truncated
//    to an integer, so that many nodes tie; a fraction goes on the GPU of the
//    best score, the first on ties;
//  - berth: Berth's own: the same score, with the population learned from
//    the last `learn_window` requests only (as the daemon must: it has no
//    trace), refreshed every `learn_every` requests; a fraction goes on the
//    GPU where the expected fragmentation grows least (exactly), then on the
//    fullest such GPU. (Measured: breaking score ties by best fit, or
//    ranking nodes by the exact growth instead of the coarse score, leaves
//    more GPUs unallocated: the coarse score lets the fixed node order
//    consolidate tasks, which keeps whole nodes free for multi-GPU tasks.)
// Ties left after the score break by a node order drawn once per run from
// the seed (the artifact's order is also fixed per run).
// Deterministic: the same inputs and options give the same result.
#pragma once

#include <string>
#include <vector>

#include "common/status.h"
#include "sim/alibaba_trace.h"

namespace berth::sim {

enum class Packing { kBestFit, kFgd, kBerth };

Result<Packing> ParsePacking(const std::string& name);
const char* PackingName(Packing p);

struct InflationOptions {
  Packing packing = Packing::kBerth;
  uint64_t seed = 42;
  double until = 1.3;         // stop when requests reach this multiple of capacity
  size_t learn_window = 300;  // berth: recent requests it learns the population from
  size_t learn_every = 64;    // berth: requests between refreshes of what it learned
};

struct InflationPoint {
  int arrived_pct = 0;       // GPU requested so far, % of capacity
  double allocated_pct = 0;  // GPU allocated, % of capacity
  double unallocated_gpus = 0;
};

struct InflationResult {
  std::vector<InflationPoint> curve;  // at every whole percent of arrived workload
  int64_t tasks = 0;                  // submitted
  int64_t failed = 0;                 // found no node
  MilliGpu capacity = 0;
  double cpu_us_per_task = 0;  // CPU time of the placement decisions, per task
  MilliGpu allocated = 0;      // at the end
  bool exact = true;           // the nodes' GPU held adds up to `allocated`, nothing below zero
};

Result<InflationResult> RunInflation(const std::vector<PackNode>& nodes,
                                     const std::vector<PackTask>& tasks,
                                     const InflationOptions& options);

}  // namespace berth::sim
