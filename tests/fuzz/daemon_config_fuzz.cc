// Fuzzes berthd's configuration file parser.
#include <cstdint>
#include <string>

#include "daemon/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  berth::daemon::DaemonConfig config;
  (void)berth::daemon::ParseConfig(text, "berthd.yaml", &config);
  return 0;
}
