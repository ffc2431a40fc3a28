// Grid search: every combination of the parameters' values, in order, the
// last parameter varying fastest (Katib's "grid"). An int without a step
// takes every integer; a double needs a step; a list takes every value.
// Settings: none. `exhausted` is set once every combination has been
// suggested; trials that failed are not repeated.
#pragma once

#include <memory>

#include "tune/suggester.h"

namespace berth::tune {

class GridSearch : public Suggester {
 public:
  // Grids larger than this are refused (the space is almost surely a mistake).
  static constexpr uint64_t kMaxPoints = 10'000'000;
  static Result<std::unique_ptr<Suggester>> Make(const Settings& settings,
                                                 const SearchSpace& space);
  Result<Suggestions> Suggest(const History& history, int count, uint64_t seed) override;
  uint64_t size() const { return total_; }

 private:
  GridSearch(SearchSpace space, std::vector<std::vector<std::string>> values, uint64_t total)
      : space_(std::move(space)), values_(std::move(values)), total_(total) {}
  SearchSpace space_;
  std::vector<std::vector<std::string>> values_;  // per parameter
  uint64_t total_;
};

}  // namespace berth::tune
