// FakeNvml: a stand-in for libnvidia-ml.so.1 configured by data.
//
// $BERTH_FAKE_NVML_CONFIG names a JSON file; it is read at nvmlInit_v2 and
// again whenever it changes (inode, size or mtime), so a test edits the file
// (write + rename) to change what the "driver" reports:
//
// {
//   "init_error": 0,                         // nvmlInit_v2 returns this code
//   "devices": [{
//     "name": "NVIDIA H100 80GB HBM3", "uuid": "GPU-...", "pci_bus_id": "00000000:17:00.0",
//     "memory_total_mib": 81559, "memory_used_mib": 1024,   // used default: sum of processes
//     "utilization": 35,                     // or steps [[t_seconds, value], ...] since nvmlInit
//     "memory_utilization": 5, "temperature": 40, "power_mw": 70000, "sm_clock_mhz": 1980,
//     "processes": [{"pid": 123, "used_memory_mib": 512}],  // used_memory_mib null: not available
//     "not_supported": ["power", "processes"],              // NVML_ERROR_NOT_SUPPORTED
//     "errors": {"temperature": 4},          // any other return code for a field
//     "lost": false,                         // true (or steps of 0/1): every device call
//                                            // says NVML_ERROR_GPU_IS_LOST
//     "nvlink_peers": [1], "nvswitch": false, "mig": false,
//     // Health:
//     "xids": [[t_seconds, 79], ...],        // XID events, each delivered once per event set
//                                            // by nvmlEventSetWait_v2 once t has passed
//     "ecc_dbe_volatile": 0, "ecc_sbe_volatile": 0,          // nvmlDeviceGetTotalEccErrors
//     "retired_pages_pending": false,        // nvmlDeviceGetRetiredPagesPendingStatus
//     "row_remap_pending": false, "row_remap_failure": false,
//     "remapped_rows_correctable": 0, "remapped_rows_uncorrectable": 0,
//     "throttle_reasons": 0                  // nvmlClocksThrottleReason* bits
//   }]
// }
// Field names for not_supported/errors: memory utilization temperature power
// clock processes pci mig nvlink name uuid events ecc retired_pages row_remap
// throttle.
//
// Times are seconds since nvmlInit. Any numeric reading (and a process's
// used_memory_mib, and the health flags) may be a step list. Built three
// times: berth_fake_nvml (everything), berth_fake_nvml_v1 (FAKE_NVML_V1_ONLY:
// only the unversioned nvmlDeviceGetComputeRunningProcesses) and
// berth_fake_nvml_nohealth (FAKE_NVML_NO_HEALTH_API: no event functions and no
// ECC / retired-page / remapped-row queries, as an older driver).
#include <sys/stat.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <tuple>

#include "gpu/nvml_api.h"

#define FAKE_EXPORT extern "C" __attribute__((visibility("default")))

namespace {

using nlohmann::json;

// An event set: the event types registered per device, and the XIDs it has
// already delivered (device index, t, xid).
struct EventSet {
  std::map<size_t, unsigned long long> registered;
  std::set<std::tuple<size_t, double, int>> delivered;
};

struct State {
  std::mutex mu;
  std::set<EventSet*> event_sets;
  int init_count = 0;
  std::chrono::steady_clock::time_point init_time;
  json config = json::object();
  struct stat last_stat {};
  bool have_stat = false;
};

State& S() {
  static State s;
  return s;
}

// Re-reads the config file when it changed. Caller holds S().mu.
void Reload() {
  State& s = S();
  const char* path = std::getenv("BERTH_FAKE_NVML_CONFIG");
  if (path == nullptr) {
    s.config = json::object();
    return;
  }
  struct stat st {};
  if (stat(path, &st) != 0) {
    s.config = json::object();
    s.have_stat = false;
    return;
  }
  if (s.have_stat && st.st_ino == s.last_stat.st_ino && st.st_size == s.last_stat.st_size &&
      st.st_mtim.tv_sec == s.last_stat.st_mtim.tv_sec &&
      st.st_mtim.tv_nsec == s.last_stat.st_mtim.tv_nsec) {
    return;
  }
  std::ifstream in(path);
  json j = json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    std::fprintf(stderr, "fake_nvml: cannot parse %s\n", path);
    return;  // keep the previous config; a half-written file must not break a test
  }
  s.config = std::move(j);
  s.last_stat = st;
  s.have_stat = true;
}

const json& Devices() {
  static const json kEmpty = json::array();
  const json& c = S().config;
  auto it = c.find("devices");
  return it != c.end() && it->is_array() ? *it : kEmpty;
}

double Elapsed() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - S().init_time).count();
}

