#include "gpu/prometheus.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <functional>
#include <optional>

namespace berth::gpu {
namespace {

void Family(std::string& out, const char* name, const char* type, const char* help) {
  out += "# HELP ";
  out += name;
  out += ' ';
  out += help;
  out += "\n# TYPE ";
  out += name;
  out += ' ';
  out += type;
  out += '\n';
}

void Label(std::string& out, bool& first, std::string_view name, std::string_view value) {
  out += first ? '{' : ',';
  first = false;
  out += name;
  out += "=\"";
  out += EscapeLabelValue(value);
  out += '"';
}

// The holders' values joined by commas, each distinct value once, in holder order.
std::string Join(const std::vector<Assignment>& holders,
                 const std::function<std::string(const Assignment&)>& f) {
  std::vector<std::string> seen;
  std::string out;
  for (const auto& h : holders) {
    std::string v = f(h);
    if (std::find(seen.begin(), seen.end(), v) != seen.end()) continue;
    if (!seen.empty()) out += ',';
    out += v;
    seen.push_back(std::move(v));
  }
  return out;
}

// The label set of one GPU, "{gpu=...,...}".
std::string GpuLabels(const GpuStatus& g, const MetricsOptions& o) {
  std::string out;
  bool first = true;
  Label(out, first, "gpu", std::to_string(g.sample.index));
  Label(out, first, "UUID", g.sample.uuid);
  Label(out, first, "modelName", g.sample.model);
  Label(out, first, "Hostname", g.sample.node);
  if (!g.holders.empty()) {
    Label(out, first, o.job_label,
          Join(g.holders, [](const Assignment& a) { return std::to_string(a.job); }));
    Label(out, first, "user", Join(g.holders, [](const Assignment& a) { return a.user; }));
    Label(out, first, "queue", Join(g.holders, [](const Assignment& a) { return a.queue; }));
  }
  out += '}';
  return out;
}

std::string JobLabels(const JobUsage& u, const MetricsOptions& o) {
  std::string out;
  bool first = true;
  Label(out, first, o.job_label, std::to_string(u.job));
  Label(out, first, "user", u.user);
  Label(out, first, "queue", u.queue);
  out += '}';
  return out;
}

void Sample(std::string& out, const char* name, const std::string& labels, int64_t v) {
  out += name;
  out += labels;
  out += ' ';
  out += std::to_string(v);
  out += '\n';
}

void Sample(std::string& out, const char* name, const std::string& labels, double v) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.17g", v);
  out += name;
  out += labels;
  out += ' ';
  out += buf;
  out += '\n';
}

bool Unavailable(const GpuHealth& h, HealthCheck c) {
  return std::any_of(h.unavailable.begin(), h.unavailable.end(),
                     [&](const UnavailableCheck& u) { return u.check == c; });
}

// The health families: DCGM's names where DCGM has the field, Berth's otherwise.
void RenderHealth(std::string& out, const std::vector<GpuStatus>& gpus,
                  const std::vector<std::string>& labels) {
  struct Field {
    const char* name;
    const char* type;
    const char* help;
    HealthCheck check;
    std::function<std::optional<int64_t>(const GpuHealth&)> get;
  };
  auto flag = [](const std::optional<bool>& b) -> std::optional<int64_t> {
    return b ? std::optional<int64_t>(*b ? 1 : 0) : std::nullopt;
  };
  const Field fields[] = {
      {"DCGM_FI_DEV_XID_ERRORS", "gauge",
       "Value of the last XID error encountered (0: none since berthd started).", kCheckXidEvents,
       [](const GpuHealth& h) -> std::optional<int64_t> { return h.last_xid; }},
      {"DCGM_FI_DEV_ECC_DBE_VOL_TOTAL", "counter",
       "Total number of double-bit volatile ECC errors.", kCheckEccDbe,
       [](const GpuHealth& h) -> std::optional<int64_t> {
         return h.ecc_dbe_volatile
                    ? std::optional<int64_t>(static_cast<int64_t>(*h.ecc_dbe_volatile))
                    : std::nullopt;
       }},
      {"DCGM_FI_DEV_RETIRED_PENDING", "gauge",
       "Whether pages are pending retirement (1: yes; NVML reports no count).", kCheckRetiredPages,
       [&](const GpuHealth& h) { return flag(h.retired_pages_pending); }},
      {"DCGM_FI_DEV_ROW_REMAP_PENDING", "gauge", "Whether remapping of rows is pending.",
       kCheckRowRemap, [&](const GpuHealth& h) { return flag(h.row_remap_pending); }},
      {"DCGM_FI_DEV_ROW_REMAP_FAILURE", "gauge", "Whether remapping of rows has failed.",
       kCheckRowRemap, [&](const GpuHealth& h) { return flag(h.row_remap_failure); }},
      {"DCGM_FI_DEV_CLOCK_THROTTLE_REASONS", "gauge",
       "Current clock throttle reasons (bitmask of nvmlClocksThrottleReason*).", kCheckThrottle,
       [](const GpuHealth& h) -> std::optional<int64_t> {
         return h.throttle_reasons
                    ? std::optional<int64_t>(static_cast<int64_t>(*h.throttle_reasons))
                    : std::nullopt;
       }},
  };
  for (const auto& f : fields) {
    Family(out, f.name, f.type, f.help);
    for (size_t i = 0; i < gpus.size(); ++i) {
      const GpuHealth& h = gpus[i].health;
      if (Unavailable(h, f.check)) continue;
      // XIDs still count for a lost GPU (79 arrives as it falls off); the
      // polled readings do not.
      if (gpus[i].sample.lost && f.check != kCheckXidEvents) continue;
      auto v = f.get(h);
      if (v) Sample(out, f.name, labels[i], *v);
    }
  }
  Family(out, "berth_gpu_health", "gauge",
         "1: no fatal condition; 0: lost, a fatal XID, double-bit ECC errors or a failed row "
         "remap (the GPU should get no new work).");
  for (size_t i = 0; i < gpus.size(); ++i) {
    Sample(out, "berth_gpu_health", labels[i], static_cast<int64_t>(gpus[i].health.fatal ? 0 : 1));
  }
  Family(out, "berth_gpu_check_unavailable", "gauge",
         "A health check the driver cannot do on this GPU (reason: missing_function, "
         "not_supported, not_read).");
  for (size_t i = 0; i < gpus.size(); ++i) {
    for (const auto& u : gpus[i].health.unavailable) {
      std::string l = labels[i];
      l.pop_back();  // the closing brace
      l += ",check=\"";
      l += u.Name();
      l += "\",reason=\"";
      l += UnavailableReasonName(u.reason);
      l += "\"}";
      Sample(out, "berth_gpu_check_unavailable", l, static_cast<int64_t>(1));
    }
  }
}

}  // namespace

