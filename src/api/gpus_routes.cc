// GET /api/v1/gpus: nodes, their GPUs, the jobs holding each and its telemetry.
#include "api/routes.h"

namespace berth::api {
namespace {

using nlohmann::json;

void Gpus(const RouteContext& ctx, http::Response& res) {
  auto holders = ctx.controller.GpuHolders();
  json nodes = json::array();
  for (const auto& n : ctx.inventory.Nodes()) {
    json jn = model::ToJson(n);
    for (auto& g : jn["gpus"]) {
      int idx = g["index"];
      json held = json::array();
      MilliGpu used = 0;
      for (const auto& h : holders) {
        if (h.node != n.name || h.gpu != idx) continue;
        held.push_back({{"job", h.job},
                        {"user", h.user},
                        {"queue", h.queue},
                        {"name", h.name},
                        {"share", FormatMilli(h.share)}});
        used += h.share;
      }
      g["jobs"] = held;
      g["allocated"] = FormatMilli(used);
      if (ctx.hooks.gpu_telemetry) {
        json t = ctx.hooks.gpu_telemetry(n.name, idx);
        if (!t.is_null()) g["telemetry"] = t;
      }
    }
    nodes.push_back(jn);
  }
  ReplyJson(res, 200, {{"nodes", nodes}});
}

}  // namespace

void RegisterGpuRoutes(http::Router& r, const RouteContext& ctx) {
  r.Get("/api/v1/gpus", [&ctx](const http::Request&, http::Response& res) { Gpus(ctx, res); });
}

}  // namespace berth::api
