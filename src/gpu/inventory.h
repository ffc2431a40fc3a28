// GPU inventory: which nodes and GPUs exist. The embedded default asks NVML
// (loaded at run time) and falls back to declared, simulated GPUs.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "model/node.h"

namespace berth::gpu {

class Inventory {
 public:
  virtual ~Inventory() = default;
  // A short description for logs ("declared: 4 simulated GPUs").
  virtual std::string Describe() const = 0;
  // The nodes and their GPUs as of now.
  virtual std::vector<model::NodeInfo> Nodes() const = 0;
};

struct DeclaredOptions {
  std::string node_name;  // default: this host's name
  int gpus = 0;
  std::string model = "Simulated GPU";
  MiB memory_per_gpu = 81920;
  MilliCpu cpu = 0;  // 0: this machine's cores
  MiB memory = 0;    // 0: this machine's memory
};

// N simulated GPUs on this machine, for hosts without NVIDIA GPUs. UUIDs are
// stable for a given node name and index.
std::unique_ptr<Inventory> MakeDeclaredInventory(const DeclaredOptions& options);

// This machine's CPU cores (milli) and memory (MiB) as the kernel reports them.
MilliCpu HostCpu();
MiB HostMemory();
std::string HostName();

}  // namespace berth::gpu
