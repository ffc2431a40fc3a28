// Small pieces shared by the pipeline controller's source files.
#pragma once

#include <cstdint>
#include <fstream>
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

// The most of a step's output or parameter file kept as an output.
inline constexpr size_t kMaxOutput = 256 * 1024;



inline std::string TrimRight(std::string s) {
  while (!s.empty() &&
         (s.back() == '\n' || s.back() == '\r' || s.back() == ' ' || s.back() == '\t'))
    s.pop_back();
  return s;
}

inline std::string ReadSmall(const std::string& path, bool* ok) {
  std::ifstream in(path, std::ios::binary);
  *ok = static_cast<bool>(in);
  if (!in) return "";
  std::string s;
  s.resize(kMaxOutput);
  in.read(s.data(), kMaxOutput);
  s.resize(in.gcount());
  return s;
}

inline std::string ChildName(const std::string& step, int64_t i) {
  return step + "(" + std::to_string(i) + ")";
}

inline std::string Resolve(const std::string& dir, const std::string& p) {
  if (!p.empty() && p[0] == '/') return p;
  return dir + "/" + p;
}

}  // namespace berth::controllers::pipeline_internal
