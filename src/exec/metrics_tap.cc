#include "exec/metrics_tap.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <nlohmann/json.hpp>

namespace berth::exec {
namespace {

constexpr size_t kMaxLine = 64 * 1024;

}  // namespace

std::unique_ptr<MetricsTap> MetricsTap::FromEnv(const std::map<std::string, std::string>& env) {
  auto file = env.find("BERTH_METRICS_STDOUT_FILE");
  auto regex = env.find("BERTH_METRICS_REGEX");
  if (file == env.end() || regex == env.end() || file->second.empty()) return nullptr;
  std::regex re;
  try {
    re = std::regex(regex->second);
  } catch (const std::regex_error&) {
    return nullptr;
  }
  std::vector<std::string> names;
  auto n = env.find("BERTH_METRICS_NAMES");
  if (n != env.end()) {
    size_t pos = 0;
    while (pos <= n->second.size()) {
      size_t comma = n->second.find(',', pos);
      std::string name = n->second.substr(pos, comma == std::string::npos ? comma : comma - pos);
      if (!name.empty()) names.push_back(name);
      if (comma == std::string::npos) break;
      pos = comma + 1;
    }
  }
  int fd =
      ::open(file->second.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (fd < 0) return nullptr;
  return std::unique_ptr<MetricsTap>(new MetricsTap(fd, std::move(re), std::move(names)));
}

MetricsTap::~MetricsTap() {
  if (fd_ >= 0) ::close(fd_);
}

void MetricsTap::Feed(const char* p, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    char c = p[i];
    if (c == '\n') {
      if (!skipping_) Line(partial_);
      partial_.clear();
      skipping_ = false;
      continue;
    }
    if (skipping_) continue;
    partial_.push_back(c);
    if (partial_.size() > kMaxLine) {
      partial_.clear();
      skipping_ = true;
    }
  }
}

void MetricsTap::Flush() {
  if (!skipping_ && !partial_.empty()) Line(partial_);
  partial_.clear();
  skipping_ = false;
}

void MetricsTap::Line(const std::string& line) {
  if (line.find('=') == std::string::npos && line.find(':') == std::string::npos) return;
  nlohmann::json rec = nlohmann::json::object();
  bool any = false;
  for (std::sregex_iterator it(line.begin(), line.end(), re_), end; it != end; ++it) {
    if (it->size() < 3) continue;
    std::string name = (*it)[1];
    std::string text = (*it)[2];
    char* stop = nullptr;
    double v = std::strtod(text.c_str(), &stop);
    if (text.empty() || *stop != '\0' || !std::isfinite(v)) continue;
    bool wanted = name == "step" || name == "epoch";
    for (const auto& w : names_) wanted = wanted || w == name;
    if (!wanted) continue;
    rec[name] = v;
    if (name != "step" && name != "epoch") any = true;
  }
  if (!any) return;
  std::string s = rec.dump() + "\n";
  const char* p = s.data();
  size_t left = s.size();
  while (left > 0) {
    ssize_t w = ::write(fd_, p, left);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return;
    p += w;
    left -= static_cast<size_t>(w);
  }
}

}  // namespace berth::exec
