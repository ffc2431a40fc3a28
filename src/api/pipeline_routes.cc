#include "api/pipeline_routes.h"
#include "model/request.h"

#include "api/caller.h"
#include "api/log_pages.h"
#include "api/server.h"

namespace berth::api {
namespace {

using controllers::PipelineController;
using controllers::RunToJson;
using nlohmann::json;

Result<int64_t> RunId(const std::string& s) {
  std::string t = s.rfind("run-", 0) == 0 ? s.substr(4) : s;
  char* end = nullptr;
  long long v = std::strtoll(t.c_str(), &end, 10);
  if (t.empty() || *end || v <= 0) return InvalidArgument("bad pipeline run id \"" + s + "\"");
  return static_cast<int64_t>(v);
}

// A run as `req`'s caller may see it: the state for everyone; the
// parameters, the steps' items and outputs only for its owner or an admin.
json RunFor(const http::Request& req, const store::RunRecord& run) {
  json j = RunToJson(run);
  if (AuthorizeRequest(req, auth::Action::kReadData, run.user).ok()) return j;
  j["parameters"] = "(hidden: only " + run.user + " or an admin may read them)";
  if (j.contains("nodes"))
    for (auto& n : j["nodes"]) {
      n.erase("outputs");
      n.erase("item");
    }
  j["redacted"] = true;
  return j;
}

// The run `id` after checking that the caller may do `action` to it.
Result<store::RunRecord> RunAllowed(PipelineController& p, const http::Request& req, int64_t id,
                                    auth::Action action) {
  ASSIGN_OR_RETURN(store::RunRecord run, p.GetRun(id));
  RETURN_IF_ERROR(AuthorizeRequest(req, action, run.user, "pipeline run " + std::to_string(id)));
  return run;
}

void SubmitRun(PipelineController& p, store::Store& store, const Clock& clock,
               const http::Request& req, http::Response& res) {
  if (Status st = AuthorizeRequest(req, auth::Action::kSubmit, "", "a pipeline run"); !st.ok())
    return ReplyError(res, st);
  auto body = JsonBody(req);
  if (!body.ok()) return ReplyError(res, body.status());
  if (!body->contains("spec") || !(*body)["spec"].is_string())
    return ReplyError(res, InvalidArgument("spec: is required (the Pipeline document as text)"));
  std::map<std::string, std::string> params;
  if (body->contains("parameters") && (*body)["parameters"].is_object())
    for (auto it = (*body)["parameters"].begin(); it != (*body)["parameters"].end(); ++it)
      params[it.key()] = it.value().is_string() ? it.value().get<std::string>() : it.value().dump();
  std::string text = (*body)["spec"].get<std::string>();
  auto kind = model::DocumentKind(text);
  if (kind.ok() && *kind == "CronPipeline")
    return ReplyError(res,
                      InvalidArgument("kind: CronPipeline documents go to /api/v1/cronpipelines"));
  auto user = RequestUser(req);
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
  RecordAudit(store, clock, req, "submitted", 0, run->user,
              "pipeline run " + std::to_string(run->id));
  json out = RunToJson(*run);
  out["eventsAfter"] = events_after;
  ReplyJson(res, 201, out);
}

void Validate(const http::Request& req, http::Response& res) {
  auto body = JsonBody(req);
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
}

void ListRuns(PipelineController& p, const http::Request& req, http::Response& res) {
  int64_t limit = req.HasParam("limit") ? std::atoll(req.Param("limit").c_str()) : 100;
  auto runs = p.ListRuns(limit);
  if (!runs.ok()) return ReplyError(res, runs.status());
  json out = json::array();
  for (const auto& r : *runs) {
    json j = RunToJson(r);
    j.erase("nodes");
    out.push_back(j);
  }
  ReplyJson(res, 200, out);
}

void RunAction(PipelineController& p, store::Store& store, const Clock& clock,
               const std::string& action, const http::Request& req, http::Response& res) {
  auto id = RunId(req.Capture("id"));
  if (!id.ok()) return ReplyError(res, id.status());
  auto user = RequestUser(req);
  if (!user.ok()) return ReplyError(res, user.status());
  // A resubmit makes a new run of the caller's (it reads the old one's
  // document and parameters: the owner's data); the rest change the run.
  auto allowed = RunAllowed(p, req, *id,
                            action == "resubmit" ? auth::Action::kReadData : auth::Action::kChange);
  if (!allowed.ok()) return ReplyError(res, allowed.status());
  if (action == "resubmit") {
    if (Status st = AuthorizeRequest(req, auth::Action::kSubmit, "", "a pipeline run"); !st.ok())
      return ReplyError(res, st);
  }
  Result<store::RunRecord> r = action == "cancel"    ? p.Cancel(*id)
                               : action == "suspend" ? p.Suspend(*id)
                               : action == "resume"  ? p.Resume(*id)
                               : action == "retry"   ? p.Retry(*id)
                                                     : p.Resubmit(*id, *user);
  if (!r.ok()) return ReplyError(res, r.status());
  RecordAudit(store, clock, req, action == "resubmit" ? "resubmitted" : action + "ed", 0, r->user,
              "pipeline run " + std::to_string(*id));
  ReplyJson(res, action == "resubmit" ? 201 : 200, RunToJson(*r));
}

}  // namespace

// Bounded: size, nesting depth and UTF-8 are checked while parsing
// (model/request.h), so a deeply nested value is a 400, not a crash.
Result<json> JsonBody(const http::Request& req) { return model::ParseJsonBody(req.body); }

void RegisterPipelineRoutes(http::Router& s, PipelineController& p, store::Store& store,
                            const Clock& clock) {
  s.Post("/api/v1/pipelines/runs",
         [&p, &store, &clock](const http::Request& req, http::Response& res) {
           SubmitRun(p, store, clock, req, res);
         });
  s.Post("/api/v1/pipelines/validate", Validate);
  s.Get("/api/v1/pipelines/runs",
        [&p](const http::Request& req, http::Response& res) { ListRuns(p, req, res); });
  s.Get("/api/v1/pipelines/runs/{id}", [&p](const http::Request& req, http::Response& res) {
    auto id = RunId(req.Capture("id"));
    if (!id.ok()) return ReplyError(res, id.status());
    auto run = p.GetRun(*id);
    if (!run.ok()) return ReplyError(res, run.status());
    ReplyJson(res, 200, RunFor(req, *run));
  });
  s.Get("/api/v1/pipelines/runs/{id}/logs", [&p](const http::Request& req, http::Response& res) {
    auto id = RunId(req.Capture("id"));
    if (!id.ok()) return ReplyError(res, id.status());
    auto allowed = RunAllowed(p, req, *id, auth::Action::kReadData);
    if (!allowed.ok()) return ReplyError(res, allowed.status());
    auto page = ParseLogPage(req);
    if (!page.ok()) return ReplyError(res, page.status());
    auto chunk = p.Logs(*id, req.Param("step"), page->offset, page->limit);
    if (!chunk.ok()) return ReplyError(res, chunk.status());
    ReplyLogPage(res, std::move(chunk).value());
  });
  for (const char* action : {"cancel", "suspend", "resume", "retry", "resubmit"}) {
    std::string a = action;
    s.Post("/api/v1/pipelines/runs/{id}/" + a,
           [&p, &store, &clock, a](const http::Request& req, http::Response& res) {
             RunAction(p, store, clock, a, req, res);
           });
  }
}

}  // namespace berth::api
