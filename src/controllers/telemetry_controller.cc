#include "controllers/telemetry_controller.h"

#include "common/log.h"
#include "gpu/telemetry_json.h"

namespace berth::controllers {

TelemetryController::TelemetryController(store::Store& store, gpu::Inventory& inventory,
                                         Clock& clock, TelemetrySource source,
                                         TelemetryControllerOptions options)
    : store_(store),
      inventory_(inventory),
      sampler_(clock, inventory, options.sampler),
      source_(std::move(source)),
      options_(std::move(options)) {
  for (const auto& n : inventory.Nodes())
    for (const auto& g : n.gpus) declared_only_ &= g.declared;
}

TelemetryController::~TelemetryController() { Stop(); }

Status TelemetryController::Start() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_ = false;
  }
  if (options_.run_thread && !thread_.joinable()) thread_ = std::thread([this] { Loop(); });
  return Status::Ok();
}

void TelemetryController::Stop() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void TelemetryController::Loop() {
  std::unique_lock<std::mutex> l(mu_);
  while (!stop_) {
    l.unlock();
    RunOnce();
    l.lock();
    cv_.wait_for(l, std::chrono::milliseconds(options_.sampler.interval), [&] { return stop_; });
  }
}

std::string TelemetryController::EventType(gpu::GpuEventType type) {
  switch (type) {
    case gpu::GpuEventType::kIdleAllocation:
      return "GpuIdle";
    case gpu::GpuEventType::kIdleEnded:
      return "GpuBusy";
    case gpu::GpuEventType::kViolation:
      return "GpuViolation";
    case gpu::GpuEventType::kGpuLost:
      return "GpuLost";
    case gpu::GpuEventType::kGpuRecovered:
      return "GpuRecovered";
    case gpu::GpuEventType::kReadFailed:
      return "GpuReadFailed";
    // Health events (gpu/health.h; only with SamplerOptions::health_events).
    case gpu::GpuEventType::kXid:
      return "GpuXid";
    case gpu::GpuEventType::kHealthFatal:
      return "GpuUnhealthy";
    case gpu::GpuEventType::kHealthOk:
      return "GpuHealthy";
  }
  return "GpuReadFailed";
}

void TelemetryController::RunOnce() {
  std::lock_guard<std::mutex> pass(pass_mu_);
  if (source_.assignments) sampler_.SetAssignments(source_.assignments());
  if (source_.process_groups) sampler_.SetProcessGroups(source_.process_groups());
  for (const gpu::GpuEvent& ev : sampler_.Tick()) {
    nlohmann::json data = {{"node", ev.gpu.node}, {"gpu", ev.gpu.index}, {"uuid", ev.uuid}};
    if (ev.pid) data["pid"] = ev.pid;
    if (ev.idle_for) data["idleForMs"] = ev.idle_for;
    if (ev.type == gpu::GpuEventType::kIdleAllocation || ev.type == gpu::GpuEventType::kViolation ||
        ev.type == gpu::GpuEventType::kGpuLost)
      spdlog::warn("{}", ev.message);
    if (source_.record_event) source_.record_event(EventType(ev.type), ev.job, ev.message, data);
  }
  DrainFatal();                  // telemetry_live.cc
  CheckMemory();                 // telemetry_live.cc
  std::set<model::JobId> ended;  // jobs the sampler still keeps that hold no GPU now
  for (const gpu::JobUsage& u : sampler_.Jobs()) {
    if (u.active || u.job == 0) continue;
    ended.insert(u.job);
    if (usage_saved_.count(u.job)) continue;
    Status put = store_.PutJobUsage(ToRecord(u));
    if (put.ok())
      usage_saved_.insert(u.job);
    else
      spdlog::warn("job {}: could not save its GPU usage: {}", u.job, put.ToString());
  }
  // Saved and since evicted by the sampler, or running again (saved anew
  // when it ends): forget, so this set stays as small as the sampler's.
  std::erase_if(usage_saved_, [&](model::JobId id) { return !ended.count(id); });
}

