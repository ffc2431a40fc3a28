#include "tune/asha.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "tune/sample.h"
#include "tune/util.h"

namespace berth::tune {

Result<std::unique_ptr<Suggester>> Asha::Make(const Settings& settings, const SearchSpace& space) {
  SettingsReader r(settings, "asha");
  bool has_max = r.Has("max_length");
  ASSIGN_OR_RETURN(double max_length, r.Double("max_length", 0, 0, 1e12, /*open_lo=*/true));
  ASSIGN_OR_RETURN(int64_t divisor, r.Int("divisor", 4, 2, 100));
  ASSIGN_OR_RETURN(std::string mode,
                   r.Choice("mode", "standard", {"aggressive", "standard", "conservative"}));
  ASSIGN_OR_RETURN(int64_t max_rungs, r.Int("max_rungs", 5, 1, 50));
  std::string resource = r.Text("resource_name", "");
  RETURN_IF_ERROR(r.Finish());
  if (!has_max) return r.Missing("max_length");
  RETURN_IF_ERROR(CheckResource(space, "algorithm.algorithmSettings.resource_name", resource));
  int rungs = 1 + static_cast<int>(std::floor(std::log(max_length) / std::log(divisor) + 1e-9));
  rungs = std::clamp(rungs, 1, static_cast<int>(max_rungs));
  std::vector<double> budgets(rungs);
  for (int k = 0; k < rungs; ++k) budgets[k] = max_length / std::pow(divisor, rungs - 1 - k);
  int brackets = mode == "aggressive" ? 1 : mode == "standard" ? (rungs + 1) / 2 : rungs;
  return std::unique_ptr<Suggester>(new Asha(space, std::move(budgets), std::max(brackets, 1),
                                             static_cast<int>(divisor), std::move(resource)));
}

Result<Suggestions> Asha::Suggest(const History& history, int count, uint64_t seed) {
  Rng rng = CallRng(seed, history, 0xa5);
  int rungs = static_cast<int>(budgets_.size());
  // (bracket, rung) -> ended trials with a value, as (loss, index)
  std::map<std::pair<int64_t, int64_t>, std::vector<std::pair<double, size_t>>> ended;
  std::set<int64_t> promoted;
  int64_t starts = 0;  // trials started at their bracket's first rung
  for (size_t i = 0; i < history.trials.size(); ++i) {
    const Trial& t = history.trials[i];
    int64_t b = LabelInt(t, "asha.bracket", -1), k = LabelInt(t, "asha.rung", -1);
    if (b < 0 || k < 0) continue;
    int64_t parent = LabelInt(t, "asha.parent", -1);
    if (parent >= 0) {
      promoted.insert(parent);
    } else {
      ++starts;
    }
    bool has_value =
        t.objective && (t.state == TrialState::kSucceeded || t.state == TrialState::kEarlyStopped);
    if (has_value) ended[{b, k}].push_back({Loss(history.goal, *t.objective), i});
  }
  Suggestions out;
  auto add = [&](int64_t b, int k, Assignment params, int64_t parent) {
    Suggestion s;
    s.params = std::move(params);
    SetBudget(space_, resource_, budgets_[k], &s.params);
    s.labels["asha.bracket"] = std::to_string(b);
    s.labels["asha.rung"] = std::to_string(k);
    s.labels["asha.budget"] = BudgetText(budgets_[k]);
    if (parent >= 0) s.labels["asha.parent"] = std::to_string(parent);
    out.trials.push_back(std::move(s));
  };
  for (auto& [key, v] : ended) std::stable_sort(v.begin(), v.end());
  while (static_cast<int>(out.trials.size()) < count) {
    // The highest rung with a promotable trial first, over every bracket.
    bool done = false;
    for (int k = rungs - 2; k >= 0 && !done; --k) {
      for (int64_t b = 0; b < brackets_ && !done; ++b) {
        auto it = ended.find({b, k});
        if (it == ended.end()) continue;
        size_t top = it->second.size() / divisor_;
        for (size_t j = 0; j < top; ++j) {
          const Trial& t = history.trials[it->second[j].second];
          if (promoted.count(t.id)) continue;
          add(b, k + 1, t.params, t.id);
          promoted.insert(t.id);
          done = true;
          break;
        }
      }
    }
    if (done) continue;
    int64_t b = starts % brackets_;
    ++starts;
    Assignment a;
    for (const Param& p : space_.params) a[p.name] = SampleValue(p, rng);
    add(b, std::min<int>(static_cast<int>(b), rungs - 1), std::move(a), -1);
  }
  return out;
}

Result<std::unique_ptr<EarlyStopper>> AshaStopper::Make(const Settings& settings) {
  SettingsReader r(settings, "asha", "earlyStopping.algorithmSettings");
  ASSIGN_OR_RETURN(double min_length, r.Double("min_length", 1, 0, 1e12, /*open_lo=*/true));
  ASSIGN_OR_RETURN(int64_t divisor, r.Int("divisor", 4, 2, 100));
  ASSIGN_OR_RETURN(int64_t max_rungs, r.Int("max_rungs", 5, 1, 50));
  RETURN_IF_ERROR(r.Finish());
  return std::unique_ptr<EarlyStopper>(
      new AshaStopper(min_length, static_cast<int>(divisor), static_cast<int>(max_rungs)));
}

namespace {
// The trial's value at the first report at or after `step`; false if none.
bool ValueAt(const Trial& t, double step, double* value) {
  const Observation* best = nullptr;
  for (const Observation& o : t.intermediate)
    if (o.step >= step && (!best || o.step < best->step)) best = &o;
  if (!best) return false;
  *value = best->value;
  return true;
}
}  // namespace

bool AshaStopper::ShouldStop(const History& history, int64_t trial_id) {
  if (trial_id < 0 || trial_id >= static_cast<int64_t>(history.trials.size())) return false;
  const Trial& t = history.trials[trial_id];
  if (IsFinished(t.state) || t.intermediate.empty()) return false;
  int64_t last = 0;
  for (const Observation& o : t.intermediate) last = std::max(last, o.step);
  // The highest rung the trial has reached.
  int rung = -1;
  double step = min_length_;
  for (int k = 0; k < max_rungs_ && step <= last; ++k, step *= divisor_) rung = k;
  if (rung < 0) return false;
  double rung_step = min_length_ * std::pow(divisor_, rung);
  double mine;
  if (!ValueAt(t, rung_step, &mine)) return false;
  std::vector<double> others;
  for (const Trial& o : history.trials) {
    double v;
    if (o.state != TrialState::kFailed && ValueAt(o, rung_step, &v))
      others.push_back(Loss(history.goal, v));
  }
  if (static_cast<int>(others.size()) < divisor_) return false;
  std::sort(others.begin(), others.end());
  size_t keep = std::max<size_t>(1, others.size() / divisor_);
  return Loss(history.goal, mine) > others[keep - 1];
}

}  // namespace berth::tune
