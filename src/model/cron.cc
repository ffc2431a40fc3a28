#include "model/cron.h"

#include <algorithm>
#include <cctype>
#include <sstream>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

namespace berth::model {
namespace {

int64_t ReadBE(const std::string& b, size_t pos, int n) {
  uint64_t v = 0;
  for (int i = 0; i < n; ++i) v = (v << 8) | static_cast<unsigned char>(b[pos + i]);
  if (n == 4) return static_cast<int32_t>(static_cast<uint32_t>(v));
  return static_cast<int64_t>(v);
}

// Reads a TZif file: a regular file of at most 1 MiB (the largest in tzdata is
// about 4 KiB). A directory ("Europe"), a device or a FIFO is an unknown zone,
// never a blocking read or an exception.
Status ReadZoneFile(const std::string& path, const std::string& name, const std::string& dir,
                    std::string* out) {
  auto unknown = [&](const std::string& why) {
    return InvalidArgument("unknown time zone \"" + name + "\" (" + why + ")");
  };
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return unknown("no file in " + dir);
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > (1 << 20)) {
    ::close(fd);
    return unknown("not a time zone file in " + dir);
  }
  out->resize(static_cast<size_t>(st.st_size));
  size_t got = 0;
  while (got < out->size()) {
    ssize_t n = ::read(fd, out->data() + got, out->size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  ::close(fd);
  out->resize(got);
  return Status::Ok();
}

int64_t FloorDiv(int64_t a, int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }

const char* kMonths[] = {"jan", "feb", "mar", "apr", "may", "jun",
                         "jul", "aug", "sep", "oct", "nov", "dec"};
const char* kDays[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};

// A field's names ("jan".."dec", "sun".."sat") and how many there are.
struct Names {
  const char* const* names = nullptr;
  int count = 0;
};

Result<int> ParseValue(const std::string& s, const std::string& field, int lo, int hi, Names names,
                       int name_base) {
  std::string lower = s;
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (int i = 0; i < names.count; ++i)
    if (lower == names.names[i]) return i + name_base;
  if (s.empty() || !std::all_of(s.begin(), s.end(),
                                [](char c) { return std::isdigit(static_cast<unsigned char>(c)); }))
    return InvalidArgument(field + ": \"" + s + "\" is not a number");
  if (s.size() > 4)
    return InvalidArgument(field + ": " + s + " is out of range " + std::to_string(lo) + "-" +
                           std::to_string(hi));
  int v = std::stoi(s);
  if (v < lo || v > hi)
    return InvalidArgument(field + ": " + s + " is out of range " + std::to_string(lo) + "-" +
                           std::to_string(hi));
  return v;
}

// Parses one field ("*/15", "1-5", "MON,WED", ...) into bits lo..hi.
template <size_t N>
Status ParseField(const std::string& text, const std::string& field, int lo, int hi, Names names,
                  int name_base, std::bitset<N>* bits, bool* star) {
  *star = text == "*" || text == "?";
  std::stringstream ss(text);
  std::string part;
  bool any = false;
  while (std::getline(ss, part, ',')) {
    any = true;
    int step = 1;
    size_t slash = part.find('/');
    if (slash != std::string::npos) {
      auto st = ParseValue(part.substr(slash + 1), field + " step", 1, hi - lo + 1, Names{}, 0);
      if (!st.ok()) return st.status();
      step = *st;
      part = part.substr(0, slash);
    }
    int a = lo, b = hi;
    if (part == "*" || part == "?") {
    } else {
      size_t dash = part.find('-');
      ASSIGN_OR_RETURN(a, ParseValue(part.substr(0, dash), field, lo, hi, names, name_base));
      if (dash != std::string::npos) {
        ASSIGN_OR_RETURN(b, ParseValue(part.substr(dash + 1), field, lo, hi, names, name_base));
        if (b < a) return InvalidArgument(field + ": range " + part + " goes backwards");
      } else {
        b = slash != std::string::npos ? hi : a;
      }
    }
    for (int v = a; v <= b; v += step) bits->set(v);
  }
  if (!any) return InvalidArgument(field + ": is empty");
  return Status::Ok();
}

}  // namespace

int64_t DaysFromCivil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

void CivilFromDays(int64_t z, int64_t* y, unsigned* m, unsigned* d) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  *d = doy - (153 * mp + 2) / 5 + 1;
  *m = mp < 10 ? mp + 3 : mp - 9;
  *y = static_cast<int64_t>(yoe) + era * 400 + (*m <= 2);
}

TimeZone TimeZone::Utc() { return TimeZone(); }

Result<TimeZone> TimeZone::Load(const std::string& name, const std::string& zoneinfo_dir) {
  TimeZone tz;
  tz.name_ = name;
  if (name.empty() || name == "UTC" || name == "Etc/UTC" || name == "Z") return tz;
  // A zone name is a relative path of [A-Za-z0-9_+-] components ("Europe/Berlin",
  // "Etc/GMT+5"), never "..", ".", an absolute path or an empty component.
  bool name_ok = name.size() <= 128 && name[0] != '/' && name.back() != '/';
  for (char c : name)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '/' || c == '_' || c == '+' ||
          c == '-' || c == '.'))
      name_ok = false;
  if (name.find("..") != std::string::npos || name.find("//") != std::string::npos ||
      name[0] == '.' || name.find("/.") != std::string::npos)
    name_ok = false;
  if (!name_ok) return InvalidArgument("unknown time zone \"" + name + "\"");
  std::string b;
  RETURN_IF_ERROR(ReadZoneFile(zoneinfo_dir + "/" + name, name, zoneinfo_dir, &b));
  auto bad = [&] { return InvalidArgument("time zone \"" + name + "\": not a valid TZif file"); };
  if (b.size() < 44 || b.compare(0, 4, "TZif") != 0) return bad();
  auto parse = [&](size_t pos, int time_size, size_t* end) -> Status {
    if (b.size() < pos + 44) return bad();
    int64_t isutcnt = ReadBE(b, pos + 20, 4), isstdcnt = ReadBE(b, pos + 24, 4),
            leapcnt = ReadBE(b, pos + 28, 4), timecnt = ReadBE(b, pos + 32, 4),
            typecnt = ReadBE(b, pos + 36, 4), charcnt = ReadBE(b, pos + 40, 4);
    for (int64_t c : {isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt})
      if (c < 0 || c > (1 << 20)) return bad();
    size_t p = pos + 44;
    size_t need = timecnt * time_size + timecnt + typecnt * 6 + charcnt +
                  leapcnt * (time_size + 4) + isstdcnt + isutcnt;
    if (b.size() < p + need || typecnt <= 0) return bad();
    std::vector<int64_t> times(timecnt);
    for (int64_t i = 0; i < timecnt; ++i) times[i] = ReadBE(b, p + i * time_size, time_size);
    p += timecnt * time_size;
    std::vector<int> idx(timecnt);
    for (int64_t i = 0; i < timecnt; ++i) idx[i] = static_cast<unsigned char>(b[p + i]);
    p += timecnt;
    std::vector<int64_t> offs(typecnt);
    std::vector<bool> dst(typecnt);
    for (int64_t i = 0; i < typecnt; ++i) {
      offs[i] = ReadBE(b, p + i * 6, 4);
      dst[i] = b[p + i * 6 + 4] != 0;
    }
    tz.transitions_ = times;
    tz.offsets_.clear();
    for (int i : idx) {
      if (i >= typecnt) return bad();
      tz.offsets_.push_back(offs[i]);
    }
    // Before the first transition: the first non-DST type (RFC 8536 3.2).
    tz.initial_offset_ = offs[0];
    for (int64_t i = 0; i < typecnt; ++i)
      if (!dst[i]) {
        tz.initial_offset_ = offs[i];
        break;
      }
    *end = p + need - timecnt * time_size - timecnt;
    return Status::Ok();
  };
  size_t end = 0;
  RETURN_IF_ERROR(parse(0, 4, &end));
  if (b[4] >= '2') RETURN_IF_ERROR(parse(end, 8, &end));
  return tz;
}

