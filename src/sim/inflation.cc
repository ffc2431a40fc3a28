#include "sim/inflation.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <ctime>
#include <map>
#include <unordered_map>

#include "common/random.h"
#include "sched/fragmentation.h"

namespace berth::sim {

using sched::FragNode;
using sched::FragTask;
using sched::WeightedTask;

Result<Packing> ParsePacking(const std::string& name) {
  if (name == "bestfit") return Packing::kBestFit;
  if (name == "fgd") return Packing::kFgd;
  if (name == "berth") return Packing::kBerth;
  return InvalidArgument("packing: unknown \"" + name + "\" (known: bestfit, fgd, berth)");
}

const char* PackingName(Packing p) {
  switch (p) {
    case Packing::kBestFit:
      return "bestfit";
    case Packing::kFgd:
      return "fgd";
    case Packing::kBerth:
      return "berth";
  }
  return "?";
}

namespace {

constexpr uint64_t kNoModel = uint64_t{1} << 63;  // a model no node has

double ThreadCpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

// A node's kind: what it has in all (nodes of one kind in one state score alike).
struct Kind {
  MilliCpu cpu = 0;
  MiB memory = 0;
  int gpus = 0;
  int model = -1;
  auto Tie() const { return std::tie(cpu, memory, gpus, model); }
  bool operator<(const Kind& o) const { return Tie() < o.Tie(); }
};

// Node states up to GPU order (free shares sorted, largest first), interned.
class States {
 public:
  int Intern(int kind, const FragNode& n) {
    key_.clear();
    auto put = [&](int64_t v) { key_.append(reinterpret_cast<const char*>(&v), sizeof v); };
    put(kind);
    put(n.cpu_free);
    put(n.mem_free);
    sorted_ = n.free;
    std::sort(sorted_.begin(), sorted_.end(), std::greater<>());
    for (MilliGpu f : sorted_) put(f);
    auto [it, added] = ids_.emplace(key_, static_cast<int>(nodes_.size()));
    if (added) {
      FragNode s = n;
      s.free = sorted_;
      nodes_.push_back(std::move(s));
      kinds_.push_back(kind);
    }
    return it->second;
  }
  const FragNode& node(int id) const { return nodes_[id]; }
  int kind(int id) const { return kinds_[id]; }
  int size() const { return static_cast<int>(nodes_.size()); }

 private:
  std::unordered_map<std::string, int> ids_;
  std::vector<FragNode> nodes_;
  std::vector<int> kinds_;
  std::string key_;
  std::vector<MilliGpu> sorted_;
};

struct Eval {
  bool ok = false;
  int64_t frag_delta = 0;  // fgd, berth
  double fit = 0;          // best-fit: free GPU and CPU left, each over the node's total
  MilliGpu level = 0;      // a fraction: the free share of the GPU it goes on
  int64_t score = 0;       // fgd, berth: the artifact's node score (higher is better)
};

class Inflation {
 public:
  Inflation(const std::vector<PackNode>& nodes, const std::vector<PackTask>& tasks,
            const InflationOptions& o)
      : o_(o), tasks_(tasks), learned_(o.learn_window) {
    std::map<std::string, int> models;
    for (const PackNode& n : nodes) {
      if (n.gpus > 0) models.emplace(n.model, 0);
    }
    int next = 0;
    for (auto& [name, id] : models) id = next++;
    std::map<Kind, int> kinds;
    for (const PackNode& n : nodes) {
      FragNode f;
      f.free.assign(n.gpus, kWholeGpu);
      f.cpu_free = n.cpu;
      f.mem_free = n.memory;
      f.model = n.gpus > 0 && next <= 62 ? models[n.model] : -1;
      Kind k{n.cpu, n.memory, n.gpus, f.model};
      int kind = kinds.emplace(k, static_cast<int>(kinds_.size())).first->second;
      if (kind == static_cast<int>(kinds_.size())) kinds_.push_back(k);
      node_kind_.push_back(kind);
      capacity_ += static_cast<MilliGpu>(n.gpus) * kWholeGpu;
      nodes_.push_back(std::move(f));
    }
    for (const PackTask& t : tasks) {
      FragTask f;
      f.gpus = t.gpus;
      f.milli = t.gpus > 0 ? t.milli : 0;
      f.cpu = t.cpu;
      f.memory = t.memory;
      for (const std::string& m : t.models) {
        auto it = models.find(m);
        if (it != models.end()) f.models |= uint64_t{1} << it->second;
      }
      if (!t.models.empty() && f.models == 0) f.models = kNoModel;
      frag_tasks_.push_back(f);
    }
    // The whole list's population (fgd), by CPU and GPU shape: memory
    // left out, as the artifact does.
    std::map<FragTask, int64_t> counts;
    for (FragTask f : frag_tasks_) {
      f.memory = 0;
      ++counts[f];
    }
    for (const auto& [t, n] : counts) list_population_.push_back({t, n});
    population_weight_ = static_cast<int64_t>(frag_tasks_.size());
    Rng rng(o.seed);
    rank_.resize(nodes_.size());
    for (size_t i = 0; i < rank_.size(); ++i) rank_[i] = static_cast<int>(i);
    std::shuffle(rank_.begin(), rank_.end(), rng);
    order_rng_.seed(o.seed);
    for (size_t i = 0; i < nodes_.size(); ++i)
      node_state_.push_back(states_.Intern(node_kind_[i], nodes_[i]));
  }

