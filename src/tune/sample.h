// Drawing one value of a parameter from its prior, shared by the algorithms
// that start from random points.
#pragma once

#include <string>

#include "common/random.h"
#include "tune/suggester.h"

namespace berth::tune {

// A value of `param` from its distribution over its feasible space, as text.
// Normal and logNormal are centred on the range's middle with a sixth of its
// width as the standard deviation, clipped to [min, max].
std::string SampleValue(const Param& param, Rng& rng);

// Rounds `value` onto the parameter's grid (min + k*step) and into [min, max].
double Snap(const Param& param, double value);

}  // namespace berth::tune
