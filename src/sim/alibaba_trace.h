// The GPU-sharing trace format of Alibaba's cluster-trace-gpu-v2023 (Weng et
// al., USENIX ATC 2023): a node list and a pod (task) list, CSV.
//   nodes: sn,cpu_milli,memory_mib,gpu,model
//   pods:  name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,... (other
//          columns, times and phases, are ignored: the inflation experiment
//          does not use them)
// gpu_milli is the share of each GPU (1000 = whole; below 1000 only with
// num_gpu 1); gpu_spec is empty (any model) or models separated by '|'.
// Columns are found by name. Errors name the line and the column.
#pragma once

#include <string>
#include <vector>

#include "common/quantity.h"
#include "common/status.h"

namespace berth::sim {

struct PackNode {
  std::string name;
  MilliCpu cpu = 0;
  MiB memory = 0;
  int gpus = 0;
  std::string model;
};

struct PackTask {
  std::string name;
  MilliCpu cpu = 0;
  MiB memory = 0;
  int gpus = 0;                     // GPUs wanted (0: CPU only)
  MilliGpu milli = 0;               // of each GPU (1000: whole)
  std::vector<std::string> models;  // allowed GPU models (empty: any)
};

Result<std::vector<PackNode>> ParsePackNodesCsv(const std::string& text);
Result<std::vector<PackTask>> ParsePackTasksCsv(const std::string& text);
Result<std::vector<PackNode>> LoadPackNodes(const std::string& path);
Result<std::vector<PackTask>> LoadPackTasks(const std::string& path);

}  // namespace berth::sim