// A number, or a list of [t_seconds, value] steps: the last step at or before now.
double Value(const json& v, double def) {
  if (v.is_number()) return v.get<double>();
  if (v.is_array()) {
    double t = Elapsed(), out = def;
    for (const auto& step : v) {
      if (step.is_array() && step.size() == 2 && step[0].get<double>() <= t)
        out = step[1].get<double>();
    }
    return out;
  }
  return def;
}

double Field(const json& d, const char* key, double def) {
  auto it = d.find(key);
  return it == d.end() ? def : Value(*it, def);
}

// A flag that may be a boolean, a number or a step list of 0/1.
bool Flag(const json& d, const char* key) {
  auto it = d.find(key);
  if (it == d.end()) return false;
  if (it->is_boolean()) return it->get<bool>();
  return Value(*it, 0) != 0;
}

// The return code configured for `field` on device d (success when none).
nvmlReturn_t FieldCode(const json& d, const char* field) {
  if (Flag(d, "lost")) return NVML_ERROR_GPU_IS_LOST;
  auto ns = d.find("not_supported");
  if (ns != d.end() && ns->is_array()) {
    for (const auto& f : *ns) {
      if (f.is_string() && f.get<std::string>() == field) return NVML_ERROR_NOT_SUPPORTED;
    }
  }
  auto er = d.find("errors");
  if (er != d.end() && er->is_object() && er->contains(field)) {
    return static_cast<nvmlReturn_t>((*er)[field].get<int>());
  }
  return NVML_SUCCESS;
}

// Looks up the device for a handle; returns the code to give back.
nvmlReturn_t Lookup(nvmlDevice_t h, const json** out) {
  if (S().init_count == 0) return NVML_ERROR_UNINITIALIZED;
  Reload();
  auto i = reinterpret_cast<uintptr_t>(h);
  const json& ds = Devices();
  if (i == 0 || i > ds.size()) return NVML_ERROR_INVALID_ARGUMENT;
  *out = &ds[i - 1];
  return NVML_SUCCESS;
}

#define DEVICE_OR_RETURN(handle, field)                                        \
  std::lock_guard<std::mutex> lock(S().mu);                                    \
  const json* dev = nullptr;                                                   \
  if (nvmlReturn_t r0 = Lookup(handle, &dev); r0 != NVML_SUCCESS) return r0;   \
  if (nvmlReturn_t r1 = FieldCode(*dev, field); r1 != NVML_SUCCESS) return r1; \
  const json& d = *dev

