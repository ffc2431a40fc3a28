// Random search: every parameter drawn independently from its distribution
// (Bergstra and Bengio, "Random Search for Hyper-Parameter Optimization",
// JMLR 13, 2012). Settings: none.
#pragma once

#include <memory>

#include "tune/suggester.h"

namespace berth::tune {

class RandomSearch : public Suggester {
 public:
  static Result<std::unique_ptr<Suggester>> Make(const Settings& settings,
                                                 const SearchSpace& space);
  Result<Suggestions> Suggest(const History& history, int count, uint64_t seed) override;

 private:
  explicit RandomSearch(SearchSpace space) : space_(std::move(space)) {}
  SearchSpace space_;
};

}  // namespace berth::tune
