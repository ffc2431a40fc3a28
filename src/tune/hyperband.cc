#include "tune/hyperband.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "tune/sample.h"
#include "tune/util.h"

namespace berth::tune {

Result<std::unique_ptr<Suggester>> Hyperband::Make(const Settings& settings,
                                                   const SearchSpace& space) {
  SettingsReader r(settings, "hyperband");
  bool has_rl = r.Has("r_l");
  ASSIGN_OR_RETURN(double r_l, r.Double("r_l", 0, 0, 1e12, /*open_lo=*/true));
  ASSIGN_OR_RETURN(int64_t eta, r.Int("eta", 3, 2, 100));
  std::string resource = r.Text("resource_name", "");
  RETURN_IF_ERROR(r.Finish());
  if (!has_rl) return r.Missing("r_l");
  if (r_l < eta)
    return InvalidArgument("algorithm.algorithmSettings.r_l: must be at least eta (" +
                           std::to_string(eta) + ") for more than one rung");
  RETURN_IF_ERROR(CheckResource(space, "algorithm.algorithmSettings.resource_name", resource));
  return std::unique_ptr<Suggester>(
      new Hyperband(space, r_l, static_cast<int>(eta), std::move(resource)));
}

Result<Suggestions> Hyperband::Suggest(const History& history, int count, uint64_t seed) {
  Rng rng = CallRng(seed, history, 0x4b);
  int s_max = static_cast<int>(std::floor(std::log(r_l_) / std::log(eta_) + 1e-9));
  // (bracket, rung) -> trial indices
  std::map<std::pair<int64_t, int64_t>, std::vector<size_t>> rungs;
  std::set<int64_t> promoted;  // trials that have a successor
  for (size_t i = 0; i < history.trials.size(); ++i) {
    const Trial& t = history.trials[i];
    int64_t b = LabelInt(t, "hyperband.bracket", -1), k = LabelInt(t, "hyperband.rung", -1);
    if (b < 0 || k < 0) continue;
    rungs[{b, k}].push_back(i);
    int64_t parent = LabelInt(t, "hyperband.parent", -1);
    if (parent >= 0) promoted.insert(parent);
  }
  Suggestions out;
  auto add = [&](int64_t b, int k, double budget, Assignment params, int64_t parent) {
    Suggestion s;
    s.params = std::move(params);
    SetBudget(space_, resource_, budget, &s.params);
    s.labels["hyperband.bracket"] = std::to_string(b);
    s.labels["hyperband.rung"] = std::to_string(k);
    s.labels["hyperband.budget"] = BudgetText(budget);
    if (parent >= 0) s.labels["hyperband.parent"] = std::to_string(parent);
    out.trials.push_back(std::move(s));
  };
  for (int64_t b = 0; static_cast<int>(out.trials.size()) < count; ++b) {
    int s = s_max - static_cast<int>(b % (s_max + 1));
    double n = std::ceil((s_max + 1.0) / (s + 1.0) * std::pow(eta_, s));
    double r = r_l_ * std::pow(eta_, -s);
    int64_t want = static_cast<int64_t>(n);  // trials the current rung should have
    for (int k = 0; k <= s && static_cast<int>(out.trials.size()) < count; ++k) {
      double budget = r * std::pow(eta_, k);
      auto& have = rungs[{b, k}];
      if (k == 0) {
        while (static_cast<int64_t>(have.size()) < want &&
               static_cast<int>(out.trials.size()) < count) {
          Assignment a;
          for (const Param& p : space_.params) a[p.name] = SampleValue(p, rng);
          add(b, 0, budget, std::move(a), -1);
          have.push_back(SIZE_MAX);  // placeholder: created in this call
        }
      }
      if (static_cast<int64_t>(have.size()) < want) break;  // still being filled
      bool all_ended = true;
      std::vector<std::pair<double, size_t>> scored;
      for (size_t i : have) {
        if (i == SIZE_MAX || !IsFinished(history.trials[i].state)) {
          all_ended = false;
          continue;
        }
        const Trial& t = history.trials[i];
        if (t.objective &&
            (t.state == TrialState::kSucceeded || t.state == TrialState::kEarlyStopped))
          scored.push_back({Loss(history.goal, *t.objective), i});
      }
      if (!all_ended || k == s) break;  // wait for the rung, or the bracket is done
      int64_t next_want =
          std::min<int64_t>(static_cast<int64_t>(std::floor(n * std::pow(eta_, -(k + 1)))),
                            static_cast<int64_t>(scored.size()));
      next_want = std::max<int64_t>(next_want, std::min<int64_t>(1, scored.size()));
      std::stable_sort(scored.begin(), scored.end());
      auto& next = rungs[{b, k + 1}];
      for (int64_t j = 0; j < next_want && static_cast<int>(out.trials.size()) < count; ++j) {
        size_t i = scored[j].second;
        if (promoted.count(history.trials[i].id)) continue;
        add(b, k + 1, budget * eta_, history.trials[i].params, history.trials[i].id);
        promoted.insert(history.trials[i].id);
        next.push_back(SIZE_MAX);
      }
      want = next_want;
      if (static_cast<int64_t>(next.size()) < want) break;
    }
  }
  return out;
}

}  // namespace berth::tune
