#include "common/clock.h"

#include <chrono>
#include <cstdio>
#include <ctime>

namespace berth {

TimeMs SystemClock::Now() const {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

SystemClock& SystemClock::Default() {
  static SystemClock clock;
  return clock;
}

TimeMs ManualClock::Now() const {
  std::lock_guard<std::mutex> l(mu_);
  return now_;
}

void ManualClock::Set(TimeMs t) {
  std::lock_guard<std::mutex> l(mu_);
  now_ = t;
}

void ManualClock::Advance(DurationMs d) {
  std::lock_guard<std::mutex> l(mu_);
  now_ += d;
}

int64_t MonotonicNanos() {
  using namespace std::chrono;
  return duration_cast<nanoseconds>(steady_clock::now().time_since_epoch()).count();
}

std::string FormatTime(TimeMs t) {
  if (t == 0) return "";
  time_t secs = static_cast<time_t>(t / 1000);
  struct tm tm;
  gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(t % 1000));
  return buf;
}

std::string FormatDuration(DurationMs d) {
  char buf[64];
  if (d < 0) d = 0;
  if (d < kSecond) {
    std::snprintf(buf, sizeof(buf), "%lldms", static_cast<long long>(d));
  } else if (d < kMinute) {
    std::snprintf(buf, sizeof(buf), "%.1fs", d / 1000.0);
  } else if (d < kHour) {
    std::snprintf(buf, sizeof(buf), "%lldm%02llds", static_cast<long long>(d / kMinute),
                  static_cast<long long>((d % kMinute) / kSecond));
  } else {
    std::snprintf(buf, sizeof(buf), "%lldh%02lldm", static_cast<long long>(d / kHour),
                  static_cast<long long>((d % kHour) / kMinute));
  }
  return buf;
}

}  // namespace berth
