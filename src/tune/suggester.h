// The tuning algorithms' contract: search spaces, trial histories, suggesters
// and early stoppers. Everything in src/tune/ is pure: no clock, no I/O, no
// store; randomness comes in as a seed. An experiment controller rebuilds a
// suggester from the store's history at every step (and after a restart), so
// a suggester keeps no state between calls except what it returns in
// `Suggestions::state`, which the controller saves and hands back.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"

namespace berth::tune {

// Katib's parameterType.
enum class ParamType { kInt, kDouble, kCategorical, kDiscrete };
// Katib's feasibleSpace.distribution.
enum class Distribution { kUniform, kLogUniform, kNormal, kLogNormal };

struct Param {
  std::string name;
  ParamType type = ParamType::kDouble;
  double min = 0;                 // kInt, kDouble
  double max = 0;                 // kInt, kDouble
  std::optional<double> step;     // kInt, kDouble: values are min + k*step
  std::vector<std::string> list;  // kCategorical (any text), kDiscrete (numbers as text)
  Distribution distribution = Distribution::kUniform;
};

struct SearchSpace {
  std::vector<Param> params;
};

// A trial's parameter values, as text (Katib substitutes text into the
// template): ints as "12", doubles with up to 17 significant digits, categorical
// and discrete values exactly as listed.
using Assignment = std::map<std::string, std::string>;

enum class Goal { kMinimize, kMaximize };

enum class TrialState {
  kPending,             // created, not started yet
  kRunning,             // started, may report intermediate values
  kSucceeded,           // ended with its objective
  kFailed,              // ended with an error; counts toward maxFailedTrialCount
  kEarlyStopped,        // stopped by the early stopper; its last value counts
  kMetricsUnavailable,  // ended without reporting its objective
};

// One reported value of the objective metric.
struct Observation {
  int64_t step = 0;
  double value = 0;
};

struct Trial {
  int64_t id = 0;  // dense, in creation order: 0, 1, 2, ...
  Assignment params;
  // What the suggester attached to this trial when it suggested it (a
  // Hyperband bracket, an ASHA rung and budget, a PBT parent): given back
  // unchanged.
  std::map<std::string, std::string> labels;
  TrialState state = TrialState::kPending;
  std::optional<double> objective;        // the final value, by the metric strategy
  std::vector<Observation> intermediate;  // every reported value, by step
};

struct History {
  Goal goal = Goal::kMaximize;
  SearchSpace space;
  std::vector<Trial> trials;  // every trial ever created, by id
  std::string state;          // what the last Suggest returned in Suggestions::state
};

struct Suggestion {
  Assignment params;
  std::map<std::string, std::string> labels;
};

struct Suggestions {
  std::vector<Suggestion> trials;  // at most the count asked for
  // True when the algorithm has nothing more to suggest, ever (a grid that is
  // exhausted): the experiment ends when its running trials end.
  bool exhausted = false;
  std::string state;  // opaque, saved by the caller and given back in History
};

// Algorithm settings (Katib's algorithmSettings / earlyStopping settings),
// name to value as text.
using Settings = std::map<std::string, std::string>;

class Suggester {
 public:
  virtual ~Suggester() = default;
  // Up to `count` new trials given everything so far. `seed` is the only
  // randomness: the same history, count and seed give the same suggestions.
  virtual Result<Suggestions> Suggest(const History& history, int count, uint64_t seed) = 0;
};

class EarlyStopper {
 public:
  virtual ~EarlyStopper() = default;
  // Whether the running trial `trial_id` should stop now, given every trial's
  // intermediate values.
  virtual bool ShouldStop(const History& history, int64_t trial_id) = 0;
};

// algorithmName as Katib spells it: "random", "grid", ... An unknown name or a
// bad setting is InvalidArgument naming the setting and the reason; so is a
// space the algorithm cannot search (a grid over an unbounded double).
Result<std::unique_ptr<Suggester>> MakeSuggester(const std::string& algorithm,
                                                 const Settings& settings,
                                                 const SearchSpace& space);

// earlyStopping.algorithmName: "medianstop", ...
Result<std::unique_ptr<EarlyStopper>> MakeEarlyStopper(const std::string& algorithm,
                                                       const Settings& settings);

// The algorithm names MakeSuggester knows, for error messages and `--help`.
std::vector<std::string> SuggesterNames();

// Checks a space on its own (names unique and non-empty, min < max, a
// positive step, a non-empty list, log distributions over positive ranges).
Status ValidateSpace(const SearchSpace& space);

// Value formatting shared by every algorithm: an int or a double as Assignment text.
std::string FormatValue(const Param& param, double value);

// The earlyStopping.algorithmName values MakeEarlyStopper knows.
std::vector<std::string> EarlyStopperNames();

}  // namespace berth::tune
