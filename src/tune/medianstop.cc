#include "tune/medianstop.h"

#include <algorithm>

#include "tune/util.h"

namespace berth::tune {

Result<std::unique_ptr<EarlyStopper>> MedianStop::Make(const Settings& settings) {
  SettingsReader r(settings, "medianstop", "earlyStopping.algorithmSettings");
  ASSIGN_OR_RETURN(int64_t min_trials, r.Int("min_trials_required", 3, 1, 1000000));
  ASSIGN_OR_RETURN(int64_t start, r.Int("start_step", 4, 0, INT64_MAX));
  RETURN_IF_ERROR(r.Finish());
  return std::unique_ptr<EarlyStopper>(new MedianStop(static_cast<int>(min_trials), start));
}

bool MedianStop::ShouldStop(const History& history, int64_t trial_id) {
  if (trial_id < 0 || trial_id >= static_cast<int64_t>(history.trials.size())) return false;
  const Trial& t = history.trials[trial_id];
  if (IsFinished(t.state) || t.intermediate.empty()) return false;
  int64_t step = 0;
  double best = 0;
  bool first = true;
  for (const Observation& o : t.intermediate) {
    step = std::max(step, o.step);
    double l = Loss(history.goal, o.value);
    if (first || l < best) best = l;
    first = false;
  }
  if (step < start_step_) return false;
  std::vector<double> averages;
  for (const Trial& other : history.trials) {
    if (other.id == t.id || !IsFinished(other.state) || other.state == TrialState::kFailed)
      continue;
    double sum = 0;
    int n = 0;
    for (const Observation& o : other.intermediate)
      if (o.step <= step) {
        sum += Loss(history.goal, o.value);
        ++n;
      }
    if (n > 0) averages.push_back(sum / n);
  }
  if (static_cast<int>(averages.size()) < min_trials_) return false;
  std::sort(averages.begin(), averages.end());
  size_t m = averages.size();
  double median = m % 2 ? averages[m / 2] : (averages[m / 2 - 1] + averages[m / 2]) / 2;
  return best > median;
}

}  // namespace berth::tune
