// The scheduling cycle every policy shares (see policy.h): the loop over
// pending jobs in key order, preemption (TryReclaim), elastic growth.
#include "sched/cycle.h"

#include <algorithm>
#include <map>
#include <numeric>

namespace berth::sched::internal {

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
    auto p = PlaceFor(r, lo, policy.NodeFilter(j, ctx));
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
      auto p = PlaceFor(r, 1, policy.NodeFilter(running[i], ctx));
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
    // (a job restricted to GPU models is in no class: its answers depend on them)
    if (classes && in.pending[i].gpu_models.empty() && policy.FailureClass(pending[i], ctx, &c))
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

}  // namespace berth::sched::internal
