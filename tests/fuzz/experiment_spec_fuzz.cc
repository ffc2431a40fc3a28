// Fuzzes the Experiment document parser, the trial jobs made from what it
// accepts, and the metric line parser.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "model/experiment.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  berth::model::MetricParser lines({"accuracy", "loss"}, size % 2 == 0,
                                   berth::model::kDefaultMetricsRegex);
  (void)lines.Lines(text.substr(0, 4096));
  auto spec = berth::model::ParseExperimentSpec(text);
  if (!spec.ok()) return 0;
  // What is accepted makes a trial job from every parameter's first value.
  berth::tune::Assignment a;
  for (const auto& p : spec->space.params)
    a[p.name] = p.list.empty() ? berth::tune::FormatValue(p, p.max) : p.list.back();
  auto job = berth::model::MakeTrialJob(*spec, a, spec->name + "-trial-1");
  if (!job.ok() && job.status().message().find("trialSpec") == std::string::npos) {
    std::fprintf(stderr, "trial job error names no field: %s\n", job.status().message().c_str());
    std::abort();
  }
  return 0;
}
