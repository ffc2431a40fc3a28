// Fuzzes cron expressions (and their next fire times) and CronPipeline documents.
#include <cstdint>
#include <cstring>
#include <string>

#include "model/cron.h"
#include "model/pipeline.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace berth::model;
  std::string text(reinterpret_cast<const char*>(data), size);
  // The first line as a bare schedule, the next 8 bytes as the time to start from.
  size_t nl = text.find('\n');
  std::string expr = text.substr(0, nl);
  auto cron = CronSchedule::Parse(expr);
  if (cron.ok()) {
    int64_t after = 0;
    if (nl != std::string::npos && text.size() >= nl + 1 + sizeof(after))
      std::memcpy(&after, text.data() + nl + 1, sizeof(after));
    after %= 4102444800000LL;  // before 2100, either side of 1970
    auto next = cron->Next(after, TimeZone::Utc());
    if (next && *next <= after) __builtin_trap();
  }
  (void)ParseCronPipelineSpec(text);
  return 0;
}
