// GPU inventory: which nodes and GPUs exist. The embedded default asks NVML
// (loaded at run time) and falls back to declared, simulated GPUs.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "gpu/telemetry.h"
#include "model/node.h"

namespace berth::gpu {

class Inventory {
 public:
  virtual ~Inventory() = default;
  // A short description for logs ("declared: 4 simulated GPUs").
  virtual std::string Describe() const = 0;
  // The nodes and their GPUs as of now.
  virtual std::vector<model::NodeInfo> Nodes() const = 0;
  // Reads every GPU's live telemetry once (one GpuSample per GPU of Nodes()).
  // Per-GPU trouble (a field not supported, a lost device) is reported inside
  // the samples; an error means nothing could be read at all. The default
  // (declared GPUs, engines without telemetry) reports identity and total
  // memory only. Thread-safe (NVML serializes concurrent calls); Nodes() may
  // be called while a Sample() is under way.
  virtual Result<std::vector<GpuSample>> Sample();
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

struct NvmlOptions {
  // The NVML library to dlopen. Empty: $BERTH_NVML_LIBRARY if set, else
  // "libnvidia-ml.so.1" (found through the dynamic loader's search path).
  std::string library_path;
  std::string node_name;  // default: this host's name
  MilliCpu cpu = 0;       // 0: this machine's cores
  MiB memory = 0;         // 0: this machine's memory
};

// This machine's GPUs as NVML sees them, NVML loaded at run time with dlopen.
// Fails (kUnavailable) when the library cannot be loaded, lacks a required
// function, nvmlInit fails, or it reports no GPU; the message says which.
Result<std::unique_ptr<Inventory>> MakeNvmlInventory(const NvmlOptions& options);

struct LocalInventoryOptions {
  bool use_nvml = true;  // false: declared GPUs without trying NVML
  NvmlOptions nvml;
  DeclaredOptions declared;
};

// The inventory for this machine: NVML when it loads and reports GPUs, else
// the declared GPUs, with one log line saying why NVML was not used. Never null.
std::unique_ptr<Inventory> MakeLocalInventory(const LocalInventoryOptions& options);

// The library path MakeNvmlInventory would load for `configured`.
std::string ResolveNvmlLibraryPath(const std::string& configured);

// This machine's CPU cores (milli) and memory (MiB) as the kernel reports them.
MilliCpu HostCpu();
MiB HostMemory();
std::string HostName();

}  // namespace berth::gpu
