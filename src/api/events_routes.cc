// GET /api/v1/events?after=SEQ&job=ID&actor=NAME: the event log as a JSON list, or
// with follow=true as server-sent events (id: the seq, event: the type),
// with a ": ping" comment each second without events so that a client that
// went away is noticed. actor=NAME keeps the events of changes NAME made
// (data.actor: the audit trail).
#include "api/routes.h"

namespace berth::api {
namespace {

using nlohmann::json;

// Who made the change an event records: data.actor (Audit, TokenCreated,
// TokenRevoked, UserRoleSet, ...), "" for events of berthd's own doing.
std::string EventActor(const store::Event& e) {
  if (e.data.is_object() && e.data.contains("actor") && e.data["actor"].is_string())
    return e.data["actor"].get<std::string>();
  return "";
}

void FollowEvents(const RouteContext& ctx, int64_t cursor, model::JobId job,
                  const std::string& actor, http::StreamWriter& w) {
  static const std::string kPing = ": ping\n\n";
  while (w.Open()) {
    auto evs = ctx.store.EventsSince(cursor, 1000, job);
    if (!evs.ok()) return;
    if (!evs->empty()) {
      std::string out;
      for (const auto& e : *evs)
        if (actor.empty() || EventActor(e) == actor)
          out += SseEvent(e.type, store::EventToJson(e).dump(), e.seq);
      if (!out.empty() && !w.Write(out)) return;
      cursor = evs->back().seq;
      continue;
    }
    int64_t last = ctx.store.WaitForEvent(cursor, 1000);
    if (last <= cursor && !w.Write(kPing)) return;
  }
}

void Events(const RouteContext& ctx, const http::Request& req, http::Response& res) {
  int64_t after = 0;
  model::JobId job = 0;
  std::string actor = req.Param("actor");
  try {
    if (req.HasParam("after")) after = std::stoll(req.Param("after"));
    if (req.HasParam("job")) job = std::stoll(req.Param("job"));
  } catch (const std::exception&) {
    return ReplyError(res, InvalidArgument("after, job: must be integers"));
  }
  if (!Truthy(req.Param("follow"))) {
    auto evs = ctx.store.EventsSince(after, 10000, job);
    if (!evs.ok()) return ReplyError(res, evs.status());
    json items = json::array();
    for (const auto& e : *evs)
      if (actor.empty() || EventActor(e) == actor) items.push_back(store::EventToJson(e));
    return ReplyJson(res, 200, {{"items", items}});
  }
  StartEventStream(res);
  res.stream = [&ctx, after, job, actor](http::StreamWriter& w) {
    FollowEvents(ctx, after, job, actor, w);
  };
}

}  // namespace

void RegisterEventRoutes(http::Router& r, const RouteContext& ctx) {
  r.Get("/api/v1/events",
        [&ctx](const http::Request& req, http::Response& res) { Events(ctx, req, res); });
}

}  // namespace berth::api
