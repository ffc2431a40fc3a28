#include "tune/sobol.h"

#include "tune/sobol_directions.h"
#include "tune/util.h"

namespace berth::tune {
namespace {

constexpr int kBits = 32;

// V[j] = the direction numbers of one dimension, scaled to 32 bits.
std::array<uint32_t, kBits> Directions(int dim) {
  std::array<uint32_t, kBits> v{};
  if (dim == 0) {
    for (int i = 0; i < kBits; ++i) v[i] = 1u << (kBits - 1 - i);
    return v;
  }
  const SobolDirection& d = kSobolDirections[dim - 1];
  for (int i = 0; i < d.s && i < kBits; ++i) v[i] = d.m[i] << (kBits - 1 - i);
  for (int i = d.s; i < kBits; ++i) {
    uint32_t x = v[i - d.s] ^ (v[i - d.s] >> d.s);
    for (int k = 1; k < d.s; ++k)
      if ((d.a >> (d.s - 1 - k)) & 1) x ^= v[i - k];
    v[i] = x;
  }
  return v;
}

}  // namespace

std::vector<double> SobolPoint(uint64_t index, int dims) {
  // The point's integer in each dimension is the XOR of the direction numbers
  // picked by the bits of the Gray code of `index`.
  uint64_t gray = index ^ (index >> 1);
  std::vector<double> out(dims);
  for (int d = 0; d < dims; ++d) {
    auto v = Directions(d);
    uint32_t x = 0;
    for (int b = 0; b < kBits && (gray >> b); ++b)
      if ((gray >> b) & 1) x ^= v[b];
    out[d] = x / 4294967296.0;
  }
  return out;
}

Result<std::unique_ptr<Suggester>> SobolSearch::Make(const Settings& settings,
                                                     const SearchSpace& space) {
  SettingsReader r(settings, "sobol");
  RETURN_IF_ERROR(r.Finish());
  if (space.params.size() > static_cast<size_t>(kMaxDims))
    return InvalidArgument("parameters: sobol supports at most " + std::to_string(kMaxDims) +
                           " parameters (got " + std::to_string(space.params.size()) + ")");
  return std::unique_ptr<Suggester>(new SobolSearch(space));
}

Result<Suggestions> SobolSearch::Suggest(const History& history, int count, uint64_t) {
  uint64_t next = history.trials.size();
  for (const Trial& t : history.trials)
    next = std::max<uint64_t>(next, static_cast<uint64_t>(LabelInt(t, "sobol.index", -1) + 1));
  Suggestions out;
  int dims = static_cast<int>(space_.params.size());
  for (int i = 0; i < count; ++i, ++next) {
    auto u = SobolPoint(next + 1, dims);
    Suggestion s;
    for (int d = 0; d < dims; ++d)
      s.params[space_.params[d].name] = UnitToText(space_.params[d], u[d]);
    s.labels["sobol.index"] = std::to_string(next);
    out.trials.push_back(std::move(s));
  }
  return out;
}

}  // namespace berth::tune
