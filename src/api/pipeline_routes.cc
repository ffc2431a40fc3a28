#include "api/pipeline_routes.h"

#include <httplib.h>

#include <cstdio>

#include "api/caller.h"
#include "api/log_pages.h"
#include "api/server.h"

namespace berth::api {
namespace {

using nlohmann::json;

Result<int64_t> RunId(const std::string& s) {
  std::string t = s.rfind("run-", 0) == 0 ? s.substr(4) : s;
  char* end = nullptr;
  long long v = std::strtoll(t.c_str(), &end, 10);
  if (t.empty() || *end || v <= 0) return InvalidArgument("bad pipeline run id \"" + s + "\"");
  return static_cast<int64_t>(v);
}

Result<json> Body(const httplib::Request& req) {
  try {
    return json::parse(req.body);
  } catch (const json::exception& e) {
    return InvalidArgument(std::string("request body: not JSON: ") + e.what());
  }
}

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

}  // namespace

void RegisterPipelineRoutes(httplib::Server& s, controllers::PipelineController& p,
                            const store::Store& store, const Clock& clock) {
  using controllers::RunToJson;
  s.Post("/api/v1/pipelines/runs", [&p, &store](const httplib::Request& req, httplib::Response& res) {
    auto body = Body(req);
    if (!body.ok()) return ReplyError(res, body.status());
    if (!body->contains("spec") || !(*body)["spec"].is_string())
      return ReplyError(res, InvalidArgument("spec: is required (the Pipeline document as text)"));
    std::map<std::string, std::string> params;
    if (body->contains("parameters") && (*body)["parameters"].is_object())
      for (auto it = (*body)["parameters"].begin(); it != (*body)["parameters"].end(); ++it)
        params[it.key()] =
            it.value().is_string() ? it.value().get<std::string>() : it.value().dump();
    std::string text = (*body)["spec"].get<std::string>();
    auto kind = model::DocumentKind(text);
    if (kind.ok() && *kind == "CronPipeline")
      return ReplyError(
          res, InvalidArgument("kind: CronPipeline documents go to /api/v1/cronpipelines"));
    auto user = RequestUser(req, store);
    if (!user.ok()) return ReplyError(res, user.status());
    if (body->contains("user")) {
      const json& u = (*body)["user"];
      if (!u.is_string()) return ReplyError(res, InvalidArgument("user: must be a string"));
      if (Status st = CheckClaimedUser(u.get<std::string>(), *user, "user"); !st.ok())
        return ReplyError(res, st);
    }
    int64_t events_after = store.LastEventSeq();
    auto run = p.Submit(text, params, *user);
    if (!run.ok()) return ReplyError(res, run.status());
    json out = RunToJson(*run);
    out["eventsAfter"] = events_after;
    ReplyJson(res, 201, out);
  });
  s.Post("/api/v1/pipelines/validate", [](const httplib::Request& req, httplib::Response& res) {
    auto body = Body(req);
    if (!body.ok()) return ReplyError(res, body.status());
    std::string text = body->value("spec", "");
    auto kind = model::DocumentKind(text);
    Status st = kind.ok() ? Status::Ok() : kind.status();
    if (st.ok() && *kind == "CronPipeline")
      st = model::ParseCronPipelineSpec(text).status();
    else if (st.ok())
      st = model::ParsePipelineSpec(text).status();
    if (!st.ok()) return ReplyError(res, st);
    ReplyJson(res, 200, json{{"valid", true}});
  });
  s.Get("/api/v1/pipelines/runs", [&p](const httplib::Request& req, httplib::Response& res) {
    int64_t limit = req.has_param("limit") ? std::atoll(req.get_param_value("limit").c_str()) : 100;
    auto runs = p.ListRuns(limit);
    if (!runs.ok()) return ReplyError(res, runs.status());
    json out = json::array();
    for (const auto& r : *runs) {
      json j = RunToJson(r);
      j.erase("nodes");
      out.push_back(j);
    }
    ReplyJson(res, 200, out);
  });
  s.Get(R"(/api/v1/pipelines/runs/([^/]+))",
        [&p](const httplib::Request& req, httplib::Response& res) {
          auto id = RunId(req.matches[1]);
          if (!id.ok()) return ReplyError(res, id.status());
          auto run = p.GetRun(*id);
          if (!run.ok()) return ReplyError(res, run.status());
          ReplyJson(res, 200, RunToJson(*run));
        });
  s.Get(R"(/api/v1/pipelines/runs/([^/]+)/logs)",
        [&p](const httplib::Request& req, httplib::Response& res) {
          auto id = RunId(req.matches[1]);
          if (!id.ok()) return ReplyError(res, id.status());
          auto page = ParseLogPage(req);
          if (!page.ok()) return ReplyError(res, page.status());
          auto chunk = p.Logs(*id, req.get_param_value("step"), page->offset, page->limit);
          if (!chunk.ok()) return ReplyError(res, chunk.status());
          ReplyLogPage(res, *chunk);
        });
  s.Post(R"(/api/v1/pipelines/runs/([^/]+)/(cancel|suspend|resume|retry|resubmit))",
         [&p, &store](const httplib::Request& req, httplib::Response& res) {
           auto id = RunId(req.matches[1]);
           if (!id.ok()) return ReplyError(res, id.status());
           std::string action = req.matches[2];
           auto user = RequestUser(req, store);
           if (!user.ok()) return ReplyError(res, user.status());
           Result<store::RunRecord> r = action == "cancel"    ? p.Cancel(*id)
                                        : action == "suspend" ? p.Suspend(*id)
                                        : action == "resume"  ? p.Resume(*id)
                                        : action == "retry"   ? p.Retry(*id)
                                                              : p.Resubmit(*id, *user);
           if (!r.ok()) return ReplyError(res, r.status());
           ReplyJson(res, action == "resubmit" ? 201 : 200, RunToJson(*r));
         });

  auto cron_json = [&p, &clock](const store::CronRecord& c) {
    auto next = p.NextFire(c.name, std::max(c.last_time, clock.Now()));
    return controllers::CronToJson(c, next.ok() && !c.suspended ? *next : 0);
  };
  s.Post("/api/v1/cronpipelines",
         [&p, &store, cron_json](const httplib::Request& req, httplib::Response& res) {
           auto body = Body(req);
           if (!body.ok()) return ReplyError(res, body.status());
           auto user = RequestUser(req, store);
           if (!user.ok()) return ReplyError(res, user.status());
           auto c = p.CreateCron(body->value("spec", ""), *user);
           if (!c.ok()) return ReplyError(res, c.status());
           ReplyJson(res, 201, cron_json(*c));
         });
  s.Get("/api/v1/cronpipelines", [&p, cron_json](const httplib::Request&, httplib::Response& res) {
    auto all = p.ListCrons();
    if (!all.ok()) return ReplyError(res, all.status());
    json out = json::array();
    for (const auto& c : *all) out.push_back(cron_json(c));
    ReplyJson(res, 200, out);
  });
  s.Get(R"(/api/v1/cronpipelines/([^/]+))",
        [&p, cron_json](const httplib::Request& req, httplib::Response& res) {
          auto c = p.GetCron(req.matches[1]);
          if (!c.ok()) return ReplyError(res, c.status());
          ReplyJson(res, 200, cron_json(*c));
        });
  auto del = [&p](const httplib::Request& req, httplib::Response& res) {
    Status st = p.DeleteCron(req.matches[1]);
    if (!st.ok()) return ReplyError(res, st);
    ReplyJson(res, 200, json{{"deleted", std::string(req.matches[1])}});
  };
  s.Delete(R"(/api/v1/cronpipelines/([^/]+))", del);
  s.Post(R"(/api/v1/cronpipelines/([^/]+)/delete)", del);
  s.Post(R"(/api/v1/cronpipelines/([^/]+)/(suspend|resume))",
         [&p, cron_json](const httplib::Request& req, httplib::Response& res) {
           auto c = p.SetCronSuspended(req.matches[1], std::string(req.matches[2]) == "suspend");
           if (!c.ok()) return ReplyError(res, c.status());
           ReplyJson(res, 200, cron_json(*c));
         });
  s.Post(R"(/api/v1/cronpipelines/([^/]+)/backfill)",
         [&p](const httplib::Request& req, httplib::Response& res) {
           auto body = Body(req);
           if (!body.ok()) return ReplyError(res, body.status());
           auto from = ParseTimeArg(body->value("from", json()), "from");
           if (!from.ok()) return ReplyError(res, from.status());
           auto to = ParseTimeArg(body->value("to", json()), "to");
           if (!to.ok()) return ReplyError(res, to.status());
           auto ids = p.Backfill(req.matches[1], *from, *to);
           if (!ids.ok()) return ReplyError(res, ids.status());
           ReplyJson(res, 201, json{{"runs", *ids}});
         });
}

}  // namespace berth::api