nvmlReturn_t CopyString(const std::string& s, char* buf, unsigned len) {
  if (buf == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
  if (s.size() + 1 > len) return NVML_ERROR_INSUFFICIENT_SIZE;
  std::memcpy(buf, s.c_str(), s.size() + 1);
  return NVML_SUCCESS;
}

std::string BusId(const json& d, size_t index) {
  char def[32];
  std::snprintf(def, sizeof(def), "00000000:%02zX:00.0", 0x17 + index);
  return d.value("pci_bus_id", std::string(def));
}

void FillPci(const std::string& bus_id, nvmlPciInfo_t* pci) {
  std::memset(pci, 0, sizeof(*pci));
  std::snprintf(pci->busId, sizeof(pci->busId), "%s", bus_id.c_str());
  std::snprintf(pci->busIdLegacy, sizeof(pci->busIdLegacy), "%s",
                bus_id.c_str() + (bus_id.size() > 12 ? 4 : 0));
  unsigned dom = 0, bus = 0, dev = 0;
  std::sscanf(bus_id.c_str(), "%x:%x:%x", &dom, &bus, &dev);
  pci->domain = dom;
  pci->bus = bus;
  pci->device = dev;
  pci->pciDeviceId = 0x233010DE;
}

unsigned long long MiBToBytes(double mib) {
  return static_cast<unsigned long long>(mib) * 1024ULL * 1024ULL;
}

double UsedMiB(const json& d) {
  if (d.contains("memory_used_mib")) return Field(d, "memory_used_mib", 0);
  double sum = 0;
  for (const auto& p : d.value("processes", json::array())) {
    if (p.contains("used_memory_mib") && !p["used_memory_mib"].is_null())
      sum += Value(p["used_memory_mib"], 0);
  }
  return sum;
}

template <typename Info>
nvmlReturn_t Processes(nvmlDevice_t h, unsigned* count, Info* infos) {
  DEVICE_OR_RETURN(h, "processes");
  if (count == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
  json procs = d.value("processes", json::array());
  if (procs.size() > *count) {
    *count = static_cast<unsigned>(procs.size());
    return NVML_ERROR_INSUFFICIENT_SIZE;
  }
  *count = static_cast<unsigned>(procs.size());
  for (size_t i = 0; i < procs.size(); ++i) {
    Info info{};
    info.pid = procs[i].value("pid", 0u);
    const auto& m = procs[i].contains("used_memory_mib") ? procs[i]["used_memory_mib"] : json();
    info.usedGpuMemory = m.is_null() ? NVML_VALUE_NOT_AVAILABLE : MiBToBytes(Value(m, 0));
    if constexpr (sizeof(Info) > sizeof(nvmlProcessInfo_v1_t)) {
      info.gpuInstanceId = 0xFFFFFFFF;
      info.computeInstanceId = 0xFFFFFFFF;
    }
    infos[i] = info;
  }
  return NVML_SUCCESS;
}

}  // namespace

FAKE_EXPORT nvmlReturn_t nvmlInit_v2(void) {
  std::lock_guard<std::mutex> lock(S().mu);
  S().have_stat = false;
  Reload();
  int code = S().config.value("init_error", 0);
  if (code != 0) return static_cast<nvmlReturn_t>(code);
  if (S().init_count++ == 0) S().init_time = std::chrono::steady_clock::now();
  return NVML_SUCCESS;
}

FAKE_EXPORT nvmlReturn_t nvmlShutdown(void) {
  std::lock_guard<std::mutex> lock(S().mu);
  if (S().init_count == 0) return NVML_ERROR_UNINITIALIZED;
  --S().init_count;
  return NVML_SUCCESS;
}

FAKE_EXPORT const char* nvmlErrorString(nvmlReturn_t r) {
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
    case NVML_ERROR_INSUFFICIENT_SIZE:
      return "Insufficient Size";
    case NVML_ERROR_DRIVER_NOT_LOADED:
      return "Driver Not Loaded";
    case NVML_ERROR_GPU_IS_LOST:
      return "GPU is lost";
    default:
      return "Unknown Error";
  }
}

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetCount_v2(unsigned* count) {
  std::lock_guard<std::mutex> lock(S().mu);
  if (S().init_count == 0) return NVML_ERROR_UNINITIALIZED;
  if (count == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
  Reload();
  *count = static_cast<unsigned>(Devices().size());
  return NVML_SUCCESS;
}

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned index, nvmlDevice_t* device) {
  std::lock_guard<std::mutex> lock(S().mu);
  if (S().init_count == 0) return NVML_ERROR_UNINITIALIZED;
  Reload();
  if (device == nullptr || index >= Devices().size()) return NVML_ERROR_INVALID_ARGUMENT;
  *device = reinterpret_cast<nvmlDevice_t>(static_cast<uintptr_t>(index) + 1);
  return NVML_SUCCESS;
}

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t h, char* name, unsigned len) {
  DEVICE_OR_RETURN(h, "name");
  return CopyString(d.value("name", std::string("Fake GPU")), name, len);
}

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t h, char* uuid, unsigned len) {
  DEVICE_OR_RETURN(h, "uuid");
  char def[64];
  std::snprintf(def, sizeof(def), "GPU-fa4e0000-0000-0000-0000-%012llx",
                static_cast<unsigned long long>(reinterpret_cast<uintptr_t>(h) - 1));
  return CopyString(d.value("uuid", std::string(def)), uuid, len);
}

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetPciInfo_v3(nvmlDevice_t h, nvmlPciInfo_t* pci) {
  DEVICE_OR_RETURN(h, "pci");
  if (pci == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
  FillPci(BusId(d, reinterpret_cast<uintptr_t>(h) - 1), pci);
  return NVML_SUCCESS;
}

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t h, nvmlMemory_t* m) {
  DEVICE_OR_RETURN(h, "memory");
  if (m == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
  double total = Field(d, "memory_total_mib", 81559), used = UsedMiB(d);
  m->total = MiBToBytes(total);
  m->used = MiBToBytes(used);
  m->free = m->total - m->used;
  return NVML_SUCCESS;
}

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetUtilizationRates(nvmlDevice_t h, nvmlUtilization_t* u) {
  DEVICE_OR_RETURN(h, "utilization");
  if (u == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
  u->gpu = static_cast<unsigned>(Field(d, "utilization", 0));
  u->memory = static_cast<unsigned>(Field(d, "memory_utilization", 0));
  return NVML_SUCCESS;
}

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetTemperature(nvmlDevice_t h, nvmlTemperatureSensors_t sensor,
                                                  unsigned* t) {
  DEVICE_OR_RETURN(h, "temperature");
  if (t == nullptr || sensor != NVML_TEMPERATURE_GPU) return NVML_ERROR_INVALID_ARGUMENT;
  *t = static_cast<unsigned>(Field(d, "temperature", 35));
  return NVML_SUCCESS;
}

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetPowerUsage(nvmlDevice_t h, unsigned* p) {
  DEVICE_OR_RETURN(h, "power");
  if (p == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
  *p = static_cast<unsigned>(Field(d, "power_mw", 70000));
  return NVML_SUCCESS;
}

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetClockInfo(nvmlDevice_t h, nvmlClockType_t type, unsigned* c) {
  DEVICE_OR_RETURN(h, "clock");
  if (c == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
  *c = static_cast<unsigned>(type == NVML_CLOCK_SM ? Field(d, "sm_clock_mhz", 1980)
                                                   : Field(d, "mem_clock_mhz", 2619));
  return NVML_SUCCESS;
}

#ifndef FAKE_NVML_V1_ONLY
FAKE_EXPORT nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v3(nvmlDevice_t h, unsigned* count,
                                                                 nvmlProcessInfo_v2_t* infos) {
  return Processes(h, count, infos);
}

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v2(nvmlDevice_t h, unsigned* count,
                                                                 nvmlProcessInfo_v2_t* infos) {
  return Processes(h, count, infos);
}
#endif

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetComputeRunningProcesses(nvmlDevice_t h, unsigned* count,
                                                              nvmlProcessInfo_v1_t* infos) {
  return Processes(h, count, infos);
}

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetTopologyCommonAncestor(nvmlDevice_t a, nvmlDevice_t b,
                                                             nvmlGpuTopologyLevel_t* level) {
  DEVICE_OR_RETURN(a, "topology");
  (void)d;
  if (level == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
  *level = a == b ? NVML_TOPOLOGY_INTERNAL : NVML_TOPOLOGY_NODE;
  return NVML_SUCCESS;
}

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetNvLinkState(nvmlDevice_t h, unsigned link,
                                                  nvmlEnableState_t* active) {
  DEVICE_OR_RETURN(h, "nvlink");
  if (active == nullptr || link >= NVML_NVLINK_MAX_LINKS) return NVML_ERROR_INVALID_ARGUMENT;
  json peers = d.value("nvlink_peers", json::array());
  size_t links = d.value("nvswitch", false) ? 4 : peers.size();
  if (links == 0) return NVML_ERROR_NOT_SUPPORTED;
  *active = link < links ? NVML_FEATURE_ENABLED : NVML_FEATURE_DISABLED;
  return NVML_SUCCESS;
}

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetNvLinkRemotePciInfo_v2(nvmlDevice_t h, unsigned link,
                                                             nvmlPciInfo_t* pci) {
  DEVICE_OR_RETURN(h, "nvlink");
  if (pci == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
  if (d.value("nvswitch", false)) {
    if (link >= 4) return NVML_ERROR_INVALID_ARGUMENT;
    FillPci("00000000:FF:00.0", pci);
    return NVML_SUCCESS;
  }
  json peers = d.value("nvlink_peers", json::array());
  if (link >= peers.size()) return NVML_ERROR_INVALID_ARGUMENT;
  size_t peer = peers[link].get<size_t>();
  const json& ds = Devices();
  if (peer >= ds.size()) return NVML_ERROR_INVALID_ARGUMENT;
  FillPci(BusId(ds[peer], peer), pci);
  return NVML_SUCCESS;
}

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetMigMode(nvmlDevice_t h, unsigned* current,
                                              unsigned* pending) {
  DEVICE_OR_RETURN(h, "mig");
  if (current == nullptr || pending == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
  *current = *pending = d.value("mig", false) ? NVML_DEVICE_MIG_ENABLE : NVML_DEVICE_MIG_DISABLE;
  return NVML_SUCCESS;
}

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetCurrentClocksThrottleReasons(nvmlDevice_t h,
                                                                   unsigned long long* reasons) {
  DEVICE_OR_RETURN(h, "throttle");
  if (reasons == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
  *reasons = static_cast<unsigned long long>(Field(d, "throttle_reasons", 0));
  return NVML_SUCCESS;
}

#ifndef FAKE_NVML_NO_HEALTH_API
FAKE_EXPORT nvmlReturn_t nvmlEventSetCreate(nvmlEventSet_t* set) {
  std::lock_guard<std::mutex> lock(S().mu);
  if (S().init_count == 0) return NVML_ERROR_UNINITIALIZED;
  if (set == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
  auto* es = new EventSet();
  S().event_sets.insert(es);
  *set = reinterpret_cast<nvmlEventSet_t>(es);
  return NVML_SUCCESS;
}

FAKE_EXPORT nvmlReturn_t nvmlEventSetFree(nvmlEventSet_t set) {
  std::lock_guard<std::mutex> lock(S().mu);
  auto* es = reinterpret_cast<EventSet*>(set);
  if (S().event_sets.erase(es) == 0) return NVML_ERROR_INVALID_ARGUMENT;
  delete es;
  return NVML_SUCCESS;
}

FAKE_EXPORT nvmlReturn_t nvmlDeviceRegisterEvents(nvmlDevice_t h, unsigned long long types,
                                                  nvmlEventSet_t set) {
  DEVICE_OR_RETURN(h, "events");
  (void)d;
  auto* es = reinterpret_cast<EventSet*>(set);
  if (S().event_sets.count(es) == 0) return NVML_ERROR_INVALID_ARGUMENT;
  es->registered[reinterpret_cast<uintptr_t>(h) - 1] |= types;
  return NVML_SUCCESS;
}

// Delivers the earliest due XID not yet delivered to this set; never blocks
// (a test's clock is the config's step times, not the timeout).
FAKE_EXPORT nvmlReturn_t nvmlEventSetWait_v2(nvmlEventSet_t set, nvmlEventData_t* data,
                                             unsigned timeout_ms) {
  (void)timeout_ms;
  std::lock_guard<std::mutex> lock(S().mu);
  if (S().init_count == 0) return NVML_ERROR_UNINITIALIZED;
  auto* es = reinterpret_cast<EventSet*>(set);
  if (S().event_sets.count(es) == 0 || data == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
  Reload();
  const json& ds = Devices();
  double now = Elapsed();
  for (const auto& [index, types] : es->registered) {
    if (!(types & nvmlEventTypeXidCriticalError) || index >= ds.size()) continue;
    auto xids = ds[index].find("xids");
    if (xids == ds[index].end() || !xids->is_array()) continue;
    for (const auto& step : *xids) {
      if (!step.is_array() || step.size() != 2) continue;
      double t = step[0].get<double>();
      int xid = step[1].get<int>();
      if (t > now || !es->delivered.insert({index, t, xid}).second) continue;
      std::memset(data, 0, sizeof(*data));
      data->device = reinterpret_cast<nvmlDevice_t>(static_cast<uintptr_t>(index) + 1);
      data->eventType = nvmlEventTypeXidCriticalError;
      data->eventData = static_cast<unsigned long long>(xid);
      data->gpuInstanceId = 0xFFFFFFFF;
      data->computeInstanceId = 0xFFFFFFFF;
      return NVML_SUCCESS;
    }
  }
  return NVML_ERROR_TIMEOUT;
}

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetTotalEccErrors(nvmlDevice_t h, nvmlMemoryErrorType_t type,
                                                     nvmlEccCounterType_t counter,
                                                     unsigned long long* count) {
  DEVICE_OR_RETURN(h, "ecc");
  if (count == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
  const char* key = type == NVML_MEMORY_ERROR_TYPE_UNCORRECTED
                        ? (counter == NVML_VOLATILE_ECC ? "ecc_dbe_volatile" : "ecc_dbe_aggregate")
                        : (counter == NVML_VOLATILE_ECC ? "ecc_sbe_volatile" : "ecc_sbe_aggregate");
  *count = static_cast<unsigned long long>(Field(d, key, 0));
  return NVML_SUCCESS;
}

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetRetiredPagesPendingStatus(nvmlDevice_t h,
                                                                nvmlEnableState_t* pending) {
  DEVICE_OR_RETURN(h, "retired_pages");
  if (pending == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
  *pending = Flag(d, "retired_pages_pending") ? NVML_FEATURE_ENABLED : NVML_FEATURE_DISABLED;
  return NVML_SUCCESS;
}

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetRemappedRows(nvmlDevice_t h, unsigned* corr, unsigned* unc,
                                                   unsigned* pending, unsigned* failed) {
  DEVICE_OR_RETURN(h, "row_remap");
  if (corr == nullptr || unc == nullptr || pending == nullptr || failed == nullptr)
    return NVML_ERROR_INVALID_ARGUMENT;
  *corr = static_cast<unsigned>(Field(d, "remapped_rows_correctable", 0));
  *unc = static_cast<unsigned>(Field(d, "remapped_rows_uncorrectable", 0));
  *pending = Flag(d, "row_remap_pending") ? 1 : 0;
  *failed = Flag(d, "row_remap_failure") ? 1 : 0;
  return NVML_SUCCESS;
}
#endif  // FAKE_NVML_NO_HEALTH_API
