// Joe and Kuo's direction numbers (see sobol.h for the citation).
#pragma once

#include <cstdint>

namespace berth::tune {

struct SobolDirection {
  int s;          // degree of the primitive polynomial
  uint32_t a;     // its inner coefficients as bits
  uint32_t m[8];  // the initial direction integers m_1..m_s
};

// Dimensions 2..41 (dimension 1 is van der Corput's sequence and needs none).
extern const SobolDirection kSobolDirections[40];

}  // namespace berth::tune
