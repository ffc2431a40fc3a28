// Asynchronous successive halving (L. Li, K. Jamieson, A. Rostamizadeh, E.
// Gonina, J. Ben-tzur, M. Hardt, B. Recht and A. Talwalkar, "A System for
// Massively Parallel Hyperparameter Tuning", MLSys 2020), with settings as
// Determined's adaptive_asha.
//
// Rungs k = 0 .. R-1 have budgets max_length / divisor^(R-1-k), R =
// min(max_rungs, 1 + floor(log_divisor(max_length))). Bracket j starts its
// trials at rung j: mode aggressive has 1 bracket, standard ceil(R/2),
// conservative R; new trials go to the brackets in turn. Whenever a slot is
// free, a trial in the top 1/divisor of the ended trials of its rung that
// has not been promoted yet is promoted (a new trial, same parameters,
// "asha.parent" naming the trial to resume from, divisor times the budget);
// otherwise a new random trial starts. Labels: asha.bracket, asha.rung,
// asha.budget, asha.parent.
//
// Settings: max_length (the largest budget, required), divisor (4), mode
// (aggressive | standard | conservative; standard), max_rungs (5),
// resource_name (optional: the parameter set to each trial's budget).
//
// AshaStopper is the same rule for trials that run to the end and report
// intermediate values ("asha" as earlyStopping.algorithmName): at each rung
// step min_length * divisor^k a trial goes on only if its value there is in
// the top 1/divisor of the trials that reached the rung (once at least
// divisor trials have). Settings: min_length (1), divisor (4), max_rungs (5).
#pragma once

#include <memory>

#include "tune/suggester.h"

namespace berth::tune {

class Asha : public Suggester {
 public:
  static Result<std::unique_ptr<Suggester>> Make(const Settings& settings,
                                                 const SearchSpace& space);
  Result<Suggestions> Suggest(const History& history, int count, uint64_t seed) override;
  const std::vector<double>& budgets() const { return budgets_; }
  int brackets() const { return brackets_; }

 private:
  Asha(SearchSpace space, std::vector<double> budgets, int brackets, int divisor,
       std::string resource)
      : space_(std::move(space)),
        budgets_(std::move(budgets)),
        brackets_(brackets),
        divisor_(divisor),
        resource_(std::move(resource)) {}
  SearchSpace space_;
  std::vector<double> budgets_;  // per rung
  int brackets_;
  int divisor_;
  std::string resource_;
};

class AshaStopper : public EarlyStopper {
 public:
  static Result<std::unique_ptr<EarlyStopper>> Make(const Settings& settings);
  bool ShouldStop(const History& history, int64_t trial_id) override;

 private:
  AshaStopper(double min_length, int divisor, int max_rungs)
      : min_length_(min_length), divisor_(divisor), max_rungs_(max_rungs) {}
  double min_length_;
  int divisor_;
  int max_rungs_;
};

}  // namespace berth::tune
