// Internal to the scheduler core (not part of its contract): the limits
// that tell "never" from "not now", the small indexes a cycle keeps, and the
// FrameworkScheduler that Scheduler::Create builds. The cycle itself is in
// sched/cycle.h and cycle.cc; the registry in framework.cc.
#pragma once

#include <array>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "sched/cluster_state.h"
#include "sched/policy.h"

namespace berth::sched::internal {

// Limits that no cluster state changes: used to tell "never" from "not now".
struct Limits {
  int max_node_gpus = 0;   // healthy GPUs on the largest node
  int64_t total_gpus = 0;  // healthy GPUs in the cluster
  MiB max_gpu_memory = 0;  // largest GPU memory (0: unknown)
  bool gpu_memory_known = true;
  MilliCpu max_node_cpu = 0;  // 0 on any node: CPU not scheduled there
  MiB max_node_memory = 0;
  bool cpu_unscheduled = false;
  bool memory_unscheduled = false;
  std::vector<std::string> models;  // the GPU models of healthy GPUs (each once)
};

// Whether `job` may use a GPU of `model` (any, without gpu_models).
inline bool ModelAllowed(const JobRequest& job, const std::string& model) {
  if (job.gpu_models.empty()) return true;
  for (const std::string& m : job.gpu_models) {
    if (m == model) return true;
  }
  return false;
}
// Hides from `state` the GPUs of `cluster` of models `job` may not use
// (nothing for a job without gpu_models); `undo` gives them back
// (ClusterState::Unhide).
inline void HideOtherModels(ClusterState& state, const ClusterSnapshot& cluster,
                            const JobRequest& job, std::vector<ClusterState::Hidden>* undo) {
  undo->clear();
  if (job.gpu_models.empty()) return;
  state.Hide(
      [&](int node, int gpu) {
        for (const GpuState& g : cluster.nodes[node].gpus) {
          if (g.index == gpu) return !ModelAllowed(job, g.model);
        }
        return true;
      },
      undo);
}

// Whether some GPU of the cluster is of a model the job may use.
inline bool SomeModelAllowed(const JobRequest& job, const Limits& l) {
  for (const std::string& m : l.models) {
    if (ModelAllowed(job, m)) return true;
  }
  return job.gpu_models.empty();
}

Limits ComputeLimits(const ClusterSnapshot& cluster);

inline int MinTasks(const JobRequest& j) {
  return j.min_tasks > 0 ? std::min(j.min_tasks, j.tasks) : j.tasks;
}
inline int MaxTasks(const JobRequest& j) {
  return j.max_tasks > 0 ? std::max(j.max_tasks, j.tasks) : j.tasks;
}

// Why `job` can never run on a cluster with these limits, or "" if it might.
std::string NeverReason(const JobRequest& job, const Limits& l);

// Whether NeverReason(job, l) is "" (a cheap check; NeverReason says why not).
inline bool MayEverRun(const JobRequest& job, const Limits& l) {
  const TaskRequest& t = job.task;
  if (job.tasks < 1 || t.gpus < 0 || (t.gpus > kWholeGpu && t.gpus % kWholeGpu != 0)) return false;
  if (t.gpus >= kWholeGpu) {
    int64_t per = t.gpus / kWholeGpu;
    if (per > l.max_node_gpus || per * MinTasks(job) > l.total_gpus) return false;
  } else if (t.gpus > 0) {
    if (l.total_gpus == 0 || (l.gpu_memory_known && t.gpu_memory > l.max_gpu_memory)) return false;
  }
  if (!l.cpu_unscheduled && t.cpu > l.max_node_cpu) return false;
  if (!l.memory_unscheduled && t.memory > l.max_node_memory) return false;
  if (!job.gpu_models.empty() && t.gpus > 0 && !SomeModelAllowed(job, l)) return false;
  return true;
}

inline bool KeyLess(const PriorityKey& a, const PriorityKey& b) {
  if (a[0] != b[0]) return a[0] < b[0];
  if (a[1] != b[1]) return a[1] < b[1];
  return a[2] < b[2];
}

// Failure classes (Policy::FailureClass) with the request fields that
// placement and preemption read.
using Combo = std::tuple<int64_t, int64_t, MilliGpu, int, int, MilliCpu, MiB, MiB>;

inline Combo MakeCombo(const std::pair<int64_t, int64_t>& cls, const JobRequest& r) {
  return {cls.first,   cls.second, r.task.gpus,   r.tasks,
          MinTasks(r), r.task.cpu, r.task.memory, r.task.gpu_memory};
}

// Combos to small dense indices (a cycle's pending jobs fall in few), so that
// a visit checks its class with one array read instead of hashing a tuple.
class ClassIndex {
 public:
  void Clear() {
    combos_.clear();
    table_.assign(256, -1);
  }
  int size() const { return static_cast<int>(combos_.size()); }
  int Find(const Combo& c) {
    size_t mask = table_.size() - 1;
    for (size_t slot = Hash(c) & mask;; slot = (slot + 1) & mask) {
      int i = table_[slot];
      if (i < 0) break;
      if (combos_[i] == c) return i;
    }
    combos_.push_back(c);
    if (combos_.size() * 2 > table_.size()) {
      table_.assign(table_.size() * 2, -1);
      for (size_t k = 0; k < combos_.size(); ++k) Insert(static_cast<int>(k));
    } else {
      Insert(size() - 1);
    }
    return size() - 1;
  }

