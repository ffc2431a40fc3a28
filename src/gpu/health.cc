#include "gpu/health.h"

namespace berth::gpu {

const char* HealthCheckName(HealthCheck c) {
  switch (c) {
    case kCheckXidEvents:
      return "xid_events";
    case kCheckEccDbe:
      return "ecc_dbe_volatile";
    case kCheckRetiredPages:
      return "retired_pages";
    case kCheckRowRemap:
      return "row_remap";
    case kCheckThrottle:
      return "clock_throttle";
  }
  return "unknown";
}

const std::vector<HealthCheck>& AllHealthChecks() {
  static const std::vector<HealthCheck> kAll = {kCheckXidEvents, kCheckEccDbe, kCheckRetiredPages,
                                                kCheckRowRemap, kCheckThrottle};
  return kAll;
}

const std::set<int>& DefaultFatalXids() {
  static const std::set<int> kFatal = {48, 64, 74, 79, 95, 119, 120};
  return kFatal;
}

const char* XidDescription(int xid) {
  switch (xid) {
    case 48:
      return "double-bit ECC error";
    case 63:
      return "row remapping / page retirement recorded, pending a reset";
    case 64:
      return "row remapping / page retirement failure";
    case 74:
      return "NVLink error";
    case 79:
      return "GPU has fallen off the bus";
    case 94:
      return "contained ECC error";
    case 95:
      return "uncontained ECC error";
    case 119:
      return "GSP RPC timeout";
    case 120:
      return "GSP error";
  }
  return "";
}

std::string ThrottleReasonNames(uint64_t reasons) {
  static const struct {
    uint64_t bit;
    const char* name;
  } kNames[] = {{0x1, "gpu_idle"},    {0x2, "applications_clocks"}, {0x4, "sw_power_cap"},
                {0x8, "hw_slowdown"}, {0x10, "sync_boost"},         {0x20, "sw_thermal"},
                {0x40, "hw_thermal"}, {0x80, "hw_power_brake"},     {0x100, "display_clocks"}};
  std::string out;
  for (const auto& n : kNames) {
    if (!(reasons & n.bit)) continue;
    if (!out.empty()) out += ',';
    out += n.name;
  }
  return out;
}

const char* UnavailableReasonName(UnavailableReason r) {
  switch (r) {
    case UnavailableReason::kMissingFunction:
      return "missing_function";
    case UnavailableReason::kNotSupported:
      return "not_supported";
    case UnavailableReason::kNotRead:
      return "not_read";
  }
  return "unknown";
}

std::string UnavailableCheck::Describe() const {
  std::string why;
  switch (reason) {
    case UnavailableReason::kMissingFunction:
      why = "function missing from the NVML library (older driver)";
      break;
    case UnavailableReason::kNotSupported:
      why = "not supported by this GPU";
      break;
    case UnavailableReason::kNotRead:
      why = "not read (declared GPU, no driver)";
      break;
  }
  return Name() + ": " + why;
}

std::vector<UnavailableCheck> UnavailableChecks(const HealthReading& r) {
  std::vector<UnavailableCheck> out;
  for (HealthCheck c : AllHealthChecks()) {
    if (!r.read) {
      out.push_back({c, UnavailableReason::kNotRead});
    } else if (r.missing & c) {
      out.push_back({c, UnavailableReason::kMissingFunction});
    } else if (r.not_supported & c) {
      out.push_back({c, UnavailableReason::kNotSupported});
    }
  }
  return out;
}

}  // namespace berth::gpu