  InflationResult Run() {
    InflationResult r;
    r.capacity = capacity_;
    std::vector<int> order(tasks_.size());
    size_t at = order.size();
    MilliGpu arrived = 0, allocated = 0;
    int next_pct = 1;
    const double limit = o_.until * static_cast<double>(capacity_);
    double cpu_s = 0;
    population_ = o_.packing == Packing::kFgd ? std::span<const WeightedTask>(list_population_)
                                              : std::span<const WeightedTask>();
    while (static_cast<double>(arrived) < limit) {
      if (at == order.size()) {  // a new pass over the list, shuffled again
        for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int>(i);
        std::shuffle(order.begin(), order.end(), order_rng_);
        at = 0;
      }
      const FragTask& t = frag_tasks_[order[at++]];
      const MilliGpu want = static_cast<MilliGpu>(t.gpus) * t.milli;
      double c0 = ThreadCpuSeconds();
      if (o_.packing == Packing::kBerth) Learn(t);
      bool placed = Place(t);
      cpu_s += ThreadCpuSeconds() - c0;
      ++r.tasks;
      if (placed) {
        allocated += want;
      } else {
        ++r.failed;
      }
      arrived += want;
      while (next_pct * capacity_ <= arrived * 100 && next_pct <= 1000) {
        InflationPoint p;
        p.arrived_pct = next_pct++;
        p.allocated_pct = 100.0 * static_cast<double>(allocated) / static_cast<double>(capacity_);
        p.unallocated_gpus = static_cast<double>(capacity_ - allocated) / kWholeGpu;
        r.curve.push_back(p);
      }
    }
    r.cpu_us_per_task = r.tasks > 0 ? cpu_s * 1e6 / static_cast<double>(r.tasks) : 0;
    // What the nodes hold adds up exactly to what was allocated, no GPU,
    // CPU or memory below zero.
    MilliGpu held = 0;
    for (const FragNode& n : nodes_) {
      if (n.cpu_free < 0 || n.mem_free < 0) r.exact = false;
      for (MilliGpu f : n.free) {
        if (f < 0 || f > kWholeGpu) r.exact = false;
        held += kWholeGpu - f;
      }
    }
    if (held != allocated) r.exact = false;
    r.allocated = allocated;
    return r;
  }

 private:
  void Learn(const FragTask& t) {
    FragTask f = t;
    f.memory = 0;
    learned_.Add(f);
    if (++since_learned_ >= o_.learn_every || population_.empty()) {
      since_learned_ = 0;
      snapshot_.assign(learned_.Get().begin(), learned_.Get().end());
      population_weight_ = static_cast<int64_t>(learned_.size());
      population_ = snapshot_;
      ++population_version_;
    }
  }

