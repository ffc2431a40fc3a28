// Helpers shared by the algorithms: reading settings with errors that name
// the setting, mapping parameter values to and from the unit interval, and
// the finished trials as losses (smaller is better whatever the goal).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/random.h"
#include "tune/suggester.h"

namespace berth::tune {

// Reads settings for one algorithm; every error names `prefix.NAME`.
// Finish() refuses any setting that no getter asked for.
class SettingsReader {
 public:
  SettingsReader(const Settings& settings, std::string algorithm,
                 std::string prefix = "algorithm.algorithmSettings")
      : settings_(settings), algorithm_(std::move(algorithm)), prefix_(std::move(prefix)) {}
  // An integer in [lo, hi], `def` when absent.
  Result<int64_t> Int(const std::string& name, int64_t def, int64_t lo, int64_t hi);
  // A finite number in [lo, hi] (or (lo, hi] when `open_lo`), `def` when absent.
  Result<double> Double(const std::string& name, double def, double lo, double hi,
                        bool open_lo = false);
  // One of `allowed`, `def` when absent.
  Result<std::string> Choice(const std::string& name, const std::string& def,
                             const std::vector<std::string>& allowed);
  Result<bool> Bool(const std::string& name, bool def);
  // Any text, `def` when absent.
  std::string Text(const std::string& name, const std::string& def);
  bool Has(const std::string& name) const { return settings_.count(name) > 0; }
  // "prefix.NAME: must be given"
  Status Missing(const std::string& name) const {
    return InvalidArgument(Where(name) + ": " + algorithm_ + " needs this setting");
  }
  Status Finish() const;

 private:
  const std::string* Find(const std::string& name);
  std::string Where(const std::string& name) const { return prefix_ + "." + name; }
  const Settings& settings_;
  std::string algorithm_;
  std::string prefix_;
  std::vector<std::string> known_;
};

bool IsLog(const Param& p);
bool IsNumeric(const Param& p);  // kInt or kDouble
int NumChoices(const Param& p);  // the list's size for categorical/discrete

// A numeric parameter's value on [0, 1] (log scale for log distributions;
// ints span [min-0.5, max+0.5] so every integer has the same share).
double ToUnit(const Param& p, double value);
// The inverse, snapped onto the parameter's grid.
double FromUnit(const Param& p, double u);
// A value as text on [0, 1]: numeric by ToUnit, a list value by (index+0.5)/k.
// -1 when the text is not a value of the parameter.
double TextToUnit(const Param& p, const std::string& text);
// [0, 1] to text: numeric by FromUnit, a list by the index floor(u*k).
std::string UnitToText(const Param& p, double u);
// Index of `text` in a list parameter, -1 when absent.
int ChoiceIndex(const Param& p, const std::string& text);

// A finished trial seen as a loss to minimise.
struct Done {
  size_t index = 0;  // into History::trials
  double loss = 0;
};
// Trials with an objective (Succeeded, or EarlyStopped with a value), in id order.
std::vector<Done> Finished(const History& history);
double Loss(Goal goal, double objective);
bool IsFinished(TrialState s);  // no longer running, whatever the outcome

// A generator for one call: mixes the caller's seed with the history's size
// and a per-algorithm salt so calls after new trials differ.
Rng CallRng(uint64_t seed, const History& history, uint64_t salt);

std::string Label(const Trial& t, const std::string& key);  // "" when absent
int64_t LabelInt(const Trial& t, const std::string& key, int64_t def);

}  // namespace berth::tune

namespace berth::tune {

// Multi-fidelity algorithms: the budget a trial runs with goes in its labels
// and, when the settings name a resource parameter (an int or double of the
// space, e.g. epochs), into that parameter too.
Status CheckResource(const SearchSpace& space, const std::string& setting,
                     const std::string& resource);
void SetBudget(const SearchSpace& space, const std::string& resource, double budget,
               Assignment* params);
// A budget as label text ("9", "2.5").
std::string BudgetText(double budget);

}  // namespace berth::tune
