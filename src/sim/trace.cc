#include "sim/trace.h"

#include <algorithm>
#include <fstream>
#include <map>
#include <sstream>

namespace berth::sim {

namespace {

std::vector<std::string> SplitCsvLine(const std::string& line) {
  std::vector<std::string> out;
  std::string cur;
  bool quoted = false;
  for (char c : line) {
    if (c == '"') {
      quoted = !quoted;
    } else if (c == ',' && !quoted) {
      out.push_back(cur);
      cur.clear();
    } else if (c != '\r') {
      cur += c;
    }
  }
  out.push_back(cur);
  for (auto& f : out) {
    size_t b = f.find_first_not_of(" \t"), e = f.find_last_not_of(" \t");
    f = b == std::string::npos ? "" : f.substr(b, e - b + 1);
  }
  return out;
}

// Times and durations are seconds, at most ten years (as every duration in
// Berth: model/limits.h), so that their milliseconds add up without overflow.
constexpr int64_t kMaxSeconds = 3650LL * 24 * 3600;

bool ParseInt(const std::string& s, int64_t* v) {
  if (s.empty()) return false;
  size_t i = 0;
  bool neg = false;
  if (s[0] == '-') neg = true, i = 1;
  if (i == s.size()) return false;
  int64_t x = 0;
  for (; i < s.size(); ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    x = x * 10 + (s[i] - '0');
    if (x > kMaxSeconds) return false;
  }
  *v = neg ? -x : x;
  return true;
}

}  // namespace

Result<Trace> ParseTraceCsv(const std::string& text) {
  std::istringstream in(text);
  std::string line;
  int line_no = 0;
  std::map<std::string, int> col;
  std::vector<std::string> header;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.empty() || line[0] == '#') continue;
    header = SplitCsvLine(line);
    break;
  }
  if (header.empty()) return InvalidArgument("trace: empty file, expected a header line");
  for (int i = 0; i < static_cast<int>(header.size()); ++i) col[header[i]] = i;
  for (const char* need : {"job_id", "submit_time", "duration", "num_gpus"}) {
    if (!col.count(need))
      return InvalidArgument(std::string("trace: header: missing column ") + need);
  }
  Trace trace;
  for (const auto& h : header) {
    if (h != "job_id" && h != "submit_time" && h != "duration" && h != "num_gpus" && h != "queue") {
      trace.ignored.push_back("column " + h + " (not modelled)");
    }
  }
  int qcol = col.count("queue") ? col["queue"] : -1;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.empty() || line == "\r" || line[0] == '#') continue;
    auto f = SplitCsvLine(line);
    auto field = [&](const char* name) -> const std::string& {
      static const std::string kEmpty;
      int i = col[name];
      return i < static_cast<int>(f.size()) ? f[i] : kEmpty;
    };
    auto where = [&](const char* name) {
      return "trace: line " + std::to_string(line_no) + ": " + name;
    };
    TraceJob j;
    j.name = field("job_id");
    if (j.name.empty()) return InvalidArgument(where("job_id") + ": empty");
    int64_t submit = 0, duration = 0, gpus = 0;
    if (!ParseInt(field("submit_time"), &submit) || submit < 0) {
      return InvalidArgument(where("submit_time") + ": not an integer in 0.." +
                             std::to_string(kMaxSeconds) + " (seconds): \"" + field("submit_time") +
                             "\"");
    }
    if (!ParseInt(field("duration"), &duration) || duration < 0) {
      return InvalidArgument(where("duration") + ": not an integer in 0.." +
                             std::to_string(kMaxSeconds) + " (seconds): \"" + field("duration") +
                             "\"");
    }
    if (!ParseInt(field("num_gpus"), &gpus) || gpus < 1 || gpus > 100000) {
      return InvalidArgument(where("num_gpus") + ": not an integer in 1..100000: \"" +
                             field("num_gpus") + "\"");
    }
    j.submit = submit * kSecond;
    j.duration = std::max<int64_t>(duration, 1) * kSecond;
    j.gpus = static_cast<int>(gpus);
    if (qcol >= 0 && qcol < static_cast<int>(f.size()) && !f[qcol].empty()) j.queue = f[qcol];
    trace.jobs.push_back(std::move(j));
  }
  std::stable_sort(trace.jobs.begin(), trace.jobs.end(),
                   [](const TraceJob& a, const TraceJob& b) { return a.submit < b.submit; });
  return trace;
}

Result<Trace> LoadTrace(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return IoError("trace: cannot read " + path);
  std::stringstream ss;
  ss << f.rdbuf();
  auto t = ParseTraceCsv(ss.str());
  if (!t.ok()) return t.status().WithContext(path);
  return t;
}

}  // namespace berth::sim
