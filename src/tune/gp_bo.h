// Bayesian optimization with a Gaussian process (J. Snoek, H. Larochelle and
// R. P. Adams, "Practical Bayesian Optimization of Machine Learning
// Algorithms", NeurIPS 2012; expected improvement from D. R. Jones, M.
// Schonlau and W. J. Welch, "Efficient Global Optimization of Expensive
// Black-Box Functions", J. Global Optim. 13, 1998). Numeric parameters on
// [0, 1], list parameters one-hot. Losses are standardised; the kernel's
// length scales (one per input) and the noise are chosen by the marginal
// likelihood over a coarse grid refined per input. The acquisition is
// maximised over random points and perturbations of the best trials.
// Running trials and earlier picks of the same call enter as pending points
// valued at the model's mean ("kriging believer"), so parallel suggestions
// spread out. Beyond 300 finished trials the model keeps the 150 best and
// the 150 newest.
//
// Settings (Katib's names where it has them): n_initial_points (10, random
// trials first), acq_func (ei | pi | lcb), kernel (matern: Matérn 5/2 | rbf),
// xi (0.01, EI/PI's margin), kappa (1.96, LCB's weight), n_candidates (2000).
#pragma once

#include <memory>

#include "tune/suggester.h"

namespace berth::tune {

struct GpOptions {
  int n_initial_points = 10;
  std::string acq = "ei";
  bool matern = true;
  double xi = 0.01;
  double kappa = 1.96;
  int n_candidates = 2000;
};

class GpBo : public Suggester {
 public:
  static Result<std::unique_ptr<Suggester>> Make(const Settings& settings,
                                                 const SearchSpace& space);
  Result<Suggestions> Suggest(const History& history, int count, uint64_t seed) override;

 private:
  GpBo(SearchSpace space, GpOptions o) : space_(std::move(space)), opt_(std::move(o)) {}
  SearchSpace space_;
  GpOptions opt_;
};

}  // namespace berth::tune
