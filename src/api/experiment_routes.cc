#include "api/experiment_routes.h"

#include <cmath>

#include "api/caller.h"
#include "api/pipeline_routes.h"
#include "api/server.h"
#include "model/experiment.h"

namespace berth::api {
namespace {

using controllers::ExperimentController;
using nlohmann::json;

Result<std::string> SpecText(const json& body) {
  if (!body.contains("spec") || !body["spec"].is_string())
    return InvalidArgument("spec: is required (the Experiment document as text)");
  return body["spec"].get<std::string>();
}

Result<controllers::TrialCounts> Counts(const json& body) {
  controllers::TrialCounts c;
  auto read = [&](const char* key, std::optional<int64_t>* out) -> Status {
    if (!body.contains(key) || body[key].is_null()) return Status::Ok();
    if (!body[key].is_number_integer())
      return InvalidArgument(std::string(key) + ": must be a whole number");
    *out = body[key].get<int64_t>();
    return Status::Ok();
  };
  RETURN_IF_ERROR(read("parallelTrialCount", &c.parallel));
  RETURN_IF_ERROR(read("maxTrialCount", &c.max_trials));
  RETURN_IF_ERROR(read("maxFailedTrialCount", &c.max_failed));
  for (auto it = body.begin(); it != body.end(); ++it)
    if (it.key() != "parallelTrialCount" && it.key() != "maxTrialCount" &&
        it.key() != "maxFailedTrialCount")
      return InvalidArgument(it.key() +
                             ": unknown field (parallelTrialCount, maxTrialCount or "
                             "maxFailedTrialCount)");
  return c;
}

void Create(ExperimentController& x, store::Store& store, const Clock& clock,
            const http::Request& req, http::Response& res) {
  if (Status st = AuthorizeRequest(req, auth::Action::kSubmit, "", "an experiment"); !st.ok())
    return ReplyError(res, st);
  auto body = JsonBody(req);
  if (!body.ok()) return ReplyError(res, body.status());
  auto text = SpecText(*body);
  if (!text.ok()) return ReplyError(res, text.status());
  auto user = RequestUser(req);
  if (!user.ok()) return ReplyError(res, user.status());
  auto out = x.Create(*text, *user);
  if (!out.ok()) return ReplyError(res, out.status());
  RecordAudit(store, clock, req, "create", 0, *user,
              "experiment " + out->value("name", std::string()));
  ReplyJson(res, 201, *out);
}

void Validate(const http::Request& req, http::Response& res) {
  auto body = JsonBody(req);
  if (!body.ok()) return ReplyError(res, body.status());
  auto text = SpecText(*body);
  if (!text.ok()) return ReplyError(res, text.status());
  auto spec = model::ParseExperimentSpec(*text);
  if (!spec.ok()) return ReplyError(res, spec.status());
  ReplyJson(res, 200, json{{"valid", true}});
}

void Action(ExperimentController& x, store::Store& store, const Clock& clock,
            const std::string& action, const http::Request& req, http::Response& res) {
  std::string name = req.Capture("name");
  // Only its owner or an admin stops, resumes, changes or deletes an experiment.
  auto current = x.Get(name);
  if (!current.ok()) return ReplyError(res, current.status());
  std::string owner = current->value("owner", std::string());
  if (Status st = AuthorizeRequest(req, auth::Action::kChange, owner, "experiment " + name);
      !st.ok())
    return ReplyError(res, st);
  Result<json> out = json();
  if (action == "stop") {
    out = x.StopExperiment(name);
  } else if (action == "delete") {
    Status st = x.Delete(name);
    out = st.ok() ? Result<json>(json{{"deleted", name}}) : Result<json>(st);
  } else {
    json body = json::object();
    if (!req.body.empty()) {
      auto b = JsonBody(req);
      if (!b.ok()) return ReplyError(res, b.status());
      body = *b;
      if (!body.is_object()) return ReplyError(res, InvalidArgument("request body: must be a map"));
    }
    auto counts = Counts(body);
    if (!counts.ok()) return ReplyError(res, counts.status());
    out = action == "resume" ? x.Resume(name, *counts) : x.SetCounts(name, *counts);
  }
  if (!out.ok()) return ReplyError(res, out.status());
  RecordAudit(store, clock, req, action, 0, owner, "experiment " + name);
  ReplyJson(res, 200, *out);
}

void PushMetrics(ExperimentController& x, const http::Request& req, http::Response& res) {
  std::string name = req.Capture("name");
  const std::string& id_text = req.Capture("id");
  char* end = nullptr;
  long long id = std::strtoll(id_text.c_str(), &end, 10);
  if (id_text.empty() || *end || id < 0)
    return ReplyError(res, InvalidArgument("bad trial id \"" + id_text + "\""));
  auto body = JsonBody(req);
  if (!body.ok()) return ReplyError(res, body.status());
  if (!body->is_object()) return ReplyError(res, InvalidArgument("request body: must be a map"));
  std::optional<int64_t> step;
  std::map<std::string, double> metrics;
  auto add = [&](const std::string& key, const json& v) -> Status {
    if (!v.is_number() || !std::isfinite(v.get<double>()))
      return InvalidArgument("metrics." + key + ": must be a finite number");
    if (metrics.size() >= 256) return InvalidArgument("metrics: at most 256 values at once");
    metrics[key] = v.get<double>();
    return Status::Ok();
  };
  for (auto it = body->begin(); it != body->end(); ++it) {
    if (it.key() == "step") {
      if (!it.value().is_number_integer() || it.value().get<int64_t>() < 0)
        return ReplyError(res, InvalidArgument("step: must be a whole number >= 0"));
      step = it.value().get<int64_t>();
    } else if (it.key() == "metrics") {
      if (!it.value().is_object())
        return ReplyError(res, InvalidArgument("metrics: must be a map of name to number"));
      for (auto m = it.value().begin(); m != it.value().end(); ++m)
        if (Status st = add(m.key(), m.value()); !st.ok()) return ReplyError(res, st);
    } else if (Status st = add(it.key(), it.value()); !st.ok()) {
      return ReplyError(res, st);
    }
  }
  auto user = RequestUser(req);
  if (!user.ok()) return ReplyError(res, user.status());
  Status st = x.Report(name, id, *user, step, metrics);
  if (!st.ok()) return ReplyError(res, st);
  ReplyJson(res, 200, json{{"accepted", static_cast<int64_t>(metrics.size())}});
}

}  // namespace

void RegisterExperimentRoutes(http::Router& s, ExperimentController& x, store::Store& store,
                              const Clock& clock) {
  s.Post("/api/v1/experiments",
         [&x, &store, &clock](const http::Request& req, http::Response& res) {
           Create(x, store, clock, req, res);
         });
  s.Post("/api/v1/experiments/validate", Validate);
  s.Get("/api/v1/experiments", [&x](const http::Request&, http::Response& res) {
    auto out = x.List();
    if (!out.ok()) return ReplyError(res, out.status());
    ReplyJson(res, 200, *out);
  });
  s.Get("/api/v1/experiments/{name}", [&x](const http::Request& req, http::Response& res) {
    auto out = x.Get(req.Capture("name"));
    if (!out.ok()) return ReplyError(res, out.status());
    ReplyJson(res, 200, *out);
  });
  s.Get("/api/v1/experiments/{name}/trials", [&x](const http::Request& req, http::Response& res) {
    auto out = x.Get(req.Capture("name"));
    if (!out.ok()) return ReplyError(res, out.status());
    ReplyJson(res, 200, json{{"items", (*out)["trials"]}});
  });
  for (const char* action : {"stop", "resume", "counts", "delete"}) {
    std::string a = action;
    s.Post("/api/v1/experiments/{name}/" + a,
           [&x, &store, &clock, a](const http::Request& req, http::Response& res) {
             Action(x, store, clock, a, req, res);
           });
  }
  s.Delete("/api/v1/experiments/{name}",
           [&x, &store, &clock](const http::Request& req, http::Response& res) {
             Action(x, store, clock, "delete", req, res);
           });
  s.Post("/api/v1/experiments/{name}/trials/{id}/metrics",
         [&x](const http::Request& req, http::Response& res) { PushMetrics(x, req, res); });
}

}  // namespace berth::api
