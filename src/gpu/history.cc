#include "gpu/history.h"

#include <algorithm>

namespace berth::gpu {
namespace {

TimeMs Step(TimeMs t, DurationMs resolution) {
  TimeMs q = t / resolution;
  if (t < 0 && q * resolution != t) --q;
  return q * resolution;
}

int32_t Mean(int64_t sum, int64_t n) {
  if (n == 0) return -1;
  return static_cast<int32_t>((sum + n / 2) / n);  // rounded
}

}  // namespace

void GpuHistory::Accumulator::Add(const GpuSample& s) {
  ++samples;
  if (s.util_percent) {
    util_sum += *s.util_percent;
    ++util_n;
    util_max = std::max(util_max, static_cast<int32_t>(*s.util_percent));
  }
  if (s.memory_used) {
    mem_sum += *s.memory_used;
    ++mem_n;
    mem_max = std::max(mem_max, static_cast<int32_t>(*s.memory_used));
  }
  if (s.temperature_c) {
    temp_sum += *s.temperature_c;
    ++temp_n;
  }
  if (s.power_mw) {
    power_sum += *s.power_mw;
    ++power_n;
  }
  if (s.sm_clock_mhz) {
    clock_sum += *s.sm_clock_mhz;
    ++clock_n;
  }
}

HistoryPoint GpuHistory::Accumulator::Point() const {
  HistoryPoint p;
  p.time = step;
  p.util = Mean(util_sum, util_n);
  p.util_max = util_max;
  p.memory_used = Mean(mem_sum, mem_n);
  p.memory_max = mem_max;
  p.temperature = Mean(temp_sum, temp_n);
  p.power_mw = Mean(power_sum, power_n);
  p.sm_clock = Mean(clock_sum, clock_n);
  p.samples = samples;
  return p;
}

GpuHistory::GpuHistory(const HistoryOptions& o)
    : options_(o),
      fine_(static_cast<size_t>(
          std::max<DurationMs>(1, o.fine_span / std::max<DurationMs>(1, o.fine_resolution)))),
      coarse_(static_cast<size_t>(
          std::max<DurationMs>(1, o.coarse_span / std::max<DurationMs>(1, o.coarse_resolution)))) {}

void GpuHistory::Add(TimeMs time, const GpuSample& sample) {
  TimeMs fstep = Step(time, options_.fine_resolution);
  if (fstep < fine_acc_.step) return;  // out of order: dropped
  if (fstep != fine_acc_.step) {
    fine_acc_ = Accumulator();
    fine_acc_.step = fstep;
    fine_acc_.Add(sample);
    fine_.Push(fine_acc_.Point());
  } else {
    fine_acc_.Add(sample);
    fine_.back() = fine_acc_.Point();
  }

  TimeMs cstep = Step(time, options_.coarse_resolution);
  if (cstep != coarse_acc_.step) {
    if (coarse_acc_.samples > 0) coarse_.Push(coarse_acc_.Point());
    coarse_acc_ = Accumulator();
    coarse_acc_.step = cstep;
  }
  coarse_acc_.Add(sample);
}

std::vector<HistoryPoint> GpuHistory::Fine(TimeMs since) const {
  std::vector<HistoryPoint> out;
  out.reserve(fine_.size());
  for (size_t i = 0; i < fine_.size(); ++i) {
    if (fine_.at(i).time >= since) out.push_back(fine_.at(i));
  }
  return out;
}

std::vector<HistoryPoint> GpuHistory::Coarse(TimeMs since) const {
  std::vector<HistoryPoint> out;
  out.reserve(coarse_.size() + 1);
  for (size_t i = 0; i < coarse_.size(); ++i) {
    if (coarse_.at(i).time >= since) out.push_back(coarse_.at(i));
  }
  if (coarse_acc_.samples > 0 && coarse_acc_.step >= since) out.push_back(coarse_acc_.Point());
  return out;
}

std::vector<HistoryPoint> GpuHistory::Since(TimeMs since, TimeMs now) const {
  if (since >= now - options_.fine_span) return Fine(since);
  return Coarse(since);
}

}  // namespace berth::gpu
