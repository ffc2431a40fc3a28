// Sampler: GPU health (fatal conditions from the driver's readings) and the
// recent-usage window the scheduler reads.
#include <algorithm>

#include "gpu/sampler.h"

namespace berth::gpu {
namespace {

std::string GpuName(const GpuKey& k, const std::string& uuid) {
  return "GPU " + k.node + "/" + std::to_string(k.index) + (uuid.empty() ? "" : " (" + uuid + ")");
}

std::string XidText(int xid) {
  const char* d = XidDescription(xid);
  return "XID " + std::to_string(xid) + (*d ? std::string(" (") + d + ")" : "");
}

}  // namespace

RecentUsage SummarizeRecent(const std::vector<HistoryPoint>& points) {
  RecentUsage out;
  int64_t weighted = 0;
  for (const auto& p : points) {
    if (p.util >= 0 && p.samples > 0) {
      weighted += static_cast<int64_t>(p.util) * p.samples;
      out.samples += p.samples;
    }
    if (p.memory_max >= 0) {
      out.max_mem_used_mib = std::max<MiB>(out.max_mem_used_mib.value_or(0), p.memory_max);
    }
  }
  if (out.samples > 0) out.avg_util = static_cast<double>(weighted) / out.samples;
  return out;
}

void Sampler::UpdateHealth(const GpuKey& key, GpuState& g, TimeMs now,
                           std::vector<GpuEvent>& events) {
  const GpuSample& s = g.status.sample;
  const HealthReading& r = s.health;
  GpuHealth& h = g.status.health;
  h.node = key.node;
  h.index = key.index;
  h.uuid = s.uuid;
  h.time = now;
  h.lost = s.lost;
  auto event = [&](GpuEventType type, std::string message) {
    if (!options_.health_events) return;
    GpuEvent e;
    e.type = type;
    e.time = now;
    e.gpu = key;
    e.uuid = s.uuid;
    e.message = std::move(message);
    events.push_back(std::move(e));
  };
  for (int x : r.xids) {
    h.last_xid = x;
    h.last_xid_time = now;
    ++h.xid_count;
    bool fatal = options_.fatal_xids.count(x) > 0;
    if (fatal && h.fatal_xid == 0) h.fatal_xid = x;
    event(GpuEventType::kXid, GpuName(key, s.uuid) + " reported " + XidText(x) +
                                  (fatal ? ", which needs a GPU reset" : ""));
    if (options_.health_events) events.back().xid = x;
  }
  // A lost GPU reports nothing: its last readings stand.
  if (!s.lost) {
    h.ecc_dbe_volatile = r.ecc_dbe_volatile;
    h.retired_pages_pending = r.retired_pages_pending;
    h.row_remap_pending = r.row_remap_pending;
    h.row_remap_failure = r.row_remap_failure;
    h.throttle_reasons = r.throttle_reasons;
  }
  h.unavailable = UnavailableChecks(r);  // allocates only when a check is unavailable

  std::string reason;
  auto add = [&](const std::string& why) { reason += (reason.empty() ? "" : "; ") + why; };
  if (s.lost) add("GPU is lost (NVML_ERROR_GPU_IS_LOST)");
  if (h.fatal_xid != 0) add(XidText(h.fatal_xid));
  if (options_.ecc_dbe_fatal && h.ecc_dbe_volatile.value_or(0) > 0)
    add(std::to_string(*h.ecc_dbe_volatile) + " volatile double-bit ECC error(s)");
  if (h.row_remap_failure.value_or(false)) add("row remapping failed");
  bool fatal = !reason.empty();
  if (fatal && !h.fatal) {
    h.fatal_since = now;
    event(GpuEventType::kHealthFatal, GpuName(key, s.uuid) + " is unhealthy: " + reason);
  } else if (!fatal && h.fatal) {
    h.fatal_since = 0;
    event(GpuEventType::kHealthOk, GpuName(key, s.uuid) + " has no fatal condition any more");
  }
  h.fatal = fatal;
  h.reason = std::move(reason);
}

std::vector<GpuHealth> Sampler::Health() const {
  std::lock_guard<std::mutex> l(mu_);
  std::vector<GpuHealth> out;
  out.reserve(gpus_.size());
  for (const auto& [k, g] : gpus_) out.push_back(g.status.health);
  return out;
}

std::optional<GpuHealth> Sampler::Health(const GpuKey& key) const {
  std::lock_guard<std::mutex> l(mu_);
  auto it = gpus_.find(key);
  if (it == gpus_.end()) return std::nullopt;
  return it->second.status.health;
}

void Sampler::ClearHealth(const GpuKey& key) {
  std::lock_guard<std::mutex> l(mu_);
  auto it = gpus_.find(key);
  if (it != gpus_.end()) it->second.status.health.fatal_xid = 0;
}

RecentUsage Sampler::RecentLocked(const GpuState& g, DurationMs window) const {
  if (!ticked_ || window <= 0) return {};
  return SummarizeRecent(g.history->Since(last_tick_ - window + 1, last_tick_));
}

RecentUsage Sampler::Recent(const GpuKey& key, DurationMs window) const {
  std::lock_guard<std::mutex> l(mu_);
  auto it = gpus_.find(key);
  return it == gpus_.end() ? RecentUsage{} : RecentLocked(it->second, window);
}

std::map<GpuKey, RecentUsage> Sampler::Recent(DurationMs window) const {
  std::lock_guard<std::mutex> l(mu_);
  std::map<GpuKey, RecentUsage> out;
  for (const auto& [k, g] : gpus_) out.emplace(k, RecentLocked(g, window));
  return out;
}

std::vector<GpuProcess> Sampler::Processes(const GpuKey& key) const {
  std::lock_guard<std::mutex> l(mu_);
  auto it = gpus_.find(key);
  if (it == gpus_.end() || !it->second.status.sample.processes) return {};
  return *it->second.status.sample.processes;
}

}  // namespace berth::gpu
