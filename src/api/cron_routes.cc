// Cron schedules of pipelines (routes listed in api/pipeline_routes.h).
#include <cstdio>

#include "api/caller.h"
#include "api/pipeline_routes.h"
#include "api/server.h"

namespace berth::api {
namespace {

using nlohmann::json;

// RFC 3339 ("2026-01-02T03:04:05Z", fraction optional) or ms since the epoch.
Result<TimeMs> ParseTimeArg(const json& v, const std::string& field) {
  if (v.is_number_integer()) return v.get<TimeMs>();
  if (!v.is_string())
    return InvalidArgument(field + ": must be a time (RFC 3339) or ms since the epoch");
  std::string s = v.get<std::string>();
  int y, mo, d, h = 0, mi = 0, sec = 0;
  if (std::sscanf(s.c_str(), "%d-%d-%dT%d:%d:%d", &y, &mo, &d, &h, &mi, &sec) < 3)
    return InvalidArgument(field + ": \"" + s + "\" is not an RFC 3339 time");
  return (model::DaysFromCivil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec) * 1000;
}

void Backfill(controllers::PipelineController& p, const http::Request& req, http::Response& res) {
  auto body = JsonBody(req);
  if (!body.ok()) return ReplyError(res, body.status());
  auto from = ParseTimeArg(body->value("from", json()), "from");
  if (!from.ok()) return ReplyError(res, from.status());
  auto to = ParseTimeArg(body->value("to", json()), "to");
  if (!to.ok()) return ReplyError(res, to.status());
  auto ids = p.Backfill(req.Capture("name"), *from, *to);
  if (!ids.ok()) return ReplyError(res, ids.status());
  ReplyJson(res, 201, json{{"runs", *ids}});
}

// The schedule `name` after checking that the caller may change it.
Result<store::CronRecord> CronAllowed(controllers::PipelineController& p, const http::Request& req,
                                      const std::string& name) {
  ASSIGN_OR_RETURN(store::CronRecord c, p.GetCron(name));
  RETURN_IF_ERROR(AuthorizeRequest(req, auth::Action::kChange, c.owner, "schedule " + name));
  return c;
}

}  // namespace

void RegisterCronRoutes(http::Router& s, controllers::PipelineController& p, store::Store& store,
                        const Clock& clock) {
  auto cron_json = [&p, &clock](const store::CronRecord& c) {
    auto next = p.NextFire(c.name, std::max(c.last_time, clock.Now()));
    return controllers::CronToJson(c, next.ok() && !c.suspended ? *next : 0);
  };
  s.Post("/api/v1/cronpipelines",
         [&p, &store, &clock, cron_json](const http::Request& req, http::Response& res) {
           if (Status st = AuthorizeRequest(req, auth::Action::kSubmit, "", "a schedule"); !st.ok())
             return ReplyError(res, st);
           auto body = JsonBody(req);
           if (!body.ok()) return ReplyError(res, body.status());
           auto user = RequestUser(req);
           if (!user.ok()) return ReplyError(res, user.status());
           auto c = p.CreateCron(body->value("spec", ""), *user);
           if (!c.ok()) return ReplyError(res, c.status());
           RecordAudit(store, clock, req, "created", 0, c->owner, "schedule " + c->name);
           ReplyJson(res, 201, cron_json(*c));
         });
  s.Get("/api/v1/cronpipelines", [&p, cron_json](const http::Request&, http::Response& res) {
    auto all = p.ListCrons();
    if (!all.ok()) return ReplyError(res, all.status());
    json out = json::array();
    for (const auto& c : *all) out.push_back(cron_json(c));
    ReplyJson(res, 200, out);
  });
  s.Get("/api/v1/cronpipelines/{name}",
        [&p, cron_json](const http::Request& req, http::Response& res) {
          auto c = p.GetCron(req.Capture("name"));
          if (!c.ok()) return ReplyError(res, c.status());
          ReplyJson(res, 200, cron_json(*c));
        });
  auto del = [&p, &store, &clock](const http::Request& req, http::Response& res) {
    auto allowed = CronAllowed(p, req, req.Capture("name"));
    if (!allowed.ok()) return ReplyError(res, allowed.status());
    Status st = p.DeleteCron(req.Capture("name"));
    if (st.ok())
      RecordAudit(store, clock, req, "deleted", 0, allowed->owner, "schedule " + allowed->name);
    if (!st.ok()) return ReplyError(res, st);
    ReplyJson(res, 200, json{{"deleted", req.Capture("name")}});
  };
  s.Delete("/api/v1/cronpipelines/{name}", del);
  s.Post("/api/v1/cronpipelines/{name}/delete", del);
  for (const char* action : {"suspend", "resume"}) {
    bool suspend = std::string(action) == "suspend";
    s.Post("/api/v1/cronpipelines/{name}/" + std::string(action),
           [&p, &store, &clock, cron_json, suspend](const http::Request& req, http::Response& res) {
             auto allowed = CronAllowed(p, req, req.Capture("name"));
             if (!allowed.ok()) return ReplyError(res, allowed.status());
             auto c = p.SetCronSuspended(req.Capture("name"), suspend);
             if (!c.ok()) return ReplyError(res, c.status());
             RecordAudit(store, clock, req, suspend ? "suspended" : "resumed", 0, c->owner,
                         "schedule " + c->name);
             ReplyJson(res, 200, cron_json(*c));
           });
  }
  s.Post("/api/v1/cronpipelines/{name}/backfill", [&p, &store, &clock](const http::Request& req,
                                                                       http::Response& res) {
    auto allowed = CronAllowed(p, req, req.Capture("name"));
    if (!allowed.ok()) return ReplyError(res, allowed.status());
    Backfill(p, req, res);
    if (res.status / 100 == 2)
      RecordAudit(store, clock, req, "backfilled", 0, allowed->owner, "schedule " + allowed->name);
  });
}

}  // namespace berth::api