std::string EscapeLabelValue(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '"':
        out += "\\\"";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string RenderPrometheus(const std::vector<GpuStatus>& gpus, const std::vector<JobUsage>& jobs,
                             const MetricsOptions& options) {
  std::vector<std::string> labels;
  labels.reserve(gpus.size());
  for (const auto& g : gpus) labels.push_back(GpuLabels(g, options));
  std::string out;
  out.reserve(512 + gpus.size() * 1400 + jobs.size() * 300);

  struct Gauge {
    const char* name;
    const char* help;
    std::function<std::optional<double>(const GpuSample&)> get;
    bool integer;
  };
  const Gauge gauges[] = {
      {"DCGM_FI_DEV_GPU_UTIL", "GPU utilization (in %).",
       [](const GpuSample& s) -> std::optional<double> { return s.util_percent; }, true},
      {"DCGM_FI_DEV_FB_USED", "Framebuffer memory used (in MiB).",
       [](const GpuSample& s) -> std::optional<double> {
         return s.memory_used ? std::optional<double>(static_cast<double>(*s.memory_used))
                              : std::nullopt;
       },
       true},
      {"DCGM_FI_DEV_FB_FREE", "Framebuffer memory free (in MiB).",
       [](const GpuSample& s) -> std::optional<double> {
         return s.memory_free ? std::optional<double>(static_cast<double>(*s.memory_free))
                              : std::nullopt;
       },
       true},
      {"DCGM_FI_DEV_GPU_TEMP", "GPU temperature (in C).",
       [](const GpuSample& s) -> std::optional<double> { return s.temperature_c; }, true},
      {"DCGM_FI_DEV_POWER_USAGE", "Power draw (in W).",
       [](const GpuSample& s) -> std::optional<double> {
         return s.power_mw ? std::optional<double>(static_cast<double>(*s.power_mw) / 1000.0)
                           : std::nullopt;
       },
       false},
      {"DCGM_FI_DEV_SM_CLOCK", "SM clock frequency (in MHz).",
       [](const GpuSample& s) -> std::optional<double> { return s.sm_clock_mhz; }, true},
  };
  for (const auto& gauge : gauges) {
    Family(out, gauge.name, "gauge", gauge.help);
    for (size_t i = 0; i < gpus.size(); ++i) {
      if (gpus[i].sample.lost) continue;
      auto v = gauge.get(gpus[i].sample);
      if (!v) continue;
      if (gauge.integer) {
        Sample(out, gauge.name, labels[i], static_cast<int64_t>(*v));
      } else {
        Sample(out, gauge.name, labels[i], *v);
      }
    }
  }

  Family(out, "berth_gpu_up", "gauge", "Whether the GPU answers its driver (0: lost).");
  for (size_t i = 0; i < gpus.size(); ++i) {
    Sample(out, "berth_gpu_up", labels[i], static_cast<int64_t>(gpus[i].sample.lost ? 0 : 1));
  }

  RenderHealth(out, gpus, labels);

  std::vector<std::string> job_labels;
  job_labels.reserve(jobs.size());
  for (const auto& u : jobs) job_labels.push_back(JobLabels(u, options));
  Family(out, "berth_gpu_idle_allocated_seconds_total", "counter",
         "GPU seconds a job held GPUs that stayed below the idle utilization threshold.");
  for (size_t i = 0; i < jobs.size(); ++i) {
    Sample(out, "berth_gpu_idle_allocated_seconds_total", job_labels[i], jobs[i].IdleGpuSeconds());
  }
  Family(out, "berth_gpu_allocated_seconds_total", "counter", "GPU seconds a job held GPUs.");
  for (size_t i = 0; i < jobs.size(); ++i) {
    Sample(out, "berth_gpu_allocated_seconds_total", job_labels[i], jobs[i].AllocatedGpuSeconds());
  }
  Family(out, "berth_gpu_violations_total", "counter",
         "Processes of a job seen on GPUs that the job does not hold.");
  for (size_t i = 0; i < jobs.size(); ++i) {
    Sample(out, "berth_gpu_violations_total", job_labels[i],
           static_cast<int64_t>(jobs[i].violations));
  }
  return out;
}

std::string RenderPrometheus(const Sampler& sampler, const MetricsOptions& options) {
  return RenderPrometheus(sampler.Snapshot(), sampler.Jobs(), options);
}

}  // namespace berth::gpu
