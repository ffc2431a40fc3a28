// Small pieces shared by the pipeline controller's source files.
#pragma once

#include <cstdint>
#include <string>

#include "controllers/pipeline_engine.h"
#include "model/pipeline_state.h"

namespace berth::controllers::pipeline_internal {

using pipeline_engine::ChildName;
using pipeline_engine::kExitNode;

// A node's state that no longer changes.
inline bool Terminal(model::StepState s) { return model::IsTerminal(s); }
// A run's state that no longer changes.
inline bool RunTerminal(model::RunState s) { return model::IsTerminal(s); }

// The most of a step's output or parameter file kept as an output.
inline constexpr size_t kMaxOutput = 256 * 1024;

inline std::string TrimRight(std::string s) {
  while (!s.empty() &&
         (s.back() == '\n' || s.back() == '\r' || s.back() == ' ' || s.back() == '\t'))
    s.pop_back();
  return s;
}

}  // namespace berth::controllers::pipeline_internal
