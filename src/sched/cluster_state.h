// What is free in the cluster during one scheduling cycle, and the placement
// core every policy shares: whole GPUs consolidated on the fewest nodes
// (best-fit for the last node, NVLink neighbours together where known) and
// fractions packed best-fit onto GPUs already shared, so whole GPUs and whole
// nodes stay free for the jobs that need them.
//
// Reserve (Take) and unreserve (Give) are exact inverses; Place either
// reserves every task of a gang or changes nothing (all-or-nothing), so gangs
// never hold partial allocations. Not thread-safe; one per cycle.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "sched/scheduler.h"

namespace berth::sched {

class ClusterState {
 public:
  // All healthy GPUs free. Unhealthy GPUs are never offered.
  explicit ClusterState(const ClusterSnapshot& cluster);
  // Back to the state the constructor would build from `cluster`, reusing
  // this one's memory; false (and unusable until reset) if `cluster` has
  // other nodes than the one this was built from.
  bool Reset(const ClusterSnapshot& cluster);

  // Reserves placements for `task` (a running job's, or a rollback). Unknown
  // nodes or GPUs are ignored; amounts never go below zero.
  // `nodes`, if given, holds NodeIndex(placements[k].node) for each k (saves the lookups).
  void Take(std::span<const TaskPlacement> placements, const TaskRequest& task,
            const int* nodes = nullptr);
  // Unreserves what Take reserved for the same arguments.
  void Give(std::span<const TaskPlacement> placements, const TaskRequest& task,
            const int* nodes = nullptr);
  // Whether Take(placements, task) would find everything free now.
  bool IsFree(std::span<const TaskPlacement> placements, const TaskRequest& task,
              const int* nodes = nullptr) const;

  // Places `tasks` copies of `task` and reserves them, or returns nullopt and
  // changes nothing. `node_ok`, if set, filters nodes by index.
  std::optional<std::vector<TaskPlacement>> Place(
      const TaskRequest& task, int tasks, const std::function<bool(int)>* node_ok = nullptr);

  // GPUs hidden from placement (a job restricted to some GPU models): every
  // usable GPU with free capacity for which hidden(node index, GPU index) is
  // true is made to look full, exactly as Take would, and Unhide gives back
  // exactly that. Hide and Unhide pair up around a Place or an ExplainNoFit.
  struct Hidden {
    int node, gpu;
    MilliGpu free;
    MiB mem_free;
  };
  void Hide(const std::function<bool(int, int)>& hidden, std::vector<Hidden>* undo);
  void Unhide(std::vector<Hidden>* undo);

  // Cheap necessary condition for Place: enough free GPU in total.
  bool MayFit(const TaskRequest& task, int tasks) const {
    int whole = task.gpus >= kWholeGpu ? static_cast<int>(task.gpus / kWholeGpu) : 0;
    if (whole > 0) return static_cast<int64_t>(whole) * tasks <= free_whole_;
    if (task.gpus > 0) return task.gpus * tasks <= free_milli_;
    return true;
  }

  // "needs 2x4 GPUs; 3 free, at most 2 on one node": why Place failed now.
  std::string ExplainNoFit(const TaskRequest& task, int tasks) const;

  MilliGpu free_gpu() const { return free_milli_; }      // free milli-GPU, whole and partial
  int free_whole_gpus() const { return free_whole_; }    // GPUs with nothing on them
  MilliGpu capacity() const { return capacity_milli_; }  // healthy milli-GPU in the cluster
  int node_count() const { return static_cast<int>(nodes_.size()); }
  int NodeIndex(const std::string& name) const;
  int max_gpus_per_node() const { return max_gpus_; }
  // Free whole GPUs on node i.
  int node_free_whole(int i) const { return nodes_[i].whole_free; }

 private:
  struct Gpu {
    MilliGpu free = 0;
    MiB mem_free = 0;
    MiB mem_total = 0;  // 0: unknown (memory floors are not checked)
    // Measured free memory (total - measured used) less the floors of
    // fractions placed on it this cycle; -1: not measured.
    MiB mem_measured_free = -1;
    bool usable = true;
    std::vector<int> peers;
  };
  struct Node {
    std::string name;
    std::vector<Gpu> gpus;
    int whole_free = 0;
    MilliCpu cpu_free = 0;
    MiB mem_free = 0;
    bool cpu_scheduled = false;
    bool mem_scheduled = false;
  };

  void Init(const ClusterSnapshot& cluster);  // everything but the node names and index
  // How many copies of `task` fit on node i by CPU and memory (large if unscheduled).
  int CpuMemCapacity(int i, const TaskRequest& task) const;
  void SetWholeFree(int i, int value);
  void UpdatePartial(int node, int gpu, MilliGpu old_free);
  std::vector<int> PickGpus(int node, int count) const;
  // Best-fit node with >= `need` whole GPUs and room for `copies` tasks by CPU/memory.
  int FindBestFit(int need, int copies, const TaskRequest& task,
                  const std::function<bool(int)>* ok) const;
  // The node with the most free whole GPUs that fits at least one task.
  int FindLargest(int per_task, const TaskRequest& task, const std::function<bool(int)>* ok) const;
  // Buckets of nodes by free whole GPUs, as bitsets so that nodes are
  // visited in index order and moves cost no allocation.
  int NextInBucket(int k, int from) const;  // first node >= from in bucket k, or -1
  void BucketInsert(int k, int i);
  void BucketErase(int k, int i);
  std::optional<TaskPlacement> PlaceFraction(const TaskRequest& task,
                                             const std::function<bool(int)>* ok);
  std::optional<TaskPlacement> PlaceCpuOnly(const TaskRequest& task,
                                            const std::function<bool(int)>* ok);

  std::vector<Node> nodes_;
  std::unordered_map<std::string, int> node_index_;
  std::vector<std::vector<uint64_t>>
      by_whole_free_;             // bucket k: nodes with k free whole GPUs (bits)
  std::vector<int> bucket_size_;  // nodes per bucket
  std::set<std::tuple<MilliGpu, int, int>> partial_;  // (free, node, gpu) for shared GPUs
  MilliGpu free_milli_ = 0;
  MilliGpu capacity_milli_ = 0;
  int free_whole_ = 0;
  int max_gpus_ = 0;
  // Scratch for IsFree: (node, gpu, milli-GPU, GPU memory) and (node, CPU, memory) needs.
  mutable std::vector<std::tuple<int, int, MilliGpu, MiB>> gpu_need_;
  mutable std::vector<std::tuple<int, MilliCpu, MiB>> node_need_;
};

}  // namespace berth::sched