  int64_t Frag(int sid) {
    if (static_cast<int>(frag_.size()) <= sid) {
      frag_.resize(sid + 1, 0);
      frag_version_.resize(sid + 1, 0);
    }
    if (frag_version_[sid] != population_version_ + 1) {
      frag_[sid] = sched::Fragmentation(states_.node(sid), population_);
      frag_version_[sid] = population_version_ + 1;
    }
    return frag_[sid];
  }

  Eval Evaluate(int sid, const FragTask& t) {
    Eval e;
    const FragNode s = states_.node(sid);  // (a copy: Intern below may move the states)
    if (!sched::FragFits(s, t)) return e;
    e.ok = true;
    const Kind& k = kinds_[states_.kind(sid)];
    MilliGpu free_total = 0;
    for (MilliGpu f : s.free) free_total += f;
    const MilliGpu want = static_cast<MilliGpu>(t.gpus) * t.milli;
    e.fit = (k.gpus > 0 ? static_cast<double>(free_total - want) / (k.gpus * kWholeGpu) : 0) +
            (k.cpu > 0 ? static_cast<double>(s.cpu_free - t.cpu) / static_cast<double>(k.cpu) : 0);
    // The fullest GPU a fraction fits on (best fit's choice).
    MilliGpu fullest = 0;
    if (t.gpus == 1 && t.milli < kWholeGpu) {
      fullest = kWholeGpu + 1;
      for (MilliGpu f : s.free) {
        if (f >= t.milli && f < fullest) fullest = f;
      }
    }
    e.level = fullest;
    if (o_.packing == Packing::kBestFit) return e;
    const int64_t before = Frag(sid);
    FragNode after = s;
    after.cpu_free -= t.cpu;
    after.mem_free -= t.memory;
    if (t.gpus == 0) {
      e.frag_delta = Frag(states_.Intern(states_.kind(sid), after)) - before;
      e.score = ArtifactScore(e.frag_delta);
      return e;
    }
    if (t.milli >= kWholeGpu) {
      int left = t.gpus;
      for (MilliGpu& f : after.free) {
        if (left > 0 && f >= kWholeGpu) f = 0, --left;
      }
      e.frag_delta = Frag(states_.Intern(states_.kind(sid), after)) - before;
      e.score = ArtifactScore(e.frag_delta);
      return e;
    }
    // A fraction: each distinct free share it fits on; the least growth,
    // then the fullest GPU.
    bool first = true;
    for (size_t g = 0; g < s.free.size(); ++g) {
      MilliGpu f = s.free[g];
      if (f < t.milli || (g > 0 && s.free[g - 1] == f)) continue;
      after.free[g] = f - t.milli;
      int64_t d = Frag(states_.Intern(states_.kind(sid), after)) - before;
      after.free[g] = f;
      if (o_.packing == Packing::kFgd) {
        // The artifact: the highest score, the first GPU (by index) on ties.
        // (Free shares are sorted here, so "first" is the largest share.)
        int64_t sc = ArtifactScore(d);
        if (first || sc > e.score) e.score = sc, e.frag_delta = d, e.level = f, first = false;
        continue;
      }
      if (first || d < e.frag_delta || (d == e.frag_delta && f < e.level)) {
        e.frag_delta = d;
        e.level = f;
        first = false;
      }
    }
    e.score = ArtifactScore(e.frag_delta);
    return e;
  }

  // The artifact's score for a growth of the expected fragmentation: the
  // growth in GPUs (weights as shares of the population) through a sigmoid,
  // times 100, truncated to an integer (kube-scheduler's score range). The
  // truncation makes many nodes tie.
  int64_t ArtifactScore(int64_t frag_delta) const {
    double gpus = static_cast<double>(frag_delta) / static_cast<double>(population_weight_) /
                  static_cast<double>(kWholeGpu);
    return static_cast<int64_t>(100.0 / (1.0 + std::exp(gpus)));
  }

  // Whether a is better than b (both ok).
  bool Better(const Eval& a, int rank_a, const Eval& b, int rank_b) const {
    switch (o_.packing) {
      case Packing::kBestFit:
        if (a.fit != b.fit) return a.fit < b.fit;
        break;
      case Packing::kFgd:
        if (a.score != b.score) return a.score > b.score;
        break;
      case Packing::kBerth:
        if (a.score != b.score) return a.score > b.score;
        break;
    }
    return rank_a < rank_b;
  }

