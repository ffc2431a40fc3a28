// The telemetry controller's part in scheduling (issue 12, live_state.h):
// fatal GPUs drained, each cycle's snapshot filled with health, drains,
// utilization and measured memory, fractions over their memory reported,
// and the GPU idleness signal.
#include <algorithm>

#include "common/log.h"
#include "controllers/telemetry_controller.h"

namespace berth::controllers {

namespace {

std::string Label(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

}  // namespace

void TelemetryController::DrainFatal() {
  if (!options_.drains) return;
  bool any = false;
  for (const gpu::GpuHealth& h : sampler_.Health()) {
    if (!h.fatal || options_.drains->Find(h.node, h.index)) continue;
    auto r = options_.drains->Drain(h.node, h.index, h.reason, "health", "");
    if (!r.ok()) {
      spdlog::error("GPU {} on {}: could not drain it ({}): {}", h.index, h.node, h.reason,
                    r.status().ToString());
      continue;
    }
    spdlog::warn("GPU {} on {} drained: {}", h.index, h.node, h.reason);
    any = true;
  }
  if (any && source_.drained) source_.drained();
}

void TelemetryController::CheckMemory() {
  std::set<std::pair<model::JobId, gpu::GpuKey>> over;
  for (const gpu::GpuStatus& g : sampler_.Snapshot()) {
    gpu::GpuKey key{g.sample.node, g.sample.index};
    for (const gpu::Assignment& a : g.holders) {
      if (a.share >= kWholeGpu || a.memory_limit <= 0 || !g.sample.processes) continue;
      MiB used = 0;
      for (const gpu::GpuProcess& p : *g.sample.processes)
        if (p.job == a.job && p.used_memory) used += *p.used_memory;
      if (used <= a.memory_limit) continue;
      over.insert({a.job, key});
      if (memory_over_.count({a.job, key})) continue;  // reported in this spell
      std::string msg = "job " + std::to_string(a.job) + " uses " + std::to_string(used) +
                        " MiB on GPU " + std::to_string(key.index) + " of " + key.node +
                        ", more than its gpuMemory " + std::to_string(a.memory_limit) + " MiB";
      spdlog::warn("{}", msg);
      {
        std::lock_guard<std::mutex> l(metrics_mu_);
        auto& m = memory_exceeded_[a.job];
        m.first = "job=\"" + std::to_string(a.job) + "\",user=\"" + Label(a.user) + "\",queue=\"" +
                  Label(a.queue) + "\"";
        m.second++;
      }
      if (source_.record_event)
        source_.record_event("GpuMemoryExceeded", a.job, msg,
                             nlohmann::json{{"node", key.node},
                                            {"gpu", key.index},
                                            {"usedMiB", used},
                                            {"gpuMemoryMiB", a.memory_limit}});
      if (source_.memory_exceeded) source_.memory_exceeded(a.job, msg);
    }
  }
  memory_over_ = std::move(over);
}

void TelemetryController::FillSnapshot(sched::ClusterSnapshot& snap) const {
  std::map<gpu::GpuKey, gpu::RecentUsage> util = sampler_.Recent(options_.utilization_window);
  std::map<gpu::GpuKey, gpu::RecentUsage> mem = sampler_.Recent(options_.measured_memory_window);
  std::map<gpu::GpuKey, gpu::GpuStatus> now;
  for (gpu::GpuStatus& g : sampler_.Snapshot()) now[{g.sample.node, g.sample.index}] = std::move(g);
  for (sched::NodeState& n : snap.nodes) {
    for (sched::GpuState& g : n.gpus) {
      gpu::GpuKey key{n.name, g.index};
      if (options_.drains && options_.drains->Find(n.name, g.index)) g.healthy = false;
      auto s = now.find(key);
      if (s == now.end() || s->second.time == 0) continue;
      if (s->second.sample.lost || s->second.health.fatal) g.healthy = false;
      auto u = util.find(key);
      if (u != util.end() && u->second.avg_util) g.utilization = *u->second.avg_util;
      MiB used = -1;
      if (s->second.sample.memory_used) used = *s->second.sample.memory_used;
      auto m = mem.find(key);
      if (m != mem.end() && m->second.max_mem_used_mib)
        used = std::max(used, *m->second.max_mem_used_mib);
      g.memory_used = used;
    }
  }
}

void TelemetryController::ClearHealth(const std::string& node, int gpu) {
  for (const gpu::GpuHealth& h : sampler_.Health())
    if (h.node == node && (gpu < 0 || h.index == gpu)) sampler_.ClearHealth({h.node, h.index});
}

std::string TelemetryController::RenderMetrics() const {
  std::string out =
      "# HELP berth_gpu_drained 1 while the GPU is drained (no new placements), by the drain's "
      "source (manual or health).\n# TYPE berth_gpu_drained gauge\n";
  for (const auto& n : inventory_.Nodes()) {
    for (const auto& g : n.gpus) {
      std::optional<store::DrainRecord> d;
      if (options_.drains) d = options_.drains->Find(n.name, g.index);
      out += "berth_gpu_drained{node=\"" + Label(n.name) + "\",gpu=\"" + std::to_string(g.index) +
             "\",UUID=\"" + Label(g.uuid) + "\",source=\"" + (d ? Label(d->source) : "") + "\"} " +
             (d ? "1" : "0") + "\n";
    }
  }
  out +=
      "# HELP berth_gpu_memory_exceeded_total Times a fraction's processes were seen using more "
      "GPU memory than its gpuMemory.\n# TYPE berth_gpu_memory_exceeded_total counter\n";
  std::lock_guard<std::mutex> l(metrics_mu_);
  for (const auto& [job, m] : memory_exceeded_)
    out += "berth_gpu_memory_exceeded_total{" + m.first + "} " + std::to_string(m.second) + "\n";
  return out;
}

IdleVerdict TelemetryController::GpuIdle::Check(const model::Job& job, const IdleRule& rule,
                                                TimeMs now) const {
  IdleVerdict v;
  if (t_.declared_only_ || job.start_time <= 0 || rule.after <= 0) return v;
  const TimeMs since = now - rule.after;
  std::vector<const model::Placement*> parts;
  if (job.placement.workers.empty()) parts.push_back(&job.placement);
  for (const model::Placement& w : job.placement.workers) parts.push_back(&w);
  const gpu::HistoryOptions& ho = t_.sampler_.options().history;
  int gpus = 0;
  for (const model::Placement* p : parts) {
    for (int g : p->gpus) {
      ++gpus;
      std::vector<gpu::HistoryPoint> pts = t_.sampler_.History({p->node, g}, since);
      // Only the points within the window: the coarse ones start before it.
      const DurationMs step =
          rule.after <= ho.fine_span ? ho.fine_resolution : ho.coarse_resolution;
      TimeMs first = -1;
      for (const gpu::HistoryPoint& pt : pts) {
        if (pt.samples == 0 || pt.util < 0) continue;
        if (pt.time + step <= since) continue;
        if (first < 0) first = pt.time;
        int peak = pt.util_max >= 0 ? pt.util_max : pt.util;
        if (peak >= rule.util_percent) {
          v.known = true;
          v.idle = false;
          v.why = "GPU " + std::to_string(g) + " on " + p->node + " reached " +
                  std::to_string(peak) + "%";
          return v;
        }
      }
      // The readings must cover the whole window (the job held the GPU and
      // the sampler ran all along), else nothing is known yet.
      if (first < 0 || first > since + 2 * step + t_.options_.sampler.interval) return v;
    }
  }
  if (gpus == 0 || job.start_time > since) return v;
  v.known = true;
  v.idle = true;
  v.why = "GPU utilization below " + std::to_string(rule.util_percent) + "% on its " +
          std::to_string(gpus) + " GPU(s) for " + FormatDuration(rule.after);
  return v;
}

}  // namespace berth::controllers
