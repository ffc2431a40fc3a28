#include "tune/util.h"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "tune/sample.h"

namespace berth::tune {

const std::string* SettingsReader::Find(const std::string& name) {
  known_.push_back(name);
  auto it = settings_.find(name);
  return it == settings_.end() ? nullptr : &it->second;
}

Result<int64_t> SettingsReader::Int(const std::string& name, int64_t def, int64_t lo, int64_t hi) {
  const std::string* v = Find(name);
  if (!v) return def;
  char* end = nullptr;
  errno = 0;
  long long x = std::strtoll(v->c_str(), &end, 10);
  if (v->empty() || *end != '\0' || errno != 0 || x < lo || x > hi)
    return InvalidArgument(Where(name) + ": must be an integer from " + std::to_string(lo) +
                           " to " + std::to_string(hi) + " (got \"" + *v + "\")");
  return static_cast<int64_t>(x);
}

Result<double> SettingsReader::Double(const std::string& name, double def, double lo, double hi,
                                      bool open_lo) {
  const std::string* v = Find(name);
  if (!v) return def;
  char* end = nullptr;
  double x = std::strtod(v->c_str(), &end);
  bool bad =
      v->empty() || *end != '\0' || !std::isfinite(x) || x > hi || (open_lo ? x <= lo : x < lo);
  if (bad) {
    char range[96];
    std::snprintf(range, sizeof range, "%s%g, %g]", open_lo ? "(" : "[", lo, hi);
    return InvalidArgument(Where(name) + ": must be a number in " + range + " (got \"" + *v +
                           "\")");
  }
  return x;
}

Result<std::string> SettingsReader::Choice(const std::string& name, const std::string& def,
                                           const std::vector<std::string>& allowed) {
  const std::string* v = Find(name);
  if (!v) return def;
  for (const auto& a : allowed)
    if (*v == a) return a;
  std::string list;
  for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
  return InvalidArgument(Where(name) + ": must be one of " + list + " (got \"" + *v + "\")");
}

Result<bool> SettingsReader::Bool(const std::string& name, bool def) {
  const std::string* v = Find(name);
  if (!v) return def;
  if (*v == "true" || *v == "True") return true;
  if (*v == "false" || *v == "False") return false;
  return InvalidArgument(Where(name) + ": must be true or false (got \"" + *v + "\")");
}

std::string SettingsReader::Text(const std::string& name, const std::string& def) {
  const std::string* v = Find(name);
  return v ? *v : def;
}

Status SettingsReader::Finish() const {
  for (const auto& [k, v] : settings_) {
    if (std::find(known_.begin(), known_.end(), k) != known_.end()) continue;
    std::string list;
    for (const auto& n : known_) list += (list.empty() ? "" : ", ") + n;
    return InvalidArgument(Where(k) + ": " + algorithm_ +
                           " has no such setting (known: " + (list.empty() ? "none" : list) + ")");
  }
  return Status::Ok();
}

bool IsLog(const Param& p) {
  return p.distribution == Distribution::kLogUniform || p.distribution == Distribution::kLogNormal;
}

bool IsNumeric(const Param& p) { return p.type == ParamType::kInt || p.type == ParamType::kDouble; }

int NumChoices(const Param& p) { return static_cast<int>(p.list.size()); }

namespace {
void Bounds(const Param& p, double* lo, double* hi) {
  *lo = IsLog(p) ? std::log(p.min) : p.min;
  *hi = IsLog(p) ? std::log(p.max) : p.max;
  if (p.type == ParamType::kInt && !IsLog(p)) {
    *lo -= 0.5;
    *hi += 0.5;
  }
  if (*hi <= *lo) *hi = *lo + 1;  // an int with min == max
}
}  // namespace

double ToUnit(const Param& p, double value) {
  double lo, hi;
  Bounds(p, &lo, &hi);
  double v = IsLog(p) ? std::log(std::max(value, 1e-300)) : value;
  return std::clamp((v - lo) / (hi - lo), 0.0, 1.0);
}

double FromUnit(const Param& p, double u) {
  double lo, hi;
  Bounds(p, &lo, &hi);
  double v = lo + std::clamp(u, 0.0, 1.0) * (hi - lo);
  if (IsLog(p)) v = std::exp(v);
  return Snap(p, v);
}

int ChoiceIndex(const Param& p, const std::string& text) {
  for (size_t i = 0; i < p.list.size(); ++i)
    if (p.list[i] == text) return static_cast<int>(i);
  return -1;
}

double TextToUnit(const Param& p, const std::string& text) {
  if (!IsNumeric(p)) {
    int i = ChoiceIndex(p, text);
    return i < 0 ? -1 : (i + 0.5) / NumChoices(p);
  }
  double v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || !std::isfinite(v))
    return -1;
  return ToUnit(p, v);
}

std::string UnitToText(const Param& p, double u) {
  if (!IsNumeric(p)) {
    int k = NumChoices(p);
    int i = std::clamp(static_cast<int>(std::floor(u * k)), 0, k - 1);
    return p.list[i];
  }
  return FormatValue(p, FromUnit(p, u));
}

double Loss(Goal goal, double objective) {
  return goal == Goal::kMinimize ? objective : -objective;
}

std::vector<Done> Finished(const History& history) {
  std::vector<Done> out;
  for (size_t i = 0; i < history.trials.size(); ++i) {
    const Trial& t = history.trials[i];
    bool ended = t.state == TrialState::kSucceeded || t.state == TrialState::kEarlyStopped;
    if (ended && t.objective && std::isfinite(*t.objective))
      out.push_back({i, Loss(history.goal, *t.objective)});
  }
  return out;
}

bool IsFinished(TrialState s) { return s != TrialState::kPending && s != TrialState::kRunning; }

Rng CallRng(uint64_t seed, const History& history, uint64_t salt) {
  uint64_t x = seed ^ (0x9E3779B97F4A7C15ULL * (history.trials.size() + 1)) ^ (salt << 1);
  // splitmix64 so nearby seeds give unrelated streams
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return Rng(x ^ (x >> 31));
}

std::string Label(const Trial& t, const std::string& key) {
  auto it = t.labels.find(key);
  return it == t.labels.end() ? "" : it->second;
}

int64_t LabelInt(const Trial& t, const std::string& key, int64_t def) {
  auto it = t.labels.find(key);
  if (it == t.labels.end()) return def;
  char* end = nullptr;
  long long v = std::strtoll(it->second.c_str(), &end, 10);
  return (it->second.empty() || *end != '\0') ? def : v;
}

}  // namespace berth::tune

namespace berth::tune {

Status CheckResource(const SearchSpace& space, const std::string& setting,
                     const std::string& resource) {
  if (resource.empty()) return Status::Ok();
  for (const Param& p : space.params)
    if (p.name == resource) {
      if (!IsNumeric(p))
        return InvalidArgument(setting + ": parameter \"" + resource +
                               "\" must be an int or a double to carry the budget");
      return Status::Ok();
    }
  return InvalidArgument(setting + ": no parameter is named \"" + resource + "\"");
}

void SetBudget(const SearchSpace& space, const std::string& resource, double budget,
               Assignment* params) {
  for (const Param& p : space.params)
    if (p.name == resource) (*params)[p.name] = FormatValue(p, budget);
}

std::string BudgetText(double budget) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.10g", budget);
  return buf;
}

}  // namespace berth::tune
