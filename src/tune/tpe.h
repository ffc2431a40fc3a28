// Tree-structured Parzen Estimator (J. Bergstra, R. Bardenet, Y. Bengio and
// B. Kégl, "Algorithms for Hyper-Parameter Optimization", NeurIPS 2011).
// The finished trials are split at the gamma quantile of the loss into a
// "good" set and the rest; each set becomes a Parzen mixture (a truncated
// normal per numeric observation, a smoothed one-hot per list value, plus a
// prior component), and the candidate drawn from the good mixture with the
// highest ratio l(x)/g(x) is suggested.
//
// "tpe" models each parameter on its own; "multivariate-tpe" models them
// jointly (S. Falkner, A. Klein and F. Hutter, "BOHB: Robust and Efficient
// Hyperparameter Optimization at Scale", ICML 2018), bandwidths by Scott's
// rule.
//
// A kernel's density is not divided by its bandwidth: each truncated normal
// has the height of a unit one, so a wide kernel counts for more than a
// narrow one of the same weight. Optuna 3.1 computes its mixtures the same
// way; with the bandwidth-normalised density the benchmark functions of
// bench/tune came out worse (Rosenbrock-10's median best after 100 trials
// 8,700 against 4,600; docs/experiments.md).
//
// Settings (defaults as Optuna's TPESampler): n_startup_trials (10),
// n_ei_candidates (24), gamma (0.1: the good set is ceil(gamma*n) trials, at
// most gamma_max = 25), prior_weight (1.0), constant_liar (false: when true,
// running trials count as bad ones so parallel suggestions spread out).
#pragma once

#include <memory>

#include "tune/suggester.h"

namespace berth::tune {

struct TpeOptions {
  bool multivariate = false;
  int n_startup_trials = 10;
  int n_ei_candidates = 24;
  double gamma = 0.1;
  int gamma_max = 25;
  double prior_weight = 1.0;
  bool constant_liar = false;
};

class Tpe : public Suggester {
 public:
  static Result<std::unique_ptr<Suggester>> Make(const Settings& settings, const SearchSpace& space,
                                                 bool multivariate);
  Result<Suggestions> Suggest(const History& history, int count, uint64_t seed) override;

 private:
  Tpe(SearchSpace space, TpeOptions o) : space_(std::move(space)), opt_(o) {}
  SearchSpace space_;
  TpeOptions opt_;
};

}  // namespace berth::tune
