#include "gpu/nvml_library.h"

#include <dlfcn.h>

namespace berth::gpu {
namespace {

template <typename Fn>
void Resolve(void* handle, const char* name, Fn& out) {
  out = reinterpret_cast<Fn>(dlsym(handle, name));
}

}  // namespace

Result<std::unique_ptr<NvmlLibrary>> NvmlLibrary::Load(const std::string& path) {
  dlerror();
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* err = dlerror();
    return Unavailable("cannot load NVML library " + path + ": " + (err ? err : "unknown error"));
  }
  std::unique_ptr<NvmlLibrary> lib(new NvmlLibrary());
  lib->path_ = path;
  lib->handle_ = handle;

  struct Required {
    const char* name;
    bool ok;
  };
  Resolve(handle, "nvmlInit_v2", lib->init);
  Resolve(handle, "nvmlShutdown", lib->shutdown);
  Resolve(handle, "nvmlDeviceGetCount_v2", lib->get_count);
  Resolve(handle, "nvmlDeviceGetHandleByIndex_v2", lib->get_handle);
  Resolve(handle, "nvmlDeviceGetName", lib->get_name);
  Resolve(handle, "nvmlDeviceGetUUID", lib->get_uuid);
  Resolve(handle, "nvmlDeviceGetMemoryInfo", lib->get_memory);
  Resolve(handle, "nvmlDeviceGetUtilizationRates", lib->get_utilization);
  const Required required[] = {
      {"nvmlInit_v2", lib->init != nullptr},
      {"nvmlShutdown", lib->shutdown != nullptr},
      {"nvmlDeviceGetCount_v2", lib->get_count != nullptr},
      {"nvmlDeviceGetHandleByIndex_v2", lib->get_handle != nullptr},
      {"nvmlDeviceGetName", lib->get_name != nullptr},
      {"nvmlDeviceGetUUID", lib->get_uuid != nullptr},
      {"nvmlDeviceGetMemoryInfo", lib->get_memory != nullptr},
      {"nvmlDeviceGetUtilizationRates", lib->get_utilization != nullptr},
  };
  for (const auto& r : required) {
    if (!r.ok) return Unavailable("NVML library " + path + " lacks the function " + r.name);
  }

  Resolve(handle, "nvmlErrorString", lib->error_string);
  Resolve(handle, "nvmlDeviceGetPciInfo_v3", lib->get_pci);
  Resolve(handle, "nvmlDeviceGetTemperature", lib->get_temperature);
  Resolve(handle, "nvmlDeviceGetPowerUsage", lib->get_power);
  Resolve(handle, "nvmlDeviceGetClockInfo", lib->get_clock);
  Resolve(handle, "nvmlDeviceGetComputeRunningProcesses_v3", lib->get_processes_v3);
  Resolve(handle, "nvmlDeviceGetComputeRunningProcesses_v2", lib->get_processes_v2);
  Resolve(handle, "nvmlDeviceGetComputeRunningProcesses", lib->get_processes_v1);
  Resolve(handle, "nvmlDeviceGetTopologyCommonAncestor", lib->get_topology);
  Resolve(handle, "nvmlDeviceGetNvLinkState", lib->get_nvlink_state);
  Resolve(handle, "nvmlDeviceGetNvLinkRemotePciInfo_v2", lib->get_nvlink_remote_pci);
  Resolve(handle, "nvmlDeviceGetMigMode", lib->get_mig_mode);
  Resolve(handle, "nvmlEventSetCreate", lib->event_set_create);
  Resolve(handle, "nvmlDeviceRegisterEvents", lib->register_events);
  Resolve(handle, "nvmlEventSetWait_v2", lib->event_set_wait);
  Resolve(handle, "nvmlEventSetFree", lib->event_set_free);
  Resolve(handle, "nvmlDeviceGetTotalEccErrors", lib->get_total_ecc);
  Resolve(handle, "nvmlDeviceGetRetiredPagesPendingStatus", lib->get_retired_pending);
  Resolve(handle, "nvmlDeviceGetRemappedRows", lib->get_remapped_rows);
  Resolve(handle, "nvmlDeviceGetCurrentClocksThrottleReasons", lib->get_throttle_reasons);
  if (lib->get_throttle_reasons == nullptr) {
    Resolve(handle, "nvmlDeviceGetCurrentClocksEventReasons", lib->get_throttle_reasons);
  }
  return lib;
}

NvmlLibrary::~NvmlLibrary() {
  if (handle_ != nullptr) dlclose(handle_);
}

std::string NvmlLibrary::ErrorString(nvmlReturn_t r) const {
  const char* s = error_string != nullptr ? error_string(r) : nullptr;
  if (s == nullptr || *s == '\0') s = NvmlReturnName(r);
  return std::string(s) + " (" + std::to_string(static_cast<int>(r)) + ")";
}

const char* NvmlReturnName(nvmlReturn_t r) {
  switch (r) {
    case NVML_SUCCESS:
      return "Success";
    case NVML_ERROR_UNINITIALIZED:
      return "Uninitialized";
    case NVML_ERROR_INVALID_ARGUMENT:
      return "Invalid Argument";
    case NVML_ERROR_NOT_SUPPORTED:
      return "Not Supported";
    case NVML_ERROR_NO_PERMISSION:
      return "Insufficient Permissions";
    case NVML_ERROR_ALREADY_INITIALIZED:
      return "Already Initialized";
    case NVML_ERROR_NOT_FOUND:
      return "Not Found";
    case NVML_ERROR_INSUFFICIENT_SIZE:
      return "Insufficient Size";
    case NVML_ERROR_INSUFFICIENT_POWER:
      return "Insufficient External Power";
    case NVML_ERROR_DRIVER_NOT_LOADED:
      return "Driver Not Loaded";
    case NVML_ERROR_TIMEOUT:
      return "Timeout";
    case NVML_ERROR_IRQ_ISSUE:
      return "Interrupt Request Issue";
    case NVML_ERROR_LIBRARY_NOT_FOUND:
      return "NVML Shared Library Not Found";
    case NVML_ERROR_FUNCTION_NOT_FOUND:
      return "Function Not Found";
    case NVML_ERROR_CORRUPTED_INFOROM:
      return "Corrupted infoROM";
    case NVML_ERROR_GPU_IS_LOST:
      return "GPU is lost";
    case NVML_ERROR_RESET_REQUIRED:
      return "GPU requires restart";
    case NVML_ERROR_OPERATING_SYSTEM:
      return "The operating system has blocked the request";
    case NVML_ERROR_LIB_RM_VERSION_MISMATCH:
      return "RM has detected an NVML/RM version mismatch";
    case NVML_ERROR_IN_USE:
      return "In use by another client";
    case NVML_ERROR_MEMORY:
      return "Insufficient Memory";
    case NVML_ERROR_NO_DATA:
      return "No data";
    default:
      return "Unknown Error";
  }
}

}  // namespace berth::gpu