std::vector<GpuLiveState> TelemetryController::GpuStates() const {
  std::vector<GpuLiveState> out;
  for (const gpu::GpuStatus& g : sampler_.Snapshot()) {
    GpuLiveState s;
    s.node = g.sample.node;
    s.index = g.sample.index;
    s.uuid = g.sample.uuid;
    s.time = g.time;
    s.util_percent = g.sample.util_percent;
    s.memory_used = g.sample.memory_used;
    s.memory_total = g.sample.memory_total;
    s.idle_for = g.idle_for;
    if (g.sample.lost) {
      s.healthy = false;
      s.reason = "lost";
    }
    out.push_back(std::move(s));
  }
  return out;
}

nlohmann::json TelemetryController::JobUsageJson(model::JobId id) const {
  std::optional<gpu::JobUsage> u = sampler_.Job(id);
  if (!u) {
    auto saved = store_.GetJobUsage(id);
    if (!saved.ok() || !*saved) return nullptr;
    u = FromRecord(**saved);
  }
  nlohmann::json j = gpu::ToJson(*u);
  auto measured = [](bool any, auto v) {
    return any ? nlohmann::json(v) : nlohmann::json(nullptr);
  };
  bool util = u->util_samples > 0, mem = !declared_only_ && u->memory_samples > 0;
  j["avgUtilization"] = measured(util, u->AvgUtil());
  j["peakUtilization"] = measured(util, u->peak_util);
  j["avgMemoryMiB"] = measured(mem, u->AvgMemory());
  j["peakMemoryMiB"] = measured(mem, u->peak_memory);
  j["avgUtilPercent"] = j["avgUtilization"];
  j["peakUtilPercent"] = j["peakUtilization"];
  return j;
}

nlohmann::json TelemetryController::GpuJson(const std::string& node, int index) const {
  auto g = sampler_.Gpu({node, index});
  if (!g || g->time == 0) return nullptr;
  const gpu::GpuSample& s = g->sample;
  nlohmann::json t = gpu::ToJson(*g);
  // The fields `berth gpus` shows, under stable names.
  t["utilization"] = s.util_percent ? nlohmann::json(*s.util_percent) : nlohmann::json(nullptr);
  if (s.memory_used) t["memoryUsedMiB"] = *s.memory_used;
  t["temperatureC"] = s.temperature_c ? nlohmann::json(*s.temperature_c) : nlohmann::json(nullptr);
  t["powerW"] = s.power_mw ? nlohmann::json(*s.power_mw / 1000.0) : nlohmann::json(nullptr);
  t["lost"] = s.lost;
  return t;
}

store::JobUsageRecord TelemetryController::ToRecord(const gpu::JobUsage& u) {
  store::JobUsageRecord r;
  r.job = u.job;
  r.user = u.user;
  r.queue = u.queue;
  r.first_time = u.first_time;
  r.last_time = u.last_time;
  r.util_samples = u.util_samples;
  r.util_sum = u.util_sum;
  r.peak_util = u.peak_util;
  r.memory_samples = u.memory_samples;
  r.memory_sum = u.memory_sum;
  r.peak_memory = u.peak_memory;
  r.allocated_milli_gpu_ms = u.allocated_milli_gpu_ms;
  r.idle_milli_gpu_ms = u.idle_milli_gpu_ms;
  r.violations = u.violations;
  return r;
}

gpu::JobUsage TelemetryController::FromRecord(const store::JobUsageRecord& r) {
  gpu::JobUsage u;
  u.job = r.job;
  u.user = r.user;
  u.queue = r.queue;
  u.first_time = r.first_time;
  u.last_time = r.last_time;
  u.util_samples = r.util_samples;
  u.util_sum = r.util_sum;
  u.peak_util = static_cast<int>(r.peak_util);
  u.memory_samples = r.memory_samples;
  u.memory_sum = r.memory_sum;
  u.peak_memory = r.peak_memory;
  u.allocated_milli_gpu_ms = r.allocated_milli_gpu_ms;
  u.idle_milli_gpu_ms = r.idle_milli_gpu_ms;
  u.violations = static_cast<int>(r.violations);
  return u;
}

}  // namespace berth::controllers
