// GET /healthz, /api/v1/health and /metrics.
#include <unistd.h>

#include "api/routes.h"
#include "common/log.h"

namespace berth::api {
namespace {

using nlohmann::json;

std::string MetricLabel(const std::string& v) {
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

void Health(const RouteContext& ctx, http::Response& res) {
  int gpus = 0;
  for (const auto& n : ctx.inventory.Nodes()) gpus += static_cast<int>(n.gpus.size());
  ReplyJson(res, 200,
            {{"status", "ok"},
             {"version", ctx.options.version},
             {"policy", ctx.options.policy},
             {"inventory", ctx.inventory.Describe()},
             {"gpus", gpus},
             {"pid", static_cast<int64_t>(::getpid())},
             {"dataDir", ctx.options.data_dir},
             {"time", FormatTime(ctx.clock.Now())}});
}

void Metrics(const RouteContext& ctx, http::Response& res) {
  auto st = ctx.controller.GetStats();
  std::string out;
  out += "# HELP berth_jobs Active jobs by state and queue.\n# TYPE berth_jobs gauge\n";
  for (const auto& [k, v] : st.active_by_state_queue)
    out += "berth_jobs{state=\"" + MetricLabel(k.first) + "\",queue=\"" + MetricLabel(k.second) +
           "\"} " + std::to_string(v) + "\n";
  out +=
      "# HELP berth_jobs_finished_total Jobs that ended since the daemon started.\n"
      "# TYPE berth_jobs_finished_total counter\n";
  for (const auto& [k, v] : st.finished_by_state_queue)
    out += "berth_jobs_finished_total{state=\"" + MetricLabel(k.first) + "\",queue=\"" +
           MetricLabel(k.second) + "\"} " + std::to_string(v) + "\n";
  out += "# HELP berth_gpus Schedulable GPUs.\n# TYPE berth_gpus gauge\nberth_gpus " +
         FormatMilli(st.gpus_total_milli) + "\n";
  out +=
      "# HELP berth_gpus_allocated GPUs allocated to jobs (fractions count).\n"
      "# TYPE berth_gpus_allocated gauge\nberth_gpus_allocated " +
      FormatMilli(st.gpus_allocated_milli) + "\n";
  out +=
      "# HELP berth_gpus_free GPUs not allocated.\n# TYPE berth_gpus_free gauge\nberth_gpus_free " +
      FormatMilli(st.gpus_total_milli - st.gpus_allocated_milli) + "\n";
  out +=
      "# HELP berth_queue_wait_seconds Time from submission to scheduling.\n"
      "# TYPE berth_queue_wait_seconds histogram\n";
  int64_t cum = 0;
  for (size_t i = 0; i < st.wait_counts.size(); ++i) {
    cum += st.wait_counts[i];
    std::string le = i < st.wait_bounds.size() ? fmt::format("{}", st.wait_bounds[i]) : "+Inf";
    out += "berth_queue_wait_seconds_bucket{le=\"" + le + "\"} " + std::to_string(cum) + "\n";
  }
  out += "berth_queue_wait_seconds_sum " + fmt::format("{}", st.wait_sum) + "\n";
  out += "berth_queue_wait_seconds_count " + std::to_string(st.wait_count) + "\n";
  out +=
      "# HELP berth_preemptions_total Jobs preempted and requeued.\n"
      "# TYPE berth_preemptions_total counter\nberth_preemptions_total " +
      std::to_string(st.preemptions) + "\n";
  out +=
      "# HELP berth_scheduling_cycles_total Scheduling cycles run.\n"
      "# TYPE berth_scheduling_cycles_total counter\nberth_scheduling_cycles_total " +
      std::to_string(st.cycles) + "\n";
  if (ctx.hooks.extra_metrics) out += ctx.hooks.extra_metrics();
  res.status = 200;
  res.SetContent(std::move(out), "text/plain; version=0.0.4; charset=utf-8");
}

}  // namespace

void RegisterHealthRoutes(http::Router& r, const RouteContext& ctx) {
  auto health = [&ctx](const http::Request&, http::Response& res) { Health(ctx, res); };
  r.Get("/healthz", health);
  r.Get("/api/v1/health", health);
  r.Get("/metrics", [&ctx](const http::Request&, http::Response& res) { Metrics(ctx, res); });
}

}  // namespace berth::api
