#include "tune/suggester.h"

#include <cmath>
#include <cstdio>
#include <set>

#include "tune/asha.h"
#include "tune/cmaes.h"
#include "tune/gp_bo.h"
#include "tune/grid.h"
#include "tune/hyperband.h"
#include "tune/medianstop.h"
#include "tune/pbt.h"
#include "tune/random_search.h"
#include "tune/sobol.h"
#include "tune/tpe.h"

namespace berth::tune {

std::vector<std::string> SuggesterNames() {
  return {"random",    "grid", "sobol", "tpe", "multivariate-tpe", "cmaes", "bayesianoptimization",
          "hyperband", "asha", "pbt"};
}

Result<std::unique_ptr<Suggester>> MakeSuggester(const std::string& algorithm,
                                                 const Settings& settings,
                                                 const SearchSpace& space) {
  RETURN_IF_ERROR(ValidateSpace(space));
  if (algorithm == "random") return RandomSearch::Make(settings, space);
  if (algorithm == "grid") return GridSearch::Make(settings, space);
  if (algorithm == "sobol") return SobolSearch::Make(settings, space);
  if (algorithm == "tpe") return Tpe::Make(settings, space, /*multivariate=*/false);
  if (algorithm == "multivariate-tpe") return Tpe::Make(settings, space, /*multivariate=*/true);
  if (algorithm == "cmaes") return CmaEs::Make(settings, space);
  if (algorithm == "bayesianoptimization") return GpBo::Make(settings, space);
  if (algorithm == "hyperband") return Hyperband::Make(settings, space);
  if (algorithm == "asha") return Asha::Make(settings, space);
  if (algorithm == "pbt") return Pbt::Make(settings, space);
  std::string known;
  for (const auto& n : SuggesterNames()) known += (known.empty() ? "" : ", ") + n;
  return InvalidArgument("algorithm.algorithmName: unknown algorithm \"" + algorithm +
                         "\" (known: " + known + ")");
}

std::vector<std::string> EarlyStopperNames() { return {"medianstop", "asha"}; }

Result<std::unique_ptr<EarlyStopper>> MakeEarlyStopper(const std::string& algorithm,
                                                       const Settings& settings) {
  if (algorithm == "medianstop") return MedianStop::Make(settings);
  if (algorithm == "asha") return AshaStopper::Make(settings);
  return InvalidArgument("earlyStopping.algorithmName: unknown algorithm \"" + algorithm +
                         "\" (known: medianstop, asha)");
}

Status ValidateSpace(const SearchSpace& space) {
  if (space.params.empty()) return InvalidArgument("parameters: at least one parameter is needed");
  std::set<std::string> names;
  for (size_t i = 0; i < space.params.size(); ++i) {
    const Param& p = space.params[i];
    std::string where = "parameters[" + std::to_string(i) + "]";
    if (p.name.empty()) return InvalidArgument(where + ".name: must not be empty");
    if (!names.insert(p.name).second)
      return InvalidArgument(where + ".name: \"" + p.name + "\" appears twice");
    where = "parameters[" + p.name + "].feasibleSpace";
    switch (p.type) {
      case ParamType::kInt:
      case ParamType::kDouble:
        if (!std::isfinite(p.min) || !std::isfinite(p.max))
          return InvalidArgument(where + ": min and max must be finite numbers");
        if (!(p.min < p.max) && !(p.type == ParamType::kInt && p.min == p.max))
          return InvalidArgument(where + ": min must be less than max");
        if (p.step && (!std::isfinite(*p.step) || *p.step <= 0))
          return InvalidArgument(where + ".step: must be a positive number");
        if ((p.distribution == Distribution::kLogUniform ||
             p.distribution == Distribution::kLogNormal) &&
            p.min <= 0)
          return InvalidArgument(where + ".min: a log distribution needs min > 0");
        break;
      case ParamType::kCategorical:
      case ParamType::kDiscrete:
        if (p.list.empty()) return InvalidArgument(where + ".list: must not be empty");
        if (p.type == ParamType::kDiscrete)
          for (const auto& v : p.list) {
            char* end = nullptr;
            double d = std::strtod(v.c_str(), &end);
            if (v.empty() || *end != '\0' || !std::isfinite(d))
              return InvalidArgument(where + ".list: \"" + v + "\" is not a number");
          }
        break;
    }
  }
  return Status::Ok();
}

std::string FormatValue(const Param& param, double value) {
  if (param.type == ParamType::kInt)
    return std::to_string(static_cast<int64_t>(std::llround(value)));
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.17g", value);
  // The shortest text that reads back as the same double.
  for (int prec = 1; prec <= 17; ++prec) {
    char b2[40];
    std::snprintf(b2, sizeof b2, "%.*g", prec, value);
    if (std::strtod(b2, nullptr) == value) return b2;
  }
  return buf;
}

}  // namespace berth::tune
