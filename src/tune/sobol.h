// Sobol's quasi-random sequence (I. M. Sobol', "On the distribution of points
// in a cube and the approximate evaluation of integrals", USSR Comput. Math.
// and Math. Phys. 7(4), 1967), built with Gray-code order (Antonov and
// Saleev, 1979) from the direction numbers of S. Joe and F. Y. Kuo,
// "Constructing Sobol sequences with better two-dimensional projections",
// SIAM J. Sci. Comput. 30(5), 2008 (table new-joe-kuo-6.21201, in
// sobol_directions.cc). Trial n takes point n+1 of the sequence (point 0 is a
// corner), mapped onto each parameter's range (log scale for log
// distributions, a list by equal shares). Settings: none. At most
// kMaxDims parameters.
#pragma once

#include <array>
#include <memory>
#include <vector>

#include "tune/suggester.h"

namespace berth::tune {

// Point `index` of the Sobol sequence in `dims` dimensions, each in [0, 1).
std::vector<double> SobolPoint(uint64_t index, int dims);

class SobolSearch : public Suggester {
 public:
  static constexpr int kMaxDims = 40;
  static Result<std::unique_ptr<Suggester>> Make(const Settings& settings,
                                                 const SearchSpace& space);
  Result<Suggestions> Suggest(const History& history, int count, uint64_t seed) override;

 private:
  explicit SobolSearch(SearchSpace space) : space_(std::move(space)) {}
  SearchSpace space_;
};

}  // namespace berth::tune
