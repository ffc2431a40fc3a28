// Time in Berth. Nothing outside common/ reads the wall clock: code that needs
// the time takes a Clock&, so the daemon passes a SystemClock and the
// simulator and tests pass a ManualClock that they advance themselves.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>

namespace berth {

// Milliseconds since the Unix epoch (wall time) or since the start of a
// simulation (virtual time). Plain integers keep arithmetic exact.
using TimeMs = int64_t;
using DurationMs = int64_t;

constexpr DurationMs kSecond = 1000;
constexpr DurationMs kMinute = 60 * kSecond;
constexpr DurationMs kHour = 60 * kMinute;

class Clock {
 public:
  virtual ~Clock() = default;
  // The current time. Thread-safe.
  virtual TimeMs Now() const = 0;
};

// Wall clock (system_clock). Thread-safe.
class SystemClock final : public Clock {
 public:
  TimeMs Now() const override;
  // A process-wide instance for binaries' main().
  static SystemClock& Default();
};

// A clock that moves only when told to. Thread-safe.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(TimeMs start = 0) : now_(start) {}
  TimeMs Now() const override;
  void Set(TimeMs t);
  void Advance(DurationMs d);

 private:
  mutable std::mutex mu_;
  TimeMs now_;
};

// Monotonic nanoseconds for measuring elapsed time (benchmarks, timeouts).
int64_t MonotonicNanos();

// RFC 3339 in UTC with milliseconds, e.g. "2026-11-23T19:27:55.123Z". 0 -> "".
std::string FormatTime(TimeMs t);

// "1h02m", "3.2s", "45ms": a compact human duration.
std::string FormatDuration(DurationMs d);

}  // namespace berth