int64_t TimeZone::OffsetAt(int64_t t) const {
  auto it = std::upper_bound(transitions_.begin(), transitions_.end(), t);
  if (it == transitions_.begin()) return initial_offset_;
  return offsets_[it - transitions_.begin() - 1];
}

Result<CronSchedule> CronSchedule::Parse(const std::string& expr_in) {
  if (expr_in.size() > 256)
    return InvalidArgument("is " + std::to_string(expr_in.size()) + " bytes long, the most is 256");
  std::string expr = expr_in;
  while (!expr.empty() && std::isspace(static_cast<unsigned char>(expr.back()))) expr.pop_back();
  while (!expr.empty() && std::isspace(static_cast<unsigned char>(expr.front()))) expr.erase(0, 1);
  static const std::pair<const char*, const char*> kMacros[] = {
      {"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"},
      {"@weekly", "0 0 * * 0"}, {"@daily", "0 0 * * *"},    {"@midnight", "0 0 * * *"},
      {"@hourly", "0 * * * *"}};
  std::string fields_text = expr;
  if (!expr.empty() && expr[0] == '@') {
    bool found = false;
    for (const auto& [m, f] : kMacros)
      if (expr == m) {
        fields_text = f;
        found = true;
      }
    if (!found)
      return InvalidArgument("unknown macro \"" + expr +
                             "\" (use @yearly, @monthly, @weekly, @daily, @hourly or 5 fields)");
  }
  std::stringstream ss(fields_text);
  std::vector<std::string> f;
  for (std::string x; ss >> x;) f.push_back(x);
  if (f.size() != 5)
    return InvalidArgument("\"" + expr +
                           "\": needs 5 fields (minute hour day-of-month month day-of-week), got " +
                           std::to_string(f.size()));
  CronSchedule c;
  c.expr_ = expr;
  bool star = false;
  RETURN_IF_ERROR(ParseField(f[0], "minute", 0, 59, Names{}, 0, &c.minute_, &star));
  RETURN_IF_ERROR(ParseField(f[1], "hour", 0, 23, Names{}, 0, &c.hour_, &star));
  RETURN_IF_ERROR(ParseField(f[2], "day-of-month", 1, 31, Names{}, 0, &c.dom_, &c.dom_star_));
  RETURN_IF_ERROR(ParseField(f[3], "month", 1, 12, Names{kMonths, 12}, 1, &c.month_, &star));
  std::bitset<8> dow;
  RETURN_IF_ERROR(ParseField(f[4], "day-of-week", 0, 7, Names{kDays, 7}, 0, &dow, &c.dow_star_));
  for (int i = 0; i < 7; ++i) c.dow_[i] = dow[i];
  if (dow[7]) c.dow_[0] = true;  // 7 is Sunday too
  return c;
}

