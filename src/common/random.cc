#include "common/random.h"

namespace berth {

uint64_t SeedFromEntropy() {
  std::random_device rd;
  return (static_cast<uint64_t>(rd()) << 32) ^ rd();
}

}  // namespace berth
