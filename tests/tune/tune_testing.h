// Helpers for the algorithm tests: spaces and a loop that runs a suggester
// against a function the way a controller would.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <string>

#include "tune/suggester.h"

namespace berth::tune::tunetest {

inline Param Num(const std::string& name, double min, double max,
                 ParamType type = ParamType::kDouble, Distribution d = Distribution::kUniform) {
  Param p;
  p.name = name;
  p.type = type;
  p.min = min;
  p.max = max;
  p.distribution = d;
  return p;
}

inline Param Cat(const std::string& name, std::vector<std::string> list,
                 ParamType type = ParamType::kCategorical) {
  Param p;
  p.name = name;
  p.type = type;
  p.list = std::move(list);
  return p;
}

inline SearchSpace Box(int dims, double lo, double hi) {
  SearchSpace s;
  for (int i = 0; i < dims; ++i) s.params.push_back(Num("x" + std::to_string(i), lo, hi));
  return s;
}

inline double Get(const Assignment& a, const std::string& k) { return std::stod(a.at(k)); }

using Objective = std::function<double(const Assignment&)>;

// Runs `budget` trials, `batch` suggested at a time, each finishing with
// f's value before the next batch; returns the history.
inline History RunTrials(Suggester& s, const SearchSpace& space, const Objective& f, int budget,
                         uint64_t seed, Goal goal = Goal::kMinimize, int batch = 1) {
  History h;
  h.goal = goal;
  h.space = space;
  while (static_cast<int>(h.trials.size()) < budget) {
    int n = std::min(batch, budget - static_cast<int>(h.trials.size()));
    auto r = s.Suggest(h, n, seed);
    EXPECT_TRUE(r.ok()) << r.status().message();
    if (!r.ok() || r->trials.empty()) break;
    h.state = r->state;
    for (const auto& sug : r->trials) {
      Trial t;
      t.id = static_cast<int64_t>(h.trials.size());
      t.params = sug.params;
      t.labels = sug.labels;
      t.state = TrialState::kSucceeded;
      t.objective = f(sug.params);
      h.trials.push_back(std::move(t));
    }
  }
  return h;
}

inline double Best(const History& h) {
  double b = h.goal == Goal::kMinimize ? INFINITY : -INFINITY;
  for (const auto& t : h.trials)
    if (t.objective)
      b = h.goal == Goal::kMinimize ? std::min(b, *t.objective) : std::max(b, *t.objective);
  return b;
}

inline double Sphere(const Assignment& a) {
  double s = 0;
  for (const auto& [k, v] : a) {
    if (k[0] != 'x') continue;
    double x = std::stod(v) - 0.3;
    s += x * x;
  }
  return s;
}

inline double BraninFn(const Assignment& a) {
  double x = Get(a, "x"), y = Get(a, "y");
  double b = 5.1 / (4 * M_PI * M_PI), c = 5 / M_PI, t = 1 / (8 * M_PI);
  return std::pow(y - b * x * x + c * x - 6, 2) + 10 * (1 - t) * std::cos(x) + 10;
}

inline SearchSpace BraninSpace() {
  SearchSpace s;
  s.params = {Num("x", -5, 10), Num("y", 0, 15)};
  return s;
}

}  // namespace berth::tune::tunetest
