#include "sim/alibaba_trace.h"

#include <fstream>
#include <map>
#include <sstream>

namespace berth::sim {

namespace {

std::vector<std::string> Split(const std::string& line, char sep) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : line) {
    if (c == sep) {
      out.push_back(cur);
      cur.clear();
    } else if (c != '\r' && c != '"') {
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

// A non-negative integer of at most `max`.
bool ParseCount(const std::string& s, int64_t max, int64_t* v) {
  if (s.empty() || s.size() > 18) return false;
  int64_t x = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    x = x * 10 + (c - '0');
  }
  if (x > max) return false;
  *v = x;
  return true;
}

struct Table {
  std::map<std::string, int> col;
  std::vector<std::pair<int, std::vector<std::string>>> rows;  // (line number, fields)
};

Result<Table> ReadTable(const std::string& text, const std::string& what,
                        std::initializer_list<const char*> need) {
  std::istringstream in(text);
  std::string line;
  int line_no = 0;
  Table t;
  bool header = false;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.empty() || line == "\r" || line[0] == '#') continue;
    auto fields = Split(line, ',');
    if (!header) {
      for (int i = 0; i < static_cast<int>(fields.size()); ++i) t.col[fields[i]] = i;
      for (const char* n : need) {
        if (!t.col.count(n))
          return InvalidArgument(what + ": header: missing column " + std::string(n));
      }
      header = true;
      continue;
    }
    if (fields.size() < t.col.size()) {
      return InvalidArgument(what + ": line " + std::to_string(line_no) + ": expected " +
                             std::to_string(t.col.size()) + " fields, got " +
                             std::to_string(fields.size()));
    }
    t.rows.push_back({line_no, std::move(fields)});
  }
  if (!header) return InvalidArgument(what + ": empty file, expected a header line");
  return t;
}

Status FieldError(const std::string& what, int line, const std::string& column,
                  const std::string& why, const std::string& value) {
  return InvalidArgument(what + ": line " + std::to_string(line) + ": " + column + ": " + why +
                         ": \"" + value + "\"");
}

Result<std::string> ReadFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return IoError("cannot read " + path);
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

constexpr int64_t kMaxCpuMilli = 1'000'000'000;  // a million CPUs
constexpr int64_t kMaxMemMiB = 1LL << 40;
constexpr int64_t kMaxGpus = 1024;

}  // namespace

Result<std::vector<PackNode>> ParsePackNodesCsv(const std::string& text) {
  const std::string what = "node list";
  auto t = ReadTable(text, what, {"sn", "cpu_milli", "memory_mib", "gpu", "model"});
  if (!t.ok()) return t.status();
  std::vector<PackNode> out;
  for (const auto& [line, f] : t->rows) {
    PackNode n;
    n.name = f[t->col["sn"]];
    if (n.name.empty()) return FieldError(what, line, "sn", "empty", "");
    int64_t v;
    const std::string& cpu = f[t->col["cpu_milli"]];
    if (!ParseCount(cpu, kMaxCpuMilli, &v))
      return FieldError(what, line, "cpu_milli", "not a count", cpu);
    n.cpu = v;
    const std::string& mem = f[t->col["memory_mib"]];
    if (!ParseCount(mem, kMaxMemMiB, &v))
      return FieldError(what, line, "memory_mib", "not a count", mem);
    n.memory = v;
    const std::string& gpu = f[t->col["gpu"]];
    if (!ParseCount(gpu, kMaxGpus, &v))
      return FieldError(what, line, "gpu", "not a count up to 1024", gpu);
    n.gpus = static_cast<int>(v);
    n.model = f[t->col["model"]];
    if (n.gpus > 0 && n.model.empty())
      return FieldError(what, line, "model", "empty for a node with GPUs", "");
    out.push_back(std::move(n));
  }
  if (out.empty()) return InvalidArgument(what + ": no nodes");
  return out;
}

Result<std::vector<PackTask>> ParsePackTasksCsv(const std::string& text) {
  const std::string what = "pod list";
  auto t = ReadTable(text, what, {"name", "cpu_milli", "memory_mib", "num_gpu", "gpu_milli"});
  if (!t.ok()) return t.status();
  int spec_col = t->col.count("gpu_spec") ? t->col["gpu_spec"] : -1;
  std::vector<PackTask> out;
  for (const auto& [line, f] : t->rows) {
    PackTask p;
    p.name = f[t->col["name"]];
    int64_t v;
    const std::string& cpu = f[t->col["cpu_milli"]];
    if (!ParseCount(cpu, kMaxCpuMilli, &v))
      return FieldError(what, line, "cpu_milli", "not a count", cpu);
    p.cpu = v;
    const std::string& mem = f[t->col["memory_mib"]];
    if (!ParseCount(mem, kMaxMemMiB, &v))
      return FieldError(what, line, "memory_mib", "not a count", mem);
    p.memory = v;
    const std::string& num = f[t->col["num_gpu"]];
    if (!ParseCount(num, kMaxGpus, &v))
      return FieldError(what, line, "num_gpu", "not a count up to 1024", num);
    p.gpus = static_cast<int>(v);
    const std::string& milli = f[t->col["gpu_milli"]];
    if (!ParseCount(milli, 1000, &v))
      return FieldError(what, line, "gpu_milli", "not 0..1000", milli);
    p.milli = v;
    if (p.gpus > 0 && p.milli == 0)
      return FieldError(what, line, "gpu_milli", "0 with num_gpu > 0", milli);
    if (p.gpus == 0) p.milli = 0;
    if (p.gpus > 1 && p.milli != 1000)
      return FieldError(what, line, "gpu_milli", "a fraction with num_gpu > 1", milli);
    if (spec_col >= 0 && !f[spec_col].empty()) {
      for (auto& m : Split(f[spec_col], '|')) {
        if (m.empty())
          return FieldError(what, line, "gpu_spec", "an empty model name", f[spec_col]);
        p.models.push_back(m);
      }
    }
    out.push_back(std::move(p));
  }
  if (out.empty()) return InvalidArgument(what + ": no pods");
  return out;
}

Result<std::vector<PackNode>> LoadPackNodes(const std::string& path) {
  auto text = ReadFile(path);
  if (!text.ok()) return text.status();
  auto r = ParsePackNodesCsv(*text);
  if (!r.ok()) return r.status().WithContext(path);
  return r;
}

Result<std::vector<PackTask>> LoadPackTasks(const std::string& path) {
  auto text = ReadFile(path);
  if (!text.ok()) return text.status();
  auto r = ParsePackTasksCsv(*text);
  if (!r.ok()) return r.status().WithContext(path);
  return r;
}

}  // namespace berth::sim
