#include "gpu/telemetry_json.h"

namespace berth::gpu {
namespace {

template <typename T>
nlohmann::json Opt(const std::optional<T>& v) {
  return v ? nlohmann::json(*v) : nlohmann::json(nullptr);
}

nlohmann::json Known(int32_t v) { return v < 0 ? nlohmann::json(nullptr) : nlohmann::json(v); }

}  // namespace

nlohmann::json ToJson(const GpuSample& s) {
  nlohmann::json procs = nullptr;
  if (s.processes) {
    procs = nlohmann::json::array();
    for (const auto& p : *s.processes) {
      procs.push_back({{"pid", p.pid},
                       {"usedMemoryMiB", Opt(p.used_memory)},
                       {"pgid", p.pgid},
                       {"job", p.job}});
    }
  }
  return {{"node", s.node},
          {"index", s.index},
          {"uuid", s.uuid},
          {"model", s.model},
          {"pciBusId", s.pci_bus_id},
          {"lost", s.lost},
          {"migEnabled", Opt(s.mig_enabled)},
          {"utilPercent", Opt(s.util_percent)},
          {"memUtilPercent", Opt(s.mem_util_percent)},
          {"memoryTotalMiB", Opt(s.memory_total)},
          {"memoryUsedMiB", Opt(s.memory_used)},
          {"memoryFreeMiB", Opt(s.memory_free)},
          {"temperatureC", Opt(s.temperature_c)},
          {"powerMilliwatts", Opt(s.power_mw)},
          {"smClockMHz", Opt(s.sm_clock_mhz)},
          {"processes", procs},
          {"errors", s.errors}};
}

nlohmann::json ToJson(const GpuStatus& g) {
  nlohmann::json j = ToJson(g.sample);
  j["time"] = FormatTime(g.time);
  j["idleForMs"] = g.idle_for;
  nlohmann::json holders = nlohmann::json::array();
  for (const auto& h : g.holders) {
    holders.push_back(
        {{"job", h.job}, {"user", h.user}, {"queue", h.queue}, {"share", FormatMilli(h.share)}});
  }
  j["holders"] = holders;
  return j;
}

nlohmann::json ToJson(const JobUsage& u) {
  return {{"job", u.job},
          {"user", u.user},
          {"queue", u.queue},
          {"active", u.active},
          {"firstTime", FormatTime(u.first_time)},
          {"lastTime", FormatTime(u.last_time)},
          {"avgUtilPercent", u.AvgUtil()},
          {"peakUtilPercent", u.peak_util},
          {"avgMemoryMiB", u.AvgMemory()},
          {"peakMemoryMiB", u.peak_memory},
          {"allocatedGpuSeconds", u.AllocatedGpuSeconds()},
          {"idleGpuSeconds", u.IdleGpuSeconds()},
          {"violations", u.violations}};
}

nlohmann::json ToJson(const HistoryPoint& p) {
  return {{"time", FormatTime(p.time)},
          {"util", Known(p.util)},
          {"utilMax", Known(p.util_max)},
          {"memoryUsedMiB", Known(p.memory_used)},
          {"memoryMaxMiB", Known(p.memory_max)},
          {"temperatureC", Known(p.temperature)},
          {"powerMilliwatts", Known(p.power_mw)},
          {"smClockMHz", Known(p.sm_clock)},
          {"samples", p.samples}};
}

nlohmann::json ToJson(const std::vector<HistoryPoint>& points) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& p : points) out.push_back(ToJson(p));
  return out;
}

}  // namespace berth::gpu
