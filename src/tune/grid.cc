#include "tune/grid.h"

#include <cmath>
#include <set>

#include "tune/sample.h"
#include "tune/util.h"

namespace berth::tune {

Result<std::unique_ptr<Suggester>> GridSearch::Make(const Settings& settings,
                                                    const SearchSpace& space) {
  SettingsReader r(settings, "grid");
  RETURN_IF_ERROR(r.Finish());
  std::vector<std::vector<std::string>> values;
  uint64_t total = 1;
  for (const Param& p : space.params) {
    std::string where = "parameters[" + p.name + "].feasibleSpace";
    std::vector<std::string> v;
    if (!IsNumeric(p)) {
      v = p.list;
    } else {
      double step = p.step.value_or(p.type == ParamType::kInt ? 1.0 : 0.0);
      if (step <= 0)
        return InvalidArgument(where + ".step: grid needs a step for a double parameter");
      double n = std::floor((p.max - p.min) / step + 1e-9) + 1;
      if (n > static_cast<double>(kMaxPoints))
        return InvalidArgument(where + ".step: grid would have more than " +
                               std::to_string(kMaxPoints) + " values");
      std::set<std::string> seen;
      for (int64_t k = 0; k < static_cast<int64_t>(n); ++k) {
        std::string s = FormatValue(p, Snap(p, p.min + k * step));
        if (seen.insert(s).second) v.push_back(s);
      }
    }
    if (static_cast<double>(total) * v.size() > static_cast<double>(kMaxPoints))
      return InvalidArgument("parameters: the grid has more than " + std::to_string(kMaxPoints) +
                             " points; give larger steps or fewer values");
    total *= v.size();
    values.push_back(std::move(v));
  }
  return std::unique_ptr<Suggester>(new GridSearch(space, std::move(values), total));
}

Result<Suggestions> GridSearch::Suggest(const History& history, int count, uint64_t) {
  // The next point is the one after the highest index any trial carries.
  uint64_t next = 0;
  for (const Trial& t : history.trials)
    next = std::max<uint64_t>(next, static_cast<uint64_t>(LabelInt(t, "grid.index", -1) + 1));
  Suggestions out;
  for (int i = 0; i < count && next < total_; ++i, ++next) {
    Suggestion s;
    uint64_t rest = next;
    for (size_t j = space_.params.size(); j-- > 0;) {
      const auto& v = values_[j];
      s.params[space_.params[j].name] = v[rest % v.size()];
      rest /= v.size();
    }
    s.labels["grid.index"] = std::to_string(next);
    out.trials.push_back(std::move(s));
  }
  out.exhausted = next >= total_;
  return out;
}

}  // namespace berth::tune
