// Randomness is injected like time: code takes an Rng& seeded by its owner.
// Only common/ reads a random device (SeedFromEntropy).
#pragma once

#include <cstdint>
#include <random>

namespace berth {

using Rng = std::mt19937_64;

// A seed from the operating system's entropy source.
uint64_t SeedFromEntropy();

}  // namespace berth
