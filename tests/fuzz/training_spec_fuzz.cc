// Fuzzes TrainingJob documents (the Job parser with the training fields; its
// seeds are the training examples) and the gang arithmetic on what it accepts.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "model/job.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  auto spec = berth::model::ParseJobSpec(text);
  if (!spec.ok()) return 0;
  // What is accepted must serialise (dump() throws on bad UTF-8) and read back.
  (void)berth::model::RequestedGpus(*spec);
  (void)berth::model::MinRequestedGpus(*spec);
  if (spec->training) {
    for (int code : {0, 1, 137, 255}) (void)berth::model::IsRetryable(*spec->training, code);
  }
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
