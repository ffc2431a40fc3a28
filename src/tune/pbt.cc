#include "tune/pbt.h"

#include <algorithm>
#include <cmath>

#include "tune/sample.h"
#include "tune/util.h"

namespace berth::tune {

Result<std::unique_ptr<Suggester>> Pbt::Make(const Settings& settings, const SearchSpace& space) {
  SettingsReader r(settings, "pbt");
  ASSIGN_OR_RETURN(int64_t n, r.Int("n_population", 40, 2, 100000));
  ASSIGN_OR_RETURN(double trunc, r.Double("truncation_threshold", 0.2, 0, 0.5, /*open_lo=*/true));
  ASSIGN_OR_RETURN(double resample, r.Double("resample_probability", 0.25, 0, 1));
  RETURN_IF_ERROR(r.Finish());
  return std::unique_ptr<Suggester>(new Pbt(space, static_cast<int>(n), trunc, resample));
}

Result<Suggestions> Pbt::Suggest(const History& history, int count, uint64_t seed) {
  Rng rng = CallRng(seed, history, 0x9b7);
  std::uniform_real_distribution<double> U(0, 1);
  // Each member's latest trial.
  std::vector<int64_t> latest(population_, -1);
  for (size_t i = 0; i < history.trials.size(); ++i) {
    int64_t m = LabelInt(history.trials[i], "pbt.member", -1);
    if (m < 0 || m >= population_) continue;
    if (latest[m] < 0 || LabelInt(history.trials[i], "pbt.generation", 0) >=
                             LabelInt(history.trials[latest[m]], "pbt.generation", 0))
      latest[m] = static_cast<int64_t>(i);
  }
  // Members ranked by their latest ended value (best first).
  std::vector<std::pair<double, int>> ranked;
  for (int m = 0; m < population_; ++m) {
    if (latest[m] < 0) continue;
    const Trial& t = history.trials[latest[m]];
    if (t.objective && (t.state == TrialState::kSucceeded || t.state == TrialState::kEarlyStopped))
      ranked.push_back({Loss(history.goal, *t.objective), m});
  }
  std::stable_sort(ranked.begin(), ranked.end());
  size_t cut = std::max<size_t>(1, static_cast<size_t>(std::ceil(truncation_ * ranked.size())));

  auto explore = [&](Assignment a) {
    for (const Param& p : space_.params) {
      if (U(rng) < resample_) {
        a[p.name] = SampleValue(p, rng);
        continue;
      }
      if (IsNumeric(p)) {
        double u = TextToUnit(p, a[p.name]);
        if (u < 0) {
          a[p.name] = SampleValue(p, rng);
          continue;
        }
        double v = std::stod(a[p.name]);
        double f = U(rng) < 0.5 ? 0.8 : 1.2;
        double nv = IsLog(p) ? v * f : p.min + (v - p.min) * f;
        if (p.type == ParamType::kInt && std::llround(nv) == std::llround(v))
          nv = v + (f > 1 ? 1 : -1);
        a[p.name] = FormatValue(p, Snap(p, nv));
      } else {
        int i = ChoiceIndex(p, a[p.name]);
        int k = NumChoices(p);
        if (i < 0) i = 0;
        i = std::clamp(i + (U(rng) < 0.5 ? -1 : 1), 0, k - 1);
        a[p.name] = p.list[i];
      }
    }
    return a;
  };

  Suggestions out;
  for (int m = 0; m < population_ && static_cast<int>(out.trials.size()) < count; ++m) {
    Suggestion s;
    s.labels["pbt.member"] = std::to_string(m);
    if (latest[m] < 0) {  // generation 0
      for (const Param& p : space_.params) s.params[p.name] = SampleValue(p, rng);
      s.labels["pbt.generation"] = "0";
      out.trials.push_back(std::move(s));
      continue;
    }
    const Trial& t = history.trials[latest[m]];
    if (!IsFinished(t.state)) continue;
    s.labels["pbt.generation"] = std::to_string(LabelInt(t, "pbt.generation", 0) + 1);
    size_t rank = ranked.size();
    for (size_t r = 0; r < ranked.size(); ++r)
      if (ranked[r].second == m) rank = r;
    bool bottom = rank >= ranked.size() || (ranked.size() >= 2 && rank >= ranked.size() - cut);
    if (bottom && !ranked.empty() && ranked[0].second != m) {
      std::uniform_int_distribution<size_t> pick(0, std::min(cut, ranked.size()) - 1);
      const Trial& donor = history.trials[latest[ranked[pick(rng)].second]];
      s.params = explore(donor.params);
      s.labels["pbt.parent"] = std::to_string(donor.id);
    } else if (t.objective) {
      s.params = t.params;
      s.labels["pbt.parent"] = std::to_string(t.id);
    } else {  // failed with nobody to copy: start over
      for (const Param& p : space_.params) s.params[p.name] = SampleValue(p, rng);
    }
    out.trials.push_back(std::move(s));
  }
  return out;
}

}  // namespace berth::tune