 private:
  static size_t Hash(const Combo& c) {
    uint64_t h = static_cast<uint64_t>(std::get<0>(c)) * 0x9E3779B97F4A7C15ull ^
                 static_cast<uint64_t>(std::get<1>(c)) * 0xC2B2AE3D27D4EB4Full ^
                 static_cast<uint64_t>(std::get<2>(c)) * 0x165667B19E3779F9ull ^
                 static_cast<uint64_t>(std::get<3>(c)) * 0xD6E8FEB86659FD93ull ^
                 static_cast<uint64_t>(std::get<4>(c)) * 0xFF51AFD7ED558CCDull ^
                 static_cast<uint64_t>(std::get<5>(c)) * 0xC4CEB9FE1A85EC53ull ^
                 static_cast<uint64_t>(std::get<6>(c)) * 0x27D4EB2F165667C5ull ^
                 static_cast<uint64_t>(std::get<7>(c)) * 0x94D049BB133111EBull;
    return static_cast<size_t>(h ^ (h >> 29));
  }
  void Insert(int i) {
    size_t mask = table_.size() - 1;
    size_t slot = Hash(combos_[i]) & mask;
    while (table_[slot] >= 0) slot = (slot + 1) & mask;
    table_[slot] = i;
  }
  std::vector<Combo> combos_;
  std::vector<int> table_;
};

// A request shape (GPU, tasks, CPU, memory).
using Shape = std::tuple<MilliGpu, int, MilliCpu, MiB>;

// A map keyed by request shapes: a cycle meets few, so a scan of a flat
// array (the last hit first) beats a tree; past 32 it keeps a tree.
template <typename V>
class ShapeMap {
 public:
  V* Find(const Shape& s) {
    if (!tree_.empty()) {
      auto it = tree_.find(s);
      return it == tree_.end() ? nullptr : &it->second;
    }
    if (last_ < flat_.size() && flat_[last_].first == s) return &flat_[last_].second;
    for (size_t i = 0; i < flat_.size(); ++i) {
      if (flat_[i].first == s) return &flat_[last_ = i].second;
    }
    return nullptr;
  }
  bool Has(const Shape& s) { return Find(s) != nullptr; }
  // Adds `s` (if new) with `v`.
  V& Add(const Shape& s, V v = V()) {
    if (V* found = Find(s)) return *found;
    if (tree_.empty() && flat_.size() < 32) {
      flat_.push_back({s, std::move(v)});
      return flat_[last_ = flat_.size() - 1].second;
    }
    if (tree_.empty()) tree_.insert(flat_.begin(), flat_.end());
    flat_.clear();
    return tree_.emplace(s, std::move(v)).first->second;
  }
  size_t size() const { return tree_.empty() ? flat_.size() : tree_.size(); }
  void clear() {
    flat_.clear();
    tree_.clear();
    last_ = 0;
  }

