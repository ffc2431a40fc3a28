#include "gpu/sampler.h"

#include <unistd.h>

#include <algorithm>

namespace berth::gpu {
namespace {

std::string GpuName(const GpuKey& k, const std::string& uuid) {
  return "GPU " + k.node + "/" + std::to_string(k.index) + (uuid.empty() ? "" : " (" + uuid + ")");
}

std::string JobList(const std::vector<model::JobId>& jobs) {
  std::string out;
  for (auto j : jobs) out += (out.empty() ? "" : ", ") + std::to_string(j);
  return out;
}

}  // namespace

const char* GpuEventTypeName(GpuEventType t) {
  switch (t) {
    case GpuEventType::kIdleAllocation:
      return "idle_allocation";
    case GpuEventType::kIdleEnded:
      return "idle_ended";
    case GpuEventType::kViolation:
      return "violation";
    case GpuEventType::kGpuLost:
      return "gpu_lost";
    case GpuEventType::kGpuRecovered:
      return "gpu_recovered";
    case GpuEventType::kReadFailed:
      return "read_failed";
    case GpuEventType::kXid:
      return "xid";
    case GpuEventType::kHealthFatal:
      return "health_fatal";
    case GpuEventType::kHealthOk:
      return "health_ok";
  }
  return "unknown";
}

Sampler::Sampler(Clock& clock, Inventory& inventory, SamplerOptions options)
    : clock_(clock), inventory_(inventory), options_(std::move(options)) {
  if (!options_.pgid_of) options_.pgid_of = [](int pid) { return static_cast<int>(getpgid(pid)); };
}

void Sampler::SetAssignments(std::vector<Assignment> assignments) {
  std::map<GpuKey, std::vector<Assignment>> m;
  for (auto& a : assignments) m[GpuKey{a.node, a.gpu}].push_back(std::move(a));
  for (auto& [k, v] : m) {
    std::sort(v.begin(), v.end(),
              [](const Assignment& a, const Assignment& b) { return a.job < b.job; });
  }
  std::lock_guard<std::mutex> l(mu_);
  assignments_ = std::move(m);
}

void Sampler::SetProcessGroups(std::map<int, model::JobId> pgid_to_job) {
  std::lock_guard<std::mutex> l(mu_);
  pgid_to_job_ = std::move(pgid_to_job);
}

std::vector<GpuEvent> Sampler::Tick() {
  TimeMs now = clock_.Now();
  auto read = inventory_.Sample();
  // Process groups are looked up outside the lock: one syscall per process.
  if (read.ok()) {
    for (auto& s : *read) {
      if (!s.processes) continue;
      for (auto& p : *s.processes) p.pgid = std::max(0, options_.pgid_of(p.pid));
    }
  }

  std::lock_guard<std::mutex> l(mu_);
  std::vector<GpuEvent> events;
  if (!read.ok()) {
    GpuEvent e;
    e.type = GpuEventType::kReadFailed;
    e.time = now;
    e.message = "GPU telemetry read failed: " + read.status().message();
    events.push_back(std::move(e));
    return events;
  }
  DurationMs dt = 0;
  if (ticked_) dt = std::clamp<DurationMs>(now - last_tick_, 0, options_.max_gap);

  std::map<model::JobId, MiB> tick_memory;
  for (auto& s : *read) {
    GpuKey key{s.node, s.index};
    auto [it, inserted] = gpus_.try_emplace(key);
    GpuState& g = it->second;
    if (inserted) g.history = std::make_unique<GpuHistory>(options_.history);
    if (s.processes) {
      for (auto& p : *s.processes) {
        auto j = pgid_to_job_.find(p.pgid);
        p.job = p.pgid > 0 && j != pgid_to_job_.end() ? j->second : 0;
      }
    }
    if (s.lost != g.lost) {
      GpuEvent e;
      e.type = s.lost ? GpuEventType::kGpuLost : GpuEventType::kGpuRecovered;
      e.time = now;
      e.gpu = key;
      e.uuid = s.uuid;
      e.message =
          GpuName(key, s.uuid) + (s.lost ? " is lost (NVML_ERROR_GPU_IS_LOST)" : " answers again");
      events.push_back(std::move(e));
      g.lost = s.lost;
    }
    g.history->Add(now, s);
    g.status.time = now;
    g.status.sample = std::move(s);
    UpdateHealth(key, g, now, events);
    auto a = assignments_.find(key);
    g.status.holders = a == assignments_.end() ? std::vector<Assignment>{} : a->second;
    Account(key, g, now, dt, tick_memory, events);
  }

  // Lifetime memory per job: the sum over its GPUs at this tick.
  std::set<model::JobId> assigned;
  for (const auto& [k, v] : assignments_) {
    for (const auto& a : v) assigned.insert(a.job);
  }
  for (auto& [id, u] : jobs_) {
    if (assigned.count(id)) {
      if (!u.active) {
        u.active = true;
        finished_order_.erase(std::remove(finished_order_.begin(), finished_order_.end(), id),
                              finished_order_.end());
      }
      if (u.last_time == now) {
        MiB m = tick_memory.count(id) ? tick_memory[id] : 0;
        ++u.memory_samples;
        u.memory_sum += m;
        u.peak_memory = std::max(u.peak_memory, m);
      }
    } else if (u.active) {
      u.active = false;
      finished_order_.push_back(id);
    }
  }
  EvictFinished();
  ticked_ = true;
  last_tick_ = now;
  return events;
}

void Sampler::Account(const GpuKey& key, GpuState& g, TimeMs now, DurationMs dt,
                      std::map<model::JobId, MiB>& tick_memory, std::vector<GpuEvent>& events) {
  const GpuSample& s = g.status.sample;
  const auto& holders = g.status.holders;
  auto holds = [&](model::JobId j) {
    return std::any_of(holders.begin(), holders.end(),
                       [&](const Assignment& a) { return a.job == j; });
  };
  std::vector<model::JobId> holder_ids;
  for (const auto& h : holders) holder_ids.push_back(h.job);

  // Processes: memory per job, and jobs on GPUs they do not hold.
  std::set<int> pids_now;
  if (s.processes) {
    for (const auto& p : *s.processes) {
      pids_now.insert(p.pid);
      if (p.job == 0) continue;
      if (p.used_memory) tick_memory[p.job] += *p.used_memory;
      if (holds(p.job) || g.violations_reported.count(p.pid)) continue;
      g.violations_reported.insert(p.pid);
      Assignment intruder;
      intruder.job = p.job;
      JobUsage& u = UsageFor(intruder, now);
      ++u.violations;
      GpuEvent e;
      e.type = GpuEventType::kViolation;
      e.time = now;
      e.gpu = key;
      e.uuid = s.uuid;
      e.job = p.job;
      e.pid = p.pid;
      e.holders = holder_ids;
      e.user = u.user;
      e.queue = u.queue;
      e.message =
          "process " + std::to_string(p.pid) + " of job " + std::to_string(p.job) + " uses " +
          GpuName(key, s.uuid) +
          (holder_ids.empty() ? ", which no job holds" : ", held by job " + JobList(holder_ids));
      events.push_back(std::move(e));
    }
  }
  for (auto it = g.violations_reported.begin(); it != g.violations_reported.end();) {
    it = pids_now.count(*it) ? std::next(it) : g.violations_reported.erase(it);
  }
  if (!s.processes && holders.size() == 1 && s.memory_used)
    tick_memory[holders[0].job] += *s.memory_used;

  // Holders that left: their idle spell ends.
  for (auto it = g.holder_since.begin(); it != g.holder_since.end();) {
    if (holds(it->first)) {
      ++it;
      continue;
    }
    if (g.idle_reported.erase(it->first)) {
      GpuEvent e;
      e.type = GpuEventType::kIdleEnded;
      e.time = now;
      e.gpu = key;
      e.uuid = s.uuid;
      e.job = it->first;
      e.idle_for = g.idle_since >= 0 ? now - std::max(g.idle_since, it->second) : 0;
      e.message =
          GpuName(key, s.uuid) + " released by job " + std::to_string(it->first) + " while idle";
      events.push_back(std::move(e));
    }
    it = g.holder_since.erase(it);
  }

  bool idle = !s.lost && s.util_percent && *s.util_percent < options_.idle_util_percent;
  if (idle) {
    if (g.idle_since < 0) g.idle_since = now;
  } else {
    for (auto j : g.idle_reported) {
      GpuEvent e;
      e.type = GpuEventType::kIdleEnded;
      e.time = now;
      e.gpu = key;
      e.uuid = s.uuid;
      e.job = j;
      e.idle_for = g.idle_since >= 0 ? now - std::max(g.idle_since, g.holder_since[j]) : 0;
      e.message = GpuName(key, s.uuid) + " held by job " + std::to_string(j) + " is busy again";
      events.push_back(std::move(e));
    }
    g.idle_reported.clear();
    g.idle_since = -1;
  }
  g.status.idle_for = idle ? now - g.idle_since : 0;

  for (const auto& h : holders) {
    auto [since_it, fresh] = g.holder_since.try_emplace(h.job, now);
    JobUsage& u = UsageFor(h, now);
    u.last_time = now;
    u.allocated_milli_gpu_ms += dt * h.share;
    if (!s.lost && s.util_percent) {
      ++u.util_samples;
      u.util_sum += *s.util_percent;
      u.peak_util = std::max(u.peak_util, *s.util_percent);
    }
    if (!idle) continue;
    DurationMs idle_for = now - std::max(g.idle_since, since_it->second);
    if (idle_for < options_.idle_after) continue;
    if (g.idle_reported.insert(h.job).second) {
      u.idle_milli_gpu_ms += idle_for * h.share;
      GpuEvent e;
      e.type = GpuEventType::kIdleAllocation;
      e.time = now;
      e.gpu = key;
      e.uuid = s.uuid;
      e.job = h.job;
      e.user = h.user;
      e.queue = h.queue;
      e.idle_for = idle_for;
      e.message = GpuName(key, s.uuid) + " held by job " + std::to_string(h.job) + " (user " +
                  h.user + ", queue " + h.queue + ") has been below " +
                  std::to_string(options_.idle_util_percent) + "% utilization for " +
                  FormatDuration(idle_for);
      events.push_back(std::move(e));
    } else {
      u.idle_milli_gpu_ms += dt * h.share;
    }
  }
}

JobUsage& Sampler::UsageFor(const Assignment& a, TimeMs now) {
  auto [it, inserted] = jobs_.try_emplace(a.job);
  JobUsage& u = it->second;
  if (inserted) {
    u.job = a.job;
    u.first_time = now;
    u.active = true;
  }
  if (!a.user.empty()) u.user = a.user;
  if (!a.queue.empty()) u.queue = a.queue;
  return u;
}

void Sampler::EvictFinished() {
  while (finished_order_.size() > options_.max_finished_jobs) {
    jobs_.erase(finished_order_.front());
    finished_order_.erase(finished_order_.begin());
  }
}

std::vector<GpuStatus> Sampler::Snapshot() const {
  std::lock_guard<std::mutex> l(mu_);
  std::vector<GpuStatus> out;
  out.reserve(gpus_.size());
  for (const auto& [k, g] : gpus_) out.push_back(g.status);
  return out;
}

std::optional<GpuStatus> Sampler::Gpu(const GpuKey& key) const {
  std::lock_guard<std::mutex> l(mu_);
  auto it = gpus_.find(key);
  if (it == gpus_.end()) return std::nullopt;
  return it->second.status;
}

std::vector<HistoryPoint> Sampler::FineHistory(const GpuKey& key, TimeMs since) const {
  std::lock_guard<std::mutex> l(mu_);
  auto it = gpus_.find(key);
  return it == gpus_.end() ? std::vector<HistoryPoint>{} : it->second.history->Fine(since);
}

std::vector<HistoryPoint> Sampler::CoarseHistory(const GpuKey& key, TimeMs since) const {
  std::lock_guard<std::mutex> l(mu_);
  auto it = gpus_.find(key);
  return it == gpus_.end() ? std::vector<HistoryPoint>{} : it->second.history->Coarse(since);
}

std::vector<HistoryPoint> Sampler::History(const GpuKey& key, TimeMs since) const {
  std::lock_guard<std::mutex> l(mu_);
  auto it = gpus_.find(key);
  return it == gpus_.end() ? std::vector<HistoryPoint>{}
                           : it->second.history->Since(since, last_tick_);
}

std::vector<JobUsage> Sampler::Jobs() const {
  std::lock_guard<std::mutex> l(mu_);
  std::vector<JobUsage> out;
  out.reserve(jobs_.size());
  for (const auto& [id, u] : jobs_) out.push_back(u);
  return out;
}

std::optional<JobUsage> Sampler::Job(model::JobId job) const {
  std::lock_guard<std::mutex> l(mu_);
  auto it = jobs_.find(job);
  if (it == jobs_.end()) return std::nullopt;
  return it->second;
}

void Sampler::ForgetJob(model::JobId job) {
  std::lock_guard<std::mutex> l(mu_);
  auto it = jobs_.find(job);
  if (it == jobs_.end() || it->second.active) return;
  jobs_.erase(it);
  finished_order_.erase(std::remove(finished_order_.begin(), finished_order_.end(), job),
                        finished_order_.end());
}

TimeMs Sampler::LastTick() const {
  std::lock_guard<std::mutex> l(mu_);
  return last_tick_;
}

}  // namespace berth::gpu
