// GPU metrics in the Prometheus text exposition format (version 0.0.4), with
// the DCGM exporter's metric names so that existing dashboards and alerts
// work unchanged:
//   DCGM_FI_DEV_GPU_UTIL (%), DCGM_FI_DEV_FB_USED (MiB), DCGM_FI_DEV_FB_FREE (MiB),
//   DCGM_FI_DEV_GPU_TEMP (C), DCGM_FI_DEV_POWER_USAGE (W), DCGM_FI_DEV_SM_CLOCK (MHz)
// labelled gpu, UUID, modelName, Hostname, and, while a job holds the GPU,
// job, user and queue (when several jobs share it: their ids, and each distinct
// user and queue once, comma-joined). Berth adds
//   berth_gpu_up (1 answering, 0 lost),
//   berth_gpu_idle_allocated_seconds_total{job,user,queue} (allocated-but-idle GPU seconds),
//   berth_gpu_allocated_seconds_total{job,user,queue},
//   berth_gpu_violations_total{job,user,queue}.
// Health (health.h), DCGM's names where DCGM has the field:
//   DCGM_FI_DEV_XID_ERRORS (last XID), DCGM_FI_DEV_ECC_DBE_VOL_TOTAL,
//   DCGM_FI_DEV_RETIRED_PENDING (0/1), DCGM_FI_DEV_ROW_REMAP_PENDING,
//   DCGM_FI_DEV_ROW_REMAP_FAILURE, DCGM_FI_DEV_CLOCK_THROTTLE_REASONS (bitmask),
//   berth_gpu_health (1 healthy, 0 fatal condition),
//   berth_gpu_check_unavailable{check,reason} (1 per check the GPU cannot do).
// A health family leaves out GPUs where its check is unavailable.
// A reading the GPU does not support is left out, not written as 0.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "gpu/sampler.h"

namespace berth::gpu {

struct MetricsOptions {
  // The label naming the holding job. "job" collides with the label
  // Prometheus attaches to every scraped target; scrape with
  // honor_labels: true (see docs/gpu.md) or pick another name here.
  std::string job_label = "job";
};

// Renders the families above for `gpus` (Sampler::Snapshot) and `jobs`
// (Sampler::Jobs). Each family has its HELP and TYPE lines once, even when
// it has no samples. Pure; thread-safe.
std::string RenderPrometheus(const std::vector<GpuStatus>& gpus, const std::vector<JobUsage>& jobs,
                             const MetricsOptions& options = {});

// Convenience: RenderPrometheus(sampler.Snapshot(), sampler.Jobs(), options).
std::string RenderPrometheus(const Sampler& sampler, const MetricsOptions& options = {});

// A label value escaped for the text format: backslash, double quote and
// newline become \\, \" and \n.
std::string EscapeLabelValue(std::string_view v);

}  // namespace berth::gpu
