// Cron schedules: standard 5-field expressions (minute hour day-of-month
// month day-of-week; lists, ranges, steps, names like MON and JAN) and the
// shorthands @yearly @annually @monthly @weekly @daily @midnight @hourly, in
// a time zone read from the TZ database files (/usr/share/zoneinfo).
//
// Time zones: we parse the TZif file ourselves (version 1 and 2+ data: the
// list of transitions and their UTC offsets) instead of calling localtime_r
// with a changed TZ variable, which is process-global and not thread-safe.
// After the file's last transition the last offset is kept (Debian ships
// "fat" files with transitions up to 2037).
//
// Daylight saving: a local time that does not exist (the hour skipped in
// spring) does not fire; a local time that happens twice (autumn) fires
// once, at its first occurrence. As in Vixie cron, when both day-of-month
// and day-of-week are restricted, a day matching either fires.
#pragma once

#include <bitset>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/status.h"

namespace berth::model {

class TimeZone {
 public:
  // "UTC", "Europe/Berlin", ... InvalidArgument for an unknown zone.
  static Result<TimeZone> Load(const std::string& name,
                               const std::string& zoneinfo_dir = "/usr/share/zoneinfo");
  static TimeZone Utc();
  // Seconds east of UTC in effect at `utc_seconds`.
  int64_t OffsetAt(int64_t utc_seconds) const;
  const std::string& name() const { return name_; }

 private:
  std::string name_ = "UTC";
  std::vector<int64_t> transitions_;  // UTC seconds, ascending
  std::vector<int64_t> offsets_;      // offset after each transition
  int64_t initial_offset_ = 0;        // before the first transition
};

class CronSchedule {
 public:
  // InvalidArgument naming the field: "minute: 61 is out of range 0-59".
  static Result<CronSchedule> Parse(const std::string& expr);
  // The first fire time strictly after `after` (ms since the epoch, UTC),
  // on whole minutes, or nullopt if it never fires (e.g. 30 February).
  std::optional<TimeMs> Next(TimeMs after, const TimeZone& tz) const;
  // Whether the local civil time matches (month 1-12, dow 0-6 with 0 = Sunday).
  bool Matches(int minute, int hour, int dom, int month, int dow) const;
  const std::string& expr() const { return expr_; }

 private:
  std::string expr_;
  std::bitset<60> minute_;
  std::bitset<24> hour_;
  std::bitset<32> dom_;
  std::bitset<13> month_;
  std::bitset<7> dow_;
  bool dom_star_ = true, dow_star_ = true;
};

// Days since 1970-01-01 for a civil date, and back (proleptic Gregorian).
int64_t DaysFromCivil(int64_t y, unsigned m, unsigned d);
void CivilFromDays(int64_t z, int64_t* y, unsigned* m, unsigned* d);

}  // namespace berth::model
