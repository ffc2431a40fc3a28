#include "tune/sample.h"

#include <algorithm>
#include <cmath>

namespace berth::tune {

double Snap(const Param& param, double value) {
  value = std::clamp(value, param.min, param.max);
  if (param.step) {
    double k = std::round((value - param.min) / *param.step);
    value = std::min(param.min + k * *param.step, param.max);
  }
  if (param.type == ParamType::kInt)
    value = std::clamp(std::round(value), std::ceil(param.min), std::floor(param.max));
  return value;
}

std::string SampleValue(const Param& param, Rng& rng) {
  if (param.type == ParamType::kCategorical || param.type == ParamType::kDiscrete) {
    std::uniform_int_distribution<size_t> pick(0, param.list.size() - 1);
    return param.list[pick(rng)];
  }
  bool log = param.distribution == Distribution::kLogUniform ||
             param.distribution == Distribution::kLogNormal;
  double lo = log ? std::log(param.min) : param.min;
  double hi = log ? std::log(param.max) : param.max;
  if (param.type == ParamType::kInt && !log) {
    lo -= 0.5;  // every integer in [min, max] equally likely after rounding
    hi += 0.5;
  }
  double x;
  if (param.distribution == Distribution::kNormal ||
      param.distribution == Distribution::kLogNormal) {
    std::normal_distribution<double> n((lo + hi) / 2, (hi - lo) / 6);
    x = std::clamp(n(rng), lo, hi);
  } else {
    std::uniform_real_distribution<double> u(lo, hi);
    x = u(rng);
  }
  if (log) x = std::exp(x);
  return FormatValue(param, Snap(param, x));
}

}  // namespace berth::tune