 private:
  std::vector<std::pair<Shape, V>> flat_;
  std::map<Shape, V> tree_;
  size_t last_ = 0;
};

class FrameworkScheduler final : public Scheduler {
 public:
  FrameworkScheduler(std::string name, std::unique_ptr<Policy> policy, uint64_t seed)
      : name_(std::move(name)), policy_(std::move(policy)), rng_(seed) {}

  const std::string& PolicyName() const override { return name_; }

  Status CheckFeasible(const JobRequest& job, const ClusterSnapshot& cluster) const override {
    std::string why = NeverReason(job, ComputeLimits(cluster));
    if (!why.empty()) return Unschedulable(why);
    ClusterState empty(cluster);
    std::vector<ClusterState::Hidden> hidden;
    HideOtherModels(empty, cluster, job, &hidden);
    if (!empty.Place(job.task, MinTasks(job))) {
      return Unschedulable(std::string("no node combination fits") +
                           (job.gpu_models.empty() ? "" : " on GPUs of the models it allows") +
                           ": " + empty.ExplainNoFit(job.task, MinTasks(job)));
    }
    return Status::Ok();
  }

  Decisions Schedule(const SchedulerInput& input) override;

  // A pending job in the cycle's heap: its key and arrival position.
  struct HeapEntry {
    PriorityKey key;
    int order;
    int cls = -1;  // the job's failure class and request (Cycle::classes), -1: none
  };
  // Per-cycle arrays kept between cycles, so a cycle over 100,000 pending
  // jobs allocates (and faults in) nothing new.
  struct Buffers {
    std::optional<ClusterState> state;  // reset in place while the nodes stay the same
    CycleContext ctx;
    std::vector<int> run_nodes;     // node index of every running job's placements, flat
    std::vector<int> run_node_off;  // running job i's start in run_nodes
    std::vector<JobView> pending;
    std::vector<HeapEntry> heap;
    bool visit_most = false;  // the last cycle visited more than half its pending jobs
    std::vector<HeapEntry> scratch;
    std::vector<uint8_t> sort_ids;
    ClassIndex classes;                // the cycle's failure classes with requests, interned
    std::vector<uint32_t> failed_gen;  // per class: the generation in which it failed
    std::vector<TextRef>
        class_reason;  // per class: its no-fit reason, while class_reason_gen is current
    std::vector<uint32_t> class_reason_gen;
  };
  static bool Worse(const HeapEntry& a, const HeapEntry& b) {
    if (a.key[0] != b.key[0]) return a.key[0] > b.key[0];
    if (a.key[1] != b.key[1]) return a.key[1] > b.key[1];
    if (a.key[2] != b.key[2]) return a.key[2] > b.key[2];
    return a.order > b.order;
  }
  struct WorseFn {  // inlined where a function pointer would not be
    bool operator()(const HeapEntry& a, const HeapEntry& b) const { return Worse(a, b); }
  };
  // Sorts worst first. Keys often take few first values (a level, a queue's
  // ratio), and within one the jobs often come in order already: then a
  // counting sort on the first value and a check (or reversal) of each
  // bucket replace most of the comparison sort. `ids` is scratch space.
  static void SortWorstFirst(std::vector<HeapEntry>& v, std::vector<HeapEntry>& tmp,
                             std::vector<uint8_t>& ids);

 private:
  struct Cycle;
  Buffers buffers_;
  std::string name_;
  std::unique_ptr<Policy> policy_;
  Rng rng_;
};

}  // namespace berth::sched::internal
