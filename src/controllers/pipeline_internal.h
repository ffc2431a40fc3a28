// Small pieces shared by the pipeline controller's source files.
#pragma once

#include <string>

namespace berth::controllers::pipeline_internal {

inline constexpr char kExitNode[] = "onExit";

// A node's state that no longer changes.
inline bool Terminal(const std::string& s) {
  return s == "Succeeded" || s == "Failed" || s == "Skipped" || s == "Omitted" || s == "Cancelled";
}
// A run's state that no longer changes.
inline bool RunTerminal(const std::string& s) {
  return s == "Succeeded" || s == "Failed" || s == "Cancelled";
}

}  // namespace berth::controllers::pipeline_internal
