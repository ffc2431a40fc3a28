// Hyperband (L. Li, K. Jamieson, G. DeSalvo, A. Rostamizadeh and A.
// Talwalkar, "Hyperband: A Novel Bandit-Based Approach to Hyperparameter
// Optimization", JMLR 18, 2018). Brackets s = s_max .. 0 (then again),
// s_max = floor(log_eta(r_l)); bracket s starts ceil((s_max+1)/(s+1) eta^s)
// random configurations with budget r_l eta^-s, and each rung, once all its
// trials have ended, promotes its best 1/eta to the next rung with eta times
// the budget. A promotion is a new trial with the same parameters whose
// label "hyperband.parent" names the trial to resume from. Labels:
// hyperband.bracket, hyperband.rung, hyperband.budget. While a rung waits
// for its last trials, later brackets are started so no worker idles.
//
// Settings (Katib's): r_l (the largest budget, required), eta (3),
// resource_name (optional: the parameter set to each trial's budget).
#pragma once

#include <memory>

#include "tune/suggester.h"

namespace berth::tune {

class Hyperband : public Suggester {
 public:
  static Result<std::unique_ptr<Suggester>> Make(const Settings& settings,
                                                 const SearchSpace& space);
  Result<Suggestions> Suggest(const History& history, int count, uint64_t seed) override;

 private:
  Hyperband(SearchSpace space, double r_l, int eta, std::string resource)
      : space_(std::move(space)), r_l_(r_l), eta_(eta), resource_(std::move(resource)) {}
  SearchSpace space_;
  double r_l_;
  int eta_;
  std::string resource_;
};

}  // namespace berth::tune
