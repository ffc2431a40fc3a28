// NvmlLibrary: libnvidia-ml loaded with dlopen and its functions resolved with
// dlsym. Required functions must all resolve; optional ones (newer or older
// variants, NVLink, MIG) may be null and callers check before use.
#pragma once

#include <memory>
#include <string>

#include "common/status.h"
#include "gpu/nvml_api.h"

namespace berth::gpu {

class NvmlLibrary {
 public:
  // Loads `path` (RTLD_NOW | RTLD_LOCAL) and resolves the functions. Does not
  // call nvmlInit. kUnavailable names the path and dlerror() or the missing
  // symbol.
  static Result<std::unique_ptr<NvmlLibrary>> Load(const std::string& path);
  ~NvmlLibrary();  // dlclose
  NvmlLibrary(const NvmlLibrary&) = delete;
  NvmlLibrary& operator=(const NvmlLibrary&) = delete;

  const std::string& path() const { return path_; }
  // "Not Supported (3)": nvmlErrorString when present, else a built-in name.
  std::string ErrorString(nvmlReturn_t r) const;

  // Required.
  decltype(&nvmlInit_v2) init = nullptr;
  decltype(&nvmlShutdown) shutdown = nullptr;
  decltype(&nvmlDeviceGetCount_v2) get_count = nullptr;
  decltype(&nvmlDeviceGetHandleByIndex_v2) get_handle = nullptr;
  decltype(&nvmlDeviceGetName) get_name = nullptr;
  decltype(&nvmlDeviceGetUUID) get_uuid = nullptr;
  decltype(&nvmlDeviceGetMemoryInfo) get_memory = nullptr;
  decltype(&nvmlDeviceGetUtilizationRates) get_utilization = nullptr;
  // Optional.
  decltype(&nvmlErrorString) error_string = nullptr;
  decltype(&nvmlDeviceGetPciInfo_v3) get_pci = nullptr;
  decltype(&nvmlDeviceGetTemperature) get_temperature = nullptr;
  decltype(&nvmlDeviceGetPowerUsage) get_power = nullptr;
  decltype(&nvmlDeviceGetClockInfo) get_clock = nullptr;
  decltype(&nvmlDeviceGetComputeRunningProcesses_v3) get_processes_v3 = nullptr;
  decltype(&nvmlDeviceGetComputeRunningProcesses_v2) get_processes_v2 = nullptr;
  decltype(&nvmlDeviceGetComputeRunningProcesses) get_processes_v1 = nullptr;
  decltype(&nvmlDeviceGetTopologyCommonAncestor) get_topology = nullptr;
  decltype(&nvmlDeviceGetNvLinkState) get_nvlink_state = nullptr;
  decltype(&nvmlDeviceGetNvLinkRemotePciInfo_v2) get_nvlink_remote_pci = nullptr;
  decltype(&nvmlDeviceGetMigMode) get_mig_mode = nullptr;
  // Optional health API. The event functions count only all together
  // (HasEvents); an older driver may lack any of them.
  decltype(&nvmlEventSetCreate) event_set_create = nullptr;
  decltype(&nvmlDeviceRegisterEvents) register_events = nullptr;
  decltype(&nvmlEventSetWait_v2) event_set_wait = nullptr;
  decltype(&nvmlEventSetFree) event_set_free = nullptr;
  decltype(&nvmlDeviceGetTotalEccErrors) get_total_ecc = nullptr;
  decltype(&nvmlDeviceGetRetiredPagesPendingStatus) get_retired_pending = nullptr;
  decltype(&nvmlDeviceGetRemappedRows) get_remapped_rows = nullptr;
  // nvmlDeviceGetCurrentClocksThrottleReasons, else ...ClocksEventReasons.
  decltype(&nvmlDeviceGetCurrentClocksThrottleReasons) get_throttle_reasons = nullptr;

  bool HasEvents() const {
    return event_set_create != nullptr && register_events != nullptr && event_set_wait != nullptr &&
           event_set_free != nullptr;
  }

 private:
  NvmlLibrary() = default;
  std::string path_;
  void* handle_ = nullptr;
};

// A built-in name for an NVML return code ("GPU is lost").
const char* NvmlReturnName(nvmlReturn_t r);

}  // namespace berth::gpu
