// Population-based training (M. Jaderberg et al., "Population Based Training
// of Neural Networks", arXiv:1711.09846, 2017), asynchronous as in Katib.
// A population of n_population members; each member is a chain of trials
// (label pbt.member), one per generation (pbt.generation). When a member's
// latest trial ends, its next trial is suggested: if the ended value is in
// the bottom truncation_threshold of the members' latest values, the member
// exploits (copies the parameters of a random member of the top
// truncation_threshold and resumes from that member's checkpoint) and
// explores (each parameter resampled from its prior with probability
// resample_probability, else perturbed: a number times 0.8 or 1.2 on its
// scale, a list value moved to a neighbour); otherwise it resumes from its
// own checkpoint with the same parameters. The label pbt.parent names the
// trial whose checkpoint the new trial starts from. A failed trial's member
// restarts from a top member. Nothing is suggested while every member runs.
//
// Settings (Katib's): n_population (40), truncation_threshold (0.2),
// resample_probability (0.25).
#pragma once

#include <memory>

#include "tune/suggester.h"

namespace berth::tune {

class Pbt : public Suggester {
 public:
  static Result<std::unique_ptr<Suggester>> Make(const Settings& settings,
                                                 const SearchSpace& space);
  Result<Suggestions> Suggest(const History& history, int count, uint64_t seed) override;

 private:
  Pbt(SearchSpace space, int population, double truncation, double resample)
      : space_(std::move(space)),
        population_(population),
        truncation_(truncation),
        resample_(resample) {}
  SearchSpace space_;
  int population_;
  double truncation_;
  double resample_;
};

}  // namespace berth::tune
