#include "sched/cluster_state.h"

#include <algorithm>
#include <climits>
#include <map>

namespace berth::sched {

namespace {

MilliGpu ShareOf(const TaskPlacement& p, const TaskRequest& task) {
  if (p.gpu_share > 0) return p.gpu_share;
  return task.gpus >= kWholeGpu ? kWholeGpu : task.gpus;
}

int WholeGpusPerTask(const TaskRequest& task) {
  return task.gpus >= kWholeGpu ? static_cast<int>(task.gpus / kWholeGpu) : 0;
}

}  // namespace

ClusterState::ClusterState(const ClusterSnapshot& cluster) {
  nodes_.reserve(cluster.nodes.size());
  for (const NodeState& ns : cluster.nodes) {
    Node n;
    n.name = ns.name;
    node_index_[n.name] = static_cast<int>(nodes_.size());
    nodes_.push_back(std::move(n));
  }
  Init(cluster);
}

bool ClusterState::Reset(const ClusterSnapshot& cluster) {
  if (nodes_.size() != cluster.nodes.size()) return false;
  for (size_t i = 0; i < nodes_.size(); ++i) {
    if (nodes_[i].name != cluster.nodes[i].name) return false;
  }
  Init(cluster);
  return true;
}

void ClusterState::Init(const ClusterSnapshot& cluster) {
  partial_.clear();
  free_milli_ = 0;
  capacity_milli_ = 0;
  free_whole_ = 0;
  max_gpus_ = 0;
  for (size_t i = 0; i < nodes_.size(); ++i) {
    const NodeState& ns = cluster.nodes[i];
    Node& n = nodes_[i];
    n.cpu_scheduled = ns.cpu > 0;
    n.mem_scheduled = ns.memory > 0;
    n.cpu_free = ns.cpu;
    n.mem_free = ns.memory;
    n.whole_free = 0;
    int max_index = -1;
    for (const GpuState& g : ns.gpus) max_index = std::max(max_index, g.index);
    n.gpus.resize(max_index + 1);
    for (Gpu& g : n.gpus) {
      g.free = 0;
      g.mem_free = 0;
      g.mem_total = 0;
      g.mem_measured_free = -1;
      g.usable = false;
      g.peers.clear();
    }
    for (const GpuState& gs : ns.gpus) {
      if (gs.index < 0) continue;
      Gpu& g = n.gpus[gs.index];
      g.usable = gs.healthy;
      g.free = gs.healthy ? kWholeGpu : 0;
      g.mem_total = gs.memory;
      g.mem_free = gs.memory;
      g.mem_measured_free =
          gs.memory_used >= 0 && gs.memory > 0 ? std::max<MiB>(0, gs.memory - gs.memory_used) : -1;
      g.peers = gs.nvlink_peers;
      if (gs.healthy) {
        ++n.whole_free;
        free_milli_ += kWholeGpu;
        capacity_milli_ += kWholeGpu;
      }
    }
    free_whole_ += n.whole_free;
    max_gpus_ = std::max(max_gpus_, n.whole_free);
  }
  by_whole_free_.resize(max_gpus_ + 1);
  for (auto& bits : by_whole_free_) bits.assign((nodes_.size() + 63) / 64, 0);
  bucket_size_.assign(max_gpus_ + 1, 0);
  for (int i = 0; i < static_cast<int>(nodes_.size()); ++i) BucketInsert(nodes_[i].whole_free, i);
}

int ClusterState::NextInBucket(int k, int from) const {
  const std::vector<uint64_t>& bits = by_whole_free_[k];
  size_t w = static_cast<size_t>(from) / 64;
  if (w >= bits.size()) return -1;
  uint64_t word = bits[w] & (~uint64_t{0} << (from % 64));
  while (word == 0) {
    if (++w >= bits.size()) return -1;
    word = bits[w];
  }
  return static_cast<int>(w * 64 + __builtin_ctzll(word));
}

void ClusterState::BucketInsert(int k, int i) {
  by_whole_free_[k][i / 64] |= uint64_t{1} << (i % 64);
  ++bucket_size_[k];
}

void ClusterState::BucketErase(int k, int i) {
  by_whole_free_[k][i / 64] &= ~(uint64_t{1} << (i % 64));
  --bucket_size_[k];
}

int ClusterState::NodeIndex(const std::string& name) const {
  auto it = node_index_.find(name);
  return it == node_index_.end() ? -1 : it->second;
}

void ClusterState::SetWholeFree(int i, int value) {
  Node& n = nodes_[i];
  if (n.whole_free == value) return;
  BucketErase(n.whole_free, i);
  free_whole_ += value - n.whole_free;
  n.whole_free = value;
  BucketInsert(value, i);
}

void ClusterState::UpdatePartial(int node, int gpu, MilliGpu old_free) {
  const Gpu& g = nodes_[node].gpus[gpu];
  if (old_free > 0 && old_free < kWholeGpu) partial_.erase({old_free, node, gpu});
  if (g.usable && g.free > 0 && g.free < kWholeGpu) partial_.insert({g.free, node, gpu});
}

void ClusterState::Take(std::span<const TaskPlacement> placements, const TaskRequest& task,
                        const int* nodes) {
  for (size_t k = 0; k < placements.size(); ++k) {
    const TaskPlacement& p = placements[k];
    int i = nodes ? nodes[k] : NodeIndex(p.node);
    if (i < 0) continue;
    Node& n = nodes_[i];
    MilliGpu share = ShareOf(p, task);
    int whole = n.whole_free;
    for (int gi : p.gpus) {
      if (gi < 0 || gi >= static_cast<int>(n.gpus.size())) continue;
      Gpu& g = n.gpus[gi];
      if (!g.usable) continue;
      MilliGpu old = g.free;
      MilliGpu take = std::min(share, g.free);
      if (old == kWholeGpu) --whole;
      g.free -= take;
      free_milli_ -= take;
      g.mem_free -= share >= kWholeGpu ? g.mem_total : task.gpu_memory;
      UpdatePartial(i, gi, old);
    }
    SetWholeFree(i, whole);
    if (n.cpu_scheduled) n.cpu_free -= task.cpu;
    if (n.mem_scheduled) n.mem_free -= task.memory;
  }
}

void ClusterState::Give(std::span<const TaskPlacement> placements, const TaskRequest& task,
                        const int* nodes) {
  for (size_t k = 0; k < placements.size(); ++k) {
    const TaskPlacement& p = placements[k];
    int i = nodes ? nodes[k] : NodeIndex(p.node);
    if (i < 0) continue;
    Node& n = nodes_[i];
    MilliGpu share = ShareOf(p, task);
    int whole = n.whole_free;
    for (int gi : p.gpus) {
      if (gi < 0 || gi >= static_cast<int>(n.gpus.size())) continue;
      Gpu& g = n.gpus[gi];
      if (!g.usable) continue;
      MilliGpu old = g.free;
      MilliGpu give = std::min(share, kWholeGpu - g.free);
      g.free += give;
      free_milli_ += give;
      g.mem_free += share >= kWholeGpu ? g.mem_total : task.gpu_memory;
      if (g.free == kWholeGpu && old != kWholeGpu) ++whole;
      UpdatePartial(i, gi, old);
    }
    SetWholeFree(i, whole);
    if (n.cpu_scheduled) n.cpu_free += task.cpu;
    if (n.mem_scheduled) n.mem_free += task.memory;
  }
}

void ClusterState::Hide(const std::function<bool(int, int)>& hidden, std::vector<Hidden>* undo) {
  undo->clear();
  for (int i = 0; i < static_cast<int>(nodes_.size()); ++i) {
    Node& n = nodes_[i];
    int whole = n.whole_free;
    for (int gi = 0; gi < static_cast<int>(n.gpus.size()); ++gi) {
      Gpu& g = n.gpus[gi];
      if (!g.usable || g.free == 0 || !hidden(i, gi)) continue;
      undo->push_back({i, gi, g.free, g.mem_free});
      MilliGpu old = g.free;
      if (old == kWholeGpu) --whole;
      free_milli_ -= old;
      g.free = 0;
      g.mem_free = 0;
      UpdatePartial(i, gi, old);
    }
    SetWholeFree(i, whole);
  }
}

void ClusterState::Unhide(std::vector<Hidden>* undo) {
  for (auto it = undo->rbegin(); it != undo->rend(); ++it) {
    Node& n = nodes_[it->node];
    Gpu& g = n.gpus[it->gpu];
    g.free = it->free;
    g.mem_free = it->mem_free;
    free_milli_ += it->free;
    UpdatePartial(it->node, it->gpu, 0);
    SetWholeFree(it->node, n.whole_free + (it->free == kWholeGpu ? 1 : 0));
  }
  undo->clear();
}

bool ClusterState::IsFree(std::span<const TaskPlacement> placements, const TaskRequest& task,
                          const int* nodes) const {
  // Several tasks may share a node (and, for fractions, a GPU): add up per node.
  gpu_need_.clear();
  node_need_.clear();
  for (size_t k = 0; k < placements.size(); ++k) {
    const TaskPlacement& p = placements[k];
    int i = nodes ? nodes[k] : NodeIndex(p.node);
    if (i < 0) return false;
    MilliGpu share = ShareOf(p, task);
    for (int gi : p.gpus) {
      if (gi < 0 || gi >= static_cast<int>(nodes_[i].gpus.size())) return false;
      gpu_need_.emplace_back(i, gi, share, share >= kWholeGpu ? 0 : task.gpu_memory);
    }
    node_need_.emplace_back(i, task.cpu, task.memory);
  }
  std::sort(gpu_need_.begin(), gpu_need_.end());
  for (size_t a = 0; a < gpu_need_.size();) {
    auto [i, gi, milli, mem] = gpu_need_[a];
    size_t b = a + 1;
    for (;
         b < gpu_need_.size() && std::get<0>(gpu_need_[b]) == i && std::get<1>(gpu_need_[b]) == gi;
         ++b) {
      milli += std::get<2>(gpu_need_[b]);
      mem += std::get<3>(gpu_need_[b]);
    }
    a = b;
    const Gpu& g = nodes_[i].gpus[gi];
    if (!g.usable || g.free < milli) return false;
    if (milli >= kWholeGpu && g.free != kWholeGpu) return false;
    if (g.mem_total > 0 && mem > g.mem_free) return false;
  }
  std::sort(node_need_.begin(), node_need_.end());
  for (size_t a = 0; a < node_need_.size();) {
    auto [i, cpu, mem] = node_need_[a];
    size_t b = a + 1;
    for (; b < node_need_.size() && std::get<0>(node_need_[b]) == i; ++b) {
      cpu += std::get<1>(node_need_[b]);
      mem += std::get<2>(node_need_[b]);
    }
    a = b;
    const Node& n = nodes_[i];
    if (n.cpu_scheduled && n.cpu_free < cpu) return false;
    if (n.mem_scheduled && n.mem_free < mem) return false;
  }
  return true;
}

int ClusterState::CpuMemCapacity(int i, const TaskRequest& task) const {
  const Node& n = nodes_[i];
  int cap = INT_MAX;
  if (n.cpu_scheduled && task.cpu > 0)
    cap = std::min<int64_t>(cap, std::max<int64_t>(0, n.cpu_free / task.cpu));
  if (n.mem_scheduled && task.memory > 0)
    cap = std::min<int64_t>(cap, std::max<int64_t>(0, n.mem_free / task.memory));
  return cap;
}

std::vector<int> ClusterState::PickGpus(int node, int count) const {
  const Node& n = nodes_[node];
  std::vector<int> free;
  for (int gi = 0; gi < static_cast<int>(n.gpus.size()); ++gi) {
    if (n.gpus[gi].usable && n.gpus[gi].free == kWholeGpu) free.push_back(gi);
  }
  if (static_cast<int>(free.size()) <= count) return free;
  bool topology = false;
  for (int gi : free) topology = topology || !n.gpus[gi].peers.empty();
  if (!topology || count == 1) {
    free.resize(count);
    return free;
  }
  // Greedy NVLink clique: start from the free GPU with the most free peers,
  // then add the free GPU with the most links into the chosen set.
  std::vector<bool> is_free(n.gpus.size(), false);
  for (int gi : free) is_free[gi] = true;
  auto links_into = [&](int gi, const std::vector<int>& set) {
    int c = 0;
    for (int p : n.gpus[gi].peers) {
      if (std::find(set.begin(), set.end(), p) != set.end()) ++c;
    }
    return c;
  };
  int start = free[0], best = -1;
  for (int gi : free) {
    int c = 0;
    for (int p : n.gpus[gi].peers)
      c += (p >= 0 && p < static_cast<int>(is_free.size()) && is_free[p]) ? 1 : 0;
    if (c > best) best = c, start = gi;
  }
  std::vector<int> chosen{start};
  is_free[start] = false;
  while (static_cast<int>(chosen.size()) < count) {
    int pick = -1, pick_links = -1;
    for (int gi : free) {
      if (!is_free[gi]) continue;
      int c = links_into(gi, chosen);
      if (c > pick_links) pick_links = c, pick = gi;
    }
    chosen.push_back(pick);
    is_free[pick] = false;
  }
  std::sort(chosen.begin(), chosen.end());
  return chosen;
}

int ClusterState::FindBestFit(int need, int copies, const TaskRequest& task,
                              const std::function<bool(int)>* ok) const {
  for (int k = std::max(need, 0); k <= max_gpus_; ++k) {
    for (int i = NextInBucket(k, 0); i >= 0; i = NextInBucket(k, i + 1)) {
      if (ok && !(*ok)(i)) continue;
      if (CpuMemCapacity(i, task) >= copies) return i;
    }
  }
  return -1;
}

int ClusterState::FindLargest(int per_task, const TaskRequest& task,
                              const std::function<bool(int)>* ok) const {
  int best = -1, best_cap = 0;
  for (int k = max_gpus_; k >= per_task && k > 0; --k) {
    if (best_cap >= k / per_task) break;  // no node in lower buckets holds more tasks
    for (int i = NextInBucket(k, 0); i >= 0; i = NextInBucket(k, i + 1)) {
      if (ok && !(*ok)(i)) continue;
      int cap = std::min(k / per_task, CpuMemCapacity(i, task));
      if (cap > best_cap) {
        best_cap = cap;
        best = i;
        if (cap == k / per_task) break;
      }
    }
  }
  return best;
}

std::optional<TaskPlacement> ClusterState::PlaceFraction(const TaskRequest& task,
                                                         const std::function<bool(int)>* ok) {
  auto fits_gpu = [&](const Gpu& g) {
    return g.usable && g.free >= task.gpus && (g.mem_total == 0 || g.mem_free >= task.gpu_memory) &&
           (g.mem_measured_free < 0 || g.mem_measured_free >= task.gpu_memory);
  };
  int node = -1, gpu = -1;
  // Best fit among GPUs already shared: the one with the least room left.
  for (auto it = partial_.lower_bound({task.gpus, -1, -1}); it != partial_.end(); ++it) {
    auto [free, i, gi] = *it;
    if (ok && !(*ok)(i)) continue;
    if (!fits_gpu(nodes_[i].gpus[gi]) || CpuMemCapacity(i, task) < 1) continue;
    node = i;
    gpu = gi;
    break;
  }
  if (node < 0) {
    // Open a fresh GPU on the node with the fewest free whole GPUs.
    for (int k = 1; k <= max_gpus_ && node < 0; ++k) {
      for (int i = NextInBucket(k, 0); i >= 0; i = NextInBucket(k, i + 1)) {
        if (ok && !(*ok)(i)) continue;
        if (CpuMemCapacity(i, task) < 1) continue;
        const Node& n = nodes_[i];
        for (int gi = 0; gi < static_cast<int>(n.gpus.size()); ++gi) {
          if (n.gpus[gi].free == kWholeGpu && fits_gpu(n.gpus[gi])) {
            node = i;
            gpu = gi;
            break;
          }
        }
        if (node >= 0) break;
      }
    }
  }
  if (node < 0) return std::nullopt;
  TaskPlacement p{nodes_[node].name, {gpu}, task.gpus};
  Take(std::span<const TaskPlacement>(&p, 1), task);
  // Measured memory already counts the fractions running there; only the
  // ones placed this cycle are taken off it.
  MiB& measured = nodes_[node].gpus[gpu].mem_measured_free;
  if (measured >= 0) measured = std::max<MiB>(0, measured - task.gpu_memory);
  return p;
}

std::optional<TaskPlacement> ClusterState::PlaceCpuOnly(const TaskRequest& task,
                                                        const std::function<bool(int)>* ok) {
  // Prefer nodes without free GPUs, so GPU nodes stay whole.
  for (int k = 0; k <= max_gpus_; ++k) {
    for (int i = NextInBucket(k, 0); i >= 0; i = NextInBucket(k, i + 1)) {
      if (ok && !(*ok)(i)) continue;
      if (CpuMemCapacity(i, task) < 1) continue;
      TaskPlacement p{nodes_[i].name, {}, 0};
      Take(std::span<const TaskPlacement>(&p, 1), task);
      return p;
    }
  }
  return std::nullopt;
}

std::optional<std::vector<TaskPlacement>> ClusterState::Place(const TaskRequest& task, int tasks,
                                                              const std::function<bool(int)>* ok) {
  if (tasks <= 0) return std::vector<TaskPlacement>{};
  if (!MayFit(task, tasks)) return std::nullopt;
  std::vector<TaskPlacement> out;
  out.reserve(tasks);
  auto rollback = [&]() {
    Give(out, task);
    return std::nullopt;
  };
  int per_task = WholeGpusPerTask(task);
  if (per_task == 0) {
    for (int t = 0; t < tasks; ++t) {
      auto p = task.gpus > 0 ? PlaceFraction(task, ok) : PlaceCpuOnly(task, ok);
      if (!p) return rollback();
      out.push_back(std::move(*p));
    }
    return out;
  }
  int remaining = tasks;
  while (remaining > 0) {
    // Fewest nodes: if one node holds all remaining tasks, take the tightest
    // such node; otherwise fill the node that holds the most and go on.
    int node = -1, here = 0;
    if (static_cast<int64_t>(remaining) * per_task <= max_gpus_) {
      node = FindBestFit(remaining * per_task, remaining, task, ok);
      here = remaining;
    }
    if (node < 0) {
      node = FindLargest(per_task, task, ok);
      if (node < 0) return rollback();
      here = std::min({remaining, nodes_[node].whole_free / per_task, CpuMemCapacity(node, task)});
      if (here <= 0) return rollback();
    }
    for (int t = 0; t < here; ++t) {
      TaskPlacement p{nodes_[node].name, PickGpus(node, per_task), kWholeGpu};
      Take(std::span<const TaskPlacement>(&p, 1), task);
      out.push_back(std::move(p));
    }
    remaining -= here;
  }
  return out;
}

std::string ClusterState::ExplainNoFit(const TaskRequest& task, int tasks) const {
  int per_task = WholeGpusPerTask(task);
  std::string want = std::to_string(tasks) + " task(s) x " + FormatMilli(task.gpus) + " GPU";
  if (per_task > 0) {
    int largest = 0;
    for (int k = max_gpus_; k >= 0; --k) {
      if (bucket_size_[k] > 0) {
        largest = k;
        break;
      }
    }
    return "needs " + want + "; " + std::to_string(free_whole_) + " whole GPU(s) free, at most " +
           std::to_string(largest) + " on one node";
  }
  if (task.gpus > 0) {
    return "needs " + want +
           (task.gpu_memory > 0 ? " with " + std::to_string(task.gpu_memory) + " MiB" : "") + "; " +
           FormatMilli(free_milli_) + " GPU free in total";
  }
  return "needs " + want + " with " + FormatMilli(task.cpu) + " CPU and " +
         std::to_string(task.memory) + " MiB memory; no node has room";
}

}  // namespace berth::sched
