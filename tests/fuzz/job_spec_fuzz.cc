// Fuzzes the Job document parser and the JSON forms built from what it accepts.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "model/job.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  auto spec = berth::model::ParseJobSpec(text);
  if (!spec.ok()) return 0;
  // What is accepted must serialise (dump() throws on bad UTF-8) and read back.
  berth::model::Job job;
  job.spec = *spec;
  std::string api = berth::model::JobToJson(job).dump();
  std::string stored = berth::model::JobSpecToJson(*spec).dump();
  auto again = berth::model::ParseJobSpec(stored);
  if (!again.ok()) {
    std::fprintf(stderr, "accepted spec does not read back: %s\n%s\n",
                 again.status().message().c_str(), stored.c_str());
    std::abort();
  }
  return 0;
}
