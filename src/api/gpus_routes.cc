// GET /api/v1/gpus: nodes, their GPUs, the jobs holding each, its telemetry
// and its drain. POST /api/v1/gpus/drain {"node", "gpu"?, "reason"} and
// POST /api/v1/gpus/undrain {"node", "gpu"?}: an operator takes a GPU (or a
// whole node, without "gpu") out of scheduling and back (docs/gpu.md).
#include "api/caller.h"
#include "api/pipeline_routes.h"
#include "api/routes.h"

namespace berth::api {
namespace {

using nlohmann::json;

constexpr size_t kMaxDrainReason = 1024;

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
      g["drained"] = ctx.hooks.gpu_drain ? ctx.hooks.gpu_drain(n.name, idx) : json(nullptr);
    }
    // A drained GPU the inventory no longer lists (a lost GPU is dropped
    // from it) is shown with its drain, so the reason stays visible.
    if (ctx.hooks.drains) {
      for (const json& d : ctx.hooks.drains()) {
        if (d.value("node", "") != n.name || d.value("gpu", -1) < 0) continue;
        int idx = d["gpu"];
        bool listed = false;
        for (const auto& g : n.gpus) listed |= g.index == idx;
        if (listed) continue;
        jn["gpus"].push_back({{"index", idx},
                              {"model", "(not in the inventory)"},
                              {"declared", false},
                              {"jobs", json::array()},
                              {"allocated", "0"},
                              {"drained", ctx.hooks.gpu_drain(n.name, idx)}});
      }
    }
    nodes.push_back(jn);
  }
  ReplyJson(res, 200, {{"nodes", nodes}});
}

// {"node", "gpu"?, "reason"?} checked against the inventory.
Status ParseTarget(const RouteContext& ctx, const json& body, bool drain, std::string* node,
                   int* gpu, std::string* reason) {
  if (!body.is_object()) return InvalidArgument("body: must be a JSON object");
  for (const auto& [k, v] : body.items())
    if (k != "node" && k != "gpu" && k != "reason")
      return InvalidArgument(k + ": unknown field (node, gpu, reason)");
  if (!body.contains("node") || !body["node"].is_string() ||
      body["node"].get<std::string>().empty())
    return InvalidArgument("node: required, a node name");
  *node = body["node"].get<std::string>();
  const model::NodeInfo* found = nullptr;
  auto nodes = ctx.inventory.Nodes();
  for (const auto& n : nodes)
    if (n.name == *node) found = &n;
  if (!found) return NotFound("node: no node named \"" + *node + "\"");
  *gpu = -1;
  if (body.contains("gpu") && !body["gpu"].is_null()) {
    if (!body["gpu"].is_number_integer()) return InvalidArgument("gpu: must be a GPU index");
    int64_t g = body["gpu"].get<int64_t>();
    bool known = false;
    for (const auto& gi : found->gpus) known |= gi.index == g;
    // Undrain may name a GPU the inventory dropped (lost) but a drain keeps.
    if (!known && (drain || g < 0 || g > 1024))
      return NotFound("gpu: node " + *node + " has no GPU " + std::to_string(g) + " (it has " +
                      std::to_string(found->gpus.size()) + ")");
    *gpu = static_cast<int>(g);
  }
  if (drain) {
    if (!body.contains("reason") || !body["reason"].is_string() ||
        body["reason"].get<std::string>().empty())
      return InvalidArgument("reason: required, why the GPU is drained");
    *reason = body["reason"].get<std::string>();
    if (reason->size() > kMaxDrainReason)
      return InvalidArgument("reason: at most " + std::to_string(kMaxDrainReason) + " bytes");
    for (unsigned char c : *reason)
      if (c < 0x20 || c == 0x7f) return InvalidArgument("reason: must not hold control characters");
  } else if (body.contains("reason")) {
    return InvalidArgument("reason: only for drain");
  }
  return Status::Ok();
}

void SetDrain(const RouteContext& ctx, const http::Request& req, http::Response& res, bool drain) {
  if (!ctx.hooks.set_drain) return ReplyError(res, Unavailable("drains are not kept here"));
  auto body = JsonBody(req);
  if (!body.ok()) return ReplyError(res, body.status());
  std::string node, reason;
  int gpu = -1;
  if (Status st = ParseTarget(ctx, *body, drain, &node, &gpu, &reason); !st.ok())
    return ReplyError(res, st);
  // Draining changes what every user's work may use: admins only.
  if (Status st = AuthorizeRequest(req, auth::Action::kAdmin, "",
                                   std::string(drain ? "drain" : "undrain") + " " + node);
      !st.ok())
    return ReplyError(res, st);
  auto user = RequestUser(req);
  if (!user.ok()) return ReplyError(res, user.status());
  if (Status st = ctx.hooks.set_drain(node, gpu, drain, reason, *user); !st.ok())
    return ReplyError(res, st);
  json out = {{"node", node}, {"drained", drain}};
  if (gpu >= 0) out["gpu"] = gpu;
  if (drain) out["reason"] = reason;
  ReplyJson(res, 200, out);
}

}  // namespace

void RegisterGpuRoutes(http::Router& r, const RouteContext& ctx) {
  r.Get("/api/v1/gpus", [&ctx](const http::Request&, http::Response& res) { Gpus(ctx, res); });
  r.Post("/api/v1/gpus/drain",
         [&ctx](const http::Request& req, http::Response& res) { SetDrain(ctx, req, res, true); });
  r.Post("/api/v1/gpus/undrain",
         [&ctx](const http::Request& req, http::Response& res) { SetDrain(ctx, req, res, false); });
}

}  // namespace berth::api
