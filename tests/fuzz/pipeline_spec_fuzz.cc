// Fuzzes the Pipeline document parser, and the template substitution and
// `when` evaluation the controller runs on what it accepts.
#include <cstdint>
#include <optional>
#include <string>

#include "model/pipeline.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace berth::model;
  std::string text(reinterpret_cast<const char*>(data), size);
  // The expression evaluator on raw bytes too (it sees substituted text).
  (void)EvaluateCondition(text.substr(0, 4096));
  auto spec = ParsePipelineSpec(text);
  if (!spec.ok()) return 0;
  (void)CheckPipelineFanOut(*spec, kDefaultMaxFanOut);
  (void)ResolveParameters(*spec, {});
  auto lookup = [](const std::string& name) -> std::optional<std::string> {
    if (name.size() % 3 == 0) return std::nullopt;
    return std::string("1");
  };
  for (const StepSpec& s : spec->steps) {
    for (const auto& arg : s.command) (void)Substitute(arg, lookup);
    (void)TemplateRefs(s.script);
    if (!s.when.empty()) {
      auto expr = Substitute(s.when, lookup);
      if (expr.ok()) (void)EvaluateCondition(*expr);
    }
    if (s.with_items) (void)s.with_items->dump();
  }
  return 0;
}
