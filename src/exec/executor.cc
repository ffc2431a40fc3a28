#include "exec/executor.h"

#include <charconv>

namespace berth::exec {

std::string TaskKey::ToString() const {
  return "job-" + std::to_string(job) + ".t" + std::to_string(task) + ".a" +
         std::to_string(attempt);
}

namespace {

// Parses a non-negative decimal integer that fills [p, end).
template <typename T>
bool ParseNumber(const char* p, const char* end, T& out) {
  if (p == end) return false;
  auto [ptr, ec] = std::from_chars(p, end, out);
  return ec == std::errc() && ptr == end && out >= 0;
}

}  // namespace

std::optional<TaskKey> TaskKey::Parse(const std::string& s) {
  // job-<N>.t<N>.a<N>
  if (s.rfind("job-", 0) != 0) return std::nullopt;
  size_t t = s.find(".t", 4);
  if (t == std::string::npos) return std::nullopt;
  size_t a = s.find(".a", t + 2);
  if (a == std::string::npos) return std::nullopt;
  TaskKey key;
  const char* b = s.data();
  if (!ParseNumber(b + 4, b + t, key.job) || !ParseNumber(b + t + 2, b + a, key.task) ||
      !ParseNumber(b + a + 2, b + s.size(), key.attempt)) {
    return std::nullopt;
  }
  return key;
}

const char* TaskEventTypeName(TaskEventType t) {
  switch (t) {
    case TaskEventType::kStarted:
      return "Started";
    case TaskEventType::kExited:
      return "Exited";
    case TaskEventType::kStartFailed:
      return "StartFailed";
    case TaskEventType::kLost:
      return "Lost";
  }
  return "Unknown";
}

}  // namespace berth::exec