bool CronSchedule::Matches(int minute, int hour, int dom, int month, int dow) const {
  if (!minute_[minute] || !hour_[hour] || !month_[month]) return false;
  bool d1 = dom_[dom], d2 = dow_[dow];
  if (!dom_star_ && !dow_star_) return d1 || d2;
  return d1 && d2;
}

std::optional<TimeMs> CronSchedule::Next(TimeMs after, const TimeZone& tz) const {
  int64_t after_s = FloorDiv(after, 1000);
  // Start at the local day of `after`, minus one day to cover offsets.
  int64_t local0 = after_s + tz.OffsetAt(after_s);
  int64_t day = FloorDiv(local0, 86400) - 1;
  const int64_t kMaxDays = 366LL * 30;
  for (int64_t d = day; d < day + kMaxDays; ++d) {
    int64_t y;
    unsigned m, dd;
    CivilFromDays(d, &y, &m, &dd);
    if (!month_[m]) continue;
    int dow = static_cast<int>(((d % 7) + 11) % 7);  // 1970-01-01 was a Thursday (4)
    bool d1 = dom_[dd], d2 = dow_[dow];
    bool day_ok = (!dom_star_ && !dow_star_) ? (d1 || d2) : (d1 && d2);
    if (!day_ok) continue;
    for (int h = 0; h < 24; ++h) {
      if (!hour_[h]) continue;
      for (int mi = 0; mi < 60; ++mi) {
        if (!minute_[mi]) continue;
        int64_t local = d * 86400 + h * 3600 + mi * 60;
        // The UTC instants whose local time is `local`: try the offsets in
        // effect around it; keep the earliest one that is after `after`.
        std::optional<int64_t> best;
        auto consider = [&](int64_t t) {
          if (t + tz.OffsetAt(t) != local) return;
          if (!best || t < *best) best = t;
        };
        for (int64_t delta : {-86400, -7200, -3600, 0, 3600, 7200, 86400})
          consider(local - tz.OffsetAt(local - delta));
        // A local time that happens twice fires at its first occurrence only.
        if (best && *best <= after_s) continue;
        if (best) return *best * 1000;
      }
    }
  }
  return std::nullopt;
}

}  // namespace berth::model
