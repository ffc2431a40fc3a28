// Fuzzes the simulator's CSV trace parser.
#include <cstdint>
#include <string>

#include "sim/trace.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  (void)berth::sim::ParseTraceCsv(text);
  return 0;
}
