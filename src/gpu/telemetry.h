// Live readings of one GPU, as an Inventory reports them (Inventory::Sample).
// A field the device or driver cannot report is std::nullopt, never a made-up
// zero, so that "not supported" and "idle" stay apart.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "common/quantity.h"
#include "gpu/health.h"
#include "model/job.h"

namespace berth::gpu {

// A compute process on a GPU.
struct GpuProcess {
  int pid = 0;
  std::optional<MiB> used_memory;  // nullopt when the driver cannot tell
  // Filled in by the Sampler, not by the Inventory:
  int pgid = 0;          // the process group (0: unknown, e.g. the process has exited)
  model::JobId job = 0;  // the job owning that process group (0: none)
};

struct GpuSample {
  std::string node;
  int index = 0;
  std::string uuid;
  std::string model;
  std::string pci_bus_id;  // "00000000:17:00.0"; empty when unknown
  // The device stopped answering (NVML_ERROR_GPU_IS_LOST): every reading
  // below is nullopt and the GPU should not receive new work.
  bool lost = false;
  std::optional<bool> mig_enabled;
  std::optional<int> util_percent;      // SM busy, 0-100
  std::optional<int> mem_util_percent;  // memory controller busy, 0-100
  std::optional<MiB> memory_total;
  std::optional<MiB> memory_used;
  std::optional<MiB> memory_free;
  std::optional<int> temperature_c;
  std::optional<int64_t> power_mw;  // milliwatts
  std::optional<int> sm_clock_mhz;
  std::optional<std::vector<GpuProcess>> processes;  // nullopt: not supported
  // Readings that failed for a reason other than "not supported", one line
  // each ("power: Insufficient Permissions").
  std::vector<std::string> errors;
  // Health readings (XIDs, ECC, retired/remapped pages, throttling) and the
  // checks unavailable on this GPU; see health.h.
  HealthReading health;
};

}  // namespace berth::gpu
