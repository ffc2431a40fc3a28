// Job traces for the simulator, in the canonical CSV format of
// /work/shared/traces/README.md:
//   job_id,submit_time,duration,num_gpus,queue
// submit_time and duration are integer seconds; num_gpus >= 1. Columns are
// found by name in the header; `queue` may be absent ("default"). Any other
// column is ignored, and the trace says so in `ignored`.
#pragma once

#include <string>
#include <vector>

#include "common/clock.h"
#include "common/status.h"

namespace berth::sim {

struct TraceJob {
  std::string name;         // job_id
  TimeMs submit = 0;        // milliseconds since the first submission
  DurationMs duration = 0;  // run time on `gpus` GPUs, consolidated
  int gpus = 1;
  std::string queue = "default";
};

struct Trace {
  std::vector<TraceJob> jobs;        // sorted by submit time (stable)
  std::vector<std::string> ignored;  // what in the file the simulator cannot model
};

// Parses CSV text. Errors name the line and the column ("line 7: duration: not an integer: \"x\"").
Result<Trace> ParseTraceCsv(const std::string& text);
// Reads and parses a file. IoError if it cannot be read.
Result<Trace> LoadTrace(const std::string& path);

}  // namespace berth::sim
