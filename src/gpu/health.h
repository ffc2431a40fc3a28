// GPU health: what the driver says about a GPU's reliability, and whether a
// condition is fatal (the GPU should get no work until someone resets it).
//
// Read through the same dlopen'ed NVML as the telemetry (nvml_inventory.cc):
//  - XID errors from NVML's event API (nvmlEventTypeXidCriticalError),
//  - volatile double-bit ECC errors (nvmlDeviceGetTotalEccErrors,
//    NVML_MEMORY_ERROR_TYPE_UNCORRECTED, NVML_VOLATILE_ECC),
//  - pages pending retirement (pre-Ampere) and rows pending remapping or a
//    failed remap (Ampere and later),
//  - clock throttle reasons (thermal, power),
//  - the device lost (NVML_ERROR_GPU_IS_LOST from any call).
// A check the driver cannot do is "unavailable" on that GPU, with why: the
// function is missing from the library (an older driver), or the device says
// NVML_ERROR_NOT_SUPPORTED (a consumer GPU has no ECC), or nothing is read at
// all (declared GPUs). Loss is detected by polling on every driver, so it is
// never unavailable where NVML is used.
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/clock.h"

namespace berth::gpu {

// The health checks, as bits of HealthReading::missing / not_supported.
enum HealthCheck : unsigned {
  kCheckXidEvents = 1u << 0,     // nvmlDeviceRegisterEvents + nvmlEventSetWait_v2
  kCheckEccDbe = 1u << 1,        // nvmlDeviceGetTotalEccErrors (uncorrected, volatile)
  kCheckRetiredPages = 1u << 2,  // nvmlDeviceGetRetiredPagesPendingStatus
  kCheckRowRemap = 1u << 3,      // nvmlDeviceGetRemappedRows
  kCheckThrottle = 1u << 4,      // nvmlDeviceGetCurrentClocksThrottleReasons
};
constexpr unsigned kAllHealthChecks = 0x1f;
// "xid_events", "ecc_dbe_volatile", "retired_pages", "row_remap", "clock_throttle".
const char* HealthCheckName(HealthCheck c);
// Every check, in the order above.
const std::vector<HealthCheck>& AllHealthChecks();

// What one sample read about a GPU's health (GpuSample::health). Readings the
// GPU did not give are nullopt.
struct HealthReading {
  bool read = false;      // false: no driver was asked (declared GPUs)
  std::vector<int> xids;  // XIDs reported since the previous sample, oldest first
  std::optional<uint64_t> ecc_dbe_volatile;  // double-bit errors since the driver loaded
  std::optional<bool> retired_pages_pending;
  std::optional<bool> row_remap_pending;
  std::optional<bool> row_remap_failure;
  std::optional<uint64_t> throttle_reasons;  // nvmlClocksThrottleReason* bits
  unsigned missing = 0;                      // checks whose NVML functions the library lacks
  unsigned not_supported = 0;                // checks the device answered NVML_ERROR_NOT_SUPPORTED
};

// XIDs that NVIDIA documents as needing a GPU reset (or worse), so Berth
// treats them as fatal by default: 48 (double-bit ECC error), 64 (row remap /
// page retirement failure), 74 (NVLink error), 79 (GPU has fallen off the
// bus), 95 (uncontained ECC error), 119 and 120 (GSP RPC timeout / GSP
// error). Not fatal: 94 (contained ECC error: the faulting application is
// ended and new work may run; the row remap it causes shows as
// row_remap_pending) and 63 (a row or page marked for remapping/retirement at
// the next reset). docs/gpu.md has the reasons and sources.
const std::set<int>& DefaultFatalXids();
// A short description of a known XID ("GPU has fallen off the bus"), else "".
const char* XidDescription(int xid);

// Throttle reason bits that mean thermal or power limits.
constexpr uint64_t kThermalThrottleMask = 0x20 | 0x40;  // sw thermal, hw thermal
constexpr uint64_t kPowerThrottleMask = 0x04 | 0x80;    // sw power cap, hw power brake
// "sw_power_cap,hw_thermal" (empty when none of the named bits is set).
std::string ThrottleReasonNames(uint64_t reasons);

enum class UnavailableReason {
  kMissingFunction,  // the NVML library lacks the function (older driver)
  kNotSupported,     // NVML_ERROR_NOT_SUPPORTED on this device (e.g. no ECC)
  kNotRead,          // no driver is read (declared GPU)
};
const char* UnavailableReasonName(UnavailableReason r);  // "missing_function", ...

struct UnavailableCheck {
  HealthCheck check = kCheckXidEvents;
  UnavailableReason reason = UnavailableReason::kNotRead;
  std::string Name() const { return HealthCheckName(check); }
  // "xid_events: function missing from the NVML library (older driver)"
  std::string Describe() const;
};
std::vector<UnavailableCheck> UnavailableChecks(const HealthReading& r);

// One GPU's health as of the last tick (Sampler::Health).
struct GpuHealth {
  std::string node;
  int index = 0;
  std::string uuid;
  TimeMs time = 0;  // last tick

  // A fatal condition holds: the GPU is lost, a fatal XID was seen (kept until
  // Sampler::ClearHealth), volatile double-bit ECC errors are counted (when
  // SamplerOptions::ecc_dbe_fatal), or a row remap failed.
  bool fatal = false;
  std::string reason;      // the conditions, "; "-joined ("XID 79 (GPU has fallen off the bus)")
  TimeMs fatal_since = 0;  // first tick of the current fatal spell (0: not fatal)

  bool lost = false;
  int last_xid = 0;  // 0: none seen since the sampler started
  TimeMs last_xid_time = 0;
  int64_t xid_count = 0;  // XIDs seen since the sampler started
  int fatal_xid = 0;      // the first fatal XID since the last ClearHealth (0: none)
  std::optional<uint64_t> ecc_dbe_volatile;
  std::optional<bool> retired_pages_pending;
  std::optional<bool> row_remap_pending;
  std::optional<bool> row_remap_failure;
  std::optional<uint64_t> throttle_reasons;
  bool thermal_throttled() const {
    return throttle_reasons && (*throttle_reasons & kThermalThrottleMask) != 0;
  }
  bool power_throttled() const {
    return throttle_reasons && (*throttle_reasons & kPowerThrottleMask) != 0;
  }
  std::vector<UnavailableCheck> unavailable;
};

}  // namespace berth::gpu
