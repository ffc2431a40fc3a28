#include "common/quantity.h"

#include <cstdio>

namespace berth {

std::string FormatMilli(int64_t milli) {
  if (milli % 1000 == 0) return std::to_string(milli / 1000);
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.3f", milli / 1000.0);
  std::string s = buf;
  while (!s.empty() && s.back() == '0') s.pop_back();
  return s;
}

}  // namespace berth
