// The scheduling cycle every policy shares (see policy.h) and the policy
// registry behind Scheduler::Create (the queue index and PolicyOptions are in
// policy_options.cc).
#include <algorithm>
#include <cstring>
#include <mutex>
#include <numeric>
#include <set>
#include <span>
#include <tuple>
#include <unordered_set>

#include "sched/policy.h"

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
};

Limits ComputeLimits(const ClusterSnapshot& cluster) {
  Limits l;
  for (const NodeState& n : cluster.nodes) {
    int healthy = 0;
    for (const GpuState& g : n.gpus) {
      if (!g.healthy) continue;
      ++healthy;
      if (g.memory == 0) l.gpu_memory_known = false;
      l.max_gpu_memory = std::max(l.max_gpu_memory, g.memory);
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

int MinTasks(const JobRequest& j) {
  return j.min_tasks > 0 ? std::min(j.min_tasks, j.tasks) : j.tasks;
}
int MaxTasks(const JobRequest& j) {
  return j.max_tasks > 0 ? std::max(j.max_tasks, j.tasks) : j.tasks;
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
  if (!l.memory_unscheduled && t.memory > l.max_node_memory) {
    return "each task needs " + std::to_string(t.memory) + " MiB memory; the largest node has " +
           std::to_string(l.max_node_memory);
  }
  return "";
}

// Whether NeverReason(job, l) is "" (a cheap check; NeverReason says why not).
bool MayEverRun(const JobRequest& job, const Limits& l) {
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

Combo MakeCombo(const std::pair<int64_t, int64_t>& cls, const JobRequest& r) {
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
    if (!empty.Place(job.task, MinTasks(job))) {
      return Unschedulable("no node combination fits: " +
                           empty.ExplainNoFit(job.task, MinTasks(job)));
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

 private:
  struct Cycle;
  Buffers buffers_;
  std::string name_;
  std::unique_ptr<Policy> policy_;
  Rng rng_;
};

// One cycle's working state.
struct FrameworkScheduler::Cycle {
  Buffers& buf;
  Policy& policy;
  const SchedulerInput& in;
  ClusterState& state;
  CycleContext& ctx;
  Decisions out;
  Limits limits;
  std::vector<JobView> running;
  std::vector<int> alive;               // tasks still held, per running job (placements[0..alive))
  std::vector<int> victim_order;        // running jobs, highest key (worst) first
  std::vector<MilliGpu> victim_prefix;  // GPU held by victim_order[0..i)
  // Positions of victim_order still worth visiting: a victim preempted by an
  // earlier reclaim of this cycle, not preemptible, or refused by the policy
  // for every job (Policy::VictimEligible) is skipped (union-find "next").
  std::vector<int> victim_next;
  std::vector<int> victim_pos;  // running job -> position in victim_order
  size_t NextVictim(size_t k) {
    size_t root = k;
    while (root < victim_next.size() && victim_next[root] != static_cast<int>(root))
      root = victim_next[root];
    while (k < victim_next.size() && victim_next[k] != static_cast<int>(k)) {
      size_t up = victim_next[k];
      victim_next[k] = static_cast<int>(root);
      k = up;
    }
    return root;
  }
  void DropVictim(int v) { victim_next[victim_pos[v]] = victim_pos[v] + 1; }
  std::vector<int> elastic_running;  // running jobs with tasks above their request
  ShapeMap<bool> failed_shapes;      // did not fit, no preemption since
  bool waiting_not_now = false;
  // Priority classes (sched/priority.h): the lowest class of a preemptible
  // running job (3: none), the highest of a pending job (-1: none), and
  // whether some pending job may preempt a running one by class.
  int min_running_class = 3;
  int max_pending_class = -1;
  bool class_preempt = false;
  bool mixed_precedence = false;  // pending jobs differ in class or priority

  Cycle(Buffers& b, Policy& p, const SchedulerInput& input, Rng& rng)
      : buf(b),
        policy(p),
        in(input),
        state(*b.state),
        ctx(b.ctx),
        limits(ComputeLimits(*input.cluster)) {
    ctx.now = input.now;
    ctx.input = &input;
    ctx.state = &state;
    ctx.rng = &rng;
    ctx.queues.Clear();
    ctx.pending_queue.clear();
    ctx.running_queue.clear();
    if (p.UsesQueues()) {
      ctx.pending_queue.resize(input.pending.size());
      for (size_t i = 0; i < input.pending.size(); ++i)
        ctx.pending_queue[i] = ctx.queues.Find(input.pending[i].queue);
      ctx.running_queue.resize(input.running.size());
      for (size_t i = 0; i < input.running.size(); ++i) {
        ctx.running_queue[i] = ctx.queues.Find(input.running[i].request.queue);
      }
    }
    ctx.queue_usage.assign(ctx.queues.size(), 0);
  }

  void Wait(const JobView& j, const Verdict& v) {
    if (!v.never) waiting_not_now = true;
    if (v.never || in.explain_waiting)
      out.waiting.push_back({j.req->id, v.never, Plugin(v.plugin), Keep(v.reason)});
  }
  // Waits refer to their texts, which out.texts holds (each once).
  TextRef Keep(const SharedText& text) {
    const auto& t = text.shared();
    if (!t) return TextRef();
    const std::string* p = t.get();
    // A direct-mapped cache of texts kept: a cycle's waits have few reasons.
    const std::string*& slot =
        kept_cache[(reinterpret_cast<uintptr_t>(p) >> 4) % kept_cache.size()];
    if (slot != p) {
      slot = p;
      if (kept.insert(p).second) out.texts.push_back(t);
    }
    return TextRef(p);
  }
  TextRef Plugin(const std::string& name) {
    if (last_plugin >= 0 && *out.texts[plugins[last_plugin].second] == name)
      return plugins[last_plugin].first;
    for (size_t i = 0; i < plugins.size(); ++i) {
      if (*out.texts[plugins[i].second] == name) {
        last_plugin = static_cast<int>(i);
        return plugins[i].first;
      }
    }
    out.texts.push_back(std::make_shared<const std::string>(name));
    plugins.push_back({TextRef(out.texts.back().get()), out.texts.size() - 1});
    last_plugin = static_cast<int>(plugins.size()) - 1;
    return plugins.back().first;
  }
  std::array<const std::string*, 64> kept_cache{};
  std::unordered_set<const std::string*> kept;
  std::vector<std::pair<TextRef, size_t>> plugins;  // and its place in out.texts
  int last_plugin = -1;

  void Release(int r, int from, int to) {  // gives back placements[from..to) of running job r
    const RunningJob& rj = *running[r].run;
    std::span<const TaskPlacement> ps(rj.placements.data() + from, rj.placements.data() + to);
    state.Give(ps, rj.request.task, &buf.run_nodes[buf.run_node_off[r] + from]);
    policy.Unreserve(rj.request, rj.request.task.gpus * (to - from), ctx);
  }
  bool Retake(int r, int from, int to) {
    const RunningJob& rj = *running[r].run;
    std::span<const TaskPlacement> ps(rj.placements.data() + from, rj.placements.data() + to);
    const int* nodes = &buf.run_nodes[buf.run_node_off[r] + from];
    if (!state.IsFree(ps, rj.request.task, nodes)) return false;
    state.Take(ps, rj.request.task, nodes);
    policy.Reserve(rj.request, rj.request.task.gpus * (to - from), ctx);
    return true;
  }

  // The preemption matrix (ClassPreemption), then the policy's word.
  bool MayPreempt(const JobView& j, const JobView& v, bool policy_preempts) const {
    switch (ClassPreemption(j.req->priority_class, v.req->priority_class)) {
      case ClassRule::kLowerClass:
        return policy.MayPreemptLowerClass(j, v, ctx);
      case ClassRule::kPolicy:
        return policy_preempts && policy.MayPreempt(j, v, ctx);
      case ClassRule::kNever:
        return false;
    }
    return false;
  }

  std::optional<std::vector<TaskPlacement>> TryPlace(const JobView& j, int hi, int lo) {
    const JobRequest& r = *j.req;
    auto shape = std::make_tuple(r.task.gpus * lo, r.task.gpus >= kWholeGpu ? lo : 1, r.task.cpu,
                                 r.task.memory);
    if (failed_shapes.Has(shape)) return std::nullopt;
    const auto* filter = policy.NodeFilter(j, ctx);
    for (int n = hi; n >= lo; --n) {
      if (!state.MayFit(r.task, n)) continue;
      auto p = state.Place(r.task, n, filter);
      if (p) return p;
    }
    if (!filter && r.task.gpus >= kWholeGpu) failed_shapes.Add(shape);
    return std::nullopt;
  }

  MilliGpu Borrowed() const {
    MilliGpu b = 0;
    for (int e : elastic_running) {
      int lo = MinTasks(*running[e].req);
      if (alive[e] > lo) b += running[e].req->task.gpus * (alive[e] - lo);
    }
    return b;
  }
  // How many of victim_order may be victims of j (all of them unless the
  // policy only preempts higher keys).
  size_t VictimBound(const JobView& j) const {
    if (!policy.KeyOrderedPreemption()) return victim_order.size();
    auto it = std::partition_point(victim_order.begin(), victim_order.end(),
                                   [&](int v) { return KeyLess(j.key, running[v].key); });
    return it - victim_order.begin();
  }

  std::optional<std::vector<TaskPlacement>> TryReclaim(const JobView& j);
  std::optional<std::vector<TaskPlacement>> TryReclaimCached(const JobView& j) {
    // With key-ordered preemption, later jobs (no better keys) of a shape
    // that failed fail too, until a reclaim succeeds and frees something.
    const JobRequest& r = *j.req;
    // (A later job of another class or priority may be allowed victims this
    // one was not: no cache then.)
    bool cacheable = policy.KeyOrderedPreemption() && !mixed_precedence;
    auto shape = std::make_tuple(r.task.gpus * MinTasks(r), MinTasks(r), r.task.cpu, r.task.memory);
    if (cacheable && failed_reclaims.Has(shape)) return std::nullopt;
    auto p = TryReclaim(j);
    if (p) {
      failed_reclaims.clear();
    } else if (cacheable) {
      failed_reclaims.Add(shape);
    }
    return p;
  }
  // ExplainNoFit, cached per shape while the state does not change.
  TextRef NoFitReason(const JobRequest& r) {
    auto shape = std::make_tuple(r.task.gpus, MinTasks(r), r.task.cpu, r.task.memory);
    if (TextRef* known = reasons.Find(shape)) return *known;
    return reasons.Add(shape, Keep(state.ExplainNoFit(r.task, MinTasks(r))));
  }
  ShapeMap<bool> failed_reclaims;
  ShapeMap<TextRef> reasons;
  // Counts the distinct reclaim shapes among pending jobs.
  class ShapeCounter {
   public:
    void Add(const JobRequest& p) {
      Shape s = std::make_tuple(p.task.gpus * MinTasks(p), MinTasks(p), p.task.cpu, p.task.memory);
      if (!many_.empty()) {
        many_.insert(s);
        return;
      }
      if (last_ < seen_.size() && seen_[last_] == s) return;
      auto it =
          std::find(seen_.begin(), seen_.end(), s);  // few shapes in practice: a scan beats a tree
      if (it != seen_.end()) {
        last_ = it - seen_.begin();
        return;
      }
      seen_.push_back(s);
      last_ = seen_.size() - 1;
      if (seen_.size() > 64) many_.insert(seen_.begin(), seen_.end());
    }
    size_t Count() const { return many_.empty() ? seen_.size() : many_.size(); }

   private:
    using Shape = std::tuple<MilliGpu, int, MilliCpu, MiB>;
    std::vector<Shape> seen_;
    std::set<Shape> many_;
    size_t last_ = 0;
  };
  // Failure classes that failed to place and to preempt since the last
  // placement: failed_gen[c] == gen (a placement clears them all by ++gen).
  uint32_t gen = 1;
  size_t failed_count = 0;
  size_t since_placed = 0;  // jobs visited since the last placement
  bool IsFailed(int c) const { return c >= 0 && buf.failed_gen[c] == gen; }
  void MarkFailed(int c) {
    if (buf.failed_gen[c] != gen) buf.failed_gen[c] = gen, ++failed_count;
  }
  void ClearFailed() {
    ++gen;
    failed_count = 0;
  }
  // Whether `j` and every job left in `rest` belong to a class and request
  // that failed since the last placement (so none of them can start).
  bool AllFailed(const HeapEntry& j, const std::vector<HeapEntry>& rest) const {
    if (!IsFailed(j.cls)) return false;
    for (const HeapEntry& e : rest) {
      if (!IsFailed(e.cls)) return false;
    }
    return true;
  }
  // A cycle that explains nothing, of a policy that does not preempt, on a
  // full cluster: no pending job can start (nor elastic job grow, as some wait).
  // (and no pending job of a class above a running one's).
  bool NothingCanStart() const {
    if (in.explain_waiting || in.pending.empty() || policy.Preempts() || !elastic_running.empty())
      return false;
    if (state.free_gpu() != 0) return false;
    for (const JobRequest& p : in.pending) {
      if (p.task.gpus == 0 || static_cast<int>(p.priority_class) > min_running_class) return false;
    }
    return true;
  }
  void Grow();
  Decisions Run();
};

std::optional<std::vector<TaskPlacement>> FrameworkScheduler::Cycle::TryReclaim(const JobView& j) {
  const JobRequest& r = *j.req;
  int lo = MinTasks(r);
  MilliGpu need = r.task.gpus * lo;
  const bool policy_preempts = policy.Preempts() && r.priority_class != PriorityClass::kScavenger &&
                               policy.MayPreemptAny(j, ctx);
  const bool can_preempt =
      policy_preempts || (class_preempt && static_cast<int>(r.priority_class) > min_running_class);
  MilliGpu borrowed = Borrowed();
  if (borrowed == 0 && !can_preempt) return std::nullopt;
  // Upper bound on what preemption could free, to give up early.
  size_t bound = can_preempt ? VictimBound(j) : 0;
  MilliGpu possible = state.free_gpu() + borrowed + (can_preempt ? victim_prefix[bound] : 0);
  if (possible < need) return std::nullopt;

  struct Unit {
    int job;
    int from, to;  // task range released
  };
  std::vector<Unit> released;
  std::vector<TaskPlacement> placed;
  bool ok = false;
  auto attempt = [&]() {
    if (!state.MayFit(r.task, lo)) return false;
    auto p = state.Place(r.task, lo, policy.NodeFilter(j, ctx));
    if (!p) return false;
    placed = std::move(*p);
    return true;
  };
  // 1. Borrowed elastic tasks, newest task first.
  for (int e : elastic_running) {
    int req = MinTasks(*running[e].req);
    while (!ok && alive[e] > req) {
      Release(e, alive[e] - 1, alive[e]);
      released.push_back({e, alive[e] - 1, alive[e]});
      --alive[e];
      ok = attempt();
    }
    if (ok) break;
  }
  // 2. Victims the policy allows, worst first: shrink elastic ones to their
  //    minimum, then preempt.
  if (!ok && can_preempt) {
    for (size_t k = NextVictim(0); k < bound && !ok; k = NextVictim(k + 1)) {
      int v = victim_order[k];
      if (alive[v] == 0 || !running[v].req->preemptible) continue;
      if (!MayPreempt(j, running[v], policy_preempts)) continue;
      int vmin = MinTasks(*running[v].req);
      while (!ok && alive[v] > vmin) {
        Release(v, alive[v] - 1, alive[v]);
        released.push_back({v, alive[v] - 1, alive[v]});
        --alive[v];
        ok = attempt();
      }
      if (ok) break;
      Release(v, 0, alive[v]);
      released.push_back({v, 0, alive[v]});
      alive[v] = 0;
      ok = attempt();
    }
  }
  if (!ok) {
    for (auto it = released.rbegin(); it != released.rend(); ++it) {
      Retake(it->job, it->from, it->to);
      alive[it->job] = it->to;
    }
    return std::nullopt;
  }
  // Spare every released unit whose GPUs the new job did not need, best
  // victims first; tasks stay a prefix of each job's placements.
  std::vector<std::pair<int, int>> original;  // (job, tasks it held), in release order
  for (const Unit& u : released) {
    bool seen = false;
    for (auto& o : original) {
      if (o.first == u.job) o.second = std::max(o.second, u.to), seen = true;
    }
    if (!seen) original.push_back({u.job, u.to});
  }
  std::vector<int> stopped;
  for (auto it = released.rbegin(); it != released.rend(); ++it) {
    bool stop = std::find(stopped.begin(), stopped.end(), it->job) != stopped.end();
    if (stop || alive[it->job] != it->from) {
      if (!stop) stopped.push_back(it->job);
      continue;
    }
    if (Retake(it->job, it->from, it->to)) {
      alive[it->job] = it->to;
    } else {
      stopped.push_back(it->job);
    }
  }
  std::sort(original.begin(), original.end());
  for (const auto& [v, had] : original) {
    if (alive[v] == had) continue;
    if (alive[v] == 0) {
      const PriorityClass vc = running[v].req->priority_class;
      if (ClassPreemption(r.priority_class, vc) == ClassRule::kLowerClass) {
        out.preemptions.push_back(
            {running[v].req->id,
             std::string("preempted by ") + model::PriorityClassName(r.priority_class) + " job " +
                 std::to_string(r.id) + " (priority class " + model::PriorityClassName(vc) + ")"});
      } else {
        out.preemptions.push_back({running[v].req->id, "preempted by " + policy.name() +
                                                           " for job " + std::to_string(r.id)});
      }
      if (!victim_next.empty()) DropVictim(v);
    }
  }
  failed_shapes.clear();
  return placed;
}

void FrameworkScheduler::Cycle::Grow() {
  // Idle GPUs and nobody waiting: elastic jobs grow toward their maximum,
  // best key first, one task at a time (round robin).
  std::vector<int> order;
  for (int i = 0; i < static_cast<int>(running.size()); ++i) {
    const JobRequest& r = *running[i].req;
    if (alive[i] == static_cast<int>(running[i].run->placements.size()) && alive[i] > 0 &&
        MaxTasks(r) > alive[i]) {
      order.push_back(i);
    }
  }
  if (order.empty()) return;
  std::sort(order.begin(), order.end(),
            [&](int a, int b) { return KeyLess(running[a].key, running[b].key); });
  std::map<int, std::vector<TaskPlacement>> extra;
  bool grew = true;
  while (grew) {
    grew = false;
    for (int i : order) {
      const JobRequest& r = *running[i].req;
      if (alive[i] + static_cast<int>(extra[i].size()) >= MaxTasks(r)) continue;
      if (!state.MayFit(r.task, 1) || !policy.MayGrow(r, r.task.gpus, ctx)) continue;
      auto p = state.Place(r.task, 1, policy.NodeFilter(running[i], ctx));
      if (!p) continue;
      policy.Reserve(r, r.task.gpus, ctx);
      extra[i].push_back((*p)[0]);
      grew = true;
    }
  }
  for (auto& [i, ps] : extra) {
    if (ps.empty()) continue;
    Resize rz{running[i].req->id, running[i].run->placements};
    rz.placements.insert(rz.placements.end(), ps.begin(), ps.end());
    out.resizes.push_back(std::move(rz));
  }
}

Decisions FrameworkScheduler::Cycle::Run() {
  const int nr = static_cast<int>(in.running.size());
  running.resize(nr);
  alive.resize(nr);
  buf.run_node_off.resize(nr + 1);
  buf.run_nodes.clear();
  for (int i = 0; i < nr; ++i) {
    buf.run_node_off[i] = static_cast<int>(buf.run_nodes.size());
    for (const TaskPlacement& p : in.running[i].placements)
      buf.run_nodes.push_back(state.NodeIndex(p.node));
  }
  buf.run_node_off[nr] = static_cast<int>(buf.run_nodes.size());
  for (int i = 0; i < nr; ++i) {
    const RunningJob& rj = in.running[i];
    running[i].req = &rj.request;
    running[i].run = &rj;
    running[i].order = i;
    alive[i] = static_cast<int>(rj.placements.size());
    state.Take(rj.placements, rj.request.task, &buf.run_nodes[buf.run_node_off[i]]);
    if (!ctx.running_queue.empty())
      ctx.queue_usage[ctx.running_queue[i]] += rj.request.task.gpus * alive[i];
    if (alive[i] > MinTasks(rj.request)) elastic_running.push_back(i);
    if (rj.request.preemptible)
      min_running_class = std::min(min_running_class, static_cast<int>(rj.request.priority_class));
  }
  policy.BeginCycle(ctx);
  if (NothingCanStart()) {
    // What the loop below would find at its first job: no free GPU, no job
    // without GPUs, nothing borrowed and no preemption. Skip keys and order.
    out.recheck_at = policy.RecheckAt(ctx);
    return std::move(out);
  }
  for (int i = 0; i < nr; ++i) running[i].key = policy.Key(*running[i].req, true, ctx);
  std::vector<JobView>& pending = buf.pending;
  pending.resize(in.pending.size());
  int cpu_only = 0;
  const bool key_ordered = policy.Preempts() && policy.KeyOrderedPreemption();
  // Distinct request shapes among pending jobs: once every shape has failed
  // both placement and preemption, no later job can start.
  ShapeCounter shape_counter;
  const bool count_shapes = key_ordered && !in.explain_waiting;
  // Each job's failure class and request, interned once a cycle, rides in
  // its heap entry: a visit checks it without reading the job.
  // (A quiet cycle of a key-ordered policy stops once every request shape
  // failed to reclaim, usually long before classes repay their interning.)
  const bool classes = policy.UsesFailureClasses() && (in.explain_waiting || !key_ordered);
  buf.classes.Clear();
  // A heap rather than a sort: most cycles stop long before the last job.
  std::vector<HeapEntry>& order = buf.heap;
  order.clear();
  order.reserve(pending.size());
  const int first_class = in.pending.empty() ? 0 : static_cast<int>(in.pending[0].priority_class);
  const int64_t first_priority = in.pending.empty() ? 0 : in.pending[0].priority;
  for (size_t i = 0; i < in.pending.size(); ++i) {
    cpu_only += in.pending[i].task.gpus == 0 ? 1 : 0;
    if (count_shapes) shape_counter.Add(in.pending[i]);
    pending[i].req = &in.pending[i];
    pending[i].run = nullptr;
    pending[i].order = static_cast<int>(i);
    // Jobs left out of this cycle are never visited: no key needed.
    pending[i].may_start = in.explain_waiting || policy.MayStartThisCycle(i, ctx);
    pending[i].key = pending[i].may_start ? policy.Key(in.pending[i], false, ctx) : PriorityKey{};
    const int cls = static_cast<int>(in.pending[i].priority_class);
    max_pending_class = std::max(max_pending_class, cls);
    mixed_precedence |= (cls != first_class) | (in.pending[i].priority != first_priority);
  }
  class_preempt = max_pending_class > min_running_class;
  if (policy.Preempts() || class_preempt) {
    victim_order.resize(nr);
    std::iota(victim_order.begin(), victim_order.end(), 0);
    std::sort(victim_order.begin(), victim_order.end(), [&](int a, int b) {
      if (KeyLess(running[a].key, running[b].key) || KeyLess(running[b].key, running[a].key)) {
        return KeyLess(running[b].key, running[a].key);
      }
      return running[a].run->start_time > running[b].run->start_time;  // least work lost first
    });
    victim_next.resize(nr + 1);
    victim_pos.resize(nr);
    for (int k = 0; k < nr; ++k) {
      int v = victim_order[k];
      victim_pos[v] = k;
      // (A victim of a class some pending job outranks is kept for the
      // matrix; one no pending job outranks only for the policy's own rule.)
      const int vc = static_cast<int>(running[v].req->priority_class);
      const bool by_class = class_preempt && vc < max_pending_class;
      bool skip = !running[v].req->preemptible ||
                  (!by_class && (!policy.Preempts() || !policy.VictimEligible(running[v], ctx)));
      victim_next[k] = skip ? k + 1 : k;
    }
    victim_next[nr] = nr;
    victim_prefix.assign(nr + 1, 0);
    for (int k = 0; k < nr; ++k) {
      victim_prefix[k + 1] =
          victim_prefix[k] +
          running[victim_order[k]].req->task.gpus *
              static_cast<MilliGpu>(running[victim_order[k]].run->placements.size());
    }
  }
  // (A separate pass: the key pass above stays tight for the policies without classes.)
  for (size_t i = 0; i < pending.size(); ++i) {
    if (!pending[i].may_start) {
      waiting_not_now = true;
      continue;
    }
    int cls = -1;
    std::pair<int64_t, int64_t> c;
    if (classes && policy.FailureClass(pending[i], ctx, &c))
      cls = buf.classes.Find(MakeCombo(c, in.pending[i]));
    order.push_back({pending[i].key, static_cast<int>(i), cls});
  }
  buf.failed_gen.assign(buf.classes.size(), 0);
  buf.class_reason.assign(buf.classes.size(), TextRef());
  buf.class_reason_gen.assign(buf.classes.size(), 0);
  auto worse = [](const HeapEntry& a, const HeapEntry& b) { return Worse(a, b); };
  // Pending jobs often come best first already (arrival order under an
  // arrival-order key): then reversing them is all the sorting needed.
  bool sorted = std::is_sorted(order.rbegin(), order.rend(), worse);
  if (sorted) {
    std::reverse(order.begin(), order.end());
  } else if ((buf.visit_most || in.explain_waiting) && order.size() > 1024) {
    // (a cycle that explains every wait visits every job)
    SortWorstFirst(order, buf.scratch, buf.sort_ids);
    sorted = true;
  } else {
    std::make_heap(order.begin(), order.end(), worse);
  }
  size_t popped = 0;
  constexpr size_t kPrefetch = 12;
  const size_t heap_size = order.size();
  const size_t shapes = count_shapes ? shape_counter.Count() : 0;

  if (in.explain_waiting) out.waiting.reserve(order.size());
  std::optional<Verdict> blocked;
  TextRef blocked_plugin, blocked_reason;
  const TextRef gang = in.explain_waiting ? Plugin("gang") : TextRef();
  while (!order.empty()) {
    // A cycle that goes on past an eighth of the heap will likely visit
    // most of it: sorting what is left (worst first) is then cheaper than
    // popping it. The order is the same (the keys and positions are a total order).
    if (!sorted && ++popped > heap_size / 8 && order.size() > 1024) {
      SortWorstFirst(order, buf.scratch, buf.sort_ids);
      sorted = true;
    }
    if (!sorted) {
      std::pop_heap(order.begin(), order.end(), worse);
    } else if (order.size() > kPrefetch) {
      // Jobs are visited in key order, scattered in memory: fetch ahead
      // (unless its class has failed: then the visit reads nothing of it).
      const HeapEntry& ahead = order[order.size() - 1 - kPrefetch];
      if (!IsFailed(ahead.cls) || in.explain_waiting) {
        int next = ahead.order;
        __builtin_prefetch(&pending[next]);
        // The fields a visit reads (priority to the task shape), not the whole request.
        __builtin_prefetch(&in.pending[next].priority);
        __builtin_prefetch(&in.pending[next].min_tasks);
        if (in.explain_waiting) __builtin_prefetch(&in.pending[next].id);  // a wait names the job
      }
    }
    const HeapEntry top = order.back();
    const JobView& j =
        pending[top.order];  // (read only where needed: a skipped visit reads nothing of it)
    order.pop_back();
    if (!in.explain_waiting) {
      // Nothing later can start: stop (the caller asked for no explanations).
      // (Saturated speaks for the policy's admission and preemption, not the class matrix's.)
      bool stop = blocked || (!class_preempt && policy.Saturated(ctx) && Borrowed() == 0);
      if (!stop && state.free_gpu() == 0 && cpu_only == 0 && Borrowed() == 0) {
        stop = (!policy.Preempts() && !class_preempt) || (key_ordered && VictimBound(j) == 0);
      }
      if (!stop && key_ordered && shapes > 0 && failed_reclaims.size() >= shapes && Borrowed() == 0)
        stop = true;
      // Every job left failed, by its class and request, since the last
      // placement (checked every 2,048 jobs visited without a placement).
      if (!stop && failed_count > 0 && ++since_placed % 2048 == 0 && AllFailed(top, order))
        stop = true;
      if (stop) {
        waiting_not_now = true;
        break;
      }
    }
    if (IsFailed(top.cls) && !blocked) {
      // A job of the class and request of one that failed to place and to
      // preempt since the last placement: by Policy::FailureClass' promise
      // it may ever run (MayEverRun reads only the request), Admit lets it
      // through, placement and preemption fail, and OnNoFit blocks nothing
      // (or `blocked` would be set).
      waiting_not_now = true;
      if (in.explain_waiting) {
        const JobRequest& failed = in.pending[top.order];
        if (buf.class_reason_gen[top.cls] !=
            gen) {  // the class's reason, kept until the next placement
          buf.class_reason[top.cls] = NoFitReason(failed);
          buf.class_reason_gen[top.cls] = gen;
        }
        out.waiting.push_back({failed.id, false, gang, buf.class_reason[top.cls]});
      }
      continue;
    }
    const JobRequest& r = *j.req;
    if (!MayEverRun(r, limits)) {
      Wait(j, {"feasibility", NeverReason(r, limits), true});
      continue;
    }
    if (blocked) {
      waiting_not_now = true;
      if (in.explain_waiting) out.waiting.push_back({r.id, false, blocked_plugin, blocked_reason});
      continue;
    }
    if (auto v = policy.Admit(j, ctx)) {
      Wait(j, *v);
      continue;
    }
    {  // (a job whose class failed was skipped above)
      auto placed = TryPlace(j, r.tasks, MinTasks(r));
      if (!placed) placed = TryReclaimCached(j);
      if (placed) {
        policy.Reserve(r, r.task.gpus * static_cast<MilliGpu>(placed->size()), ctx);
        out.binds.push_back({r.id, std::move(*placed)});
        reasons.clear();
        ClearFailed();
        since_placed = 0;
        continue;
      }
      if (top.cls >= 0) MarkFailed(top.cls);
    }
    if (auto v = policy.OnNoFit(j, ctx)) {
      blocked = Verdict{v->plugin, v->reason, false};
      if (in.explain_waiting) blocked_plugin = Plugin(v->plugin), blocked_reason = Keep(v->reason);
    }
    waiting_not_now = true;
    if (in.explain_waiting) out.waiting.push_back({r.id, false, gang, NoFitReason(r)});
  }
  buf.visit_most = heap_size > 1024 && order.size() < heap_size / 2;
  // Shrinks: running jobs that lost some (not all) tasks.
  for (int i = 0; i < nr; ++i) {
    int had = static_cast<int>(in.running[i].placements.size());
    if (alive[i] > 0 && alive[i] < had) {
      out.resizes.push_back(
          {in.running[i].request.id,
           std::vector<TaskPlacement>(in.running[i].placements.begin(),
                                      in.running[i].placements.begin() + alive[i])});
    }
  }
  if (!waiting_not_now) Grow();
  out.recheck_at = policy.RecheckAt(ctx);
  return std::move(out);
}

Decisions FrameworkScheduler::Schedule(const SchedulerInput& input) {
  if (input.cluster == nullptr) return {};
  if (!buffers_.state || !buffers_.state->Reset(*input.cluster))
    buffers_.state.emplace(*input.cluster);
  Cycle cycle(buffers_, *policy_, input, rng_);
  return cycle.Run();
}

}  // namespace

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
