// GpuHistory: one GPU's recent telemetry in fixed memory. Two ring buffers:
// fine points (default one per second for 15 minutes) and coarse points
// (default one per minute for 24 hours). Each coarse point summarises the
// fine samples of its minute (means, plus the peak utilization and memory),
// so downsampling costs O(1) per sample and nothing is ever re-scanned.
#pragma once

#include <cstdint>
#include <limits>
#include <vector>

#include "common/clock.h"
#include "gpu/telemetry.h"

namespace berth::gpu {

// A reading over one resolution step. -1 in a field: not known in that step.
struct HistoryPoint {
  TimeMs time = 0;           // start of the step (aligned to the resolution)
  int32_t util = -1;         // percent; mean over the step
  int32_t util_max = -1;     // percent; peak over the step
  int32_t memory_used = -1;  // MiB; mean
  int32_t memory_max = -1;   // MiB; peak
  int32_t temperature = -1;  // degrees C; mean
  int32_t power_mw = -1;     // mean
  int32_t sm_clock = -1;     // MHz; mean
  int32_t samples = 0;       // how many samples were folded into this point
};

// A ring buffer of fixed capacity; the oldest entry is dropped when full.
template <typename T>
class Ring {
 public:
  explicit Ring(size_t capacity) : buf_(capacity > 0 ? capacity : 1) {}
  void Push(const T& v) {
    buf_[(start_ + size_) % buf_.size()] = v;
    if (size_ < buf_.size()) {
      ++size_;
    } else {
      start_ = (start_ + 1) % buf_.size();
    }
  }
  size_t size() const { return size_; }
  size_t capacity() const { return buf_.size(); }
  bool empty() const { return size_ == 0; }
  // i = 0 is the oldest.
  const T& at(size_t i) const { return buf_[(start_ + i) % buf_.size()]; }
  T& back() { return buf_[(start_ + size_ - 1) % buf_.size()]; }
  const T& back() const { return buf_[(start_ + size_ - 1) % buf_.size()]; }

 private:
  std::vector<T> buf_;
  size_t start_ = 0;
  size_t size_ = 0;
};

struct HistoryOptions {
  DurationMs fine_resolution = kSecond;
  DurationMs fine_span = 15 * kMinute;
  DurationMs coarse_resolution = kMinute;
  DurationMs coarse_span = 24 * kHour;
};

class GpuHistory {
 public:
  explicit GpuHistory(const HistoryOptions& options = {});

  // Folds a sample taken at `time` in. Samples must come in time order; two in
  // the same fine step are merged into one point. Not thread-safe.
  void Add(TimeMs time, const GpuSample& sample);

  // Points in time order, oldest first, with time >= since. Coarse() includes
  // the minute still being filled as its last point.
  std::vector<HistoryPoint> Fine(TimeMs since = 0) const;
  std::vector<HistoryPoint> Coarse(TimeMs since = 0) const;
  // Fine points when `since` lies within the fine span before `now`, else
  // coarse ones.
  std::vector<HistoryPoint> Since(TimeMs since, TimeMs now) const;

  const HistoryOptions& options() const { return options_; }

 private:
  // Sums for one step being filled.
  struct Accumulator {
    TimeMs step = std::numeric_limits<TimeMs>::min();
    int64_t util_sum = 0, util_n = 0, mem_sum = 0, mem_n = 0, temp_sum = 0, temp_n = 0,
            power_sum = 0, power_n = 0, clock_sum = 0, clock_n = 0;
    int32_t util_max = -1, mem_max = -1;
    int32_t samples = 0;
    void Add(const GpuSample& s);
    HistoryPoint Point() const;
  };

  HistoryOptions options_;
  Ring<HistoryPoint> fine_;
  Ring<HistoryPoint> coarse_;
  Accumulator fine_acc_;
  Accumulator coarse_acc_;
};

}  // namespace berth::gpu
