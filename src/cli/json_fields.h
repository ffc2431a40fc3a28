// Small readers of the daemon's JSON replies shared by the CLI's commands.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace berth::cli {

// The field as text: a string as is, a number or object as JSON, "" when absent or null.
inline std::string Str(const nlohmann::json& j, const char* key) {
  if (!j.contains(key) || j[key].is_null()) return "";
  if (j[key].is_string()) return j[key].get<std::string>();
  return j[key].dump();
}

}  // namespace berth::cli
