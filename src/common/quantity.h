// Resource quantities are integers so that fractional sharing adds up exactly.
// GPUs are counted in milli-GPU (1000 = one whole GPU), CPU in milli-cores,
// memory in MiB.
#pragma once

#include <cstdint>
#include <string>

namespace berth {

using MilliGpu = int64_t;
using MilliCpu = int64_t;
using MiB = int64_t;

constexpr MilliGpu kWholeGpu = 1000;
constexpr MilliCpu kWholeCpu = 1000;

// "2", "0.5", "0.25" from milli units.
std::string FormatMilli(int64_t milli);

}  // namespace berth
