// CMA-ES, the covariance matrix adaptation evolution strategy (N. Hansen and
// A. Ostermeier, "Completely Derandomized Self-Adaptation in Evolution
// Strategies", Evolutionary Computation 9(2), 2001; parameters, with the
// negative weights of "active" CMA, as in
// N. Hansen, "The CMA Evolution Strategy: A Tutorial", arXiv:1604.00772).
// Numeric parameters live on [0, 1] (log scale for log distributions); list
// parameters are drawn at random, as Optuna's CmaEsSampler does.
//
// The strategy keeps no state of its own: every call replays the finished
// generations from the history (each trial carries its generation in the
// label "cmaes.generation"), so a restart or a lost `state` changes nothing.
// A generation is told once popsize of its trials have a value; failed
// trials are replaced by further samples of the same generation.
//
// Settings: sigma (initial step size as a share of each range, 1/6),
// popsize (4 + 3 ln n), restart_strategy (none | ipop: restart with twice the
// population when the step size has collapsed).
#pragma once

#include <memory>

#include "tune/suggester.h"

namespace berth::tune {

class CmaEs : public Suggester {
 public:
  static Result<std::unique_ptr<Suggester>> Make(const Settings& settings,
                                                 const SearchSpace& space);
  Result<Suggestions> Suggest(const History& history, int count, uint64_t seed) override;

 private:
  CmaEs(SearchSpace space, double sigma, int popsize, bool ipop)
      : space_(std::move(space)), sigma0_(sigma), popsize_(popsize), ipop_(ipop) {}
  SearchSpace space_;
  double sigma0_;
  int popsize_;  // 0: the default for the dimension
  bool ipop_;
};

}  // namespace berth::tune
