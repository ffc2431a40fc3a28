// What a node offers: its GPUs (with NVLink neighbours where known), CPU and
// memory. Filled in by gpu/ (NVML or declared GPUs) or by an engine executor.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "common/quantity.h"

namespace berth::model {

struct GpuInfo {
  int index = 0;
  std::string uuid;
  std::string model;
  MiB memory = 0;
  std::vector<int> nvlink_peers;  // indices of GPUs on the same node joined by NVLink
  bool declared = false;          // declared (simulated): no driver readings
};

struct NodeInfo {
  std::string name;
  std::string address;  // where other nodes reach it (rendezvous, MASTER_ADDR)
  std::vector<GpuInfo> gpus;
  MilliCpu cpu = 0;
  MiB memory = 0;
};

nlohmann::json ToJson(const GpuInfo& g);
nlohmann::json ToJson(const NodeInfo& n);

}  // namespace berth::model
