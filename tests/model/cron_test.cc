// Cron expressions and time zones: fixed cases, DST edges, and Next checked
// against a minute-by-minute brute force over many expressions and zones.
#include "model/cron.h"
#include "model/pipeline.h"

#include <gtest/gtest.h>

namespace berth::model {
namespace {

TimeMs Utc(int y, int mo, int d, int h = 0, int mi = 0) {
  return (DaysFromCivil(y, mo, d) * 86400 + h * 3600 + mi * 60) * 1000;
}

TimeZone Zone(const std::string& name) {
  auto tz = TimeZone::Load(name);
  EXPECT_TRUE(tz.ok()) << tz.status().message();
  return tz.ok() ? *tz : TimeZone::Utc();
}

TimeMs Next(const std::string& expr, TimeMs after, const TimeZone& tz = TimeZone::Utc()) {
  auto c = CronSchedule::Parse(expr);
  EXPECT_TRUE(c.ok()) << expr << ": " << c.status().message();
  auto n = c->Next(after, tz);
  return n ? *n : -1;
}

TEST(Cron, FixedCasesInUtc) {
  TimeMs t = Utc(2026, 11, 23, 20, 31);
  EXPECT_EQ(Next("* * * * *", t), Utc(2026, 11, 23, 20, 32));
  EXPECT_EQ(Next("*/15 * * * *", t), Utc(2026, 11, 23, 20, 45));
  EXPECT_EQ(Next("0 * * * *", t), Utc(2026, 11, 23, 21, 0));
  EXPECT_EQ(Next("@hourly", t), Utc(2026, 11, 23, 21, 0));
  EXPECT_EQ(Next("@daily", t), Utc(2026, 11, 24));
  EXPECT_EQ(Next("@weekly", t), Utc(2026, 11, 29));  // a Sunday
  EXPECT_EQ(Next("@monthly", t), Utc(2026, 12, 1));
  EXPECT_EQ(Next("@yearly", t), Utc(2027, 1, 1));
  EXPECT_EQ(Next("30 9 * * MON-FRI", t), Utc(2026, 11, 24, 9, 30));
  EXPECT_EQ(Next("0 0 29 2 *", t), Utc(2028, 2, 29));
  EXPECT_EQ(Next("0 12 1,15 JAN,jul *", t), Utc(2027, 1, 1, 12));
  EXPECT_EQ(Next("0 0 * * 7", t), Utc(2026, 11, 29));  // 7 is Sunday
  // Both day fields restricted: either matches (Vixie cron).
  EXPECT_EQ(Next("0 0 1 * FRI", t), Utc(2026, 11, 27));
  EXPECT_EQ(Next("0 0 30 2 *", t), -1);  // never
  EXPECT_EQ(Next("5-10/2 3 * * *", Utc(2026, 1, 1, 3, 7)), Utc(2026, 1, 1, 3, 9));
  // Strictly after, on whole minutes.
  EXPECT_EQ(Next("* * * * *", Utc(2026, 1, 1, 0, 0) + 500), Utc(2026, 1, 1, 0, 1));
}

TEST(Cron, RejectsBadExpressionsNamingTheField) {
  auto msg = [](const std::string& e) {
    auto c = CronSchedule::Parse(e);
    return c.ok() ? std::string("ok") : c.status().message();
  };
  EXPECT_EQ(msg("61 * * * *"), "minute: 61 is out of range 0-59");
  EXPECT_EQ(msg("* 24 * * *"), "hour: 24 is out of range 0-23");
  EXPECT_EQ(msg("* * 0 * *"), "day-of-month: 0 is out of range 1-31");
  EXPECT_EQ(msg("* * * 13 *"), "month: 13 is out of range 1-12");
  EXPECT_EQ(msg("* * * * funday"), "day-of-week: \"funday\" is not a number");
  EXPECT_NE(msg("* * * *").find("needs 5 fields"), std::string::npos);
  EXPECT_NE(msg("@often").find("unknown macro"), std::string::npos);
  EXPECT_EQ(msg("5-1 * * * *"), "minute: range 5-1 goes backwards");
  EXPECT_EQ(msg("*/0 * * * *"), "minute step: 0 is out of range 1-60");
}

TEST(Cron, TimeZoneOffsetsFromTzif) {
  TimeZone berlin = Zone("Europe/Berlin");
  EXPECT_EQ(berlin.OffsetAt(Utc(2026, 1, 15) / 1000), 3600);
  EXPECT_EQ(berlin.OffsetAt(Utc(2026, 7, 15) / 1000), 7200);
  TimeZone ny = Zone("America/New_York");
  EXPECT_EQ(ny.OffsetAt(Utc(2026, 1, 15) / 1000), -5 * 3600);
  EXPECT_EQ(ny.OffsetAt(Utc(2026, 7, 15) / 1000), -4 * 3600);
  EXPECT_EQ(Zone("Asia/Kolkata").OffsetAt(Utc(2026, 7, 15) / 1000), 5 * 3600 + 1800);
  EXPECT_FALSE(TimeZone::Load("Mars/Olympus").ok());
  EXPECT_FALSE(TimeZone::Load("../etc/passwd").ok());
}

// Found by the cron fuzz target: a zone name that is a directory of the zone
// database ("Europe") threw from the file read and aborted the process.
TEST(Cron, ZoneNamesThatAreNotZoneFilesAreRefusedWithoutThrowing) {
  for (const char* name :
       {"Europe", "Europe/", "America/", ".", "./UTC", "Europe//Berlin", "Europe/./Berlin",
        "zone1970.tab", "Europe/Berlin\n", "Europe/Ber lin"}) {
    auto tz = TimeZone::Load(name);
    EXPECT_FALSE(tz.ok()) << name;
    if (!tz.ok()) {
      EXPECT_NE(tz.status().message().find("time zone"), std::string::npos) << name;
    }
  }
  auto spec = ParseCronPipelineSpec(
      "apiVersion: berth/v1\nkind: CronPipeline\nmetadata: {name: n}\n"
      "spec:\n  schedule: \"30 2 * * *\"\n  timezone: Europe\n  pipeline:\n"
      "    apiVersion: berth/v1\n    kind: Pipeline\n    metadata: {name: n}\n"
      "    spec:\n      steps:\n      - name: a\n        command: [\"true\"]\n");
  ASSERT_FALSE(spec.ok());
  EXPECT_NE(spec.status().message().find("Europe"), std::string::npos) << spec.status().message();
}

TEST(Cron, DaylightSavingEdgesInBerlin) {
  TimeZone berlin = Zone("Europe/Berlin");
  // 09:00 local is 08:00 UTC in winter and 07:00 UTC in summer.
  EXPECT_EQ(Next("0 9 * * *", Utc(2026, 1, 10), berlin), Utc(2026, 1, 10, 8));
  EXPECT_EQ(Next("0 9 * * *", Utc(2026, 7, 10), berlin), Utc(2026, 7, 10, 7));
  // 2026-03-29 02:30 local does not exist (clocks jump 02:00 -> 03:00): skipped.
  EXPECT_EQ(Next("30 2 * * *", Utc(2026, 3, 28, 12), berlin), Utc(2026, 3, 30, 0, 30));
  // 2026-10-25 02:30 local happens twice: it fires once, at the first (00:30 UTC).
  TimeMs first = Next("30 2 * * *", Utc(2026, 10, 24, 12), berlin);
  EXPECT_EQ(first, Utc(2026, 10, 25, 0, 30));
  EXPECT_EQ(Next("30 2 * * *", first, berlin), Utc(2026, 10, 26, 1, 30));
}

// Local civil fields of a UTC minute, and whether an earlier instant had the same local time.
bool BruteMatch(const CronSchedule& c, const TimeZone& tz, int64_t t) {
  int64_t local = t + tz.OffsetAt(t);
  for (int64_t d : {1800, 3600, 7200})
    if (t - d + tz.OffsetAt(t - d) == local) return false;  // a repeat of an earlier local time
  int64_t day = local >= 0 ? local / 86400 : (local - 86399) / 86400;
  int64_t secs = local - day * 86400;
  int64_t y;
  unsigned m, dd;
  CivilFromDays(day, &y, &m, &dd);
  int dow = static_cast<int>(((day % 7) + 11) % 7);
  return c.Matches(static_cast<int>(secs % 3600 / 60), static_cast<int>(secs / 3600), dd, m, dow);
}

TEST(Cron, NextAgreesWithBruteForce) {
  const char* exprs[] = {"*/7 * * * *",    "0 */5 * * *",  "30 2 * * *",
                         "15 1-3 * * SUN", "0 0 1,31 * *", "0 12 * * 1-5",
                         "59 23 * * 6",    "0 3 13 * FRI", "*/20 2 25-31 3,10 *"};
  const char* zones[] = {"UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe",
                         "Asia/Kolkata"};
  // Windows around both 2026 European DST changes.
  const TimeMs starts[] = {Utc(2026, 3, 20), Utc(2026, 10, 18)};
  for (const char* zn : zones) {
    TimeZone tz = Zone(zn);
    for (const char* e : exprs) {
      auto c = CronSchedule::Parse(e);
      ASSERT_TRUE(c.ok());
      for (TimeMs start : starts) {
        TimeMs end = start + 16LL * 86400 * 1000;
        TimeMs cur = start;
        int64_t t = start / 1000;
        int checked = 0;
        for (;;) {
          auto n = c->Next(cur, tz);
          ASSERT_TRUE(n.has_value());
          // Brute force: the first matching minute after cur.
          int64_t b = (cur / 1000 / 60 + 1) * 60;
          while (!BruteMatch(*c, tz, b) && b * 1000 <= *n + 1) b += 60;
          ASSERT_EQ(b * 1000, *n) << e << " in " << zn << " after " << FormatTime(cur);
          cur = *n;
          t = cur / 1000;
          if (cur > end || ++checked > 400) break;
        }
        (void)t;
      }
    }
  }
}

}  // namespace
}  // namespace berth::model
