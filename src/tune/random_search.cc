#include "tune/random_search.h"

#include <cmath>

#include "common/random.h"
#include "tune/sample.h"

namespace berth::tune {

Result<std::unique_ptr<Suggester>> RandomSearch::Make(const Settings& settings,
                                                      const SearchSpace& space) {
  for (const auto& [k, v] : settings)
    return InvalidArgument("algorithm.algorithmSettings: random takes no setting (got \"" + k +
                           "\")");
  return std::unique_ptr<Suggester>(new RandomSearch(space));
}

Result<Suggestions> RandomSearch::Suggest(const History& history, int count, uint64_t seed) {
  // The stream depends on the seed and on how many trials exist, so a restart
  // that repeats a call repeats its answer and later calls do not.
  Rng rng(seed ^ (0x9E3779B97F4A7C15ULL * (history.trials.size() + 1)));
  Suggestions out;
  for (int i = 0; i < count; ++i) {
    Suggestion s;
    for (const Param& p : space_.params) s.params[p.name] = SampleValue(p, rng);
    out.trials.push_back(std::move(s));
  }
  return out;
}

}  // namespace berth::tune