  bool Place(const FragTask& t) {
    ++gen_;
    int best = -1;
    Eval best_eval;
    for (size_t n = 0; n < nodes_.size(); ++n) {
      int sid = node_state_[n];
      if (static_cast<int>(eval_gen_.size()) <= sid) {
        eval_gen_.resize(states_.size() + 1, 0);
        evals_.resize(states_.size() + 1);
      }
      if (eval_gen_[sid] != gen_) {
        Eval e = Evaluate(sid, t);  // (may intern states: no reference into evals_ across it)
        if (static_cast<int>(eval_gen_.size()) <= sid) {
          eval_gen_.resize(sid + 1, 0);
          evals_.resize(sid + 1);
        }
        evals_[sid] = e;
        eval_gen_[sid] = gen_;
      }
      const Eval& e = evals_[sid];
      if (!e.ok) continue;
      if (best < 0 || Better(e, rank_[n], best_eval, rank_[best])) {
        best = static_cast<int>(n);
        best_eval = e;
      }
    }
    if (best < 0) return false;
    FragNode& node = nodes_[best];
    node.cpu_free -= t.cpu;
    node.mem_free -= t.memory;
    if (t.gpus > 0 && t.milli >= kWholeGpu) {
      for (int g : sched::WholeGpus(node, t.gpus)) node.free[g] = 0;
    } else if (t.gpus == 1) {
      for (MilliGpu& f : node.free) {
        if (f == best_eval.level) {
          f -= t.milli;
          break;
        }
      }
    }
    node_state_[best] = states_.Intern(node_kind_[best], node);
    return true;
  }

  InflationOptions o_;
  const std::vector<PackTask>& tasks_;
  std::vector<FragTask> frag_tasks_;
  std::vector<WeightedTask> list_population_;
  sched::TaskPopulation learned_;
  std::vector<WeightedTask> snapshot_;
  std::span<const WeightedTask> population_;
  uint64_t population_version_ = 0;
  int64_t population_weight_ = 1;  // the population's total weight (fgd)
  size_t since_learned_ = 0;
  std::vector<Kind> kinds_;
  std::vector<FragNode> nodes_;
  std::vector<int> node_kind_, node_state_, rank_;
  States states_;
  std::vector<int64_t> frag_;
  std::vector<uint64_t> frag_version_;
  std::vector<uint32_t> eval_gen_;
  std::vector<Eval> evals_;
  uint32_t gen_ = 0;
  MilliGpu capacity_ = 0;
  Rng order_rng_;
};

}  // namespace

Result<InflationResult> RunInflation(const std::vector<PackNode>& nodes,
                                     const std::vector<PackTask>& tasks,
                                     const InflationOptions& options) {
  if (nodes.empty()) return InvalidArgument("inflation: no nodes");
  if (tasks.empty()) return InvalidArgument("inflation: no tasks");
  if (!(options.until > 0 && options.until <= 10))
    return InvalidArgument("inflation: until must be in (0, 10], got " +
                           std::to_string(options.until));
  if (options.learn_window == 0 || options.learn_every == 0)
    return InvalidArgument("inflation: learn window and refresh must be >= 1");
  MilliGpu capacity = 0, want = 0;
  for (const PackNode& n : nodes) capacity += static_cast<MilliGpu>(n.gpus) * kWholeGpu;
  for (const PackTask& t : tasks) want += static_cast<MilliGpu>(t.gpus) * t.milli;
  if (capacity == 0) return InvalidArgument("inflation: the nodes have no GPU");
  if (want == 0) return InvalidArgument("inflation: no task asks for a GPU");
  std::map<std::string, int> models;
  for (const PackNode& n : nodes) models[n.model] = 1;
  if (models.size() > 62) return InvalidArgument("inflation: more than 62 GPU models");
  Inflation run(nodes, tasks, options);
  return run.Run();
}

}  // namespace berth::sim
