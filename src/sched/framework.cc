// The policy registry behind Scheduler::Create, the limits that tell
// "never" from "not now", and the cycle's key sort (the cycle itself is in
// cycle.cc, the queue index and PolicyOptions in policy_options.cc).
#include <algorithm>
#include <cstring>
#include <mutex>
#include <numeric>
#include <set>
#include <span>
#include <tuple>
#include <unordered_set>

#include "sched/framework_internal.h"

namespace berth::sched {

MilliGpu JobView::Gpus() const {
  int tasks = run ? static_cast<int>(run->placements.size()) : req->tasks;
  return req->task.gpus * tasks;
}

// --------------------------------------------------------------- registry

namespace {

std::mutex& RegistryMutex() {
  static std::mutex mu;
  return mu;
}

std::map<std::string, PolicyFactory>& Registry() {
  static std::map<std::string, PolicyFactory> registry = {
      {"fifo", MakeFifoPolicy},           {"backfill", MakeBackfillPolicy},
      {"tiresias", MakeTiresiasPolicy},   {"static", MakeStaticPolicy},
      {"fairshare", MakeFairSharePolicy}, {"srtf-oracle", MakeSrtfOraclePolicy},
      {"dynamic", MakeDynamicPolicy},
  };
  return registry;
}
}  // namespace

namespace internal {

Limits ComputeLimits(const ClusterSnapshot& cluster) {
  Limits l;
  for (const NodeState& n : cluster.nodes) {
    int healthy = 0;
    for (const GpuState& g : n.gpus) {
      if (!g.healthy) continue;
      ++healthy;
      if (g.memory == 0) l.gpu_memory_known = false;
      l.max_gpu_memory = std::max(l.max_gpu_memory, g.memory);
      if (l.models.empty() || l.models.back() != g.model) {  // (models come in runs)
        if (std::find(l.models.begin(), l.models.end(), g.model) == l.models.end())
          l.models.push_back(g.model);
      }
    }
    l.max_node_gpus = std::max(l.max_node_gpus, healthy);
    l.total_gpus += healthy;
    if (n.cpu == 0) l.cpu_unscheduled = true;
    if (n.memory == 0) l.memory_unscheduled = true;
    l.max_node_cpu = std::max(l.max_node_cpu, n.cpu);
    l.max_node_memory = std::max(l.max_node_memory, n.memory);
  }
  return l;
}

// Why `job` can never run on a cluster with these limits, or "" if it might.
std::string NeverReason(const JobRequest& job, const Limits& l) {
  const TaskRequest& t = job.task;
  if (job.tasks < 1) return "tasks must be >= 1, got " + std::to_string(job.tasks);
  if (t.gpus < 0) return "gpus must be >= 0";
  if (t.gpus > kWholeGpu && t.gpus % kWholeGpu != 0) {
    return "gpus above 1 must be whole, got " + FormatMilli(t.gpus);
  }
  int min_tasks = MinTasks(job);
  if (t.gpus >= kWholeGpu) {
    int64_t per = t.gpus / kWholeGpu;
    if (per > l.max_node_gpus) {
      return "each task needs " + std::to_string(per) + " GPUs on one node; the largest node has " +
             std::to_string(l.max_node_gpus);
    }
    if (per * min_tasks > l.total_gpus) {
      return "needs " + std::to_string(per * min_tasks) + " GPUs; the cluster has " +
             std::to_string(l.total_gpus);
    }
  } else if (t.gpus > 0) {
    if (l.total_gpus == 0) return "needs a GPU; the cluster has none";
    if (l.gpu_memory_known && t.gpu_memory > l.max_gpu_memory) {
      return "needs " + std::to_string(t.gpu_memory) + " MiB of GPU memory; the largest GPU has " +
             std::to_string(l.max_gpu_memory);
    }
  }
  if (!l.cpu_unscheduled && t.cpu > l.max_node_cpu) {
    return "each task needs " + FormatMilli(t.cpu) + " CPUs; the largest node has " +
           FormatMilli(l.max_node_cpu);
  }
  if (!job.gpu_models.empty() && t.gpus > 0 && !SomeModelAllowed(job, l)) {
    std::string want, have;
    for (const auto& m : job.gpu_models) want += (want.empty() ? "" : ", ") + m;
    for (const auto& m : l.models) have += (have.empty() ? "" : ", ") + (m.empty() ? "unknown" : m);
    return "needs a GPU of model " + want +
           "; no node has one (models here: " + (have.empty() ? "none" : have) + ")";
  }
  if (!l.memory_unscheduled && t.memory > l.max_node_memory) {
    return "each task needs " + std::to_string(t.memory) + " MiB memory; the largest node has " +
           std::to_string(l.max_node_memory);
  }
  return "";
}

void FrameworkScheduler::SortWorstFirst(std::vector<HeapEntry>& v, std::vector<HeapEntry>& tmp,
                                        std::vector<uint8_t>& ids) {
  // The distinct first values (at most 64), found through a small
  // open-addressed table: one probe per entry, no search.
  constexpr size_t kMaxFirsts = 64, kSlots = 128;
  std::array<int64_t, kMaxFirsts> firsts{};
  std::array<int8_t, kSlots> table;
  table.fill(-1);
  size_t nf = 0;
  ids.resize(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    const int64_t k = v[i].key[0];
    size_t slot = (static_cast<uint64_t>(k) * 0x9E3779B97F4A7C15ull) >> 57;  // 0..127
    int id;
    while ((id = table[slot]) >= 0 && firsts[id] != k) slot = (slot + 1) % kSlots;
    if (id < 0) {
      if (nf == kMaxFirsts) {
        std::sort(v.begin(), v.end(), WorseFn{});
        return;
      }
      id = static_cast<int>(nf);
      firsts[nf++] = k;
      table[slot] = static_cast<int8_t>(id);
    }
    ids[i] = static_cast<uint8_t>(id);
  }
  // Buckets worst (largest first value) first.
  std::array<uint8_t, kMaxFirsts> by{}, rank{};
  for (size_t b = 0; b < nf; ++b) by[b] = static_cast<uint8_t>(b);
  std::sort(by.begin(), by.begin() + nf,
            [&](uint8_t a, uint8_t b) { return firsts[a] > firsts[b]; });
  for (size_t r = 0; r < nf; ++r) rank[by[r]] = static_cast<uint8_t>(r);
  std::array<size_t, kMaxFirsts + 1> start{};
  for (size_t i = 0; i < v.size(); ++i) {
    ids[i] = rank[ids[i]];
    ++start[ids[i] + 1];
  }
  for (size_t b = 0; b < nf; ++b) start[b + 1] += start[b];
  tmp.resize(v.size());
  std::array<size_t, kMaxFirsts> at{};
  std::copy(start.begin(), start.begin() + nf, at.begin());
  for (size_t i = 0; i < v.size(); ++i) tmp[at[ids[i]]++] = v[i];
  std::vector<size_t> runs;
  for (size_t b = 0; b < nf; ++b) {
    auto first = tmp.begin() + start[b], end = tmp.begin() + start[b + 1];
    if (std::is_sorted(first, end, WorseFn{})) continue;
    // Mostly best first (arrival order, with requeued jobs appended):
    // reverse, then merge the few worst-first runs left, if they are few.
    if (!Worse(*first, *(end - 1))) std::reverse(first, end);
    runs.assign(1, 0);
    for (auto it = first + 1; it < end && runs.size() <= 16; ++it) {
      if (Worse(*it, *(it - 1))) runs.push_back(it - first);
    }
    if (runs.size() > 16) {
      std::sort(first, end, WorseFn{});
      continue;
    }
    for (size_t r = 1; r < runs.size(); ++r) {
      auto mid = first + runs[r], to = r + 1 < runs.size() ? first + runs[r + 1] : end;
      std::inplace_merge(first, mid, to, WorseFn{});
    }
  }
  v.swap(tmp);
}

}  // namespace internal

using internal::FrameworkScheduler;

bool RegisterPolicy(const std::string& name, PolicyFactory factory) {
  std::lock_guard<std::mutex> lock(RegistryMutex());
  return Registry().emplace(name, std::move(factory)).second;
}

std::vector<std::string> Scheduler::Policies() {
  std::lock_guard<std::mutex> lock(RegistryMutex());
  std::vector<std::string> names;
  for (const auto& [name, f] : Registry()) names.push_back(name);
  return names;
}

Result<std::unique_ptr<Scheduler>> Scheduler::Create(const SchedulerConfig& config) {
  PolicyFactory factory;
  {
    std::lock_guard<std::mutex> lock(RegistryMutex());
    auto it = Registry().find(config.policy);
    if (it != Registry().end()) factory = it->second;
  }
  if (!factory) {
    std::string known;
    for (const auto& n : Policies()) known += (known.empty() ? "" : ", ") + n;
    return InvalidArgument("policy: unknown policy \"" + config.policy + "\" (known: " + known +
                           ")");
  }
  PolicyOptions options(config.options);
  auto policy = factory(options);
  if (!policy.ok()) return policy.status().WithContext("policy " + config.policy);
  RETURN_IF_ERROR(options.Check(config.policy));
  return std::unique_ptr<Scheduler>(
      new FrameworkScheduler(config.policy, std::move(policy).value(), config.seed));
}

}  // namespace berth::sched
