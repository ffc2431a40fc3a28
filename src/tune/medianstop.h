// The median stopping rule (D. Golovin et al., "Google Vizier: A Service for
// Black-Box Optimization", KDD 2017), as Katib's "medianstop": a running
// trial whose latest reported step s is at least start_step stops when its
// best value so far is strictly worse than the median, over the finished
// trials that reported up to step s, of their running averages up to s.
// At least min_trials_required finished trials must qualify.
//
// Settings (Katib's): min_trials_required (3), start_step (4).
#pragma once

#include <memory>

#include "tune/suggester.h"

namespace berth::tune {

class MedianStop : public EarlyStopper {
 public:
  static Result<std::unique_ptr<EarlyStopper>> Make(const Settings& settings);
  bool ShouldStop(const History& history, int64_t trial_id) override;

 private:
  MedianStop(int min_trials, int64_t start_step)
      : min_trials_(min_trials), start_step_(start_step) {}
  int min_trials_;
  int64_t start_step_;
};

}  // namespace berth::tune
