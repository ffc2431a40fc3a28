// One scheduling cycle's working state (internal to the scheduler core):
// the framework's loop over pending jobs, placement, preemption and the
// explanations of every wait. The loop itself (Run) is in cycle.cc.
#pragma once

#include <algorithm>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <unordered_set>
#include <vector>

#include "sched/framework_internal.h"

namespace berth::sched::internal {

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
      auto p = PlaceFor(r, n, filter);
      if (p) return p;
    }
    if (!filter && r.gpu_models.empty() && r.task.gpus >= kWholeGpu) failed_shapes.Add(shape);
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
      if (r.gpu_models.empty()) failed_reclaims.Add(shape);
    }
    return p;
  }
  // ExplainNoFit, cached per shape while the state does not change.
  // Place, on the GPUs of the models the job allows only.
  std::optional<std::vector<TaskPlacement>> PlaceFor(const JobRequest& r, int tasks,
                                                     const std::function<bool(int)>* filter) {
    if (r.gpu_models.empty() || r.task.gpus == 0) return state.Place(r.task, tasks, filter);
    HideOtherModels(state, *in.cluster, r, &hidden);
    auto p = state.Place(r.task, tasks, filter);
    state.Unhide(&hidden);
    return p;
  }
  std::vector<ClusterState::Hidden> hidden;
  TextRef NoFitReason(const JobRequest& r) {
    if (!r.gpu_models.empty() && r.task.gpus > 0) {
      // (not cached: the reason depends on the models)
      std::string models;
      for (const auto& m : r.gpu_models) models += (models.empty() ? "" : ", ") + m;
      HideOtherModels(state, *in.cluster, r, &hidden);
      std::string why = state.ExplainNoFit(r.task, MinTasks(r));
      state.Unhide(&hidden);
      return Keep(SharedText("on GPUs of model " + models + ": " + why));
    }
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

}  // namespace berth::sched::internal
