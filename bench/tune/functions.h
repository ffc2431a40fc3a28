// The tuning benchmark's test functions (all minimised), the same as
// functions.py: each a search space and an objective over an Assignment.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "tune/suggester.h"

namespace berth::tune::bench {

struct TestFunction {
  std::string name;
  SearchSpace space;
  std::function<double(const Assignment&)> f;
};

std::vector<TestFunction> TestFunctions();

}  // namespace berth::tune::bench
