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
  j["health"] = ToJson(g.health);
  return j;
}

nlohmann::json ToJson(const GpuHealth& h) {
  nlohmann::json unavailable = nlohmann::json::array();
  for (const auto& u : h.unavailable) {
    unavailable.push_back({{"check", u.Name()},
                           {"reason", UnavailableReasonName(u.reason)},
                           {"message", u.Describe()}});
  }
  nlohmann::json throttle = nlohmann::json::array();
  if (h.throttle_reasons) {
    std::string names = ThrottleReasonNames(*h.throttle_reasons);
    for (size_t start = 0; start < names.size();) {
      size_t comma = names.find(',', start);
      if (comma == std::string::npos) comma = names.size();
      throttle.push_back(names.substr(start, comma - start));
      start = comma + 1;
    }
  }
  return {{"fatal", h.fatal},
          {"reason", h.reason},
          {"fatalSince", h.fatal ? nlohmann::json(FormatTime(h.fatal_since)) : nlohmann::json()},
          {"lost", h.lost},
          {"lastXid", h.last_xid},
          {"xidCount", h.xid_count},
          {"fatalXid", h.fatal_xid},
          {"eccDbeVolatile", Opt(h.ecc_dbe_volatile)},
          {"retiredPagesPending", Opt(h.retired_pages_pending)},
          {"rowRemapPending", Opt(h.row_remap_pending)},
          {"rowRemapFailure", Opt(h.row_remap_failure)},
          {"throttleReasons", Opt(h.throttle_reasons)},
          {"throttle", throttle},
          {"thermalThrottled", h.thermal_throttled()},
          {"powerThrottled", h.power_throttled()},
          {"unavailable", unavailable}};
}

nlohmann::json ToJson(const RecentUsage& r) {
  return {{"avgUtilPercent", Opt(r.avg_util)},
          {"maxMemoryUsedMiB", Opt(r.max_mem_used_mib)},
          {"samples", r.samples}};
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
