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

// GPU model names. Canonical: letters, digits and '-', 1 to 32 bytes.
inline constexpr size_t kMaxGpuModels = 16;  // in one job's resources.gpuModel
bool IsCanonicalGpuModel(const std::string& name);
// The canonical model of a device name as NVML reports it: vendor and
// product-line words dropped, the family kept, V100s told apart by memory
// ("Tesla V100-SXM2-32GB" -> V100M32, "NVIDIA A100-SXM4-80GB" -> A100,
// "Tesla T4" -> T4, "NVIDIA GeForce RTX 4090" -> RTX4090); a name that is
// canonical already is kept ("A10", a declared model); "" if nothing is left.
std::string CanonicalGpuModel(const std::string& device_name);

nlohmann::json ToJson(const GpuInfo& g);
nlohmann::json ToJson(const NodeInfo& n);

}  // namespace berth::model
