// The shim's metrics collector for experiment trials (docs/experiments.md):
// it sees every byte of the task's output on its way to output.log, finds
// Katib-format `name=value` pairs with the experiment's regex, and appends
// one JSON line per output line that has any of the experiment's metrics
// ({"accuracy": 0.9, "step": 3}) to the trial's metrics file. Because the
// shim reads all output before it reports the task's exit, a trial that ends
// at once still has every metric it printed: there is no collector to start.
//
// Configured by the task's environment, which the experiment controller
// sets: BERTH_METRICS_STDOUT_FILE (where to append), BERTH_METRICS_REGEX (two
// groups: name and value) and BERTH_METRICS_NAMES (comma-separated; "step"
// and "epoch" are kept too, as the step).
#pragma once

#include <map>
#include <memory>
#include <regex>
#include <string>
#include <vector>

namespace berth::exec {

class MetricsTap {
 public:
  // nullptr unless the environment asks for a tap (or its regex is invalid).
  static std::unique_ptr<MetricsTap> FromEnv(const std::map<std::string, std::string>& env);
  ~MetricsTap();

  // Output bytes, in order; complete lines are parsed at once.
  void Feed(const char* p, size_t n);
  // Parses a last line without a newline; call when the output has ended.
  void Flush();

 private:
  MetricsTap(int fd, std::regex re, std::vector<std::string> names)
      : fd_(fd), re_(std::move(re)), names_(std::move(names)) {}
  void Line(const std::string& line);

  int fd_;
  std::regex re_;
  std::vector<std::string> names_;
  std::string partial_;
  bool skipping_ = false;  // inside a line longer than the bound: dropped
};

}  // namespace berth::exec
