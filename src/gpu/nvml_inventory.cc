// NvmlInventory: this machine's GPUs through NVML (dlopen'ed).
#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <map>
#include <mutex>
#include <set>

#include "common/log.h"
#include "gpu/inventory.h"
#include "gpu/nvml_library.h"

namespace berth::gpu {
namespace {

constexpr MiB kBytesPerMiB = 1024 * 1024;

// Readings that a device may not support; a NOT_SUPPORTED answer is
// remembered so that the next samples skip the call.
enum Field : unsigned {
  kMemory = 1u << 0,
  kUtil = 1u << 1,
  kTemperature = 1u << 2,
  kPower = 1u << 3,
  kClock = 1u << 4,
  kProcesses = 1u << 5,
};

const char* FieldName(Field f) {
  switch (f) {
    case kMemory:
      return "memory";
    case kUtil:
      return "utilization";
    case kTemperature:
      return "temperature";
    case kPower:
      return "power";
    case kClock:
      return "sm clock";
    case kProcesses:
      return "processes";
  }
  return "?";
}

std::string NormalizeBusId(const char* s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

class NvmlInventory final : public Inventory {
 public:
  NvmlInventory(std::unique_ptr<NvmlLibrary> lib, const NvmlOptions& o) : lib_(std::move(lib)) {
    node_.name = o.node_name.empty() ? HostName() : o.node_name;
    node_.address = "127.0.0.1";
    node_.cpu = o.cpu > 0 ? o.cpu : HostCpu();
    node_.memory = o.memory > 0 ? o.memory : HostMemory();
  }

  ~NvmlInventory() override {
    if (events_ != nullptr) lib_->event_set_free(events_);
    lib_->shutdown();
  }

  Status Discover() {
    unsigned count = 0;
    nvmlReturn_t r = lib_->get_count(&count);
    if (r != NVML_SUCCESS) return Unavailable("nvmlDeviceGetCount_v2: " + lib_->ErrorString(r));
    for (unsigned i = 0; i < count; ++i) {
      Device d;
      r = lib_->get_handle(i, &d.handle);
      if (r != NVML_SUCCESS) {
        spdlog::warn("gpu: skipping NVML device {}: nvmlDeviceGetHandleByIndex_v2: {}", i,
                     lib_->ErrorString(r));
        continue;
      }
      d.info.index = static_cast<int>(i);
      char buf[NVML_DEVICE_NAME_V2_BUFFER_SIZE] = {0};
      r = lib_->get_name(d.handle, buf, sizeof(buf));
      d.info.model = r == NVML_SUCCESS ? buf : "unknown";
      if (r == NVML_ERROR_GPU_IS_LOST) d.lost = true;
      char ubuf[NVML_DEVICE_UUID_V2_BUFFER_SIZE] = {0};
      r = lib_->get_uuid(d.handle, ubuf, sizeof(ubuf));
      d.info.uuid = r == NVML_SUCCESS ? ubuf : "";
      if (r == NVML_ERROR_GPU_IS_LOST) d.lost = true;
      if (lib_->get_pci != nullptr) {
        nvmlPciInfo_t pci{};
        if (lib_->get_pci(d.handle, &pci) == NVML_SUCCESS) d.pci_bus_id = NormalizeBusId(pci.busId);
      }
      nvmlMemory_t mem{};
      if (lib_->get_memory(d.handle, &mem) == NVML_SUCCESS) {
        d.info.memory = static_cast<MiB>(mem.total / kBytesPerMiB);
      }
      if (lib_->get_mig_mode != nullptr) {
        unsigned cur = 0, pending = 0;
        if (lib_->get_mig_mode(d.handle, &cur, &pending) == NVML_SUCCESS) {
          d.mig = cur == NVML_DEVICE_MIG_ENABLE;
        }
      }
      if (d.lost) spdlog::warn("gpu: NVML device {} is lost", i);
      devices_.push_back(std::move(d));
    }
    if (devices_.empty()) return Unavailable("NVML reports no GPUs");
    FindNvLinkPeers();
    SetUpHealth();
    int lost = 0;
    for (const auto& d : devices_) lost += d.lost ? 1 : 0;
    describe_ = "nvml: " + std::to_string(devices_.size()) + " GPU(s) (" + devices_[0].info.model +
                ") on " + node_.name + " via " + lib_->path() +
                (lost ? ", " + std::to_string(lost) + " lost" : "");
    return Status::Ok();
  }

  std::string Describe() const override { return describe_; }

  std::vector<model::NodeInfo> Nodes() const override {
    model::NodeInfo n = node_;
    std::lock_guard<std::mutex> l(mu_);
    for (const auto& d : devices_) {
      if (!d.lost) n.gpus.push_back(d.info);
    }
    return {n};
  }

  Result<std::vector<GpuSample>> Sample() override {
    std::lock_guard<std::mutex> l(sample_mu_);  // one reader at a time; Nodes() stays free
    std::vector<GpuSample> out;
    out.reserve(devices_.size());
    for (auto& d : devices_) out.push_back(SampleDevice(d));
    DrainXidEvents(out);
    return out;
  }

 private:
  struct Device {
    nvmlDevice_t handle = nullptr;
    model::GpuInfo info;
    std::string pci_bus_id;
    std::optional<bool> mig;
    bool lost = false;  // guarded by mu_ (written only by the sampling thread)
    unsigned unsupported = 0;
    unsigned health_unsupported = 0;            // HealthCheck bits answered NOT_SUPPORTED
    std::set<std::pair<unsigned, int>> logged;  // (field, code) already logged
    std::vector<nvmlProcessInfo_v2_t> procs;
    std::vector<nvmlProcessInfo_v1_t> procs_v1;
  };

  // True when r is success. Otherwise records why in `s` and `d`.
  bool Check(Device& d, Field f, nvmlReturn_t r, GpuSample& s) {
    if (r == NVML_SUCCESS) return true;
    if (r == NVML_ERROR_NOT_SUPPORTED) {
      d.unsupported |= f;
      return false;
    }
    if (r == NVML_ERROR_GPU_IS_LOST) {
      s.lost = true;
      return false;
    }
    std::string why = std::string(FieldName(f)) + ": " + lib_->ErrorString(r);
    s.errors.push_back(why);
    if (d.logged.insert({f, static_cast<int>(r)}).second) {
      spdlog::warn("gpu {} ({}): {}", d.info.index, d.info.uuid, why);
    }
    return false;
  }

  GpuSample SampleDevice(Device& d) {
    GpuSample s;
    s.node = node_.name;
    s.index = d.info.index;
    s.uuid = d.info.uuid;
    s.model = d.info.model;
    s.pci_bus_id = d.pci_bus_id;
    s.mig_enabled = d.mig;
    ReadFields(d, s);
    if (s.lost) {
      // A lost device reports nothing trustworthy.
      GpuSample lost;
      lost.node = s.node;
      lost.index = s.index;
      lost.uuid = s.uuid;
      lost.model = s.model;
      lost.pci_bus_id = s.pci_bus_id;
      lost.lost = true;
      s = std::move(lost);
    }
    s.health.read = true;
    s.health.missing = lib_missing_;
    s.health.not_supported = d.health_unsupported;
    if (s.lost != d.lost) {
      std::lock_guard<std::mutex> l(mu_);
      d.lost = s.lost;
      if (s.lost) {
        spdlog::error("gpu {} ({}): NVML says the GPU is lost; it gets no new work", d.info.index,
                      d.info.uuid);
      } else {
        spdlog::info("gpu {} ({}): answers again", d.info.index, d.info.uuid);
      }
    }
    return s;
  }

  void ReadFields(Device& d, GpuSample& s) {
    if (!(d.unsupported & kMemory)) {
      nvmlMemory_t m{};
      if (Check(d, kMemory, lib_->get_memory(d.handle, &m), s)) {
        s.memory_total = static_cast<MiB>(m.total / kBytesPerMiB);
        s.memory_used = static_cast<MiB>(m.used / kBytesPerMiB);
        s.memory_free = static_cast<MiB>(m.free / kBytesPerMiB);
      }
      if (s.lost) return;
    }
    if (!(d.unsupported & kUtil)) {
      nvmlUtilization_t u{};
      if (Check(d, kUtil, lib_->get_utilization(d.handle, &u), s)) {
        s.util_percent = static_cast<int>(u.gpu);
        s.mem_util_percent = static_cast<int>(u.memory);
      }
      if (s.lost) return;
    }
    if (lib_->get_temperature != nullptr && !(d.unsupported & kTemperature)) {
      unsigned t = 0;
      if (Check(d, kTemperature, lib_->get_temperature(d.handle, NVML_TEMPERATURE_GPU, &t), s)) {
        s.temperature_c = static_cast<int>(t);
      }
      if (s.lost) return;
    }
    if (lib_->get_power != nullptr && !(d.unsupported & kPower)) {
      unsigned p = 0;
      if (Check(d, kPower, lib_->get_power(d.handle, &p), s)) s.power_mw = p;
      if (s.lost) return;
    }
    if (lib_->get_clock != nullptr && !(d.unsupported & kClock)) {
      unsigned c = 0;
      if (Check(d, kClock, lib_->get_clock(d.handle, NVML_CLOCK_SM, &c), s))
        s.sm_clock_mhz = static_cast<int>(c);
      if (s.lost) return;
    }
    if (!(d.unsupported & kProcesses)) ReadProcesses(d, s);
    if (s.lost) return;
    ReadHealth(d, s);
  }

  // Which health functions the library has, and the XID event set.
  void SetUpHealth() {
    if (!lib_->HasEvents()) lib_missing_ |= kCheckXidEvents;
    if (lib_->get_total_ecc == nullptr) lib_missing_ |= kCheckEccDbe;
    if (lib_->get_retired_pending == nullptr) lib_missing_ |= kCheckRetiredPages;
    if (lib_->get_remapped_rows == nullptr) lib_missing_ |= kCheckRowRemap;
    if (lib_->get_throttle_reasons == nullptr) lib_missing_ |= kCheckThrottle;
    if (lib_missing_ != 0) {
      std::string names;
      for (HealthCheck c : AllHealthChecks()) {
        if (lib_missing_ & c) names += std::string(names.empty() ? "" : ", ") + HealthCheckName(c);
      }
      spdlog::info("gpu: NVML library {} lacks health functions ({}); those checks are unavailable",
                   lib_->path(), names);
    }
    if (!lib_->HasEvents()) return;
    nvmlReturn_t r = lib_->event_set_create(&events_);
    if (r != NVML_SUCCESS) {
      spdlog::warn("gpu: nvmlEventSetCreate: {}; XID events unavailable", lib_->ErrorString(r));
      events_ = nullptr;
      for (auto& d : devices_) d.health_unsupported |= kCheckXidEvents;
      return;
    }
    for (auto& d : devices_) {
      r = lib_->register_events(d.handle, nvmlEventTypeXidCriticalError, events_);
      if (r == NVML_SUCCESS) continue;
      d.health_unsupported |= kCheckXidEvents;
      if (r != NVML_ERROR_NOT_SUPPORTED) {
        spdlog::warn("gpu {} ({}): nvmlDeviceRegisterEvents: {}; XID events unavailable",
                     d.info.index, d.info.uuid, lib_->ErrorString(r));
      }
    }
  }

  // True on success; otherwise remembers NOT_SUPPORTED, marks a lost device,
  // or records the error once per device and code.
  bool CheckHealth(Device& d, HealthCheck c, nvmlReturn_t r, GpuSample& s) {
    if (r == NVML_SUCCESS) return true;
    if (r == NVML_ERROR_NOT_SUPPORTED) {
      d.health_unsupported |= c;
      s.health.not_supported |= c;
      return false;
    }
    if (r == NVML_ERROR_GPU_IS_LOST) {
      s.lost = true;
      return false;
    }
    std::string why = std::string(HealthCheckName(c)) + ": " + lib_->ErrorString(r);
    s.errors.push_back(why);
    if (d.logged.insert({0x100u | c, static_cast<int>(r)}).second) {
      spdlog::warn("gpu {} ({}): {}", d.info.index, d.info.uuid, why);
    }
    return false;
  }

  bool Wanted(const Device& d, HealthCheck c) const {
    return !(lib_missing_ & c) && !(d.health_unsupported & c);
  }

  void ReadHealth(Device& d, GpuSample& s) {
    HealthReading& h = s.health;
    if (Wanted(d, kCheckEccDbe)) {
      unsigned long long n = 0;
      if (CheckHealth(d, kCheckEccDbe,
                      lib_->get_total_ecc(d.handle, NVML_MEMORY_ERROR_TYPE_UNCORRECTED,
                                          NVML_VOLATILE_ECC, &n),
                      s))
        h.ecc_dbe_volatile = n;
      if (s.lost) return;
    }
    if (Wanted(d, kCheckRetiredPages)) {
      nvmlEnableState_t pending = NVML_FEATURE_DISABLED;
      if (CheckHealth(d, kCheckRetiredPages, lib_->get_retired_pending(d.handle, &pending), s))
        h.retired_pages_pending = pending == NVML_FEATURE_ENABLED;
      if (s.lost) return;
    }
    if (Wanted(d, kCheckRowRemap)) {
      unsigned corr = 0, unc = 0, pending = 0, failed = 0;
      if (CheckHealth(d, kCheckRowRemap,
                      lib_->get_remapped_rows(d.handle, &corr, &unc, &pending, &failed), s)) {
        h.row_remap_pending = pending != 0;
        h.row_remap_failure = failed != 0;
      }
      if (s.lost) return;
    }
    if (Wanted(d, kCheckThrottle)) {
      unsigned long long reasons = 0;
      if (CheckHealth(d, kCheckThrottle, lib_->get_throttle_reasons(d.handle, &reasons), s))
        h.throttle_reasons = reasons;
    }
  }

  // XIDs the driver queued since the last sample, onto their GPUs' samples.
  // The wait does not block (timeout 0); at most 256 events per sample.
  void DrainXidEvents(std::vector<GpuSample>& out) {
    if (events_ == nullptr) return;
    for (int i = 0; i < 256; ++i) {
      nvmlEventData_t e{};
      nvmlReturn_t r = lib_->event_set_wait(events_, &e, 0);
      if (r == NVML_ERROR_TIMEOUT) return;
      if (r != NVML_SUCCESS) {
        if (!event_error_logged_) {
          spdlog::warn("gpu: nvmlEventSetWait_v2: {}", lib_->ErrorString(r));
          event_error_logged_ = true;
        }
        return;
      }
      if (!(e.eventType & nvmlEventTypeXidCriticalError)) continue;
      for (size_t k = 0; k < devices_.size() && k < out.size(); ++k) {
        if (devices_[k].handle != e.device) continue;
        out[k].health.xids.push_back(static_cast<int>(e.eventData));
        spdlog::error("gpu {} ({}): XID {}{}{}", devices_[k].info.index, devices_[k].info.uuid,
                      e.eventData, *XidDescription(static_cast<int>(e.eventData)) ? ": " : "",
                      XidDescription(static_cast<int>(e.eventData)));
        break;
      }
    }
  }

  void ReadProcesses(Device& d, GpuSample& s) {
    auto v2 = lib_->get_processes_v3 != nullptr ? lib_->get_processes_v3 : lib_->get_processes_v2;
    if (v2 == nullptr && lib_->get_processes_v1 == nullptr) {
      d.unsupported |= kProcesses;
      return;
    }
    if (d.procs.empty()) d.procs.resize(16);
    if (d.procs_v1.empty()) d.procs_v1.resize(16);
    nvmlReturn_t r = NVML_ERROR_INSUFFICIENT_SIZE;
    unsigned n = 0;
    // The process list can grow between the size query and the read: retry.
    for (int attempt = 0; attempt < 4 && r == NVML_ERROR_INSUFFICIENT_SIZE; ++attempt) {
      if (v2 != nullptr) {
        n = static_cast<unsigned>(d.procs.size());
        r = v2(d.handle, &n, d.procs.data());
        if (r == NVML_ERROR_INSUFFICIENT_SIZE) d.procs.resize(n + 8);
      } else {
        n = static_cast<unsigned>(d.procs_v1.size());
        r = lib_->get_processes_v1(d.handle, &n, d.procs_v1.data());
        if (r == NVML_ERROR_INSUFFICIENT_SIZE) d.procs_v1.resize(n + 8);
      }
    }
    if (!Check(d, kProcesses, r, s)) return;
    std::vector<GpuProcess> procs;
    procs.reserve(n);
    for (unsigned i = 0; i < n; ++i) {
      unsigned pid = v2 != nullptr ? d.procs[i].pid : d.procs_v1[i].pid;
      unsigned long long used =
          v2 != nullptr ? d.procs[i].usedGpuMemory : d.procs_v1[i].usedGpuMemory;
      GpuProcess p;
      p.pid = static_cast<int>(pid);
      if (used != NVML_VALUE_NOT_AVAILABLE) p.used_memory = static_cast<MiB>(used / kBytesPerMiB);
      procs.push_back(p);
    }
    s.processes = std::move(procs);
  }

  // NVLink peers: an active link whose remote end is another of our GPUs.
  // Links that end at something else (an NVSwitch) join every GPU that also
  // has such links: the switch fabric connects them all.
  void FindNvLinkPeers() {
    if (lib_->get_nvlink_state == nullptr || lib_->get_nvlink_remote_pci == nullptr) return;
    std::map<std::string, int> by_bus;
    for (size_t i = 0; i < devices_.size(); ++i) {
      if (!devices_[i].pci_bus_id.empty()) by_bus[devices_[i].pci_bus_id] = static_cast<int>(i);
    }
    std::vector<std::set<int>> peers(devices_.size());
    std::vector<bool> switched(devices_.size(), false);
    for (size_t i = 0; i < devices_.size(); ++i) {
      for (unsigned link = 0; link < NVML_NVLINK_MAX_LINKS; ++link) {
        nvmlEnableState_t active = NVML_FEATURE_DISABLED;
        nvmlReturn_t r = lib_->get_nvlink_state(devices_[i].handle, link, &active);
        if (r == NVML_ERROR_NOT_SUPPORTED && link == 0) break;
        if (r != NVML_SUCCESS || active != NVML_FEATURE_ENABLED) continue;
        nvmlPciInfo_t pci{};
        if (lib_->get_nvlink_remote_pci(devices_[i].handle, link, &pci) != NVML_SUCCESS) continue;
        auto it = by_bus.find(NormalizeBusId(pci.busId));
        if (it != by_bus.end() && it->second != static_cast<int>(i)) {
          peers[i].insert(it->second);
        } else if (it == by_bus.end()) {
          switched[i] = true;
        }
      }
    }
    for (size_t i = 0; i < devices_.size(); ++i) {
      for (size_t j = 0; j < devices_.size(); ++j) {
        if (i != j && switched[i] && switched[j]) peers[i].insert(static_cast<int>(j));
      }
      devices_[i].info.nvlink_peers.clear();
      for (int p : peers[i]) devices_[i].info.nvlink_peers.push_back(devices_[p].info.index);
    }
  }

  std::unique_ptr<NvmlLibrary> lib_;
  model::NodeInfo node_;
  std::string describe_;
  std::mutex sample_mu_;   // serializes Sample()
  mutable std::mutex mu_;  // guards Device::lost for Nodes()
  std::vector<Device> devices_;
  unsigned lib_missing_ = 0;         // HealthCheck bits whose functions the library lacks
  nvmlEventSet_t events_ = nullptr;  // XID events of every device (null: unavailable)
  bool event_error_logged_ = false;
};

}  // namespace

std::string ResolveNvmlLibraryPath(const std::string& configured) {
  if (!configured.empty()) return configured;
  const char* env = std::getenv("BERTH_NVML_LIBRARY");
  if (env != nullptr && *env != '\0') return env;
  return "libnvidia-ml.so.1";
}

Result<std::unique_ptr<Inventory>> MakeNvmlInventory(const NvmlOptions& options) {
  ASSIGN_OR_RETURN(auto lib, NvmlLibrary::Load(ResolveNvmlLibraryPath(options.library_path)));
  nvmlReturn_t r = lib->init();
  if (r != NVML_SUCCESS) {
    return Unavailable("nvmlInit_v2 (" + lib->path() + "): " + lib->ErrorString(r));
  }
  auto inv = std::make_unique<NvmlInventory>(std::move(lib), options);
  RETURN_IF_ERROR(inv->Discover());
  return std::unique_ptr<Inventory>(std::move(inv));
}

std::unique_ptr<Inventory> MakeLocalInventory(const LocalInventoryOptions& options) {
  if (options.use_nvml) {
    auto nvml = MakeNvmlInventory(options.nvml);
    if (nvml.ok()) {
      spdlog::info("gpu: {}", (*nvml)->Describe());
      return std::move(nvml).value();
    }
    auto declared = MakeDeclaredInventory(options.declared);
    spdlog::info("gpu: NVML not used ({}); using {}", nvml.status().message(),
                 declared->Describe());
    return declared;
  }
  auto declared = MakeDeclaredInventory(options.declared);
  spdlog::info("gpu: NVML disabled; using {}", declared->Describe());
  return declared;
}

}  // namespace berth::gpu
