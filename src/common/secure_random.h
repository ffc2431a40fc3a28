// Secret material (tokens, session ids, CSRF values) from the kernel's
// cryptographic random source. Like SeedFromEntropy (random.h), only common/
// reads a random device; code that makes secrets calls this.
#pragma once

#include <cstddef>
#include <string>

#include "common/status.h"

namespace berth {

// `n` bytes from getrandom(2) (blocking until the pool is initialised, which
// it is long before berthd runs). IoError when the kernel refuses.
Result<std::string> SecureRandomBytes(size_t n);

// Lower-case hex of `bytes`.
std::string HexEncode(const std::string& bytes);

}  // namespace berth
